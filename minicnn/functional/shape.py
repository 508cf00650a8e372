"""Shapes: reshape, flatten, squeeze, unsqueeze, permute and transpose, and joining with concat.

None of these changes a value; each backward puts the gradient back in the
input's shape (reshape) or axis order (permute). They work on tensors of any
dtype; concat's default axis is 0, as ``torch.cat``'s. Concatenation along
the channels of images has fast forms: :mod:`minicnn.kernels.shape`.
"""
import numbers

import numpy as np

from ..backend import get_array_module
from ..engine import Op, Tensor
from ..kernels.dispatch import Forms
from .validation import (dim_or_axis, normalize_axis, normalize_dims, require_same_dtype,
                         require_tensor)


class ReshapeFunction(Op):
    saved_inputs = ()  # backward needs only shapes, not the input's values

    def __init__(self, shape):
        self.shape = shape

    def forward(self, a):
        self.input_shape = a.shape
        return a.reshape(self.shape)

    def backward(self, gy):
        return gy.reshape(self.input_shape)


class PermuteFunction(Op):
    """The axes reordered: output axis i is input axis ``dims[i]``."""

    saved_inputs = ()  # backward needs only shapes, not the input's values

    def __init__(self, dims):
        self.dims = dims

    def forward(self, a):
        return a.transpose(self.dims)

    def backward(self, gy):
        return gy.transpose(tuple(int(axis) for axis in np.argsort(self.dims)))  # the inverse permutation


def concat_channels_plain(*arrays):
    """concatenate(arrays, axis=1) for arrays (N, C_i, H, W)."""
    return get_array_module(*arrays).concatenate(arrays, axis=1)


def split_channels_plain(x, sizes):
    """x (N, C, H, W) cut along the channels into pieces of ``sizes`` (views)."""
    return get_array_module(x).split(x, np.cumsum(sizes)[:-1].tolist(), axis=1)


concat_channels = Forms("concat_channels", plain=concat_channels_plain, cpu="shape:concat_channels_numba",
                        gpu="shape:concat_channels_gpu")
split_channels = Forms("split_channels", plain=split_channels_plain, cpu="shape:split_channels_numba")


class ConcatFunction(Op):
    saved_inputs = ()  # backward needs only shapes, not the input's values

    def __init__(self, axis):
        self.axis = axis

    def forward(self, *arrays):
        self.sizes = [a.shape[self.axis] for a in arrays]
        if self.axis == 1 and arrays[0].ndim == 4:  # images: the channels of each pixel side by side
            return concat_channels(*arrays)
        return get_array_module(*arrays).concatenate(arrays, axis=self.axis)

    def backward(self, gy):
        if self.axis == 1 and gy.ndim == 4:
            pieces = split_channels(gy, self.sizes)
        else:
            pieces = get_array_module(gy).split(gy, np.cumsum(self.sizes)[:-1].tolist(), axis=self.axis)
        return tuple(piece if need else None for piece, need in zip(pieces, self.needs_input_grad))


def shape_arguments(shape):
    """A shape given as ints ``(2, -1)`` or as one tuple/list ``((2, -1),)``, as a tuple."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return shape


def reshape(a, shape):
    """``a``'s values in ``shape`` (a tuple of ints; one entry may be -1, inferred from the rest)."""
    require_tensor("reshape", "a", a, floating=False)
    if not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in shape):
        raise TypeError(f"reshape: shape must be ints, got {tuple(shape)!r}")
    shape = tuple(int(n) for n in shape)
    known = int(np.prod([n for n in shape if n != -1]))
    fits = (known == a.numel() if -1 not in shape
            else shape.count(-1) == 1 and known > 0 and a.numel() % known == 0)
    if not fits or any(n < -1 for n in shape):
        raise ValueError(f"reshape: cannot reshape a tensor of shape {a.shape} "
                         f"({a.numel()} elements) into {shape}")
    return ReshapeFunction(shape)(a)


def flatten(x, start_dim=0, end_dim=-1):
    """Merge axes start_dim..end_dim into one (``torch.flatten``; nn.Flatten starts at 1).

    Example: (N, C, H, W) with start_dim=1 -> (N, C*H*W).
    """
    require_tensor("flatten", "x", x, floating=False)
    start = normalize_axis("flatten", start_dim, max(x.ndim, 1), "start_dim")
    end = normalize_axis("flatten", end_dim, max(x.ndim, 1), "end_dim")
    if start > end:
        raise ValueError(f"flatten: start_dim ({start_dim}) must not come after end_dim ({end_dim})")
    merged = int(np.prod(x.shape[start:end + 1]))
    return reshape(x, x.shape[:start] + (merged,) + x.shape[end + 1:])


def squeeze(x, dim=None):
    """Drop axes of size 1: all of them (``dim=None``), or those of ``dim`` (an int or a tuple).

    As in PyTorch, an axis named in ``dim`` whose size is not 1 is kept, not an error.
    """
    require_tensor("squeeze", "x", x, floating=False)
    axes = normalize_dims("squeeze", dim, x.ndim) or range(x.ndim)
    return reshape(x, tuple(n for axis, n in enumerate(x.shape) if not (axis in axes and n == 1)))


def unsqueeze(x, dim):
    """Insert an axis of size 1 at position ``dim`` (in [-ndim - 1, ndim]): (2, 3), dim -1 -> (2, 3, 1)."""
    require_tensor("unsqueeze", "x", x, floating=False)
    axis = normalize_axis("unsqueeze", dim, x.ndim + 1)
    return reshape(x, x.shape[:axis] + (1,) + x.shape[axis:])


def permute(x, dims):
    """The axes of ``x`` reordered: output axis i is axis ``dims[i]`` of x (``torch.permute``)."""
    require_tensor("permute", "x", x, floating=False)
    if not isinstance(dims, (tuple, list)) or len(dims) != x.ndim:
        raise ValueError(f"permute: dims must list all {x.ndim} axes of a tensor of shape {x.shape}, "
                         f"got {dims!r}")
    axes = tuple(normalize_axis("permute", d, x.ndim) for d in dims)
    if len(set(axes)) != len(axes):
        raise ValueError(f"permute: dims must name each axis once, got {tuple(dims)!r}")
    return PermuteFunction(axes)(x)


def transpose(x, dim0, dim1):
    """``x`` with axes ``dim0`` and ``dim1`` swapped (``torch.transpose``)."""
    require_tensor("transpose", "x", x, floating=False)
    axes = list(range(x.ndim))
    a, b = normalize_axis("transpose", dim0, x.ndim, "dim0"), normalize_axis("transpose", dim1, x.ndim, "dim1")
    axes[a], axes[b] = b, a
    return PermuteFunction(tuple(axes))(x)


def concat(tensors, dim=None, *, axis=None):
    """Join tensors along ``dim`` (``torch.cat``; default 0; ``axis`` is NumPy's name for it).

    Args:
        tensors: a sequence of Tensors whose shapes agree except along ``dim``.
    Returns:
        Tensor whose ``dim`` is the sum of theirs.
    """
    op = "concat"
    dim = dim_or_axis(op, dim, axis)
    if isinstance(tensors, Tensor) or not len(tensors):
        raise TypeError(f"{op}: tensors must be a non-empty list or tuple of Tensors")
    first = require_tensor(op, "tensors[0]", tensors[0])
    dim = normalize_axis(op, 0 if dim is None else dim, first.ndim)
    for i, t in enumerate(tensors[1:], start=1):
        require_tensor(op, f"tensors[{i}]", t)
        require_same_dtype(op, f"tensors[{i}]", t, "tensors[0]", first)
        if t.ndim != first.ndim or any(a != b for d, (a, b) in enumerate(zip(t.shape, first.shape)) if d != dim):
            raise ValueError(f"{op}: tensors[{i}] has shape {t.shape}, which does not match tensors[0]'s "
                             f"{first.shape} on every axis but {dim}")
    return ConcatFunction(dim)(*tensors)


def stack(tensors, dim=0):
    """Join floating-point tensors of one shape along a new axis ``dim`` (``torch.stack``): k tensors (a, b) -> (k, a, b)
    for dim=0. The gradient of each input is its slice of the output's."""
    op = "stack"
    if isinstance(tensors, Tensor) or not isinstance(tensors, (tuple, list)) or not tensors:
        raise TypeError(f"{op}: tensors must be a non-empty list or tuple of Tensors")
    first = require_tensor(op, "tensors[0]", tensors[0])
    for i, t in enumerate(tensors[1:], start=1):
        require_tensor(op, f"tensors[{i}]", t)
        if t.shape != first.shape:
            raise ValueError(f"{op}: every tensor must have one shape; tensors[{i}] has {t.shape}, "
                             f"tensors[0] {first.shape}")
    axis = normalize_axis(op, dim, first.ndim + 1)
    return concat([unsqueeze(t, axis) for t in tensors], axis)


def gradcheck_cases(add):
    """The gradient-check cases of this module's ops (minicnn.gradcheck.cases collects them): add(layer,
    configuration, build), build(inputs) -> (function, input tensors), inputs a gradcheck.cases.Inputs."""
    add("concat", "3 tensors, dim 1", lambda inp: ((lambda *ts: concat(ts, dim=1)),
                                                     [inp.normal(2, 1, 3), inp.normal(2, 4, 3), inp.normal(2, 2, 3)]))
    add("concat", "dim 0", lambda inp: ((lambda a, b: concat([a, b], dim=0)), [inp.normal(1, 3), inp.normal(2, 3)]))
    add("flatten", "(2, 3, 4, 5) from axis 1", lambda inp: ((lambda x: flatten(x, 1)), [inp.normal(2, 3, 4, 5)]))
    add("permute", "x.T (3-D: all axes reversed)", lambda inp: ((lambda x: x.T), [inp.normal(2, 3, 4)]))
    add("permute", "transpose(0, 2)", lambda inp: ((lambda x: x.transpose(0, 2)), [inp.normal(2, 3, 4)]))
    add("permute", "permute(2, 0, 1)", lambda inp: ((lambda x: x.permute(2, 0, 1)), [inp.normal(2, 3, 4)]))
    add("reshape", "view(-1, 4), squeeze, unsqueeze, flatten(0, 1)", lambda inp: (
        (lambda x: x.view(-1, 4).unsqueeze(1).squeeze().reshape((2, 3, 4)).flatten(0, 1)), [inp.normal(2, 1, 3, 4)]))
    add("stack", "3 tensors, dim 1", lambda inp: ((lambda *ts: stack(ts, dim=1)),
                                                [inp.normal(2, 3), inp.normal(2, 3), inp.normal(2, 3)]))
