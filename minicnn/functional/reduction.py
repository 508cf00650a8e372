"""Reductions: sum, mean, var, max, min, argmax, argmin, all and any.

Each takes the axes to reduce as ``dim`` (PyTorch's name: an int, a tuple, or
None for every axis) and ``keepdim``; ``axis`` and ``keepdims`` are accepted as
NumPy's names for the same arguments (giving both spellings is an error).

Ties: ``max(x, dim)`` picks the first largest element along ``dim`` and its
gradient goes to that element only; the full ``max(x)`` shares its gradient
equally among all elements equal to the maximum. Both are what PyTorch does.
"""
import builtins
import warnings
from collections import namedtuple

import numpy as np

from ..backend import get_array_module
from ..engine import Op, Tensor
from .arithmetic import div, mul, sub
from .validation import dim_or_axis, normalize_axis, normalize_dims, require_tensor

# What max/min with a dim return: a namedtuple like torch.return_types.max.
max_result = namedtuple("max", ["values", "indices"])
min_result = namedtuple("min", ["values", "indices"])


class SumFunction(Op):
    saved_inputs = ()  # backward needs only shapes, not the input's values

    def __init__(self, dims, keepdim):
        self.dims, self.keepdim = dims, keepdim

    def forward(self, a):
        self.shape = a.shape
        return get_array_module(a).asarray(a.sum(axis=self.dims, keepdims=self.keepdim))

    def backward(self, gy):
        xp = get_array_module(gy)
        if not self.keepdim and self.dims is not None:
            gy = xp.expand_dims(gy, self.dims)
        return xp.broadcast_to(gy, self.shape)


class ExtremumFunction(Op):
    """The largest (or smallest) element of the whole tensor; ties share the gradient equally."""

    find = None  # "max" or "min"

    def forward(self, a):
        self.a = a
        self.y = get_array_module(a).asarray(getattr(a, self.find)())
        return self.y

    def backward(self, gy):
        ties = self.a == self.y
        return ties * (gy / ties.sum(dtype=gy.dtype))


class MaxFunction(ExtremumFunction):
    find = "max"


class MinFunction(ExtremumFunction):
    find = "min"


class TakeAlongDimFunction(Op):
    """One element per position along ``dim``, chosen by ``indices`` (shaped like the input, 1 along dim).

    The backward puts each gradient back where its element came from, zeros elsewhere.
    """

    saved_inputs = ()  # backward needs only shapes, not the input's values

    def __init__(self, indices, dim, keepdim):
        self.indices, self.dim, self.keepdim = indices, dim, keepdim

    def forward(self, a):
        self.shape = a.shape
        y = get_array_module(a).take_along_axis(a, self.indices, self.dim)
        return y if self.keepdim else y.squeeze(self.dim)

    def backward(self, gy):
        xp = get_array_module(gy)
        gx = xp.zeros(self.shape, gy.dtype)
        xp.put_along_axis(gx, self.indices, gy if self.keepdim else xp.expand_dims(gy, self.dim), self.dim)
        return gx


def _keepdim(op, keepdim, keepdims):
    return bool(dim_or_axis(op, keepdim or None, keepdims, "keepdim", "keepdims"))


def _dims_and_keepdim(op, x, dim, keepdim, axis, keepdims):
    """Resolve PyTorch's and NumPy's spellings into (sorted tuple of axes or None, bool)."""
    return normalize_dims(op, dim_or_axis(op, dim, axis), x.ndim), _keepdim(op, keepdim, keepdims)


def _count(x, dims):
    """How many elements each output of a reduction over ``dims`` sums."""
    return x.numel() if dims is None else int(np.prod([x.shape[d] for d in dims]))


def sum(x, dim=None, keepdim=False, *, axis=None, keepdims=None):  # noqa: A001 (like numpy.sum)
    """Sum over ``dim`` (an int, a tuple, or None for all). Bool and int tensors sum as int64."""
    require_tensor("sum", "x", x, floating=False)
    dims, keepdim = _dims_and_keepdim("sum", x, dim, keepdim, axis, keepdims)
    return SumFunction(dims, keepdim)(x)


def mean(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """Mean over ``dim`` (an int, a tuple, or None for all)."""
    require_tensor("mean", "x", x)
    dims, keepdim = _dims_and_keepdim("mean", x, dim, keepdim, axis, keepdims)
    return mul(SumFunction(dims, keepdim)(x), 1.0 / _count(x, dims))


def var(x, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, keepdims=None):
    """Variance over ``dim``: sum((x - mean)**2) / (N - correction), ``torch.var``'s rule.

    ``correction`` defaults to 1 (the unbiased estimate, Bessel's correction);
    ``unbiased=False`` is the older spelling of ``correction=0``. With N <= correction
    the result is inf or nan, as in PyTorch. As in PyTorch, a bool given as the
    only positional argument is ``unbiased``: ``x.var(False)``.
    """
    op = "var"
    require_tensor(op, "x", x)
    if isinstance(dim, bool):
        if unbiased is not None:
            raise TypeError(f"{op}: dim must be an int, a tuple or None, got {dim!r}")
        dim, unbiased = None, dim
    if unbiased is not None and correction is not None:
        raise TypeError(f"{op}: got both unbiased={unbiased!r} and correction={correction!r}; give one "
                        "(unbiased=True is correction=1, unbiased=False is correction=0)")
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    dims, keepdim = _dims_and_keepdim(op, x, dim, keepdim, axis, keepdims)
    degrees_of_freedom = builtins.max(_count(x, dims) - correction, 0)
    if degrees_of_freedom == 0:
        warnings.warn(f"{op}: {_count(x, dims)} values with correction {correction} leave no degrees of "
                      "freedom; the variance is inf or nan", RuntimeWarning, stacklevel=2)
    centred = sub(x, mean(x, dims, keepdim=True))
    with np.errstate(divide="ignore", invalid="ignore"):  # no degrees of freedom: warned above
        return div(SumFunction(dims, keepdim)(mul(centred, centred)), degrees_of_freedom)


def _require_values(op, x):
    require_tensor(op, "x", x, floating=False)
    if x.numel() == 0:
        raise ValueError(f"{op}: x is empty (shape {x.shape}); the {op} of no values is undefined")


def _positions(op, x, dim, keepdim):
    """int64 positions of the first largest ("max" in ``op``) or smallest element along ``dim``.

    ``dim=None``: positions in the flattened tensor.
    """
    xp = get_array_module(x.array)
    find = xp.argmax if op.endswith("max") else xp.argmin
    if dim is None:
        indices = find(x.array.reshape(-1), axis=0)
        indices = indices.reshape((1,) * x.ndim) if keepdim else indices
    else:
        indices = find(x.array, axis=dim, keepdims=keepdim)
    return xp.asarray(indices, dtype=np.int64)


def _extremum(op, function, result, x, dim, keepdim, axis, keepdims):
    _require_values(op, x)
    dim, keepdim = dim_or_axis(op, dim, axis), _keepdim(op, keepdim, keepdims)
    if dim is None:
        if keepdim:
            raise TypeError(f"{op}: keepdim needs a dim; {op}(x) reduces every axis to a 0-d tensor")
        return function()(x)
    dim = normalize_axis(op, dim, x.ndim)
    indices = _positions(op, x, dim, keepdim=True)
    values = TakeAlongDimFunction(indices, dim, keepdim)(x)
    return result(values, Tensor._wrap(indices if keepdim else indices.squeeze(dim), False))


def max(x, dim=None, keepdim=False, *, axis=None, keepdims=None):  # noqa: A001 (PyTorch's name)
    """The largest element (``dim=None``: a 0-d tensor), or along ``dim``: (values, indices).

    With ``dim``, returns the namedtuple ``max(values, indices)``, as
    ``torch.max(x, dim)`` does; ``indices`` (int64) is the first largest
    element's position along ``dim``, and the gradient goes to that element.
    Without ``dim``, elements tied for the maximum share the gradient equally.
    """
    return _extremum("max", MaxFunction, max_result, x, dim, keepdim, axis, keepdims)


def min(x, dim=None, keepdim=False, *, axis=None, keepdims=None):  # noqa: A001 (PyTorch's name)
    """The smallest element, or along ``dim``: (values, indices); see :func:`max`."""
    return _extremum("min", MinFunction, min_result, x, dim, keepdim, axis, keepdims)


def _arg_extremum(op, x, dim, keepdim, axis, keepdims):
    _require_values(op, x)
    dim, keepdim = dim_or_axis(op, dim, axis), _keepdim(op, keepdim, keepdims)
    dim = None if dim is None else normalize_axis(op, dim, x.ndim)
    return Tensor._wrap(_positions(op, x, dim, keepdim), False)


def argmax(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """Position (int64) of the first largest element along ``dim``, or in the flattened tensor."""
    return _arg_extremum("argmax", x, dim, keepdim, axis, keepdims)


def argmin(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """Position (int64) of the first smallest element along ``dim``, or in the flattened tensor."""
    return _arg_extremum("argmin", x, dim, keepdim, axis, keepdims)


def _logical(op, x, dim, keepdim, axis, keepdims):
    require_tensor(op, "x", x, floating=False)
    dims, keepdim = _dims_and_keepdim(op, x, dim, keepdim, axis, keepdims)
    xp = get_array_module(x.array)
    return Tensor._wrap(xp.asarray(getattr(x.array.astype(bool), op)(axis=dims, keepdims=keepdim)), False)


def all(x, dim=None, keepdim=False, *, axis=None, keepdims=None):  # noqa: A001 (PyTorch's name)
    """True where every element along ``dim`` is nonzero (a bool tensor; no gradient)."""
    return _logical("all", x, dim, keepdim, axis, keepdims)


def any(x, dim=None, keepdim=False, *, axis=None, keepdims=None):  # noqa: A001 (PyTorch's name)
    """True where some element along ``dim`` is nonzero (a bool tensor; no gradient)."""
    return _logical("any", x, dim, keepdim, axis, keepdims)
