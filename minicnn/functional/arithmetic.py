"""Elementwise arithmetic with NumPy broadcasting, and the matrix product.

These are the small ops behind ``+``, ``*``, ``**``, ``@``, ``.exp()``, ``.abs()``,
``.clamp()`` and friends. A Python number or an array mixed with a Tensor is
treated as a constant.
"""
import numbers

import numpy as np

from .. import backend, kernels
from ..engine import Op, Tensor, _forward, _record, is_grad_enabled
from .validation import require_tensor


def _as_tensor(value, like):
    """``value`` as a constant Tensor with the dtype and device of Tensor ``like``.

    A Python number is weak, as in NumPy 2 and PyTorch: it takes ``like``'s dtype
    unless its kind does not fit (0.5 with an integer tensor stays a float).
    """
    if isinstance(value, Tensor):
        return value
    if isinstance(value, numbers.Number) or isinstance(value, np.ndarray) or backend.is_gpu_array(value):
        xp = backend.get_array_module(like.array)
        dtype = np.result_type(like.dtype, value) if isinstance(value, (bool, int, float)) else like.dtype
        with backend.on_device_of(like.array):
            return Tensor._wrap(xp.asarray(value, dtype=dtype), False)
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


class AddFunction(Op):
    saved_inputs = ()  # its backward reads no input (PyTorch saves nothing for it either)

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, gy):
        return unbroadcast(gy, self.shapes[0]), unbroadcast(gy, self.shapes[1])


class SubFunction(Op):
    saved_inputs = ()  # its backward reads no input (PyTorch saves nothing for it either)

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, gy):
        return unbroadcast(gy, self.shapes[0]), unbroadcast(-gy, self.shapes[1])


class MulFunction(Op):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, gy):
        ga = unbroadcast(gy * self.b, self.a.shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(gy * self.a, self.b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class DivFunction(Op):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, gy):
        ga = unbroadcast(gy / self.b, self.a.shape) if self.needs_input_grad[0] else None
        gb = (unbroadcast(-gy * self.a / (self.b * self.b), self.b.shape)
              if self.needs_input_grad[1] else None)
        return ga, gb


class NegFunction(Op):
    saved_inputs = ()  # its backward reads no input (PyTorch saves nothing for it either)

    def forward(self, a):
        return -a

    def backward(self, gy):
        return -gy


class PowerFunction(Op):
    """a ** b elementwise, broadcasting (b is often a constant such as 2 or 0.5)."""

    saves_output = True

    def forward(self, a, b):
        self.a, self.b = a, b
        self.y = a ** b
        return self.y

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        a, b = self.a, self.b
        ga = gb = None
        with np.errstate(divide="ignore", invalid="ignore"):  # inf/nan below are masked out or real
            if self.needs_input_grad[0]:  # b * a**(b-1); PyTorch takes 0 where b == 0 (even at a == 0)
                ga = unbroadcast(xp.where(b == 0, 0, gy * b * a ** (b - 1)), a.shape)
            if self.needs_input_grad[1]:  # a**b * log(a); 0 where a == 0 and b >= 0, the limit
                gb = unbroadcast(xp.where((a == 0) & (b >= 0), 0, gy * self.y * xp.log(a)), b.shape)
        return ga, gb


class ExpFunction(Op):
    saved_inputs, saves_output = (), True  # backward reads the output only

    def forward(self, a):
        self.y = backend.get_array_module(a).exp(a)
        return self.y

    def backward(self, gy):
        return gy * self.y


class LogFunction(Op):
    def forward(self, a):
        self.a = a
        return backend.get_array_module(a).log(a)

    def backward(self, gy):
        return gy / self.a


class MatMulFunction(Op):
    """Matrix product of 2-D tensors: (n, k) @ (k, m) -> (n, m)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a @ b

    def backward(self, gy):
        ga = gy @ self.b.T if self.needs_input_grad[0] else None
        gb = self.a.T @ gy if self.needs_input_grad[1] else None
        return ga, gb


class AbsFunction(Op):
    def forward(self, a):
        self.a = a
        return backend.get_array_module(a).abs(a)

    def backward(self, gy):
        return gy * backend.get_array_module(gy).sign(self.a)  # 0 at a == 0, as in PyTorch


class SqrtFunction(Op):
    saved_inputs, saves_output = (), True  # backward reads the output only

    def forward(self, a):
        self.y = backend.get_array_module(a).sqrt(a)
        return self.y

    def backward(self, gy):
        return gy / (2 * self.y)


class ClampFunction(Op):
    """min(max(a, low), high); either bound may be None. The gradient passes where low <= a <= high."""

    def __init__(self, low, high):
        self.low, self.high = low, high

    def forward(self, a):
        xp = backend.get_array_module(a)
        self.a = a
        y = a if self.low is None else xp.maximum(a, self.low)
        return y if self.high is None else xp.minimum(y, self.high)

    def backward(self, gy):
        inside = True  # the bounds themselves count as inside, as in PyTorch
        if self.low is not None:
            inside = inside & (self.a >= self.low)
        if self.high is not None:
            inside = inside & (self.a <= self.high)
        return gy * inside


class ToDeviceFunction(Op):
    """Copy to another device and/or dtype; the gradient goes back the same way."""

    saved_inputs = ()

    def __init__(self, device, dtype):
        self.device, self.dtype = device, dtype

    def __call__(self, tensor):
        # Bypass Op's one-device check: crossing devices is the point.
        output = Tensor._wrap(_forward(self, (tensor.array,)), tensor.requires_grad and is_grad_enabled())
        self.needs_input_grad = (output.requires_grad,)
        if output.requires_grad:
            _record(self, (tensor,), output)
        return output

    def forward(self, a):
        self.source = backend.device_of(a), a.dtype
        return backend.to_device(a, self.device, self.dtype)

    def backward(self, gy):
        return backend.to_device(gy, *self.source)


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
    """a ** exponent elementwise, broadcasting; either may be a Tensor, an array or a number."""
    a, exponent = _operands(a, exponent)
    return PowerFunction()(a, exponent)


def exp(a):
    """Elementwise e**a."""
    require_tensor("exp", "a", a)
    return ExpFunction()(a)


def log(a):
    """Elementwise natural logarithm."""
    require_tensor("log", "a", a)
    return LogFunction()(a)


def abs(a):  # noqa: A001 (shadows builtins.abs, like numpy.abs)
    """Elementwise |a|; its gradient is sign(a), 0 at a == 0 (PyTorch's choice)."""
    require_tensor("abs", "a", a, floating=False)
    return AbsFunction()(a)


def sqrt(a):
    """Elementwise square root."""
    require_tensor("sqrt", "a", a)
    return SqrtFunction()(a)


def clamp(a, min=None, max=None):  # noqa: A002 (PyTorch's argument names)
    """Each element limited to [min, max] (``torch.clamp``; ``clip`` is the same op).

    Either bound may be None (no limit on that side). The gradient is 1 where
    min <= a <= max (the bounds included, as in PyTorch) and 0 elsewhere; if
    min > max, every element becomes max.
    """
    require_tensor("clamp", "a", a, floating=False)
    if min is None and max is None:
        raise ValueError("clamp: give min, max or both; got neither")
    for name, bound in (("min", min), ("max", max)):
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, numbers.Real)):
            raise TypeError(f"clamp: {name} must be a number or None, got {type(bound).__name__}")
    return ClampFunction(min, max)(a)


clip = clamp


def matmul(a, b):
    """Matrix product of 2-D tensors: (n, k) @ (k, m) -> (n, m)."""
    a, b = _operands(a, b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul: needs 2-D tensors (n, k) and (k, m), got shapes {a.shape} and {b.shape}")
    return MatMulFunction()(a, b)


def to_device_and_dtype(tensor, device=None, dtype=None):
    """``tensor`` on ``device`` and as ``dtype``; ``tensor`` itself when both already match."""
    device = backend.device_of(tensor.array) if device is None else backend.parse_device(device)
    dtype = tensor.dtype if dtype is None else np.dtype(dtype)
    if device == backend.device_of(tensor.array) and dtype == tensor.dtype:
        return tensor
    if tensor.requires_grad and dtype.kind != "f":
        raise TypeError(f"to(): a tensor that requires grad must stay floating-point, got dtype {dtype}")
    return ToDeviceFunction(device, dtype)(tensor)
