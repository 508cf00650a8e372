"""minicnn.autograd.trace() (every op, forward and backward) and the command python -m minicnn.trace."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import minicnn
import minicnn.functional as F
from minicnn import Tensor, autograd, backend, nn, engine
from minicnn import trace as trace_command
from minicnn.engine import Op
from helpers import tensor

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class SmallNet(nn.Module):
    input_size = 5  # the command makes images of this size

    def __init__(self):
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(4 * 5 * 5, 2)

    def forward(self, x):
        return self.fc(F.flatten(self.relu(self.conv(x)), 1))


def small_net():
    """A factory for --model (takes none of num_classes, stem, norm, width)."""
    minicnn.manual_seed(0)
    return SmallNet()


def traced_step(net, x, labels, **trace_options):
    with autograd.trace(net, **trace_options) as ops:
        F.cross_entropy(net(x), labels).backward()
    return ops


# -- autograd.trace --------------------------------------------------------------------------------
def test_trace_sees_every_op_forward_then_backward_with_shapes_and_modules(device):
    net = small_net().to(device)
    x = tensor(np.ones((2, 3, 5, 5), np.float32), device)
    ops = traced_step(net, x, backend.to_device(np.array([0, 1]), device))
    assert [(op.phase, op.name, op.module) for op in ops] == [
        ("forward", "Conv2dFunction", "conv"), ("forward", "ReLUFunction", "relu"),
        ("forward", "ReshapeFunction", ""), ("forward", "LinearFunction", "fc"),  # flatten: in the net's own forward
        ("forward", "CrossEntropyFunction", None),
        ("backward", "CrossEntropyFunction", None), ("backward", "LinearFunction", "fc"),
        ("backward", "ReshapeFunction", ""), ("backward", "ReLUFunction", "relu"),
        ("backward", "Conv2dFunction", "conv")]
    conv_forward, conv_backward = ops[0], ops[-1]
    where = "cpu" if device == "cpu" else "gpu:0"
    assert [s.shape for s in conv_forward.inputs] == [(2, 3, 5, 5), (4, 3, 3, 3), (4,)]
    assert [(s.shape, s.dtype, s.device) for s in conv_forward.outputs] == [((2, 4, 5, 5), np.float32, where)]
    assert [s.shape for s in conv_backward.inputs] == [(2, 4, 5, 5)]                # dL/d(output)
    assert [s and s.shape for s in conv_backward.outputs] == [None, (4, 3, 3, 3), (4,)]  # x needs none
    assert str(conv_forward).startswith("forward   Conv2dFunction in conv:  (2, 3, 5, 5) float32")
    assert all(op.seconds >= 0 for op in ops) and not engine._watchers


def test_multiply_adds_bytes_and_saved_arrays_are_counted_by_hand(device):
    net = small_net().to(device)
    ops = traced_step(net, tensor(np.ones((2, 3, 5, 5), np.float32), device),
                      backend.to_device(np.array([0, 1]), device))
    conv, _, _, linear = ops[:4]
    # conv: every output value (2*4*5*5 = 200) takes 3*3*3 products; it keeps its weight (4, 3, 3, 3) with the
    # taps reordered as the im2col rows (4, 27), and on a GPU the rows (50, 27) too (the CPU unfolds again)
    assert conv.multiply_adds == 200 * 27 and conv.output_bytes == 200 * 4
    assert conv.saved_bytes == ((50 * 27 if device == "gpu" else 0) + 4 * 27) * 4
    assert linear.multiply_adds == 2 * 2 * 100 and linear.saved_bytes == 0  # keeps only its inputs
    backward = {op.name: op for op in ops if op.phase == "backward"}
    assert backward["Conv2dFunction"].multiply_adds == 200 * 27      # only the weight's gradient: x needs none
    assert backward["LinearFunction"].multiply_adds == 2 * 400       # the input's and the weight's
    assert backward["LinearFunction"].output_bytes == (2 * 100 + 2 * 100 + 2) * 4


def test_trace_counts_device_operations_only_where_a_counter_is_registered():
    counted = [0]

    class LaunchesThree(Op):
        def forward(self, x):
            counted[0] += 3
            return x * 2

        def backward(self, gy):
            counted[0] += 1
            return gy * 2

    x = Tensor(np.ones(3), requires_grad=True)
    previous = backend.set_device_counter(None)  # the CuPy stand-in of the test session counts too
    try:
        with autograd.trace() as ops:
            LaunchesThree()(x).sum()
        assert ops[0].device_ops is None and backend.device_operation_count() is None
        backend.set_device_counter(lambda: {"device_ops": counted[0], "syncs": 0, "uploads": 0})
        with autograd.trace() as ops:
            LaunchesThree()(x).sum().backward()
    finally:
        backend.set_device_counter(previous)
    assert [(op.phase, op.name, op.device_ops) for op in ops] == [
        ("forward", "LaunchesThree", 3), ("forward", "SumFunction", 0),
        ("backward", "SumFunction", 0), ("backward", "LaunchesThree", 1)]
    with pytest.raises(TypeError, match="counter must be callable or None, got int"):
        backend.set_device_counter(5)


def test_trace_synchronizes_around_each_op_and_times_it():
    calls = []
    x = Tensor(np.ones(3), requires_grad=True)
    with autograd.trace(synchronize=lambda: calls.append("sync")) as ops:
        (x * 2).sum().backward()
    assert len(ops) == 4 and calls == ["sync"] * 8
    assert ops.bookkeeping_seconds > 0


def test_traces_nest_and_are_removed_even_when_the_block_raises():
    x = Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(ZeroDivisionError):
        with autograd.trace(nn.Sequential(nn.ReLU())) as outer:
            with autograd.trace() as inner:
                x * 2
            x + 1
            1 / 0
    assert [op.name for op in outer] == ["MulFunction", "AddFunction"] and len(inner) == 1
    assert not engine._watchers


def test_trace_removes_its_module_hooks_and_sees_to_device():
    net = small_net()
    with autograd.trace(net) as ops:
        net(Tensor(np.ones((1, 3, 5, 5), np.float32)).to(dtype=np.float64).to(dtype=np.float32))
    assert ops[0].name == "ToDeviceFunction" and ops.module_types["conv"] == "Conv2d"
    assert not [module for module in net.modules() if module._hooks]


# -- python -m minicnn.trace -------------------------------------------------------------------------
GOOGLENET = ["--model", "models.googlenet:GoogLeNet", "--loss", "models.googlenet:googlenet_loss"]
TINY = [*GOOGLENET, "--width", "0.0625", "--batch-size", "2"]


def run_main(capsys, *argv):
    code = trace_command.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_command_traces_googlenet_forward_then_backward(capsys):
    from models.googlenet import GoogLeNet
    from models.summary import summarize

    code, out, _ = run_main(capsys, *TINY, "--norm", "bn")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("models.googlenet:GoogLeNet(num_classes=10, stem='cifar', norm='bn', width=0.0625)")
    rows = [line.split() for line in lines if line[:1].isdigit()]
    phases = [row[1] for row in rows]
    assert phases == sorted(phases, key=lambda phase: phase == "backward") and phases.count("backward") > 100
    assert rows[0][1:4] == ["forward", "Conv2dFunction", "stem.0.conv"]
    assert rows[-1][1:4] == ["backward", "Conv2dFunction", "stem.0.conv"]
    assert "dev ops" not in out  # nothing counts device operations here
    # the forward multiply-adds of conv and linear ops are those models.summary counts, for 2 images
    model = GoogLeNet(num_classes=10, stem="cifar", norm="bn", width=0.0625)
    per_image = sum(row.mult_adds for row in summarize(model, (1, 3, 32, 32)) if row.depth == 0)
    forward = sum(int(row[-2].replace(",", "")) for row in rows if row[1] == "forward")
    assert forward == 2 * per_image
    summary = out[out.index("\nop "):]
    assert "Conv2dFunction" in summary and "all ops" in summary and "SGD step" in out


def test_command_with_your_own_factory_and_a_device_operation_counter(capsys, monkeypatch, device):
    counter = iter(range(10**9))
    previous = backend.set_device_counter(lambda: {"device_ops": next(counter), "syncs": 0, "uploads": 0})
    try:
        code, out, _ = run_main(capsys, "--model", "test_trace:small_net", "--batch-size", "3", "--device", device)
    finally:
        backend.set_device_counter(previous)
    assert code == 0
    assert out.splitlines()[0] == f"test_trace:small_net(): one training step on a batch of 3 images (3, 5, 5), " \
                                  f"{backend.parse_device(device)}"
    header = next(line for line in out.splitlines() if line.startswith("#"))
    if device == "cpu":  # CPU ops launch nothing on a device: no column, whatever counts
        assert header.split()[-1] == "ms" and "device operations:" not in out
        return
    assert header.split()[-2:] == ["dev", "ops"] and "device operations:" in out


def test_summary_only_prints_the_totals(capsys):
    code, out, _ = run_main(capsys, "--model", "test_trace:small_net", "--summary-only")
    assert code == 0 and not [line for line in out.splitlines() if line[:1].isdigit()]  # no per-op rows
    table = out.splitlines()[1:10]
    assert table[0].split()[:3] == ["op", "calls", "forward"]
    names = sorted(line.split()[0] for line in table[2:7])
    assert names == ["Conv2dFunction", "CrossEntropyFunction", "LinearFunction", "ReLUFunction", "ReshapeFunction"]
    assert table[7].split()[:3] == ["all", "ops", "5"]


@pytest.mark.parametrize("argv,message", [
    (["--model", "models.googlenet"], "--model must be MODULE:FACTORY"),
    (["--model", "no_such_package.nets:net"], "cannot import no_such_package.nets"),
    (["--model", "models.googlenet:ResNet"], "models.googlenet has no callable ResNet"),
    (["--model", "test_trace:small_net", "--norm", "bn"], "--norm: the model factory small_net takes no norm"),
    (["--model", "test_trace:small_net", "--loss", "test_trace"], "--loss must be MODULE:FUNCTION"),
    (["--width", "1"], "the following arguments are required: --model"),
    ([*GOOGLENET, "--width", "0"], "argument --width: expected a number > 0, got '0'"),
    ([*GOOGLENET, "--collapse-depth", "1"], "--collapse-depth goes with --graph"),
])
def test_command_rejects_bad_options_with_usage(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        trace_command.main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith("usage: python -m minicnn.trace") and message in err


def test_outside_the_repository_the_repositorys_model_is_a_clear_error(tmp_path):
    # only the engine, as `pip install .` installs it: every folder that holds a models/googlenet.py off sys.path
    shutil.copytree(os.path.join(REPO_ROOT, "minicnn"), tmp_path / "minicnn",
                    ignore=shutil.ignore_patterns("__pycache__"))
    run = ("import os, runpy, sys\n"
           "sys.path = [p for p in sys.path if not os.path.exists(os.path.join(p or '.', 'models', 'googlenet.py'))]\n"
           "sys.argv = ['minicnn.trace', '--model', 'models.googlenet:GoogLeNet']\n"
           "runpy.run_module('minicnn.trace', run_name='__main__')")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", run, REPO_ROOT], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "cannot import models.googlenet" in result.stderr and "run this from the repository root" in result.stderr


def test_a_model_with_several_outputs_needs_the_loss_that_combines_them(capsys):
    code, _, err = run_main(capsys, "--model", "models.googlenet:GoogLeNet", "--width", "0.0625")
    assert code == 1 and "the model returns 3 outputs: name the loss that combines them with --loss" in err


def test_command_writes_the_graph(capsys, tmp_path):
    path = tmp_path / "step.dot"
    code, out, _ = run_main(capsys, *TINY, "--graph", path, "--collapse-depth", "1", "--summary-only")
    text = path.read_text()
    assert code == 0 and f"graph written to {path}" in out
    assert "inception3a (Inception)" in text and text.startswith("digraph autograd {")


def test_command_without_graphviz_says_what_to_install_and_keeps_the_dot_text(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` there
    code, _, err = run_main(capsys, "--model", "test_trace:small_net", "--summary-only",
                            "--graph", tmp_path / "step.svg")
    assert code == 1 and "Traceback" not in err
    assert "Graphviz's `dot` program, which is not on PATH" in err and "apt-get install graphviz" in err
    assert (tmp_path / "step.dot").read_text().startswith("digraph") and not (tmp_path / "step.svg").exists()
