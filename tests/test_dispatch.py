"""minicnn.kernels.dispatch: the one place that picks an op's form, and the GPU's fallback to the plain form."""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import minicnn
import minicnn.functional as F
from minicnn import doctor
from minicnn.functional import conv, lrn
from minicnn.kernels import dispatch
from helpers import ROOT, fast_form_replaced, tensor


def test_each_device_takes_its_fast_form_and_plain_forms_switches_them_off():
    x = np.zeros((1, 2, 5, 5))
    assert conv.im2col_forms.fast_form(x) == "conv:im2col_numba"
    assert conv.matrix_product.fast_form(x[0, 0]) == "conv:matrix_product_threads"
    with dispatch.plain_forms():
        assert dispatch.plain_only() and conv.im2col_forms.fast_form(x) is None
        with dispatch.plain_forms(False):  # nested: the fast forms again
            assert conv.im2col_forms.fast_form(x) == "conv:im2col_numba"
    assert not dispatch.plain_only()


def test_minicnn_plain_kernels_is_read_once_at_import():
    code = ("import os, numpy as np; from minicnn.functional import conv; from minicnn.kernels import dispatch; "
            "os.environ['MINICNN_PLAIN_KERNELS'] = '0'; print(dispatch.plain_only(), "
            "conv.im2col_forms.fast_form(np.zeros((1, 1, 3, 3))))")
    env = dict(os.environ, MINICNN_PLAIN_KERNELS="1", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "None"]


def test_a_form_is_chosen_once_per_array_type_and_plain_forms_bypasses_the_choice():
    calls = []
    forms = dispatch.Forms("twice", plain=lambda a: calls.append("plain") or a * 2,
                           cpu=lambda a: calls.append("cpu") or a + a)
    try:
        assert forms(np.ones(2)).tolist() == [2, 2] and forms(np.ones(2)).tolist() == [2, 2]
        with dispatch.plain_forms():
            forms(np.ones(2))
        assert forms(3) == 6  # not an array: the plain form
        assert calls == ["cpu", "cpu", "plain", "plain"]
    finally:
        dispatch.ALL_FORMS.remove(forms)


def test_a_failing_fast_cpu_form_is_a_real_error():
    """Only the GPU's forms fall back: on the CPU a failure of a numba kernel is a bug to see."""
    def broken(*args, **kwargs):
        raise RuntimeError("a numba bug")
    with fast_form_replaced(conv.unfolded_product, "cpu", broken), pytest.raises(RuntimeError, match="a numba bug"):
        F.conv2d(minicnn.Tensor(np.ones((1, 1, 4, 4))), minicnn.Tensor(np.ones((1, 1, 3, 3))))


class CompileException(Exception):
    """Stands for cupy.cuda.compiler.CompileException (the stand-in compiles nothing)."""


def lrn_step(x):
    """Forward and backward of LRN on x; returns (output, input gradient) as NumPy arrays."""
    t = tensor(x, "gpu", requires_grad=True)
    y = F.local_response_norm(t, 3, alpha=0.5)
    y.backward(tensor(np.cos(x), "gpu").array)
    return y.numpy(), t.grad.numpy()


@pytest.mark.gpu
def test_a_fast_gpu_form_that_fails_on_first_use_falls_back_once_with_a_warning_and_training_goes_on(capsys):
    x = np.random.default_rng(0).standard_normal((2, 5, 3, 3))
    with dispatch.plain_forms():
        expected = lrn_step(x)
    calls = []

    def does_not_compile(*args):
        calls.append(args)
        raise CompileException("nvrtc: error: identifier \"__hfma2\" is undefined")

    with fast_form_replaced(lrn.lrn_forward, "gpu", does_not_compile):
        with pytest.warns(dispatch.FastFormWarning) as warned:
            first = lrn_step(x)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # warned once: the next steps are quiet
            second = lrn_step(x)
        assert len(calls) == 1 and len(warned) == 1  # tried once, then the plain form from then on
        message = str(warned[0].message)
        assert "fast GPU form of lrn (" in message and "CompileException: nvrtc: error" in message
        assert "python -m minicnn.doctor --device gpu" in message and "issue tracker" in message
        for got in (first, second):  # the plain form's results
            np.testing.assert_array_equal(got[0], expected[0])
            np.testing.assert_array_equal(got[1], expected[1])
        assert lrn.lrn_forward.gpu_status.startswith("fell back: CompileException")
        assert lrn.lrn_backward.gpu_status == "active"  # each form on its own
        lines, fell_back = doctor.fast_form_lines()
        assert fell_back == ["lrn"]
        assert [line.split()[2:4] for line in lines if line.split()[0] == "lrn"] == [["fell", "back:"]]
    assert lrn.lrn_forward.gpu_status == "not run yet"  # chosen afresh


@pytest.mark.gpu
def test_the_doctor_reports_a_fast_gpu_form_that_fell_back(capsys):
    def does_not_launch(*args):
        raise RuntimeError("cudaErrorNoKernelImageForDevice: no kernel image is available")

    with fast_form_replaced(conv.col2im_forms, "gpu", does_not_launch), pytest.warns(dispatch.FastFormWarning):
        assert doctor.main(["--device", "gpu"]) == 1
    out = capsys.readouterr().out
    assert "FAILED: fast GPU forms (col2im fell back to their plain forms)" in out
    assert "cases passed" in out and "FAILED: gradient checks" not in out  # the plain form's gradients are right


@pytest.mark.gpu
def test_after_a_first_call_that_worked_a_failure_is_a_real_error():
    x = np.random.default_rng(0).standard_normal((2, 5, 3, 3))
    real = dispatch.load("lrn:lrn_forward_fused")
    calls = []

    def fails_the_second_time(*args):
        calls.append(args)
        if len(calls) > 1:
            raise RuntimeError("an illegal memory access")
        return real(*args)

    with fast_form_replaced(lrn.lrn_forward, "gpu", fails_the_second_time):
        lrn_step(x)
        with pytest.raises(RuntimeError, match="illegal memory access"):
            lrn_step(x)


@pytest.mark.gpu
def test_a_failure_of_the_plain_form_after_a_fallback_is_raised(monkeypatch):
    def broken(*args):
        raise CompileException("does not compile")

    def plain_broken(*args):
        raise ValueError("the plain form's own bug")

    monkeypatch.setattr(lrn.lrn_forward, "plain", plain_broken)
    with fast_form_replaced(lrn.lrn_forward, "gpu", broken), pytest.warns(dispatch.FastFormWarning):
        with pytest.raises(ValueError, match="the plain form's own bug"):
            lrn_step(np.ones((1, 3, 2, 2)))
