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


def _like(op, other, dtype, device):
    """``other``'s shape, and its dtype and device unless given: the ``*_like`` functions' defaults."""
    if not isinstance(other, Tensor):
        raise TypeError(f"{op}: input must be a minicnn.Tensor, got {type(other).__name__}")
    return other.shape, other.dtype if dtype is None else dtype, other.device if device is None else device


def _float_dtype(op, dtype):
    dtype = _dtype(op, dtype)
    if dtype.kind != "f":
        raise TypeError(f"{op}: dtype must be floating-point, got {dtype}")
    return dtype


def rand(*size, dtype=None, device="cpu", requires_grad=False):
    """Samples of the uniform distribution on [0, 1), of shape ``size`` (float32 by default), from
    :mod:`minicnn.random` (``manual_seed`` repeats them): ``rand(2, 3)`` or ``rand((2, 3))``."""
    size, dtype = _size("rand", size), _float_dtype("rand", dtype)
    return Tensor(_on_device(device, lambda xp: random.uniform_values(size, dtype, xp)), requires_grad)


def rand_like(input, dtype=None, device=None, requires_grad=False):  # noqa: A002 (PyTorch's name)
    """:func:`rand` with ``input``'s shape, and its dtype and device unless given."""
    shape, dtype, device = _like("rand_like", input, dtype, device)
    return rand(shape, dtype=dtype, device=device, requires_grad=requires_grad)


def randn_like(input, dtype=None, device=None, requires_grad=False):  # noqa: A002 (PyTorch's name)
    """:func:`randn` with ``input``'s shape, and its dtype and device unless given."""
    shape, dtype, device = _like("randn_like", input, dtype, device)
    return randn(shape, dtype=dtype, device=device, requires_grad=requires_grad)


def empty(*size, dtype=None, device="cpu", requires_grad=False):
    """A tensor of shape ``size`` whose values are whatever the memory held (float32 unless ``dtype``):
    for a buffer that is about to be filled."""
    size, dtype = _size("empty", size), _dtype("empty", dtype)
    return Tensor(_on_device(device, lambda xp: xp.empty(size, dtype)), requires_grad)


def full(size, fill_value, dtype=None, device="cpu", requires_grad=False):
    """A tensor of shape ``size`` (a tuple) filled with ``fill_value``.

    The dtype follows ``fill_value`` unless given, as in PyTorch: bool for a bool,
    int64 for an int, float32 for a float.
    """
    if not isinstance(size, (tuple, list)):
        raise TypeError(f"full: size must be a tuple such as (2, 3), got {size!r}")
    if not isinstance(fill_value, numbers.Number):
        raise TypeError(f"full: fill_value must be a number, got {type(fill_value).__name__}")
    size = _size("full", size)
    default = (np.dtype(np.bool_) if isinstance(fill_value, (bool, np.bool_)) else
               np.dtype(np.int64) if isinstance(fill_value, numbers.Integral) else DEFAULT_FLOAT)
    dtype = _dtype("full", dtype, default)
    return Tensor(_on_device(device, lambda xp: xp.full(size, fill_value, dtype)), requires_grad)


def eye(n, m=None, dtype=None, device="cpu", requires_grad=False):
    """The (n, m) matrix with ones on its diagonal and zeros elsewhere (m = n unless given)."""
    m = n if m is None else m
    for name, value in (("n", n), ("m", m)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise ValueError(f"eye: {name} must be a non-negative int, got {value!r}")
    dtype = _dtype("eye", dtype)
    return Tensor(_on_device(device, lambda xp: xp.eye(int(n), int(m), dtype=dtype)), requires_grad)


def linspace(start, end, steps, dtype=None, device="cpu", requires_grad=False):
    """``steps`` values evenly spaced from ``start`` to ``end``, both included (float32 unless ``dtype``).

    ``linspace(-1, 1, 5)`` is -1, -0.5, 0, 0.5, 1. The values are computed in float64
    and then converted, so float32 ones match PyTorch's to rounding.
    """
    for name, value in (("start", start), ("end", end)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"linspace: {name} must be a number, got {value!r}")
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 0:
        raise ValueError(f"linspace: steps must be a non-negative int, got {steps!r}")
    dtype = _dtype("linspace", dtype)
    return Tensor(_on_device(device, lambda xp: xp.linspace(start, end, int(steps)).astype(dtype)), requires_grad)


def from_numpy(ndarray):
    """A tensor sharing ``ndarray``'s memory (``torch.from_numpy``): writes to either show in both.

    The dtype is the array's (NumPy's float64 stays float64, as in PyTorch).
    """
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(ndarray).__name__}")
    if ndarray.dtype.kind not in "biuf":
        raise TypeError(f"from_numpy: the array must be numeric, got dtype {ndarray.dtype}")
    return Tensor(ndarray)


def as_tensor(data, dtype=None, device=None):
    """``data`` as a tensor, sharing its memory where it can (``torch.as_tensor``).

    A Tensor, or a NumPy/CuPy array, already of ``dtype`` and on ``device`` is used
    as it is (a Tensor is returned itself); anything else is copied as
    :func:`tensor` copies it.
    """
    array = data.array if isinstance(data, Tensor) else data
    if isinstance(array, np.ndarray) or backend.is_gpu_array(array):
        same_dtype = dtype is None or _dtype("as_tensor", dtype) == array.dtype
        same_device = device is None or backend.parse_device(device) == backend.device_of(array)
        if same_dtype and same_device:
            return data if isinstance(data, Tensor) else Tensor(array)
    return tensor(data, dtype=dtype, device=device)
