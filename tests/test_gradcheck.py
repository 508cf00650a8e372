"""Every layer's gradient check (the same cases as `python -m minicnn.gradcheck`), and the checker itself."""
import os
import subprocess
import sys

import numpy as np
import pytest

from minicnn import Tensor, gradcheck, GradcheckError
from minicnn.gradcheck import __main__ as gradcheck_cli
from minicnn.gradcheck.cases import CASES, Inputs
from minicnn.engine import Op
from helpers import on_cupy_standin

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("case", CASES, ids=[f"{c.layer}: {c.config}" for c in CASES])
def test_gradient(device, case):
    fn, inputs = case.build(Inputs(device))
    result = gradcheck(fn, inputs)
    assert result.checked == sum(t.numel() for t in inputs if t.requires_grad)


class WrongSquareFunction(Op):
    """x**2 with a backward that is off by 1% on one element."""

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, gy):
        grad = 2 * self.x * gy
        grad[1, 2] *= 1.01
        return grad


def test_gradcheck_catches_a_wrong_backward_and_names_the_entry():
    x = Tensor(np.arange(1.0, 13.0).reshape(3, 4), requires_grad=True)
    with pytest.raises(GradcheckError, match=r"weight \(shape \(3, 4\)\) at index \(1, 2\): analytic") as info:
        gradcheck(lambda x: WrongSquareFunction()(x), [x], names=["weight"])
    assert info.value.result.max_rel_error == pytest.approx(0.01, rel=0.01)


def test_gradcheck_insists_on_float64():
    with pytest.raises(TypeError, match="input 0 is float32; gradient checks need float64"):
        gradcheck(lambda x: x * 2, [Tensor(np.ones(2, np.float32), requires_grad=True)])


def test_gradcheck_can_sample_entries():
    x = Tensor(np.ones(1000), requires_grad=True)
    assert gradcheck(lambda x: x * x, [x], max_elements=10).checked == 10


def test_command_line_report_passes_and_prints_a_table(capsys):
    assert gradcheck_cli.main(["--layer", "local_response_norm"]) == 0
    out = capsys.readouterr().out
    assert "local_response_norm  size 4, alpha 0.8" in out and "5 of 5 cases passed" in out


def test_command_line_report_fails_on_a_broken_layer(monkeypatch, capsys):
    from minicnn.functional import lrn
    monkeypatch.setattr(lrn, "lrn_backward_plain", lambda gy, x, scale, scale_pow, *args: gy * scale_pow)
    monkeypatch.setenv("MINICNN_PLAIN_KERNELS", "1")
    assert gradcheck_cli.main(["--layer", "local_response_norm"]) == 1
    assert "FAILED: local_response_norm" in capsys.readouterr().out


class ScaledSquareFunction(Op):
    """x**2 whose backward is ``factor`` times the true gradient."""

    def __init__(self, factor):
        self.factor = factor

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, gy):
        return self.factor * 2 * self.x * gy


def test_default_tolerances_catch_a_backward_off_by_a_tenth_of_a_percent():
    x = Tensor(np.linspace(0.5, 2.0, 12).reshape(3, 4), requires_grad=True)
    assert gradcheck(lambda x: ScaledSquareFunction(1.0)(x), [x]).checked == 12
    with pytest.raises(GradcheckError):
        gradcheck(lambda x: ScaledSquareFunction(1.001)(x), [x])


def test_the_perturbed_input_is_restored_when_fn_raises():
    x = Tensor(np.arange(1.0, 5.0), requires_grad=True)
    calls = []

    def fails_on_the_first_perturbed_call(t):
        calls.append(None)
        if len(calls) > 1:  # the first call is the unperturbed forward pass
            raise FloatingPointError("boom")
        return t * t

    with pytest.raises(FloatingPointError):
        gradcheck(fails_on_the_first_perturbed_call, [x])
    np.testing.assert_array_equal(x.array, [1.0, 2.0, 3.0, 4.0])


@pytest.mark.gpu
def test_command_line_report_on_the_gpu():
    """`python -m minicnn.gradcheck --device gpu`, as a user runs it (through the stand-in's runner where
    the tests run on the CuPy stand-in)."""
    runner = ["-m", "tests.standin.run"] if on_cupy_standin() else []
    result = subprocess.run([sys.executable, *runner, "-m", "minicnn.gradcheck", "--device", "gpu"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("Gradient check on gpu:0")
    assert f"{len(CASES)} of {len(CASES)} cases passed" in result.stdout


@pytest.mark.gpu
def test_command_line_report_on_the_second_gpu(capsys):
    from minicnn import backend
    if backend.gpu_count() < 2:
        pytest.skip("needs two GPUs (the CuPy stand-in simulates two)")
    assert gradcheck_cli.main(["--device", "gpu:1", "--layer", "batch_norm"]) == 0
    assert "Gradient check on gpu:1" in capsys.readouterr().out
