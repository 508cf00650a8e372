"""SiLU, x * sigmoid(x): against a plain loop and PyTorch, and its fast forms against their plain twins.

Its gradient check is in functional/activation.py's GRADCHECK_CASES (tests/test_gradcheck.py runs it).
"""
import math

import numpy as np
import pytest

import minicnn
import minicnn.functional as F
from minicnn import backend, nn
from minicnn.functional.activation import silu_backward_plain, silu_gradient, silu_plain, silu_values
from minicnn.kernels import dispatch
from helpers import on_cupy_standin, tensor

EDGES = [-1000.0, -40.0, -1e-3, 0.0, 1e-3, 2.5, 40.0, 1000.0]  # exp(-|x|) underflows at both ends


def silu_loop(values):
    """x / (1 + exp(-x)), one number at a time (math.exp overflows for x < -709: there silu is -0)."""
    return [x / (1 + math.exp(-x)) if x > -700 else -0.0 for x in values]


def test_silu_matches_a_plain_loop_and_torch_with_gradients(device):
    x = np.concatenate([EDGES, np.random.default_rng(0).standard_normal(16) * 4])
    t = tensor(x, device, requires_grad=True)
    y = F.silu(t)
    np.testing.assert_allclose(y.numpy(), silu_loop(x), rtol=1e-15, atol=0)
    y.backward(tensor(np.ones_like(x), device).array)
    torch = pytest.importorskip("torch")
    reference = torch.tensor(x, requires_grad=True)
    torch.nn.functional.silu(reference).sum().backward()
    np.testing.assert_allclose(backend.as_numpy(t.grad), reference.grad.numpy(), rtol=1e-14, atol=1e-300)
    assert np.isfinite(y.numpy()).all() and np.isfinite(backend.as_numpy(t.grad)).all()


@pytest.mark.parametrize("layout", ["contiguous", "channels-last", "channel slice"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_forms_match_the_plain_twins_and_keep_the_layout(device, layout, dtype):
    """numba on the CPU, one fused kernel on the GPU (the stand-in here), against the plain array code."""
    rng = np.random.default_rng(1)
    data = (rng.standard_normal((4, 6, 5, 3)) * 5).astype(dtype)
    if layout == "channels-last":
        data = np.ascontiguousarray(data.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    x = tensor(data, device).array
    x = x[:, 1:4] if layout == "channel slice" else x
    gy = tensor(rng.standard_normal(x.shape).astype(dtype), device).array
    assert silu_values.fast_form(x) and silu_gradient.fast_form(x)  # the fast forms, not the plain twins, run
    y, gx = silu_values(x), silu_gradient(gy, x)
    tolerance = dict(rtol=1e-6, atol=1e-7) if dtype == np.float32 else dict(rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(backend.as_numpy(y), backend.as_numpy(silu_plain(x)), **tolerance)
    np.testing.assert_allclose(backend.as_numpy(gx), backend.as_numpy(silu_backward_plain(gy, x)), **tolerance)
    assert y.dtype == gx.dtype == dtype
    if layout != "channel slice":  # a dense input's layout is kept (a slice comes out C-ordered)
        assert y.strides == gx.strides == x.strides


@pytest.mark.gpu
def test_on_the_gpu_silu_is_one_kernel_forward_and_one_backward():
    from tests import standin
    if not on_cupy_standin():
        pytest.skip("counts device operations on the CuPy stand-in")
    x = tensor(np.linspace(-6, 6, 24).reshape(2, 3, 4), "gpu", requires_grad=True)
    gy = tensor(np.ones((2, 3, 4)), "gpu").array
    y = F.silu(x)  # compiles the kernels
    y.backward(gy)
    with standin.counting() as forward:
        y = F.silu(x)
    with standin.counting() as backward:
        y.backward(gy)
    assert (forward.device_ops, forward.syncs, forward.uploads) == (1, 0, 0)
    assert backward.device_ops == 1 + 1  # the kernel, and adding to x.grad (kept from the first backward)
    with dispatch.plain_forms():
        assert np.array_equal(F.silu(x).numpy(), y.numpy())


def test_nn_silu_is_the_function_as_a_module(device):
    x = tensor(np.linspace(-3, 3, 12).reshape(3, 4), device)
    layer = nn.SiLU()
    assert isinstance(layer, minicnn.nn.Module) and not list(layer.parameters())
    np.testing.assert_array_equal(layer(x).numpy(), F.silu(x).numpy())


def test_silu_refuses_what_is_not_a_tensor():
    with pytest.raises(TypeError, match="silu"):
        F.silu(np.ones(3))
