"""Winograd F(4x4, 3x3): forward and gradients against the definition, the numba forms against the plain twin,
where Conv2dFunction uses it, and its float32 accuracy on a GoogLeNet-sized layer."""
import numpy as np
import pytest

import minicnn.functional as F
from minicnn import backend, no_grad
from minicnn.functional import winograd
from minicnn.functional.conv import Conv2dFunction
from minicnn.kernels import conv as conv_kernels
from minicnn.kernels.dispatch import plain_forms
from minicnn.layout import is_channels_last
import reference
from helpers import assert_same_as_plain, tensor

# (batch, in channels, out channels, input size, padding): odd and even outputs, one-pixel images, rectangles
SHAPES = [
    (1, 1, 1, (5, 5), (0, 0)),
    (3, 5, 4, (7, 7), (1, 1)),
    (1, 5, 2, (5, 5), (2, 2)),
    (3, 1, 3, (1, 1), (1, 1)),    # a 1x1 image: its padded 3x3 block is one output pixel
    (1, 2, 3, (3, 3), (0, 0)),    # the smallest unpadded input
    (2, 3, 2, (6, 5), (0, 2)),    # different padding per axis, odd width
    (3, 5, 4, (8, 8), (2, 1)),
]


def winograd_conv(x, w, b, padding):
    """conv2d with 3x3 kernels and stride 1, in Winograd's algorithm whatever the channel count."""
    op = Conv2dFunction((1, 1), padding, (3, 3), algorithm="winograd")
    return op(x, w) if b is None else op(x, w, b)


@pytest.mark.parametrize("n,c,o,size,padding", SHAPES)
@pytest.mark.parametrize("plain", [False, True])
def test_winograd_matches_naive_loops_forward_and_backward(device, rng, n, c, o, size, padding, plain):
    x, w, b = (rng.standard_normal(shape) for shape in ((n, c) + size, (o, c, 3, 3), (o,)))
    xt, wt, bt = (tensor(a, device, requires_grad=True) for a in (x, w, b))
    with plain_forms(plain):
        y = winograd_conv(xt, wt, bt, padding)
        assert is_channels_last(y.array)
        np.testing.assert_allclose(y.numpy(), reference.conv2d(x, w, b, (1, 1), padding), rtol=1e-10, atol=1e-12)
        gy = rng.standard_normal(y.shape)
        y.backward(tensor(gy, device))
    for got, want in zip((xt, wt, bt), reference.conv2d_backward(x, w, gy, (1, 1), padding)):
        np.testing.assert_allclose(backend.as_numpy(got.grad), want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("n,c,o,size,padding", SHAPES)
@pytest.mark.parametrize("bias", [True, False])
def test_winograd_gradients_match_im2col(rng, n, c, o, size, padding, bias):
    """Both algorithms' dx, dw, db, on the same inputs; only the weight's gradient when x needs none (a first
    layer)."""
    for x_needs_grad in (True, False):
        grads = {}
        for algorithm in ("im2col", "winograd"):
            inputs = [tensor(np.random.default_rng(1).standard_normal(shape), requires_grad=True)
                      for shape in ((n, c) + size, (o, c, 3, 3), (o,))[:3 if bias else 2]]
            inputs[0].requires_grad = x_needs_grad
            y = Conv2dFunction((1, 1), padding, (3, 3), algorithm)(*inputs)
            y.backward(tensor(np.random.default_rng(2).standard_normal(y.shape)))
            grads[algorithm] = [t.grad for t in inputs]
        for got, want in zip(grads["winograd"], grads["im2col"]):
            assert (got is None) == (want is None)
            if want is not None:
                np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("n,c,o,size,padding", SHAPES)
def test_numba_transforms_match_the_plain_twins_bit_for_bit(rng, n, c, o, size, padding):
    """Each transform and its adjoint: the numba form adds the same values in the same order."""
    oh, ow = size[0] + 2 * padding[0] - 2, size[1] + 2 * padding[1] - 2
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((n, c) + size).astype(dtype)
        gy = rng.standard_normal((n, oh, ow, o)).astype(dtype).transpose(0, 3, 1, 2)  # channels-last, as conv2d's
        for forms in (winograd.input_transform, winograd.output_transform, winograd.output_transform_adjoint,
                      winograd.input_transform_adjoint, winograd.filter_transform, winograd.filter_transform_adjoint):
            assert forms.fast_form(x)  # the numba form runs, not the plain twin
        v = winograd.input_transform(x, padding)
        assert_same_as_plain(v, winograd.input_transform_plain(x, padding))
        m = rng.standard_normal((winograd.POSITIONS, v.shape[1], o)).astype(dtype)
        bias = rng.standard_normal(o).astype(dtype)
        for b in (bias, None):
            assert_same_as_plain(winograd.output_transform(m, b, (n, oh, ow)),
                                 winograd.output_transform_plain(m, b, (n, oh, ow)))
        assert_same_as_plain(winograd.output_transform_adjoint(gy), winograd.output_transform_adjoint_plain(gy))
        dv = rng.standard_normal(v.shape).astype(dtype)
        assert_same_as_plain(winograd.input_transform_adjoint(dv, x.shape, padding),
                             winograd.input_transform_adjoint_plain(dv, x.shape, padding))
        w = rng.standard_normal((o, c, 3, 3)).astype(dtype)
        assert_same_as_plain(winograd.filter_transform(w), winograd.filter_transform_plain(w))
        du = rng.standard_normal((winograd.POSITIONS, c, o)).astype(dtype)
        assert_same_as_plain(winograd.filter_transform_adjoint(du), winograd.filter_transform_adjoint_plain(du))


@pytest.mark.parametrize("n,c,o,size,padding", SHAPES[1:4])
@pytest.mark.parametrize("plain", [False, True])
def test_each_transform_is_the_adjoint_of_its_twin(rng, n, c, o, size, padding, plain):
    """<T(a), b> = <a, T*(b)> for the input, output and filter transforms: backward is exactly the transpose."""
    oh, ow = size[0] + 2 * padding[0] - 2, size[1] + 2 * padding[1] - 2
    x = rng.standard_normal((n, c) + size)
    w = rng.standard_normal((o, c, 3, 3))
    with plain_forms(plain):
        v = winograd.input_transform(x, padding)
        dv = rng.standard_normal(v.shape)
        assert (v * dv).sum() == pytest.approx((x * winograd.input_transform_adjoint(dv, x.shape, padding)).sum(),
                                               rel=1e-12)
        m = rng.standard_normal((winograd.POSITIONS, v.shape[1], o))
        gy = rng.standard_normal((n, o, oh, ow))
        y = winograd.output_transform(m, None, (n, oh, ow))  # (N, OH, OW, O)
        assert (y * gy.transpose(0, 2, 3, 1)).sum() == pytest.approx(
            (m * winograd.output_transform_adjoint(gy)).sum(), rel=1e-12)
        u = winograd.filter_transform(w)
        du = rng.standard_normal(u.shape)
        assert (u * du).sum() == pytest.approx((w * winograd.filter_transform_adjoint(du)).sum(), rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batched_product_matches_matmul(rng, dtype):
    """out[k] = a[k] @ b[k] on minicnn's threads, for the stacks and transposed views Winograd multiplies."""
    a = rng.standard_normal((16, 300, 40)).astype(dtype)
    b = rng.standard_normal((16, 40, 24)).astype(dtype)
    tolerance = {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}
    assert winograd.batched_product.fast_form(a) == "conv:batched_product"
    np.testing.assert_allclose(conv_kernels.batched_product(a, b), np.matmul(a, b), **tolerance)
    np.testing.assert_allclose(conv_kernels.batched_product(a.transpose(0, 2, 1), a), a.transpose(0, 2, 1) @ a,
                               **tolerance)
    out = np.empty((16, 300, 24), dtype)
    assert conv_kernels.batched_product(a, b, out) is out
    np.testing.assert_array_equal(winograd.batched_product_plain(a, b), np.matmul(a, b))


@pytest.mark.parametrize("block_bytes", [1, 2000, 4 << 20])  # a chunk per tile row, a few rows (across images), one
@pytest.mark.parametrize("bias", [True, False])
def test_chunked_forward_matches_the_whole_products_then_the_output_transform(rng, monkeypatch, block_bytes, bias):
    """The CPU's forward (products and output transform chunk by chunk of tiles) against the plain twin
    (all 36 products whole, then the transform), odd output sizes included."""
    from minicnn.kernels import winograd as winograd_kernels
    monkeypatch.setattr(winograd_kernels, "_BLOCK_BYTES", block_bytes)
    x = rng.standard_normal((3, 6, 7, 5))
    v = winograd.input_transform_plain(x, (1, 1))
    u = winograd.filter_transform_plain(rng.standard_normal((4, 6, 3, 3)))
    b = rng.standard_normal(4) if bias else None
    assert winograd.winograd_forward.fast_form(v) == "winograd:forward_numba"
    with plain_forms():
        expected = winograd.forward_plain(v, u, b, (3, 7, 5))
    np.testing.assert_allclose(winograd_kernels.forward_numba(v, u, b, (3, 7, 5)), expected, rtol=1e-12, atol=1e-12)


def algorithm_of(x_shape, w_shape, stride=1, padding=1, device="cpu"):
    rng = np.random.default_rng(0)
    x = tensor(rng.standard_normal(x_shape), device, requires_grad=True)  # so that y records its creator
    y = F.conv2d(x, tensor(rng.standard_normal(w_shape), device), stride=stride, padding=padding)
    return y.creator.algorithm


def test_conv2d_runs_winograd_only_where_it_pays(device):
    """3x3, stride 1, padding <= 2, >= 32 channels in and out, >= 64 output tiles, on the CPU with the fast
    forms: Winograd; everything else (the GPU path included) im2col as before."""
    x, w = (4, 32, 16, 16), (32, 32, 3, 3)  # 4 images of 4 x 4 tiles
    expected = "winograd" if device == "cpu" else "im2col"
    assert algorithm_of(x, w, device=device) == expected
    assert algorithm_of(x, w, padding=0, device=device) == algorithm_of(x, w, padding=2, device=device) == expected
    assert algorithm_of(x, w, padding=3, device=device) == "im2col"
    assert algorithm_of(x, w, stride=2, device=device) == "im2col"
    assert algorithm_of((1, 16, 6, 6), (32, 16, 3, 3), device=device) == "im2col"   # too few input channels
    assert algorithm_of(x, (16, 32, 3, 3), device=device) == "im2col"               # too few outputs
    assert algorithm_of(x, (32, 32, 5, 5), padding=2, device=device) == "im2col"
    assert algorithm_of((1, 32, 32, 32), w, device=device) == expected           # 8 x 8 = 64 output tiles
    assert algorithm_of((1, 32, 28, 28), w, device=device) == "im2col"           # 7 x 7 = 49 output tiles
    with plain_forms():
        assert algorithm_of(x, w, device=device) == "im2col"


def test_float32_winograd_stays_close_to_float32_im2col_on_a_googlenet_layer():
    """Inception 3a's 3x3 branch at 16x16, He-initialised: the error against a float64 reference.

    F(4x4, 3x3)'s transforms have entries up to 8 and down to 1/24 (points 0, +-1, +-2), so its sums round
    more than the direct sum's: measured 1.7e-6 against im2col's 2.1e-7, relative, in the 2-norm (F(2x2,
    3x3) gave 2.7e-7). We hold it to 12x im2col's error and to 3e-6, far below what training notices
    (float32's eps is 1.2e-7; each output sums 864 products).
    """
    rng = np.random.default_rng(0)
    x = np.maximum(rng.standard_normal((4, 96, 16, 16)), 0)  # a ReLU's output
    w = rng.standard_normal((128, 96, 3, 3)) * np.sqrt(2 / (96 * 9))
    with no_grad():
        exact = F.conv2d(tensor(x), tensor(w), padding=1).numpy()
        errors = {}
        for algorithm in ("im2col", "winograd"):
            y = Conv2dFunction((1, 1), (1, 1), (3, 3), algorithm)(tensor(x.astype(np.float32)),
                                                                  tensor(w.astype(np.float32)))
            errors[algorithm] = np.linalg.norm(y.numpy() - exact) / np.linalg.norm(exact)
    assert errors["winograd"] < max(12 * errors["im2col"], 1e-7) and errors["winograd"] < 3e-6, errors


def test_forcing_winograd_on_another_geometry_is_a_clear_error():
    with pytest.raises(ValueError, match=r"needs a 3x3 kernel and stride 1, got kernel \(5, 5\) and stride \(1, 1\)"):
        Conv2dFunction((1, 1), (2, 2), (5, 5), algorithm="winograd")
    with pytest.raises(ValueError, match=r"got kernel \(3, 3\) and stride \(2, 2\)"):
        Conv2dFunction((2, 2), (1, 1), (3, 3), algorithm="winograd")
    with pytest.raises(ValueError, match="algorithm must be None, 'im2col' or 'winograd', got 'fft'"):
        Conv2dFunction((1, 1), (1, 1), (3, 3), algorithm="fft")
