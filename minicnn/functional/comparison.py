"""Elementwise comparisons (``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``): bool tensors, no graph.

A comparison has no useful derivative (it is a step), so it records nothing:
the result never requires grad, as in PyTorch. The other operand may be a
Tensor, a NumPy/CuPy array, a nested list or a number; NumPy broadcasting and
type promotion apply (a Python number takes the tensor's dtype when it fits).
"""
import numbers
import operator

import numpy as np

from .. import backend
from ..engine import Tensor, _one_device

_OPERATORS = {"eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le,
              "gt": operator.gt, "ge": operator.ge}


def _other_operand(x, other):
    """``other`` as an array on ``x``'s device, or a number; None if it cannot be compared."""
    if isinstance(other, Tensor):
        _one_device("comparison", [x.array, other.array])
        return other.array
    if isinstance(other, numbers.Number):
        return other
    if isinstance(other, (list, tuple)):
        other = np.asarray(other)
    if (isinstance(other, np.ndarray) or backend.is_gpu_array(other)) and other.dtype.kind in "biuf":
        return backend.to_device(other, backend.device_of(x.array))
    return None


def compare(name, x, other):
    """Tensor ``x`` compared with ``other`` elementwise; ``name`` is eq, ne, lt, le, gt or ge.

    Returns NotImplemented when ``other`` is not comparable (a string, None...):
    Python then tries the reflected comparison, or for ``==`` falls back to identity.
    """
    other = _other_operand(x, other)
    if other is None:
        return NotImplemented
    with backend.on_device_of(x.array):
        result = _OPERATORS[name](x.array, other)
        return Tensor._wrap(backend.get_array_module(x.array).asarray(result), False)



_BITWISE = {"and": operator.and_, "or": operator.or_, "xor": operator.xor}


def bitwise(name, x, other):
    """``x & other``, ``x | other`` or ``x ^ other`` (``name`` and, or, xor) of bool or integer tensors:
    elementwise logic on masks, never recorded. Returns NotImplemented for an operand it cannot use."""
    other = _other_operand(x, other)
    if other is None or isinstance(other, float) or x.dtype.kind not in "biu" or \
            (not isinstance(other, numbers.Number) and other.dtype.kind not in "biu"):
        return NotImplemented
    with backend.on_device_of(x.array):
        return Tensor._wrap(backend.get_array_module(x.array).asarray(_BITWISE[name](x.array, other)), False)
