"""Elementwise sine and cosine, ``where`` (pick from one tensor or another by a condition), ``clone``
and ``norm``.

Each is an Op with its own backward: d sin(x)/dx = cos(x), d cos(x)/dx = -sin(x),
``where`` sends each gradient entry to the operand its value came from, a
clone passes its gradient through, and the 2-norm's is x / norm.
"""
import numbers

import numpy as np

from .. import backend
from ..engine import Op, Tensor
from . import arithmetic, reduction
from .arithmetic import _operands, unbroadcast
from .validation import normalize_dims, require_tensor


class SinFunction(Op):
    def forward(self, a):
        self.a = a
        return backend.get_array_module(a).sin(a)

    def backward(self, gy):
        return gy * backend.get_array_module(gy).cos(self.a)


class CosFunction(Op):
    def forward(self, a):
        self.a = a
        return backend.get_array_module(a).cos(a)

    def backward(self, gy):
        return -gy * backend.get_array_module(gy).sin(self.a)


class WhereFunction(Op):
    """``condition ? a : b`` elementwise, broadcasting all three; ``condition`` is a constant."""

    def __init__(self, condition):
        self.condition = condition

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return backend.get_array_module(a).where(self.condition, a, b)

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        zero = gy.dtype.type(0)
        ga = unbroadcast(xp.where(self.condition, gy, zero), self.shapes[0]) if self.needs_input_grad[0] else None
        gb = unbroadcast(xp.where(self.condition, zero, gy), self.shapes[1]) if self.needs_input_grad[1] else None
        return ga, gb


def sin(a):
    """Elementwise sine of a floating-point tensor (radians)."""
    require_tensor("sin", "a", a)
    return SinFunction()(a)


def cos(a):
    """Elementwise cosine of a floating-point tensor (radians)."""
    require_tensor("cos", "a", a)
    return CosFunction()(a)


def where(condition, input, other):  # noqa: A002 (PyTorch's argument names)
    """``input`` where ``condition`` is True, else ``other``, elementwise (``torch.where``).

    Args:
        condition: a bool Tensor; it, ``input`` and ``other`` broadcast to one shape.
        input, other: Tensors, or numbers (which take the other operand's dtype when they fit).
    Returns:
        Tensor of the broadcast shape; gradients flow to ``input`` where ``condition`` holds
        and to ``other`` elsewhere.
    """
    if not isinstance(condition, Tensor) or condition.dtype != np.bool_:
        got = f"dtype {condition.dtype}" if isinstance(condition, Tensor) else type(condition).__name__
        raise TypeError(f"where: condition must be a bool Tensor (e.g. x > 0), got {got}")
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        raise TypeError("where: input or other must be a Tensor (the other may be a number)")
    a, b = _operands(input, other)
    if a.dtype != b.dtype:  # as PyTorch, the result has the promoted dtype
        dtype = np.result_type(a.dtype, b.dtype)
        a, b = a.to(dtype=dtype), b.to(dtype=dtype)
    mask = backend.to_device(condition.array, backend.device_of(a.array))
    try:
        np.broadcast_shapes(mask.shape, a.shape, b.shape)
    except ValueError:
        raise ValueError(f"where: condition {condition.shape}, input {a.shape} and other {b.shape} do not "
                         "broadcast to one shape") from None
    return WhereFunction(mask)(a, b)


class CloneFunction(Op):
    """A copy of the values; the gradient passes through unchanged."""

    def forward(self, a):
        return a.copy()

    def backward(self, gy):
        return gy


def clone(a):
    """A new tensor with a copy of ``a``'s values (any shape, any dtype), recorded in the graph."""
    require_tensor("clone", "a", a, floating=False)
    return CloneFunction()(a)


class EuclideanNormFunction(Op):
    """sqrt(sum x**2) over ``dims`` (None: every axis); the gradient x / norm, 0 where the norm is 0
    (PyTorch's choice: the norm has no derivative at a zero vector)."""

    def __init__(self, dims, keepdim):
        self.dims, self.keepdim = dims, keepdim

    def forward(self, x):
        xp = backend.get_array_module(x)
        self.x = x
        self.y = xp.sqrt((x * x).sum(axis=self.dims, keepdims=True))
        return self.y if self.keepdim else self.y.reshape(_reduced_shape(x.shape, self.dims))

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        gy = gy.reshape(self.y.shape)  # the reduced axes back, as size 1, to broadcast over x
        with np.errstate(divide="ignore", invalid="ignore"):
            return xp.where(self.y == 0, gy.dtype.type(0), gy * self.x / self.y)


def _reduced_shape(shape, dims):
    return tuple(n for axis, n in enumerate(shape) if dims is not None and axis not in dims)


def norm(x, p=2, dim=None, keepdim=False):
    """The p-norm of ``x`` over ``dim`` (every element if None): ``(sum |x|**p) ** (1/p)``.

    Args:
        x: a floating-point Tensor of any shape.
        p: 2 or "fro" (the Euclidean/Frobenius norm), 1, float("inf") (the largest |x|), or another
            positive number.
        dim, keepdim: as in :func:`minicnn.functional.sum`.
    Returns:
        Tensor of x's shape without the ``dim`` axes. The 2-norm is one op (its gradient at a zero
        vector is 0, as in PyTorch); the others are composed of the ops of arithmetic and reduction.
    """
    require_tensor("norm", "x", x)
    if p == "fro":
        p = 2
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or p <= 0:
        raise ValueError(f"norm: p must be a positive number, 'fro' or float('inf'), got {p!r}")
    if p == float("inf"):
        return reduction.max(arithmetic.abs(x), dim, keepdim) if dim is not None else arithmetic.abs(x).max()
    if p == 2:
        return EuclideanNormFunction(normalize_dims("norm", dim, x.ndim), keepdim)(x)
    if p == 1:
        return reduction.sum(arithmetic.abs(x), dim, keepdim)
    return arithmetic.power(reduction.sum(arithmetic.power(arithmetic.abs(x), p), dim, keepdim), 1 / p)


def gradcheck_cases(add):
    """The gradient-check cases of this module's ops (minicnn.gradcheck.cases collects them): add(layer,
    configuration, build), build(inputs) -> (function, input tensors), inputs a gradcheck.cases.Inputs."""
    add("elementwise", "sin, cos", lambda inp: ((lambda a: sin(a) * 2 + cos(a)), [inp.normal(3, 4)]))
    add("where", "broadcasting (3, 1) and (4,)", lambda inp: (
        (lambda a, b: where(a > 0, a, b)), [inp.away_from_zero(3, 1), inp.normal(4)]))
    add("where", "a number for other", lambda inp: ((lambda a: where(a > 0, a * 3, 0.5)), [inp.away_from_zero(3, 4)]))
    add("clone", "x.clone() * x", lambda inp: ((lambda x: clone(x) * x), [inp.normal(3, 4)]))
    add("norm", "2-norm, 1-norm over dim 1, p=3", lambda inp: (
        (lambda x: norm(x) + norm(x, 1, dim=1).sum() + norm(x, 3)), [inp.away_from_zero(3, 4)]))
    add("norm", "2-norm over dim (0, 2), keepdim", lambda inp: (
        (lambda x: norm(x, dim=(0, 2), keepdim=True)), [inp.normal(2, 3, 4)]))
