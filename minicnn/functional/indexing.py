"""Indexing and slicing: ``x[0]``, ``x[:, :2]``, ``x[..., 1]``, ``x[None]``, ``x[idx]``, ``x[mask]``.

NumPy's rules decide what ``x[key]`` selects, and PyTorch follows the same
rules. Ints, slices (negative steps too), ``...`` and ``None`` pick a regular
grid of elements (basic indexing). Integer arrays and boolean masks pick the
listed elements (advanced indexing), and may pick one element more than once.

The backward puts each gradient entry back where its element came from, and
*adds* where an element was picked more than once: ``x[[0, 0, 1]]`` sends two
gradient rows to ``x[0]``. ``xp.add.at`` (``numpy.add.at``, ``cupy.add.at``) is
that scatter-add; a plain assignment ``gx[key] = gy`` would keep only one of them.
"""
import numbers

import numpy as np

from .. import backend
from ..engine import Op, Tensor
from .arithmetic import unbroadcast


class IndexFunction(Op):
    """``a[key]`` for a key already checked and on ``a``'s device."""

    saved_inputs = ()  # backward needs only shapes, not the input's values

    def __init__(self, key):
        self.key = key

    def forward(self, a):
        self.shape = a.shape
        # asarray: NumPy returns a scalar, not a 0-d array, when the key picks one element
        return backend.get_array_module(a).asarray(a[self.key])

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        gx = xp.zeros(self.shape, gy.dtype)
        xp.add.at(gx, self.key, gy)  # repeated indices add up
        return gx


class SetItemFunction(Op):
    """``a`` with ``a[key] = value`` (``key`` checked and on ``a``'s device), as a new array: what an
    in-place assignment records in the graph. ``value`` broadcasts to ``a[key]``'s shape."""

    saved_inputs = ()  # backward needs only the key and the shapes

    def __init__(self, key):
        self.key = key

    def forward(self, a, value):
        self.value_shape = value.shape
        out = a.copy()
        out[self.key] = value
        return out

    def backward(self, gy):
        ga = gv = None
        if self.needs_input_grad[0]:  # the overwritten elements no longer depend on a
            ga = gy.copy()
            ga[self.key] = 0
        if self.needs_input_grad[1]:
            picked = backend.get_array_module(gy).asarray(gy[self.key])
            gv = unbroadcast(picked, self.value_shape)
        return ga, gv


def set_item(x, key, value):
    """A new tensor: ``x`` with the elements ``x[key]`` set to ``value`` (a Tensor or a number,
    broadcast), differentiable in both (PyTorch's ``index_put``)."""
    value = value if isinstance(value, Tensor) else Tensor._wrap(
        backend.get_array_module(x.array).asarray(value, dtype=x.dtype), False)
    return SetItemFunction(checked_key(x, key))(x, value)


def _key_part(part):
    """One entry of an index tuple, with Tensors and lists turned into arrays."""
    if isinstance(part, Tensor):
        part = part.array
    if part is None or part is Ellipsis or isinstance(part, slice):
        return part
    if isinstance(part, (bool, np.bool_)):
        return bool(part)
    if isinstance(part, numbers.Integral):
        return int(part)
    if isinstance(part, list):
        part = np.asarray(part) if part else np.zeros(0, np.intp)
    if isinstance(part, np.ndarray) or backend.is_gpu_array(part):
        if part.dtype.kind not in "biu":
            raise IndexError(f"indexing: index arrays must hold integers or booleans, got dtype {part.dtype}")
        return part
    raise IndexError(f"indexing: an index must be an int, a slice, ..., None, an integer array or a boolean "
                     f"mask (a Tensor, an array or a list), got {type(part).__name__}")


def index(x, key):
    """``x[key]`` with NumPy's (and PyTorch's) indexing rules; differentiable.

    Out-of-range indices raise an IndexError naming the axis and its size. The
    check runs on the host, before any work on the device; index arrays that
    already live on a GPU are not checked (reading them back would stall the
    GPU), and CuPy wraps an out-of-range one around instead of raising.
    """
    return IndexFunction(checked_key(x, key))(x)


def checked_key(x, key):
    """``key`` as a tuple of parts NumPy/CuPy can index ``x.array`` with, on its device, checked
    against ``x``'s shape (for reading ``x[key]`` and for writing ``x[key] = value``)."""
    parts = tuple(_key_part(part) for part in (key if isinstance(key, tuple) else (key,)))
    device = backend.device_of(x.array)
    if device.kind == "cpu":
        parts = tuple(backend.as_numpy(part) if backend.is_gpu_array(part) else part for part in parts)
    if not any(backend.is_gpu_array(part) for part in parts):
        try:  # NumPy checks the key against x's shape on a zero-strided stand-in: no copy of x
            np.broadcast_to(np.empty((), bool), x.shape)[parts]
        except (IndexError, TypeError) as error:
            raise type(error)(f"indexing a tensor of shape {x.shape}: {error}") from None
    return tuple(backend.to_device(part, device) if isinstance(part, np.ndarray) else part for part in parts)
