import numpy as np
import pytest

import minicnn.functional as F
from minicnn.functional import pooling
from minicnn import backend, no_grad
from minicnn.kernels.dispatch import plain_forms
from minicnn.functional.pooling import (avg_pool2d_backward_strided, avg_pool2d_strided, avg_pool_divisor,
                                        max_pool2d_backward_strided, max_pool2d_strided, pool_output_size)
import reference
from helpers import assert_same_as_plain, tensor, tie_free

# (kernel, stride, padding, ceil_mode, size): GoogLeNet's pools, ceil mode edge cases, rectangles
CONFIGS = [
    ((2, 2), (2, 2), (0, 0), False, (6, 6)),
    ((3, 3), (2, 2), (0, 0), True, (8, 8)),     # 224 stem style: ceil adds a window
    ((3, 3), (2, 2), (1, 1), False, (7, 7)),    # CIFAR stem: 32 -> 16 style
    ((3, 3), (1, 1), (1, 1), False, (5, 5)),    # inception pool branch
    ((3, 3), (3, 3), (1, 1), True, (7, 7)),
    ((2, 2), (2, 2), (1, 1), True, (5, 5)),     # ceil mode whose extra window is dropped
    ((3, 3), (2, 2), (1, 1), True, (10, 10)),
    ((5, 5), (3, 3), (0, 0), False, (16, 16)),  # aux head: 16 -> 4
    ((3, 2), (2, 1), (1, 0), True, (6, 5)),
]


@pytest.mark.parametrize("size,kernel,stride,padding,ceil,expected", [
    (112, 3, 2, 0, True, 56), (56, 3, 2, 0, True, 28), (28, 3, 2, 0, True, 14), (14, 3, 2, 0, True, 7),
    (112, 3, 2, 0, False, 55), (32, 3, 2, 1, False, 16), (32, 3, 2, 1, True, 17), (16, 5, 3, 0, False, 4),
    (16, 5, 3, 0, True, 5), (5, 2, 2, 1, True, 3), (4, 2, 2, 1, True, 3), (6, 3, 3, 1, True, 3),
])
def test_pool_output_size_follows_pytorch(size, kernel, stride, padding, ceil, expected):
    assert pool_output_size(size, kernel, stride, padding, ceil) == expected
    assert reference.pool_output_size(size, kernel, stride, padding, ceil) == expected


@pytest.mark.parametrize("kernel,stride,padding,ceil,size", CONFIGS)
def test_max_pool2d_matches_naive_loops(device, rng, kernel, stride, padding, ceil, size):
    x = rng.standard_normal((2, 3) + size) - 5  # all negative: a zero pad would win, -inf never does
    y = F.max_pool2d(tensor(x, device), kernel, stride, padding, ceil)
    np.testing.assert_array_equal(y.numpy(), reference.max_pool2d(x, kernel, stride, padding, ceil))


@pytest.mark.parametrize("kernel,stride,padding,ceil,size", CONFIGS)
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool2d_matches_naive_loops(device, rng, kernel, stride, padding, ceil, size, count_include_pad):
    x = rng.standard_normal((2, 3) + size)
    y = F.avg_pool2d(tensor(x, device), kernel, stride, padding, ceil, count_include_pad)
    np.testing.assert_allclose(y.numpy(), reference.avg_pool2d(x, kernel, stride, padding, ceil, count_include_pad),
                               rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kernel,stride,padding,ceil,size", CONFIGS)
@pytest.mark.parametrize("values", ["normal", "ties"])
def test_fast_max_pool_kernels_match_the_strided_version(device, rng, kernel, stride, padding, ceil, size, values):
    """"ties": values from {0, 1, 2}, so most windows hold ties and the first maximum must win in both.

    The fast kernels (numba on the CPU, gathers on the GPU) against the plain version."""
    shape = (2, 3) + size
    data = rng.standard_normal(shape) if values == "normal" else rng.integers(0, 3, shape)
    x = tensor(data.astype(np.float32), device, requires_grad=True)
    assert pooling.max_pool2d_forward.fast_form(x.array) and pooling.max_pool2d_backward.fast_form(x.array)
    y = F.max_pool2d(x, kernel, stride, padding, ceil)
    gy = tensor(rng.standard_normal(y.shape).astype(np.float32), device).array
    y.backward(gy)
    plain, argmax = max_pool2d_strided(x.array, kernel, stride, padding, ceil)
    plain_grad = max_pool2d_backward_strided(gy, argmax, x.shape, kernel, stride, padding, ceil)
    np.testing.assert_array_equal(y.numpy(), backend.as_numpy(plain))
    # where windows overlap, a cell adds several gradients: the kernels add them in the plain order
    assert_same_as_plain(x.grad, plain_grad)


@pytest.mark.parametrize("kernel,stride,padding,ceil,size", CONFIGS)
@pytest.mark.parametrize("values", ["normal", "ties", "all -inf"])
def test_max_pool_without_a_backward_to_come_computes_no_winners(device, rng, kernel, stride, padding, ceil, size,
                                                                 values):
    """Under no_grad (or on an input that needs no gradient) the op skips the winners' positions: the same
    values as with them, from the fast forms and the plain version alike, and no argmax kept."""
    shape = (2, 3) + size
    data = {"normal": lambda: rng.standard_normal(shape), "ties": lambda: rng.integers(0, 3, shape),
            "all -inf": lambda: np.full(shape, -np.inf)}[values]().astype(np.float32)
    x = tensor(data, device, requires_grad=True)
    with_grad = F.max_pool2d(x, kernel, stride, padding, ceil)
    assert with_grad.creator.argmax is not None
    for plain in (False, True):
        with plain_forms(plain):
            op = pooling.MaxPool2dFunction(kernel, stride, padding, ceil)
            y = op(tensor(data, device))  # needs no gradient: nothing will ask for the winners
            np.testing.assert_array_equal(y.numpy(), with_grad.numpy())
            assert op.argmax is None
            with no_grad():
                np.testing.assert_array_equal(F.max_pool2d(x, kernel, stride, padding, ceil).numpy(),
                                              with_grad.numpy())


@pytest.mark.parametrize("kernel,stride,padding,ceil,size", CONFIGS)
@pytest.mark.parametrize("values", ["normal", "ties", "all -inf"])
@pytest.mark.parametrize("channels", [1, 3])
def test_gather_max_pool_matches_the_strided_version_on_numpy(rng, kernel, stride, padding, ceil, size, values,
                                                              channels):
    """The GPU's gather formulation, run on NumPy arrays: values, winners (first maximum in tap order, a
    padded cell only when nothing beats -inf) and routed gradients, exactly."""
    from minicnn.kernels.pooling import max_pool2d_backward_gather, max_pool2d_gather
    shape = (2, channels) + size
    data = {"normal": lambda: rng.standard_normal(shape), "ties": lambda: rng.integers(0, 3, shape),
            "all -inf": lambda: np.full(shape, -np.inf)}[values]()
    x = np.ascontiguousarray(data.astype(np.float32).transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)  # channels-last
    y, argmax = max_pool2d_gather(x, kernel, stride, padding, ceil)
    plain, plain_argmax = max_pool2d_strided(x, kernel, stride, padding, ceil)
    np.testing.assert_array_equal(y, plain)
    np.testing.assert_array_equal(argmax, plain_argmax)
    assert argmax.dtype == plain_argmax.dtype
    gy = rng.standard_normal(y.shape).astype(np.float32)
    np.testing.assert_array_equal(max_pool2d_backward_gather(gy, argmax, x.shape, kernel, stride, padding, ceil),
                                  max_pool2d_backward_strided(gy, plain_argmax, x.shape, kernel, stride, padding, ceil))


@pytest.mark.parametrize("kernel,stride,padding,ceil,size", CONFIGS)
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_gather_avg_pool_matches_the_strided_version_on_numpy(rng, kernel, stride, padding, ceil, size,
                                                              count_include_pad):
    from minicnn.kernels.pooling import avg_pool2d_backward_gather, avg_pool2d_gather
    x = rng.standard_normal((2, 1) + size).astype(np.float32)  # channels-first: the gather copies it first
    divisor = avg_pool_divisor(x.shape, kernel, stride, padding, ceil, count_include_pad, np, np.float32)
    y = avg_pool2d_gather(x, divisor, kernel, stride, padding, ceil)
    np.testing.assert_array_equal(y, avg_pool2d_strided(x, divisor, kernel, stride, padding, ceil))
    gy = rng.standard_normal(y.shape).astype(np.float32)
    np.testing.assert_array_equal(avg_pool2d_backward_gather(gy, divisor, x.shape, kernel, stride, padding, ceil),
                                  avg_pool2d_backward_strided(gy, divisor, x.shape, kernel, stride, padding, ceil))


@pytest.mark.parametrize("kernel,stride,padding,ceil,size", CONFIGS)
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_fast_avg_pool_kernels_match_the_strided_version(device, rng, kernel, stride, padding, ceil, size,
                                                         count_include_pad):
    x = tensor(rng.standard_normal((2, 3) + size).astype(np.float32), device, requires_grad=True)
    assert pooling.avg_pool2d_forward.fast_form(x.array) and pooling.avg_pool2d_backward.fast_form(x.array)
    y = F.avg_pool2d(x, kernel, stride, padding, ceil, count_include_pad)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    y.backward(gy)
    xp = backend.get_array_module(x.array)
    divisor = avg_pool_divisor(x.shape, kernel, stride, padding, ceil, count_include_pad, xp, np.float32)
    plain = avg_pool2d_strided(x.array, divisor, kernel, stride, padding, ceil)
    plain_grad = avg_pool2d_backward_strided(tensor(gy, device).array, divisor, x.shape, kernel, stride, padding, ceil)
    assert_same_as_plain(y.array, plain)
    assert_same_as_plain(x.grad, plain_grad)


def test_max_pool2d_gives_a_tie_to_the_first_maximum_only(device):
    x = tensor(np.ones((1, 1, 2, 2)), device, requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    np.testing.assert_array_equal(backend.as_numpy(x.grad), [[[[1, 0], [0, 0]]]])


def test_max_pool2d_routes_each_gradient_to_its_window_maximum(rng):
    x = tie_free(rng, (1, 2, 5, 5))
    xt = tensor(x, requires_grad=True)
    y = F.max_pool2d(xt, 3, 2, 1)
    gy = rng.standard_normal(y.shape)
    y.backward(gy)
    expected = np.zeros_like(x)  # by hand: find each window's maximum and give it that window's gradient
    for c in range(2):
        for i in range(y.shape[2]):
            for j in range(y.shape[3]):
                rows, cols = range(max(0, 2 * i - 1), min(5, 2 * i + 2)), range(max(0, 2 * j - 1), min(5, 2 * j + 2))
                r, q = max(((r, q) for r in rows for q in cols), key=lambda rq: x[0, c, rq[0], rq[1]])
                expected[0, c, r, q] += gy[0, c, i, j]
    np.testing.assert_allclose(xt.grad, expected, rtol=1e-12)


@pytest.mark.parametrize("out", [(1, 1), (2, 2), (3, 2), (7, 5), (9, 8)])
def test_adaptive_avg_pool2d_matches_naive_loops(device, rng, out):
    x = rng.standard_normal((2, 3, 7, 5))
    y = F.adaptive_avg_pool2d(tensor(x, device), out)
    np.testing.assert_allclose(y.numpy(), reference.adaptive_avg_pool2d(x, out), rtol=1e-12)


@pytest.mark.parametrize("out", [(1, 1), (2, 3)])
def test_adaptive_avg_pool2d_with_equal_bins_keeps_channels_last(device, rng, out):
    """A channels-last input (a convolution's output) pools without a copy, and its gradient comes back
    channels-last, so that the convolution before it reads the gradient's pixel rows without a copy."""
    from minicnn.layout import is_channels_last
    x = tensor(rng.standard_normal((2, 4, 6, 3)), device).array.transpose(0, 3, 1, 2)  # (2, 3, 4, 6) channels-last
    xt = tensor(backend.as_numpy(x), device, requires_grad=True)
    xt.array = x
    y = F.adaptive_avg_pool2d(xt, out)
    gy = rng.standard_normal(y.shape)
    y.backward(tensor(gy, device))
    np.testing.assert_allclose(y.numpy(), reference.adaptive_avg_pool2d(backend.as_numpy(x), out), rtol=1e-12)
    bins = (4 // out[0]) * (6 // out[1])
    expected = np.repeat(np.repeat(gy, 4 // out[0], axis=2), 6 // out[1], axis=3) / bins
    np.testing.assert_array_equal(backend.as_numpy(xt.grad), expected)
    assert is_channels_last(xt.grad.array)


def test_pooling_keeps_float32(rng):
    x = tensor(rng.standard_normal((2, 3, 7, 7)).astype(np.float32), requires_grad=True)
    for y in (F.max_pool2d(x, 3, 2, 1, ceil_mode=True), F.avg_pool2d(x, 3, 2, 1, ceil_mode=True),
              F.adaptive_avg_pool2d(x, 1)):
        y.sum().backward()
        assert y.dtype == np.float32 and x.grad.dtype == np.float32


@pytest.mark.parametrize("pool", [F.max_pool2d, F.avg_pool2d])
@pytest.mark.parametrize("shape,args,error,match", [
    ((3, 8, 8), dict(kernel_size=2), ValueError, r"x must be 4-D \(N, C, H, W\), got shape \(3, 8, 8\)"),
    ((1, 1, 8, 8), dict(kernel_size=3, padding=2), ValueError, r"padding must be at most half the kernel size"),
    ((1, 1, 8, 8), dict(kernel_size=2, stride=0), ValueError, r"stride must be positive, got 0"),
    ((1, 1, 8, 8), dict(kernel_size=0), ValueError, r"kernel_size must be positive"),
    ((1, 1, 2, 2), dict(kernel_size=5, padding=1), ValueError, r"kernel_size \(5, 5\) is larger than the padded input 4x4"),
])
def test_pooling_rejects_bad_input(pool, shape, args, error, match):
    with pytest.raises(error, match=match):
        pool(tensor(np.zeros(shape)), **args)


def test_pooling_rejects_integer_input():
    with pytest.raises(TypeError, match="floating-point"):
        F.max_pool2d(tensor(np.zeros((1, 1, 4, 4), np.int32)), 2)

