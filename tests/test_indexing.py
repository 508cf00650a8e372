"""Indexing, slicing, iteration and axis reordering: values against plain loops, gradients that add up."""
import numpy as np
import pytest

import minicnn
from minicnn import backend
import reference
from helpers import tensor


@pytest.mark.parametrize("slices", [
    (slice(None), slice(None, 2)),               # x[:, :2]
    (slice(1, None), slice(None, None, -1)),     # x[1:, ::-1]
    (slice(-1, 0, -2), slice(1, 3)),             # x[-1:0:-2, 1:3]
    (slice(None, None, 3), slice(-2, None)),     # x[::3, -2:]
])
def test_slicing_matches_a_plain_loop(device, rng, slices):
    x = rng.standard_normal((5, 4))
    np.testing.assert_array_equal(tensor(x, device)[slices].numpy(), reference.slice_nd(x, slices))


def test_ints_ellipsis_and_none_follow_numpy(device, rng):
    x = rng.standard_normal((2, 3, 4))
    t = tensor(x, device)
    assert t[0].shape == (3, 4) and t[-1, 2].shape == (4,) and t[1, 2, 3].shape == ()
    np.testing.assert_array_equal(t[1, 2].numpy(), [x[1, 2, j] for j in range(4)])
    np.testing.assert_array_equal(t[..., 1].numpy(), reference.take(x, [1], 2)[..., 0])
    assert t[None].shape == (1, 2, 3, 4) and t[:, None, 0].shape == (2, 1, 4)
    assert t[1, 2, 3].item() == x[1, 2, 3]


@pytest.mark.parametrize("index_kind", ["list", "array", "tensor"])
def test_integer_array_indexing_matches_a_plain_loop(device, rng, index_kind):
    x = rng.standard_normal((4, 3))
    indices = [2, 0, 2, -1]
    key = {"list": indices, "array": np.array(indices), "tensor": tensor(np.array(indices), device)}[index_kind]
    np.testing.assert_array_equal(tensor(x, device)[key].numpy(), reference.take(x, [2, 0, 2, 3], 0))
    np.testing.assert_array_equal(tensor(x, device)[:, key[:2] if index_kind != "list" else [2, 0]].numpy(),
                                  reference.take(x, [2, 0], 1))


def test_boolean_mask_picks_in_row_major_order(device, rng):
    x = rng.standard_normal((3, 4))
    t = tensor(x, device)
    np.testing.assert_array_equal(t[t > 0].numpy(), reference.masked_select(x, x > 0))
    rows = np.array([True, False, True])
    np.testing.assert_array_equal(t[rows].numpy(), reference.take(x, [0, 2], 0))


@pytest.mark.parametrize("key,indices,axis", [
    ([0, 2, 0, 0], [0, 2, 0, 0], 0),                  # row 0 three times
    ((slice(None), [1, 1]), [1, 1], 1),               # column 1 twice
    ((Ellipsis, [3, 0, 3]), [3, 0, 3], 1),
])
def test_repeated_indices_add_their_gradients(device, rng, key, indices, axis):
    x = tensor(rng.standard_normal((3, 4)), device, requires_grad=True)
    y = x[key]
    gy = rng.standard_normal(y.shape)
    y.backward(tensor(gy, device))
    np.testing.assert_allclose(backend.as_numpy(x.grad), reference.take_backward(gy, indices, axis, (3, 4)),
                               rtol=1e-15)


def test_slice_gradient_lands_in_the_slice_and_zeros_elsewhere(device):
    x = tensor(np.zeros((3, 4)), device, requires_grad=True)
    x[1:, ::-2].backward(tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), device))
    np.testing.assert_array_equal(backend.as_numpy(x.grad), [[0, 0, 0, 0], [0, 2, 0, 1], [0, 4, 0, 3]])


def test_iteration_goes_over_the_first_axis_and_backpropagates(device, rng):
    x = tensor(rng.standard_normal((3, 2)), device, requires_grad=True)
    rows = list(x)
    assert len(rows) == 3 and all(row.shape == (2,) for row in rows)
    np.testing.assert_array_equal(rows[2].numpy(), x.numpy()[2])
    total = rows[0] * 1.0 + rows[1] * 2.0 + rows[2] * 3.0 + rows[2]
    total.sum().backward()
    np.testing.assert_array_equal(backend.as_numpy(x.grad), [[1, 1], [2, 2], [4, 4]])
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        iter(tensor(np.array(1.0), device))
    with pytest.raises(TypeError, match=r"len\(\) of a 0-d tensor"):
        len(tensor(np.array(1.0), device))


@pytest.mark.parametrize("key,error,match", [
    (5, IndexError, r"indexing a tensor of shape \(3, 4\): index 5 is out of bounds for axis 0 with size 3"),
    ((0, -5), IndexError, r"index -5 is out of bounds for axis 1 with size 4"),
    ([0, 3], IndexError, r"index 3 is out of bounds for axis 0 with size 3"),
    ((0, 0, 0), IndexError, r"too many indices"),
    (np.array([True, False]), IndexError, r"boolean index did not match"),
    (np.array([0.0, 1.0]), IndexError, r"index arrays must hold integers or booleans, got dtype float64"),
    (1.5, IndexError, r"an index must be an int, a slice, \.\.\., None, an integer array or a boolean mask"),
    ("a", IndexError, r"got str"),
])
def test_bad_indices_are_named(key, error, match):
    with pytest.raises(error, match=match):
        tensor(np.zeros((3, 4)))[key]


def test_an_integer_tensor_index_checks_before_the_op_runs():
    x = tensor(np.zeros((3, 4)), requires_grad=True)
    with pytest.raises(IndexError, match="index 7 is out of bounds for axis 1 with size 4"):
        x[:, tensor(np.array([1, 7]))]


@pytest.mark.parametrize("dims", [(2, 0, 1), (1, 2, 0), (0, 2, 1), (-1, 0, 1)])
def test_permute_matches_a_plain_loop_and_its_gradient_goes_back(device, rng, dims):
    x = rng.standard_normal((2, 3, 4))
    t = tensor(x, device, requires_grad=True)
    y = t.permute(*dims)
    np.testing.assert_array_equal(y.numpy(), reference.permute(x, [d % 3 for d in dims]))
    assert t.permute(dims).shape == y.shape  # a tuple works too
    gy = rng.standard_normal(y.shape)
    y.backward(tensor(gy, device))
    inverse = np.argsort([d % 3 for d in dims])
    np.testing.assert_array_equal(backend.as_numpy(t.grad), reference.permute(gy, inverse))


def test_transpose_and_T(device, rng):
    x = rng.standard_normal((2, 3, 4))
    t = tensor(x, device)
    np.testing.assert_array_equal(t.transpose(0, 2).numpy(), reference.permute(x, [2, 1, 0]))
    np.testing.assert_array_equal(t.transpose(-1, 1).numpy(), reference.permute(x, [0, 2, 1]))
    np.testing.assert_array_equal(t.T.numpy(), reference.permute(x, [2, 1, 0]))
    m = tensor(x[0], device)
    np.testing.assert_array_equal(m.T.numpy(), reference.permute(x[0], [1, 0]))


@pytest.mark.parametrize("call,match", [
    (lambda t: t.permute(0, 1), r"permute: dims must list all 3 axes of a tensor of shape \(2, 3, 4\), got \(0, 1"),
    (lambda t: t.permute(0, 0, 1), r"permute: dims must name each axis once, got \(0, 0, 1\)"),
    (lambda t: t.permute(0, 1, 3), r"permute: dim must be an int in \[-3, 3\) for a 3-D tensor, got 3"),
    (lambda t: t.transpose(0, 3), r"transpose: dim1 must be an int in \[-3, 3\) for a 3-D tensor, got 3"),
])
def test_bad_axes_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call(tensor(np.zeros((2, 3, 4))))


def test_view_reshape_flatten_squeeze_unsqueeze_shapes():
    t = tensor(np.arange(24.0).reshape(2, 1, 3, 4))
    assert t.view(-1).shape == (24,) and t.view((6, -1)).shape == (6, 4) and t.reshape(4, 3, 2).shape == (4, 3, 2)
    assert t.flatten().shape == (24,) and t.flatten(1).shape == (2, 12) and t.flatten(0, 2).shape == (6, 4)
    assert t.squeeze().shape == (2, 3, 4) and t.squeeze(1).shape == (2, 3, 4)
    assert t.squeeze(0).shape == (2, 1, 3, 4)  # not of size 1: kept, as in PyTorch
    assert t.squeeze((0, 1)).shape == (2, 3, 4)
    assert t.unsqueeze(0).shape == (1, 2, 1, 3, 4) and t.unsqueeze(-1).shape == (2, 1, 3, 4, 1)
    np.testing.assert_array_equal(t.view(2, 12).numpy(), np.arange(24.0).reshape(2, 12))
    with pytest.raises(ValueError, match=r"unsqueeze: dim must be an int in \[-5, 5\) for a 5-D tensor, got 5"):
        t.unsqueeze(5)
    with pytest.raises(ValueError, match=r"cannot reshape a tensor of shape \(2, 1, 3, 4\) \(24 elements\)"):
        t.view(5, -1)
    with pytest.raises(ValueError, match=r"flatten: start_dim \(2\) must not come after end_dim \(1\)"):
        t.flatten(2, 1)


def test_shape_ops_and_indexing_work_on_integer_and_bool_tensors():
    labels = minicnn.tensor([[3, 1], [2, 0]])
    assert labels.T[0].numpy().tolist() == [3, 2] and labels.flatten().numpy().tolist() == [3, 1, 2, 0]
    assert (labels > 1)[0].numpy().tolist() == [True, False]
