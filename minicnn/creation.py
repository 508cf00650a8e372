"""Making tensors, with PyTorch's names: ``minicnn.tensor``, ``zeros``, ``ones``, ``randn``, ``arange``...

Each takes ``dtype`` (a NumPy dtype, type or name such as "float64"),
``device`` ("cpu", "gpu", "gpu:N") and ``requires_grad``. Floating-point
values default to float32, the training dtype, as in PyTorch. Arrays are made
directly on their device; ``randn`` and ``randint`` draw from :mod:`minicnn.random`,
so ``minicnn.manual_seed`` repeats them.
"""
import numbers

import numpy as np

from . import backend, random
from .engine import Tensor, _as_array

DEFAULT_FLOAT = np.dtype(np.float32)


def _on_device(device, make):
    """``make(xp)`` run with the array module of ``device``, and on that GPU if it is one."""
    device = backend.parse_device(device)
    if device.kind == "cpu":
        return make(np)
    cp = backend.require_gpu(device.index)
    with cp.cuda.Device(device.index):
        return make(cp)


def _size(op, size):
    """A shape given as ints ``zeros(2, 3)`` or one sequence ``zeros((2, 3))``, checked."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    if not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 0 for n in size):
        raise ValueError(f"{op}: size must be non-negative ints, got {size!r}")
    return tuple(int(n) for n in size)


def _dtype(op, dtype, default=DEFAULT_FLOAT):
    return default if dtype is None else backend.parse_dtype(dtype, op)


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new tensor holding a copy of ``data`` (``torch.tensor``).

    Args:
        data: a number, a nested list, a NumPy/CuPy array or a Tensor. Python
            floats become float32; arrays keep their dtype unless ``dtype`` is given.
        dtype: the dtype to hold (e.g. numpy.float64 or "float64").
        device: where to hold it; default: where ``data`` is (the CPU for lists).
        requires_grad: whether ``backward`` fills ``.grad`` for it (floating dtypes only).
    """
    if isinstance(data, Tensor):
        data = data.array
    array = _as_array(data)
    array = array.astype(_dtype("tensor", dtype, array.dtype))  # astype copies: the tensor owns its values
    return Tensor(backend.to_device(array, backend.device_of(array) if device is None else device), requires_grad)


def zeros(*size, dtype=None, device="cpu", requires_grad=False):
    """A tensor of zeros: ``zeros(2, 3)`` or ``zeros((2, 3))``; float32 unless ``dtype`` says otherwise."""
    size, dtype = _size("zeros", size), _dtype("zeros", dtype)
    return Tensor(_on_device(device, lambda xp: xp.zeros(size, dtype)), requires_grad)


def ones(*size, dtype=None, device="cpu", requires_grad=False):
    """A tensor of ones: ``ones(2, 3)`` or ``ones((2, 3))``; float32 unless ``dtype`` says otherwise."""
    size, dtype = _size("ones", size), _dtype("ones", dtype)
    return Tensor(_on_device(device, lambda xp: xp.ones(size, dtype)), requires_grad)


def zeros_like(other, dtype=None, device=None, requires_grad=False):
    """Zeros with ``other``'s shape, and its dtype and device unless given."""
    return zeros(other.shape, dtype=other.dtype if dtype is None else dtype,
                 device=other.device if device is None else device, requires_grad=requires_grad)


def ones_like(other, dtype=None, device=None, requires_grad=False):
    """Ones with ``other``'s shape, and its dtype and device unless given."""
    return ones(other.shape, dtype=other.dtype if dtype is None else dtype,
                device=other.device if device is None else device, requires_grad=requires_grad)


def randn(*size, dtype=None, device="cpu", requires_grad=False):
    """Samples of the standard normal distribution, from :mod:`minicnn.random` (float32 by default)."""
    size, dtype = _size("randn", size), _dtype("randn", dtype)
    if dtype.kind != "f":
        raise TypeError(f"randn: dtype must be floating-point, got {dtype}")
    return Tensor(_on_device(device, lambda xp: random.standard_normal(size, dtype, xp)), requires_grad)


def randint(*args, dtype=None, device="cpu", requires_grad=False):
    """Integers drawn uniformly from [low, high): ``randint(high, size)`` or ``randint(low, high, size)``.

    As ``torch.randint``: ``size`` is a tuple, the dtype int64 unless given;
    drawn from :mod:`minicnn.random`, so ``manual_seed`` repeats them.
    """
    if len(args) not in (2, 3):
        raise TypeError(f"randint: takes (high, size) or (low, high, size), got {len(args)} arguments")
    low, high, size = (0,) + args if len(args) == 2 else args
    for name, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"randint: {name} must be an int, got {value!r}")
    if high <= low:
        raise ValueError(f"randint: high must be greater than low, got low={low}, high={high}")
    if not isinstance(size, (tuple, list)):
        raise TypeError(f"randint: size must be a tuple such as (16,), got {size!r}")
    size, dtype = _size("randint", size), _dtype("randint", dtype, np.dtype(np.int64))
    if dtype.kind not in "iu":
        raise TypeError(f"randint: dtype must be an integer dtype, got {dtype}")
    return Tensor(_on_device(device, lambda xp: random.integers(int(low), int(high), size, dtype, xp)),
                  requires_grad)


def arange(start, end=None, step=1, dtype=None, device="cpu", requires_grad=False):
    """Values from ``start`` up to (not including) ``end`` in steps of ``step``.

    ``arange(5)`` is 0, 1, 2, 3, 4; ``arange(0, 1, 0.25)`` is 0, 0.25, 0.5, 0.75.

    The dtype is int64 when every argument is an int, else float32 (PyTorch's rule).
    """
    if end is None:
        start, end = 0, start
    for name, value in (("start", start), ("end", end), ("step", step)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"arange: {name} must be a number, got {value!r}")
    if step == 0:
        raise ValueError("arange: step must not be zero")
    all_ints = all(isinstance(v, numbers.Integral) for v in (start, end, step))
    dtype = _dtype("arange", dtype, np.dtype(np.int64) if all_ints else DEFAULT_FLOAT)
    return Tensor(_on_device(device, lambda xp: xp.arange(start, end, step, dtype=dtype)), requires_grad)
