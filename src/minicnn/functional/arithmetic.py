"""Elementwise arithmetic, reductions and reshaping, with NumPy broadcasting.

These are the small ops behind ``+``, ``*``, ``.sum()`` and friends. A Python
number or an array mixed with a Tensor is treated as a constant.
"""
import numbers

import numpy as np

from .. import backend, kernels
from ..tensor import Function, Tensor, is_grad_enabled


def _as_tensor(value, like):
    """``value`` as a constant Tensor with the dtype and device of Tensor ``like``."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, numbers.Number) or isinstance(value, np.ndarray) or backend.is_gpu_array(value):
        xp = backend.get_array_module(like.data)
        return Tensor._wrap(xp.asarray(value, dtype=like.dtype), False)
    raise TypeError(f"cannot combine a Tensor with {type(value).__name__}")


def _operands(a, b):
    if not isinstance(a, Tensor):
        a = _as_tensor(a, b)
    if not isinstance(b, Tensor):
        b = _as_tensor(b, a)
    return a, b


def unbroadcast(grad, shape):
    """Sum ``grad`` down to ``shape``, undoing NumPy broadcasting (the backward of broadcasting)."""
    if grad.shape == shape:
        return grad
    grad = grad.sum(axis=tuple(range(grad.ndim - len(shape)))) if grad.ndim > len(shape) else grad
    kept_ones = tuple(axis for axis, size in enumerate(shape) if size == 1 and grad.shape[axis] != 1)
    return grad.sum(axis=kept_ones, keepdims=True) if kept_ones else grad


def add_arrays(a, b):
    """a + b for two arrays of one shape: how backward sums the gradients of a tensor used twice
    (an inception block's input feeds four branches). On the CPU split over minicnn's threads."""
    if kernels.use_numba(a) and a.ndim and a.shape == b.shape:
        return kernels.cpu.add(a, b)
    return a + b


class AddFunction(Function):
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, gy):
        return unbroadcast(gy, self.shapes[0]), unbroadcast(gy, self.shapes[1])


class SubFunction(Function):
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, gy):
        return unbroadcast(gy, self.shapes[0]), unbroadcast(-gy, self.shapes[1])


class MulFunction(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, gy):
        ga = unbroadcast(gy * self.b, self.a.shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(gy * self.a, self.b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class DivFunction(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, gy):
        ga = unbroadcast(gy / self.b, self.a.shape) if self.needs_input_grad[0] else None
        gb = (unbroadcast(-gy * self.a / (self.b * self.b), self.b.shape)
              if self.needs_input_grad[1] else None)
        return ga, gb


class NegFunction(Function):
    def forward(self, a):
        return -a

    def backward(self, gy):
        return -gy


class PowerFunction(Function):
    """a ** p for a constant exponent p."""

    def __init__(self, exponent):
        self.exponent = exponent

    def forward(self, a):
        self.a = a
        return a ** self.exponent

    def backward(self, gy):
        return gy * self.exponent * self.a ** (self.exponent - 1)


class ExpFunction(Function):
    def forward(self, a):
        self.y = backend.get_array_module(a).exp(a)
        return self.y

    def backward(self, gy):
        return gy * self.y


class LogFunction(Function):
    def forward(self, a):
        self.a = a
        return backend.get_array_module(a).log(a)

    def backward(self, gy):
        return gy / self.a


class MatMulFunction(Function):
    """Matrix product of 2-D tensors: (n, k) @ (k, m) -> (n, m)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a @ b

    def backward(self, gy):
        ga = gy @ self.b.T if self.needs_input_grad[0] else None
        gb = self.a.T @ gy if self.needs_input_grad[1] else None
        return ga, gb


class SumFunction(Function):
    def __init__(self, axis, keepdims):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, a):
        self.shape = a.shape
        return a.sum(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        if not self.keepdims and self.axis is not None:
            axes = (self.axis,) if isinstance(self.axis, int) else self.axis
            gy = xp.expand_dims(gy, tuple(axis % len(self.shape) for axis in axes))
        return xp.broadcast_to(gy, self.shape)


class ReshapeFunction(Function):
    def __init__(self, shape):
        self.shape = shape

    def forward(self, a):
        self.input_shape = a.shape
        return a.reshape(self.shape)

    def backward(self, gy):
        return gy.reshape(self.input_shape)


class ToDeviceFunction(Function):
    """Copy to another device and/or dtype; the gradient goes back the same way."""

    def __init__(self, device, dtype):
        self.device, self.dtype = device, dtype

    def __call__(self, tensor):
        # Bypass Function's one-device check: crossing devices is the point.
        output = Tensor._wrap(self.forward(tensor.data), tensor.requires_grad and is_grad_enabled())
        self.needs_input_grad = (output.requires_grad,)
        if output.requires_grad:
            self.inputs, output.creator = (tensor,), self
        return output

    def forward(self, a):
        self.source = backend.device_of(a), a.dtype
        return backend.to_device(a, self.device).astype(self.dtype, copy=False)

    def backward(self, gy):
        device, dtype = self.source
        return backend.to_device(gy, device).astype(dtype, copy=False)


def add(a, b):
    """a + b, broadcasting."""
    return AddFunction()(*_operands(a, b))


def sub(a, b):
    """a - b, broadcasting."""
    return SubFunction()(*_operands(a, b))


def mul(a, b):
    """a * b elementwise, broadcasting."""
    return MulFunction()(*_operands(a, b))


def div(a, b):
    """a / b elementwise, broadcasting."""
    return DivFunction()(*_operands(a, b))


def neg(a):
    """-a."""
    return NegFunction()(a)


def power(a, exponent):
    """a ** exponent, for a constant number ``exponent``."""
    if not isinstance(exponent, numbers.Real):
        raise TypeError(f"power: exponent must be a number, got {type(exponent).__name__}")
    return PowerFunction(exponent)(a)


def exp(a):
    """Elementwise e**a."""
    return ExpFunction()(a)


def log(a):
    """Elementwise natural logarithm."""
    return LogFunction()(a)


def matmul(a, b):
    """Matrix product of 2-D tensors: (n, k) @ (k, m) -> (n, m)."""
    a, b = _operands(a, b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul: needs 2-D tensors (n, k) and (k, m), got shapes {a.shape} and {b.shape}")
    return MatMulFunction()(a, b)


def sum(a, axis=None, keepdims=False):  # noqa: A001 (shadows builtins.sum, like numpy.sum)
    """Sum of ``a`` over ``axis`` (int, tuple or None = all)."""
    return SumFunction(axis, keepdims)(a)


def mean(a, axis=None, keepdims=False):
    """Mean of ``a`` over ``axis`` (int, tuple or None = all)."""
    if axis is None:
        count = a.size
    else:
        axes = (axis,) if isinstance(axis, int) else axis
        count = int(np.prod([a.shape[i] for i in axes]))
    return mul(sum(a, axis, keepdims), 1.0 / count)


def reshape(a, shape):
    """``a``'s values in ``shape`` (one entry may be -1)."""
    shape = tuple(int(n) for n in shape)
    known = int(np.prod([n for n in shape if n != -1]))
    fits = (known == a.size if -1 not in shape
            else shape.count(-1) == 1 and known > 0 and a.size % known == 0)
    if not fits or any(n < -1 for n in shape):
        raise ValueError(f"reshape: cannot reshape a tensor of shape {a.shape} "
                         f"({a.size} elements) into {shape}")
    return ReshapeFunction(shape)(a)


def to_device_and_dtype(tensor, device=None, dtype=None):
    """``tensor`` on ``device`` and as ``dtype``; ``tensor`` itself when both already match."""
    device = backend.device_of(tensor.data) if device is None else backend.parse_device(device)
    dtype = tensor.dtype if dtype is None else np.dtype(dtype)
    if device == backend.device_of(tensor.data) and dtype == tensor.dtype:
        return tensor
    if tensor.requires_grad and dtype.kind != "f":
        raise TypeError(f"to(): a tensor that requires grad must stay floating-point, got dtype {dtype}")
    return ToDeviceFunction(device, dtype)(tensor)
