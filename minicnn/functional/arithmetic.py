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


DEFAULT_FLOAT = np.dtype(np.float32)  # PyTorch's default dtype: what a Python float, or int / int, becomes
_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2}  # bool < integer < floating


def _promote(a, b):
    """The dtype two dtypes promote to, PyTorch's lattice: an integer with a float gives that float
    (NumPy would widen int64 + float32 to float64); otherwise NumPy's rule (int8 + uint8 -> int16)."""
    if a is None or b is None:
        return a if b is None else b
    if _CATEGORY[a.kind] != _CATEGORY[b.kind] and "f" in (a.kind + b.kind):
        return a if a.kind == "f" else b
    return np.promote_types(a, b)


def _scalar_dtype(value):
    """The dtype a Python number stands for: bool, int64, or the default float (float32)."""
    if isinstance(value, (bool, np.bool_)):
        return np.dtype(bool)
    if isinstance(value, numbers.Integral):
        return np.dtype(np.int64)
    if isinstance(value, numbers.Real):
        return DEFAULT_FLOAT
    raise TypeError(f"cannot combine a Tensor with {type(value).__name__}")


def result_type(*operands):
    """The dtype of an elementwise op on ``operands`` (Tensors, arrays, Python numbers), PyTorch's rule.

    Operands rank in three tiers: tensors with dimensions, 0-d tensors, Python
    numbers. The tensors of the first tier decide the dtype; a lower tier
    counts only where it brings a higher category (bool < integer < float),
    and then only its category: a Python float gives the default float,
    float32, and a 0-d tensor its own dtype.

        =============================  ========  ====================================
        operands                       result    why
        =============================  ========  ====================================
        int64 tensor, 2                int64     a Python number never widens
        int64 tensor, 2.5              float32   a higher category: the default float
        float16 tensor, 2.5            float16   weak: no widening within floats
        int64 tensor, float32 tensor   float32   integer with float gives that float
        float32 tensor, int64 tensor   float32   (NumPy: float64)
        float32 tensor, float64 tensor float64   the wider float
        float32 tensor, 0-d float64    float32   a 0-d tensor is weak as a number is
        int64 tensor, 0-d float64      float64   ...but brings its dtype to a new category
        bool tensor, 1                 int64     bool < integer
        uint8 tensor, int8 tensor      int16     as in NumPy
        =============================  ========  ====================================

    True division (``/``) turns an integer or bool result into float32 (see :func:`div`).
    """
    tiers = [None, None, None]  # dimensioned tensors, 0-d tensors, Python numbers
    for value in operands:
        if isinstance(value, Tensor):
            value = value.array
        if isinstance(value, (np.ndarray, np.generic)) or backend.is_gpu_array(value):
            tier, dtype = (0 if value.ndim else 1), value.dtype
        else:
            tier, dtype = 2, _scalar_dtype(value)
        tiers[tier] = _promote(tiers[tier], dtype)
    return _combine(tiers[0], _combine(tiers[1], tiers[2]))


def _combine(higher, lower):
    """The dtype of a higher tier with a lower one: the higher's, unless the lower brings a float to
    integers, or anything to bools (then the two promote)."""
    if higher is None or lower is None:
        return lower if higher is None else higher
    if higher.kind != "f" and (higher.kind == "b" or lower.kind == "f"):
        return _promote(higher, lower)
    return higher


def _as_tensor(value, like, dtype):
    """``value`` (a Tensor, an array or a number) as a Tensor of ``dtype`` on ``like``'s device: a Tensor
    that requires grad is cast by a recorded op, so that its gradient flows back in its own dtype."""
    if isinstance(value, Tensor):
        return value if value.dtype == dtype else to_device_and_dtype(value, dtype=dtype)
    if isinstance(value, numbers.Number) or isinstance(value, np.ndarray) or backend.is_gpu_array(value):
        xp = backend.get_array_module(like.array)
        with backend.on_device_of(like.array):
            return Tensor._wrap(xp.asarray(value, dtype=dtype), False)
    raise TypeError(f"cannot combine a Tensor with {type(value).__name__}")


def _operands(a, b, floating=False):
    """``a`` and ``b`` as Tensors of their result type (PyTorch's promotion, :func:`result_type`); with
    ``floating``, an integer or bool result becomes the default float (true division)."""
    if isinstance(a, Tensor) and isinstance(b, Tensor) and a.dtype == b.dtype and (
            not floating or a.dtype.kind == "f"):
        return a, b  # the common case, at no cost
    dtype = result_type(a, b)
    if floating and dtype.kind != "f":
        dtype = DEFAULT_FLOAT
    like = a if isinstance(a, Tensor) else b
    return _as_tensor(a, like, dtype), _as_tensor(b, like, dtype)


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
        if self.y.dtype != a.dtype:  # NumPy raises bools to int8; PyTorch keeps the operands' type
            self.y = self.y.astype(a.dtype)
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
    """a / b elementwise, broadcasting; true division: integers give the default float, float32."""
    return DivFunction()(*_operands(a, b, floating=True))


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
