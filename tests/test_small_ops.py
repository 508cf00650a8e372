"""ReLU, linear, softmax, cross-entropy, dropout, concat, flatten and arithmetic."""
import numpy as np
import pytest

import minicnn
import minicnn.functional as F
from minicnn import backend
import reference
from helpers import tensor


def test_relu(device):
    y = F.relu(tensor([[-2.0, 0.0, 3.0]], device))
    np.testing.assert_array_equal(y.numpy(), [[0.0, 0.0, 3.0]])


@pytest.mark.parametrize("layout", ["channels-last", "contiguous"])
def test_fast_concat_channels_matches_numpy(rng, layout):
    from minicnn.kernels.shape import concat_channels_numba, split_channels_numba
    parts = [rng.standard_normal((6, c, 5, 4)).astype(np.float32) for c in (3, 1, 2)]
    if layout == "channels-last":  # as convolutions return them
        parts = [np.ascontiguousarray(p.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2) for p in parts]
    joined = concat_channels_numba(*parts)
    np.testing.assert_array_equal(joined, np.concatenate(parts, axis=1))
    assert joined.transpose(0, 2, 3, 1).flags.c_contiguous
    for piece, part in zip(split_channels_numba(joined, [3, 1, 2]), parts):  # concat's backward
        np.testing.assert_array_equal(piece, part)
        assert piece.transpose(0, 2, 3, 1).flags.c_contiguous


@pytest.mark.parametrize("layout", ["contiguous", "channels-last", "channel slice"])
def test_fast_relu_matches_the_plain_version(rng, layout):
    """The CPU twin splits NumPy's own ops over images: the same values, and x's memory layout kept."""
    from minicnn.kernels.activation import relu_backward_numba, relu_threads
    data = rng.standard_normal((9, 4, 5, 3)).astype(np.float32)
    data[data > 1] = 0.0  # exact zeros: the gradient there is 0, as in PyTorch
    if layout == "channels-last":
        data = np.ascontiguousarray(data.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    elif layout == "channel slice":
        data = data[:, 1:3]
    gy = rng.standard_normal(data.shape).astype(np.float32)
    y = relu_threads(data)
    np.testing.assert_array_equal(y, np.maximum(data, 0))
    assert y.strides == np.empty_like(data).strides
    np.testing.assert_array_equal(relu_backward_numba(gy, y), gy * (y > 0))


def test_linear_matches_a_plain_loop(device, rng):
    x, w, b = rng.standard_normal((4, 5)), rng.standard_normal((3, 5)), rng.standard_normal(3)
    expected = np.array([[sum(x[i, k] * w[o, k] for k in range(5)) + b[o] for o in range(3)] for i in range(4)])
    np.testing.assert_allclose(F.linear(tensor(x, device), tensor(w, device), tensor(b, device)).numpy(),
                               expected, rtol=1e-12)


def test_linear_rejects_mismatched_features():
    with pytest.raises(ValueError, match=r"in_features = 5 entries \(weight shape \(3, 5\)\), got x shape \(4, 6\)"):
        F.linear(tensor(np.zeros((4, 6))), tensor(np.zeros((3, 5))))


def test_softmax_and_log_softmax(device, rng):
    z = rng.standard_normal((3, 4)) * 5
    expected = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(F.softmax(tensor(z, device), axis=1).numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(F.log_softmax(tensor(z, device), axis=-1).numpy(), np.log(expected), rtol=1e-12)


def test_log_softmax_and_cross_entropy_are_stable_for_huge_logits(device):
    z = tensor(np.array([[1000.0, 0.0, -1000.0]], np.float32), device, requires_grad=True)
    assert np.isfinite(F.log_softmax(z, axis=1).numpy()).all()
    loss = F.cross_entropy(z, np.array([2]))
    loss.backward()
    assert loss.item() == pytest.approx(2000.0) and np.isfinite(backend.as_numpy(z.grad)).all()


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.5])
def test_cross_entropy_matches_naive_loops(device, rng, smoothing):
    z, t = rng.standard_normal((6, 5)), rng.integers(0, 5, 6)
    loss = F.cross_entropy(tensor(z, device), tensor(t, device), label_smoothing=smoothing)
    assert loss.item() == pytest.approx(reference.cross_entropy(z, t, smoothing), rel=1e-12)
    per_sample = F.cross_entropy(tensor(z, device), t, smoothing, reduction="none").numpy()
    assert per_sample.shape == (6,) and per_sample.mean() == pytest.approx(loss.item(), rel=1e-12)


@pytest.mark.parametrize("target,error,match", [
    (np.array([0, 1, 5]), ValueError, r"target labels must lie in \[0, 5\), got values from 0 to 5"),
    (np.array([0, -1, 2]), ValueError, r"got values from -1 to 2"),
    (np.array([0.0, 1.0, 2.0]), TypeError, r"target must hold integer class labels, got dtype float64"),
    (np.array([0, 1]), ValueError, r"target must have shape \(3,\) to match logits \(3, 5\), got \(2,\)"),
])
def test_cross_entropy_rejects_bad_targets(target, error, match):
    with pytest.raises(error, match=match):
        F.cross_entropy(tensor(np.zeros((3, 5))), target)


def test_dropout_is_inverted_and_repeatable(device):
    x = tensor(np.ones((200, 50), np.float32), device)
    minicnn.manual_seed(7)
    y = F.dropout(x, 0.3).numpy()
    minicnn.manual_seed(7)
    again = F.dropout(x, 0.3).numpy()
    np.testing.assert_array_equal(y, again)
    assert y.dtype == np.float32
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.7)}
    assert abs((y == 0).mean() - 0.3) < 0.02  # 10,000 draws: the dropped share is near p
    assert F.dropout(x, 0.3, training=False) is x
    assert (F.dropout(x, 1.0).numpy() == 0).all()


def test_dropout_rejects_bad_p():
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\], got 1.5"):
        F.dropout(tensor(np.ones(3)), 1.5)


def test_concat_and_its_gradient_split(device, rng):
    parts = [tensor(rng.standard_normal((2, c, 3)), device, requires_grad=True) for c in (1, 4, 2)]
    y = F.concat(parts, axis=1)
    np.testing.assert_array_equal(y.numpy(), np.concatenate([p.numpy() for p in parts], axis=1))
    gy = rng.standard_normal(y.shape)
    y.backward(gy)
    np.testing.assert_array_equal(backend.as_numpy(parts[1].grad), gy[:, 1:5])


def test_concat_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"tensors\[1\] has shape \(2, 3, 5\), which does not match"):
        F.concat([tensor(np.zeros((2, 1, 4))), tensor(np.zeros((2, 3, 5)))], axis=1)


def test_flatten():
    x = tensor(np.arange(120.0).reshape(2, 3, 4, 5))
    assert F.flatten(x, 1).shape == (2, 60)
    assert F.flatten(x).shape == (120,)
    assert F.flatten(x, 1, 2).shape == (2, 12, 5)


def test_arithmetic_with_numbers_keeps_float32():
    x = tensor(np.ones(3, np.float32), requires_grad=True)
    y = (2 * x + 1) / 4 - x ** 2
    y.sum().backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, np.full(3, 0.5 - 2.0))


def test_reshape_rejects_wrong_sizes():
    with pytest.raises(ValueError, match=r"cannot reshape a tensor of shape \(2, 3\) \(6 elements\) into \(4, -1\)"):
        tensor(np.zeros((2, 3))).reshape(4, -1)


@pytest.mark.gpu
def test_cross_entropy_marks_an_out_of_range_gpu_label_with_nan():
    logits = tensor(np.zeros((3, 5)), "gpu")
    per_sample = F.cross_entropy(logits, tensor(np.array([0, 7, 2]), "gpu").array, reduction="none").numpy()
    assert np.isnan(per_sample[1]) and np.isfinite(per_sample[[0, 2]]).all()


@pytest.mark.gpu
def test_manual_seed_repeats_gpu_dropout_masks():
    x = tensor(np.ones((64, 64), np.float32), "gpu")
    minicnn.manual_seed(3)
    first = F.dropout(x, 0.5).numpy()
    F.dropout(x, 0.5)
    minicnn.manual_seed(3)
    np.testing.assert_array_equal(F.dropout(x, 0.5).numpy(), first)
