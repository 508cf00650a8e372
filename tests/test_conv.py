import numpy as np
import pytest

import minicnn.functional as F
from minicnn import backend
from minicnn.functional.conv import col2im, col2im_forms, col2im_strided, im2col, im2col_forms, im2col_strided
from minicnn.kernels.dispatch import plain_forms
from minicnn.layout import is_channels_last
import reference
from helpers import assert_same_as_plain, tensor

# (kernel, stride, padding, input size): 1x1 (no im2col), odd sizes, stride 2, rectangles
CONFIGS = [
    ((1, 1), (1, 1), (0, 0), (5, 4)),
    ((1, 1), (2, 2), (0, 0), (7, 7)),
    ((3, 3), (1, 1), (1, 1), (6, 6)),
    ((3, 3), (2, 2), (1, 1), (7, 9)),
    ((5, 5), (1, 1), (2, 2), (5, 5)),
    ((7, 7), (2, 2), (3, 3), (9, 9)),
    ((3, 2), (2, 1), (1, 0), (6, 5)),
    ((2, 2), (3, 3), (0, 0), (8, 8)),   # stride larger than the kernel: skipped pixels
]


@pytest.mark.parametrize("kernel,stride,padding,size", CONFIGS)
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_matches_naive_loops(device, rng, kernel, stride, padding, size, bias):
    x = rng.standard_normal((2, 3) + size)
    w = rng.standard_normal((4, 3) + kernel)
    b = rng.standard_normal(4) if bias else None
    y = F.conv2d(tensor(x, device), tensor(w, device), tensor(b, device) if bias else None, stride, padding)
    np.testing.assert_allclose(y.numpy(), reference.conv2d(x, w, b, stride, padding), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kernel,stride,padding,size", CONFIGS)
def test_conv2d_gradients_match_naive_loops(device, rng, kernel, stride, padding, size):
    """dx, dw and db against the definition, for every geometry (the 1x1 path too, which has its own code)."""
    x, w, b = (tensor(a, device, requires_grad=True) for a in (
        rng.standard_normal((2, 3) + size), rng.standard_normal((4, 3) + kernel), rng.standard_normal(4)))
    y = F.conv2d(x, w, b, stride, padding)
    gy = rng.standard_normal(y.shape)
    y.backward(tensor(gy, device))
    expected = reference.conv2d_backward(x.numpy(), w.numpy(), gy, stride, padding)
    for got, want in zip((x, w, b), expected):
        np.testing.assert_allclose(backend.as_numpy(got.grad), want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kernel,stride,padding,size", CONFIGS)
def test_im2col_and_col2im_are_adjoint(device, rng, kernel, stride, padding, size):
    """<im2col(x), c> = <x, col2im(c)> for all x, c: col2im is exactly im2col's transpose."""
    x = tensor(rng.standard_normal((2, 3) + size), device).array
    cols = im2col(x, kernel, stride, padding)
    c = tensor(rng.standard_normal(cols.shape), device).array
    left = float((cols * c).sum())
    right = float((x * col2im(c, x.shape, kernel, stride, padding)).sum())
    assert left == pytest.approx(right, rel=1e-12)


@pytest.mark.parametrize("kernel,stride,padding,size", CONFIGS)
def test_fast_im2col_kernels_match_the_strided_versions(device, rng, kernel, stride, padding, size):
    """The fast kernels (numba on the CPU, gathers on the GPU) give the plain version's result exactly."""
    for dtype in (np.float32, np.float64):
        x = tensor(rng.standard_normal((3, 2) + size).astype(dtype), device).array
        assert im2col_forms.fast_form(x) and col2im_forms.fast_form(x)  # fast kernels, not the plain twins, run
        cols = im2col(x, kernel, stride, padding)
        plain = im2col_strided(x, kernel, stride, padding)
        np.testing.assert_array_equal(backend.as_numpy(cols), backend.as_numpy(plain))
        c = tensor(rng.standard_normal(cols.shape).astype(dtype), device).array
        # overlapping receptive fields add several entries into one pixel: in the plain order
        assert_same_as_plain(col2im(c, x.shape, kernel, stride, padding),
                             col2im_strided(c, x.shape, kernel, stride, padding))


@pytest.mark.parametrize("kernel,stride,padding,size", CONFIGS)
@pytest.mark.parametrize("channels", [1, 4])
@pytest.mark.parametrize("layout", ["channels-last", "channels-first"])
def test_gather_im2col_matches_the_strided_versions_on_numpy(rng, kernel, stride, padding, size, channels, layout):
    """The GPU's gather formulation, run on NumPy arrays: the same rows, and col2im's sums in the same order."""
    from minicnn.kernels import conv
    x = rng.standard_normal((2, size[0], size[1], channels)).astype(np.float32).transpose(0, 3, 1, 2)
    x = x if layout == "channels-last" else np.ascontiguousarray(x)
    cols = conv.im2col_gather(x, kernel, stride, padding)
    np.testing.assert_array_equal(cols, im2col_strided(x, kernel, stride, padding))
    c = rng.standard_normal(cols.shape).astype(np.float32)
    gx = conv.col2im_gather(c, x.shape, kernel, stride, padding)
    np.testing.assert_array_equal(gx, col2im_strided(c, x.shape, kernel, stride, padding))
    assert is_channels_last(gx)


def test_conv2d_weight_gradient_is_laid_out_as_the_weight(device, rng):
    """Backward hands out the weight gradient as a view in (O, kh, kw, C) order; the engine's copy for
    the leaf takes the weight's own layout, as PyTorch's gradients do."""
    x = tensor(rng.standard_normal((2, 3, 6, 6)), device)
    w = tensor(rng.standard_normal((4, 3, 3, 3)), device, requires_grad=True)
    F.conv2d(x, w, padding=1).sum().backward()
    assert w.grad.array.flags.c_contiguous and w.grad.shape == w.shape
    expected = reference.conv2d_backward(x.numpy(), w.numpy(), np.ones((2, 4, 6, 6)), (1, 1), (1, 1))[1]
    np.testing.assert_allclose(backend.as_numpy(w.grad), expected, rtol=1e-10)


def test_conv2d_keeps_float32(rng):
    x = tensor(rng.standard_normal((2, 3, 6, 6)).astype(np.float32), requires_grad=True)
    w = tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), requires_grad=True)
    b = tensor(np.zeros(4, np.float32), requires_grad=True)
    y = F.conv2d(x, w, b, padding=1)
    y.sum().backward()
    assert y.dtype == np.float32
    assert x.grad.dtype == w.grad.dtype == b.grad.dtype == np.float32


def test_conv2d_float32_agrees_with_float64(rng):
    x, w = rng.standard_normal((2, 8, 9, 9)), rng.standard_normal((5, 8, 3, 3))
    y64 = F.conv2d(tensor(x), tensor(w), stride=2, padding=1).numpy()
    y32 = F.conv2d(tensor(x.astype(np.float32)), tensor(w.astype(np.float32)), stride=2, padding=1).numpy()
    np.testing.assert_allclose(y32, y64, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("x_shape,w_shape,kwargs,error,match", [
    ((3, 8, 8), (4, 3, 3, 3), {}, ValueError, r"x must be 4-D \(N, C, H, W\), got shape \(3, 8, 8\)"),
    ((2, 3, 8, 8), (4, 3, 3), {}, ValueError, r"weight must be 4-D"),
    ((2, 4, 8, 8), (4, 3, 3, 3), {}, ValueError, r"weight expects 3 input channels but x has 4"),
    ((2, 3, 4, 4), (4, 3, 7, 7), {"padding": 1}, ValueError, r"kernel 7x7 is larger than the padded input 6x6"),
    ((2, 3, 8, 8), (4, 3, 3, 3), {"stride": 0}, ValueError, r"stride must be positive, got 0"),
    ((2, 3, 8, 8), (4, 3, 3, 3), {"stride": (1, -2)}, ValueError, r"stride must be positive"),
    ((2, 3, 8, 8), (4, 3, 3, 3), {"padding": -1}, ValueError, r"padding must be at least 0, got -1"),
    ((2, 3, 8, 8), (4, 3, 3, 3), {"padding": 1.5}, TypeError, r"padding must be an int or a pair of ints"),
    ((2, 3, 8, 8), (4, 3, 3, 3), {"bias": np.zeros(5)}, ValueError, r"one entry per output channel \(4\)"),
])
def test_conv2d_rejects_bad_input(x_shape, w_shape, kwargs, error, match):
    kwargs = {k: tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    with pytest.raises(error, match=match):
        F.conv2d(tensor(np.zeros(x_shape)), tensor(np.zeros(w_shape)), **kwargs)


def test_conv2d_rejects_integer_input_and_mixed_dtypes():
    with pytest.raises(TypeError, match=r"x must hold floating-point values, got dtype int64"):
        F.conv2d(tensor(np.zeros((1, 1, 3, 3), np.int64)), tensor(np.zeros((1, 1, 3, 3))))
    with pytest.raises(TypeError, match=r"weight has dtype float64 but x has dtype float32"):
        F.conv2d(tensor(np.zeros((1, 1, 3, 3), np.float32)), tensor(np.zeros((1, 1, 3, 3))))
    with pytest.raises(TypeError, match=r"x must be a minicnn.Tensor, got ndarray \(wrap it"):
        F.conv2d(np.zeros((1, 1, 3, 3)), tensor(np.zeros((1, 1, 3, 3))))


@pytest.mark.parametrize("shape", [(1000, 30, 20), (20, 30, 1000), (16, 9000, 24), (5, 7, 3)],
                         ids=["tall", "wide", "long inner dimension", "small"])
@pytest.mark.parametrize("bias", [True, False])
def test_split_matrix_product_matches_numpy(rng, shape, bias):
    """The CPU products run in blocks of rows, of columns or of the inner dimension (configure_cpu's split)."""
    from minicnn.kernels import conv, threads
    rows, inner, cols = shape
    a = rng.standard_normal((rows, inner)).astype(np.float32)
    b = rng.standard_normal((cols, inner)).astype(np.float32).T  # a transposed operand, as in conv2d
    c = rng.standard_normal(cols).astype(np.float32) if bias else None
    assert threads.split_matmuls()  # the tests run configured as the trainer is (conftest)
    expected = a @ b + (c if bias else 0)
    np.testing.assert_allclose(conv.matrix_product_threads(a, b, c), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(conv.matrix_product_threads(a, b, c, relu=True), np.maximum(expected, 0),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kernel,stride,padding,size", CONFIGS)
@pytest.mark.parametrize("block_bytes", [1, 3000, 4 << 20])  # one row of pixels at a time, a few, all of a chunk
@pytest.mark.parametrize("bias,relu", [(True, True), (False, False)])
def test_unfolding_a_block_at_a_time_matches_the_whole_rows_then_the_product(rng, monkeypatch, kernel, stride,
                                                                           padding, size, block_bytes, bias, relu):
    """The CPU's forward (rows unfolded and multiplied block by block, in cache) against the plain twin
    (im2col whole, then one product), across blocks that end inside a chunk and images."""
    from minicnn.functional.conv import unfolded_product, unfolded_product_plain
    from minicnn.kernels import conv as conv_kernels
    monkeypatch.setattr(conv_kernels, "_UNFOLD_BYTES", block_bytes)
    x = rng.standard_normal((3, 4) + size)
    b = rng.standard_normal((kernel[0] * kernel[1] * 4, 5))
    shift = rng.standard_normal(5) if bias else None
    assert unfolded_product.fast_form(x) == "conv:unfolded_product_numba"
    got = conv_kernels.unfolded_product_numba(x, kernel, stride, padding, b, shift, relu)
    with plain_forms():
        expected = unfolded_product_plain(x, kernel, stride, padding, b, shift, relu)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


WINOGRAD_CONFIGS = [c for c in CONFIGS if c[0] == (3, 3) and c[1] == (1, 1)]  # the geometry Winograd computes


@pytest.mark.parametrize("kernel,stride,padding,size,algorithm",
                         [(*c, "im2col") for c in CONFIGS] + [(*c, "winograd") for c in WINOGRAD_CONFIGS])
def test_conv2d_with_relu_is_relu_of_conv2d_forward_and_backward(device, rng, kernel, stride, padding, size,
                                                                 algorithm):
    """relu=True gives max(conv2d, 0) and its gradients, in either algorithm."""
    from minicnn.functional.conv import Conv2dFunction
    arrays = rng.standard_normal((2, 3) + size), rng.standard_normal((4, 3) + kernel), rng.standard_normal(4)
    results = {}
    for relu in (True, False):
        x, w, b = (tensor(a, device, requires_grad=True) for a in arrays)
        y = Conv2dFunction(stride, padding, kernel, algorithm=algorithm, relu=relu)(x, w, b)
        y = y if relu else F.relu(y)
        gy = np.random.default_rng(1).standard_normal(y.shape)  # the same for both
        y.backward(tensor(gy, device))
        results[relu] = [y.numpy(), x.grad.numpy(), w.grad.numpy(), b.grad.numpy()]
    assert (results[True][0] == 0).any() and (results[True][0] > 0).any()  # the ReLU cuts somewhere
    for fused, separate in zip(results[True], results[False]):
        np.testing.assert_allclose(fused, separate, rtol=1e-12, atol=1e-12)


def test_conv2d_relu_must_be_a_bool():
    with pytest.raises(TypeError, match="conv2d: relu must be True or False, got 1"):
        F.conv2d(tensor(np.zeros((1, 1, 3, 3))), tensor(np.zeros((1, 1, 3, 3))), relu=1)
