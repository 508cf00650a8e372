"""PyTorch's beginner programs run on minicnn with only the import changed (issue 17).

tests/pytorch_programs/ holds programs written as PyTorch's tutorials write them
(``import torch``, ``import torch.nn as nn``...). Each runs twice: with PyTorch,
and with ``torch`` aliased to minicnn by the import shim in
tests/pytorch_programs/shim (names only). What they print is compared line by
line: words exactly, numbers to 1e-4 (relative, or absolute below 1). The programs
take their initial weights from NumPy wherever the numbers are meant to agree;
a line starting with ``~`` is an engine's own (its own random initialisation) and
is left out, and such a program prints its loose claims (the loss fell, the
accuracy beats chance) as words that must agree.
"""
import ast
import json
import os
import re
import subprocess
import sys

import pytest

from helpers import ROOT

pytest.importorskip("torch")

FOLDER = ROOT / "tests" / "pytorch_programs"
SHIM = FOLDER / "shim"
PROGRAMS = sorted(path.name for path in FOLDER.glob("*.py") if path.name != "run_programs.py")
NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf|nan")
TOLERANCE = 1e-4


def _run_all(tmp_path):
    """Both engines' outputs, {"torch": ..., "minicnn": ...}, each run in its own process, side by side."""
    runs = {}
    for engine, path in (("torch", [str(ROOT)]), ("minicnn", [str(SHIM), str(ROOT)])):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
        out = tmp_path / f"{engine}.json"
        command = [sys.executable, str(FOLDER / "run_programs.py"), str(out)] + [str(FOLDER / p) for p in PROGRAMS]
        runs[engine] = (out, subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                              text=True))
    results = {}
    for engine, (out, process) in runs.items():
        log, _ = process.communicate(timeout=900)
        assert process.returncode == 0, f"the {engine} runner failed:\n{log}"
        results[engine] = json.loads(out.read_text(encoding="utf-8"))
    return results


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    return _run_all(tmp_path_factory.mktemp("programs"))


def test_the_shim_gives_minicnn_and_the_plain_path_gives_pytorch(outputs):
    assert outputs["minicnn"]["torch"] == "minicnn" and outputs["torch"]["torch"] == "torch"


def _compared_lines(text):
    return [line.rstrip() for line in text.splitlines() if not line.startswith("~") and line.strip()]


def _differences(theirs, ours):
    """Where two printed outputs disagree: a list of messages (empty when they agree)."""
    theirs, ours = _compared_lines(theirs), _compared_lines(ours)
    if len(theirs) != len(ours):
        return [f"PyTorch printed {len(theirs)} lines, minicnn {len(ours)}"]
    problems = []
    for number, (line, mine) in enumerate(zip(theirs, ours), start=1):
        words, my_words = NUMBER.split(line), NUMBER.split(mine)
        values, my_values = [float(v) for v in NUMBER.findall(line)], [float(v) for v in NUMBER.findall(mine)]
        close = len(values) == len(my_values) and all(
            abs(a - b) <= TOLERANCE * max(1.0, abs(a)) or (a != a and b != b) for a, b in zip(values, my_values))
        if words != my_words or not close:
            problems.append(f"line {number}:\n  PyTorch: {line}\n  minicnn: {mine}")
    return problems


@pytest.mark.parametrize("program", PROGRAMS)
def test_program_prints_what_pytorch_prints(outputs, program):
    theirs, ours = outputs["torch"]["programs"][program], outputs["minicnn"]["programs"][program]
    assert theirs["error"] is None, f"{program} fails under PyTorch itself:\n{theirs['error']}"
    assert ours["error"] is None, f"{program} fails on minicnn:\n{ours['output'][-2000:]}\n{ours['error']}"
    assert _compared_lines(theirs["output"]), f"{program} printed nothing to compare"
    problems = _differences(theirs["output"], ours["output"])
    assert not problems, f"{program}: minicnn's output differs from PyTorch's\n" + "\n".join(problems[:10])


def test_the_comparison_catches_a_wrong_number_a_wrong_word_and_a_missing_line():
    assert _differences("loss 1.00000 ok\n~ 5", "loss 1.00005 ok\n~ 6") == []
    assert _differences("loss 1.0", "loss 1.001")
    assert _differences("loss fell: True", "loss fell: False")
    assert _differences("a 1\nb 2", "a 1")
    assert _differences("big 12345.0", "big 12346.5") and not _differences("big 12345.0", "big 12345.5")


def test_the_shim_only_maps_names():
    """shim/torch.py imports minicnn's modules and puts them in sys.modules under PyTorch's names: no def,
    no class, no assignment, no other statement."""
    tree = ast.parse((SHIM / "torch.py").read_text(encoding="utf-8"))
    body = tree.body[1:] if isinstance(tree.body[0], ast.Expr) and isinstance(tree.body[0].value, ast.Constant) \
        else tree.body
    imports = [node for node in body if isinstance(node, ast.Import)]
    assert all(alias.name == "sys" or alias.name.startswith("minicnn") for node in imports for alias in node.names)
    others = [node for node in body if not isinstance(node, ast.Import)]
    assert len(others) == 1, f"the shim must hold imports and one sys.modules.update, got {ast.dump(others[0])}"
    call = others[0].value
    assert ast.unparse(call.func) == "sys.modules.update" and len(call.args) == 1
    mapping = call.args[0]
    assert isinstance(mapping, ast.Dict)
    for key, value in zip(mapping.keys, mapping.values):
        assert key.value == "torch" or key.value.startswith("torch."), key.value
        assert isinstance(value, (ast.Name, ast.Attribute)) and ast.unparse(value).split(".")[0] == "minicnn"


def test_through_the_shim_every_torch_name_is_a_minicnn_module():
    code = ("import torch, torch.nn as nn, torch.nn.functional as F, torch.optim as optim, torch.autograd\n"
            "from torch.utils.data import DataLoader\n"
            "import minicnn, minicnn.utils.data\n"
            "print(torch is minicnn, nn is minicnn.nn, F is minicnn.functional, optim is minicnn.optim,\n"
            "      torch.autograd is minicnn.autograd, DataLoader is minicnn.utils.data.DataLoader)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SHIM), str(ROOT)]))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["True"] * 6, result.stderr


@pytest.mark.parametrize("program", PROGRAMS)
def test_program_is_written_for_pytorch_alone(program):
    """A program imports torch and never minicnn: what runs on minicnn is PyTorch code, unchanged."""
    source = (FOLDER / program).read_text(encoding="utf-8")
    imported = {alias.name.split(".")[0] for node in ast.walk(ast.parse(source))
                if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])}
    assert "torch" in imported and "minicnn" not in source, sorted(imported)
