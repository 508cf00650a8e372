"""The Markdown collector (the repository's conftest.py) must catch what it exists to catch.

A collector that silently ran nothing would let every page pass, so these tests
feed it broken Markdown: a block that raises, a block whose printed output is
not its text block, and check the failure names the file and the line.
"""
import importlib.util
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _load_collector():
    spec = importlib.util.spec_from_file_location("markdown_collector", ROOT / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


collector = _load_collector()

PAGE = textwrap.dedent("""\
    # A page

    ```python
    x = 6
    print(x * 7)
    ```

    ```text
    42
    ```

    Some prose, then a shell command that must not run:

    ```bash
    rm -rf /
    ```

    ```text
    not an expected output: prose came before it
    ```

    ```python gpu
    import cupy
    ```
""")


def test_parse_pairs_python_blocks_with_their_output():
    blocks = collector.parse_markdown(PAGE)
    assert [(b.line, b.language) for b in blocks] == [(3, "python"), (14, "bash"), (18, "text"), (22, "python")]
    assert blocks[0].source == "x = 6\nprint(x * 7)\n"
    assert blocks[0].expected == "42\n"
    assert blocks[3].words == ["python", "gpu"] and blocks[3].expected is None


def test_a_raising_block_fails_with_the_markdown_line():
    block = collector.parse_markdown("text\n\n```python\nx = 1\ny = x / 0\n```\n")[0]
    with pytest.raises(collector.BlockFailure) as failure:
        collector.run_block(block, {}, "page.md", HERE)
    assert "page.md, python block at line 3" in str(failure.value)
    assert "raised (line 5): ZeroDivisionError" in str(failure.value)


def test_output_that_differs_from_the_text_block_fails():
    block = collector.parse_markdown("```python\nprint(1 + 1)\n```\n\n```text\n3\n```\n")[0]
    with pytest.raises(collector.BlockFailure, match=r"printed output differs(.|\n)*-3\n\+2"):
        collector.run_block(block, {}, "page.md", HERE)


def test_blocks_share_one_namespace_and_output_ignores_trailing_space():
    first, second = collector.parse_markdown("```python\nx = 2\n```\n```python\nprint(x, '  ')\n```\n"
                                             "```text\n2\n\n```\n")
    namespace = {}
    collector.run_block(first, namespace, "page.md", HERE)
    assert collector.run_block(second, namespace, "page.md", HERE) == "2   \n"


def test_pytest_reports_a_broken_page(tmp_path):
    """End to end: pytest with this conftest fails on a broken page and names file and line."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "conftest.py").write_text((ROOT / "conftest.py").read_text())
    (docs / "good.md").write_text("```python\nprint('ok')\n```\n\n```text\nok\n```\n")
    (docs / "bad.md").write_text("# Bad\n\n```python\nvalue = 1\n```\n\n```python\nassert value == 2\n```\n\n"
                                 "```python\nprint('never reached')\n```\n")
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", str(docs)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "docs/bad.md, python block at line 7: raised (line 8): AssertionError" in output, output
    assert "1 failed, 2 passed, 1 skipped" in output, output
    assert "the python block at line 7, which this one builds on, failed" in output, output


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _prose(path):
    """The page without its fenced code blocks (links and words inside code do not count)."""
    text = path.read_text(encoding="utf-8")
    lines, keep, inside = text.splitlines(), [], False
    for line in lines:
        if line.lstrip().startswith(("```", "~~~")):
            inside = not inside
            continue
        if not inside:
            keep.append(line)
    return "\n".join(keep)


PAGES = sorted(HERE.glob("*.md"))


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_relative_link_points_at_a_real_file(page):
    for target in LINK.findall(_prose(page)):
        if "://" in target or target.startswith(("#", "mailto:")):
            continue
        path = (page.parent / target.split("#")[0]).resolve()
        assert path.exists(), f"{page.name} links to {target}, which does not exist"


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_page_reads_in_under_ten_minutes(page):
    """About 200 words a minute for technical prose, plus time to read the code: at most 1,800 words of prose."""
    words = len(_prose(page).split())
    assert words <= 1800, f"{page.name} has {words} words of prose"
