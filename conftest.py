"""Run the code in the Markdown pages: every ```python block in docs/*.md and README.md is a test.

``python -m pytest`` collects each page of the tour (docs/) and the README and
runs their code blocks, so a changed API breaks a test, not a reader. The rules:

* A block fenced with ```python runs. The blocks of one file run in order, in
  one namespace (like cells of a notebook); each block is one test item, named
  after the line its fence is on (``docs/03-pooling.md::line-42``).
* A ```text block that follows a python block (nothing but blank lines
  between) holds that block's printed output, compared exactly (trailing
  spaces and blank lines at the end ignored). So every number printed in the
  prose is the number the code prints today.
* ```python gpu blocks run on the GPU path: real CuPy where it sees a GPU, else
  the strict CuPy stand-in in tests/standin, which ``pytest_configure`` below
  installs for the whole session (and names in the session header).
* Every other block (```bash, a ```text block after prose, a bare ```) is
  prose and is not run.

Blocks run with the repository root as the working directory and on
``sys.path`` (so ``import models`` works as it does from a shell there).
A failure names the file and the line of the block, and the traceback points at
lines of the Markdown file itself.

No dependency beyond pytest.
"""
import contextlib
import difflib
import io
import os
import re
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
PAGES = (ROOT / "docs", ROOT / "README.md")  # the tour's folder, and the README
_FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})\s*([^`]*)$")


@dataclass
class Block:
    """One fenced code block: ``line`` is the 1-based line of its opening fence."""

    line: int
    info: str           # the words after the fence: "python", "python gpu", "text", ""
    source: str
    expected: str = None  # printed output to compare, from a following ```text block
    words: list = field(default_factory=list)

    @property
    def language(self):
        return self.words[0] if self.words else ""


def parse_markdown(text):
    """All fenced blocks of ``text``, in order; a text block after a python block becomes its ``expected``.

    Returns:
        list of Block; only those with language "python" are meant to run.
    """
    lines = text.splitlines()
    blocks, i, last_end, previous = [], 0, None, None
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, fence, info = len(match.group(1)), match.group(2), match.group(3).strip()
        start, body, i = i, [], i + 1
        while i < len(lines):
            close = lines[i].strip()
            if close.startswith(fence[0] * len(fence)) and set(close) == {fence[0]}:
                break
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        else:
            raise ValueError(f"line {start + 1}: code block is never closed")
        block = Block(line=start + 1, info=info, source="\n".join(body) + "\n", words=info.split())
        between = lines[last_end + 1:start] if last_end is not None else ["x"]
        if (block.language == "text" and previous is not None and previous.language == "python"
                and previous.expected is None and all(not s.strip() for s in between)):
            previous.expected = block.source
        else:
            blocks.append(block)
            previous = block
        last_end, i = i, i + 1
    return blocks


def _normalize(output):
    lines = [line.rstrip() for line in output.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


class BlockFailure(Exception):
    """A block raised, or printed something other than its ```text block says."""

    def __init__(self, path, block, message):
        super().__init__(f"{path}, python block at line {block.line}: {message}")
        self.path, self.block, self.message = path, block, message


def run_block(block, namespace, path, workdir):
    """Execute one block in ``namespace``; raise BlockFailure on an error or an output mismatch.

    The code is compiled with ``path`` as its file name and shifted to the
    block's own lines, so a traceback shows ``path:LINE`` of the Markdown file.
    """
    code = compile("\n" * block.line + block.source, str(path), "exec")
    out, previous_cwd = io.StringIO(), os.getcwd()
    added = str(workdir) not in sys.path
    if added:
        sys.path.insert(0, str(workdir))
    try:
        os.chdir(workdir)
        with contextlib.redirect_stdout(out):
            exec(code, namespace)  # noqa: S102 (running the tour's code is the point)
    except Exception as error:
        frames = traceback.extract_tb(error.__traceback__)
        own = [f for f in frames if f.filename == str(path)]
        where = f" (line {own[-1].lineno})" if own else ""
        shown = "".join(traceback.format_exception(type(error), error, error.__traceback__)[-1:]).strip()
        trace = "".join(traceback.format_list([f for f in frames if f.filename != __file__]))
        raise BlockFailure(path, block, f"raised{where}: {shown}\n{trace}"
                           + (f"printed before the error:\n{out.getvalue()}" if out.getvalue() else "")) from error
    finally:
        os.chdir(previous_cwd)
        if added:
            sys.path.remove(str(workdir))
    if block.expected is not None and _normalize(out.getvalue()) != _normalize(block.expected):
        diff = "\n".join(difflib.unified_diff(_normalize(block.expected).splitlines(),
                                              _normalize(out.getvalue()).splitlines(),
                                              "expected (the text block)", "printed", lineterm=""))
        raise BlockFailure(path, block, f"printed output differs from the text block after it:\n{diff}")
    return out.getvalue()


def _gpu_available():
    try:
        from minicnn import backend
    except ImportError:
        return False
    return backend.gpu_available()


class MarkdownFile(pytest.File):
    """A Markdown file whose python blocks share one namespace and run in order."""

    def collect(self):
        blocks = [b for b in parse_markdown(self.path.read_text(encoding="utf-8")) if b.language == "python"]
        self.blocks, self.results, self.reported = blocks, {}, set()
        self.namespace = {"__name__": "__markdown__", "__file__": str(self.path)}
        for index, block in enumerate(blocks):
            item = MarkdownBlock.from_parent(self, name=f"line-{block.line}", index=index)
            if "gpu" in block.words[1:]:
                item.add_marker(pytest.mark.gpu)
            yield item

    def _relative(self):
        try:
            return self.path.relative_to(self.config.rootpath)
        except ValueError:
            return self.path

    def run(self, index):
        """Run block ``index`` (and, first, any earlier block not yet run); cache the outcome.

        Returns None (it passed), a BlockFailure, or an _EarlierFailed.
        """
        for earlier in range(index):
            if earlier not in self.results:
                self.run(earlier)
            if self.results[earlier] is not None:
                return self.results.setdefault(index, _EarlierFailed(self.blocks[earlier], self.results[earlier]))
        if index not in self.results and "gpu" in self.blocks[index].words[1:] and not _gpu_available():
            self.results[index] = None  # not run here; later blocks must not build on it
        if index not in self.results:
            try:
                run_block(self.blocks[index], self.namespace, self._relative(), self.config.rootpath)
                self.results[index] = None
            except BlockFailure as failure:
                self.results[index] = failure
        return self.results[index]


class _EarlierFailed(Exception):
    def __init__(self, block, cause):
        super().__init__(f"the python block at line {block.line}, which this one builds on, failed")
        self.cause = cause


class MarkdownBlock(pytest.Item):
    def __init__(self, *, index, **kwargs):
        super().__init__(**kwargs)
        self.index = index
        self.block = self.parent.blocks[index]

    def runtest(self):
        if "gpu" in self.block.words[1:] and not _gpu_available():
            pytest.skip("needs CuPy and an NVIDIA GPU")
        self.parent.reported.add(self.index)
        outcome = self.parent.run(self.index)
        if isinstance(outcome, _EarlierFailed):
            if self.parent.blocks.index(outcome.cause.block) in self.parent.reported:
                pytest.skip(str(outcome))  # that block's own test already failed
            raise outcome.cause  # that block was not selected: show its failure here
        if outcome is not None:
            raise outcome

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, BlockFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, self.block.line - 1, f"{self.parent._relative()}: python block at line {self.block.line}"


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: runs the GPU code path (real CuPy or the CuPy stand-in)")
    # TF32 is chosen once per process, at the first float32 matrix product: pin it off, so that no test
    # (a trainer run, which asks for TF32) changes the float32 results of the tests after it.
    os.environ["CUPY_TF32"] = "0"
    config.stash[_CUPY_LINE] = _choose_cupy()
    import minicnn
    minicnn.configure_cpu()  # the tests run with the settings the trainer and the benchmark choose


_CUPY_LINE = pytest.StashKey()


def _choose_cupy():
    """Real CuPy where it sees a GPU, else the stand-in; returns the session header's line."""
    try:
        from tests.standin.installer import install_unless_gpu
    except ModuleNotFoundError as error:
        if error.name not in ("tests", "tests.standin", "tests.standin.installer"):
            raise
        return "GPU tests: CuPy as installed (this conftest.py is not beside tests/standin)"
    return install_unless_gpu()


def pytest_report_header(config):
    return config.stash.get(_CUPY_LINE, None)


def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".md" and (file_path.parent == PAGES[0] or file_path == PAGES[1]):
        return MarkdownFile.from_parent(parent, path=file_path)
    return None
