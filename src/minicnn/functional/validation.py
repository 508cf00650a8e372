"""Argument checks shared by the ops.

Each check raises a TypeError or ValueError that names the op, the argument,
what was expected and what came, so that a mistake is reported where the user
made it, not as a broadcasting error deep inside a kernel.
"""
import numbers

from ..tensor import Tensor


def require_tensor(op, name, value, ndim=None, layout=None):
    """Check that ``value`` is a floating-point Tensor (with ``ndim`` dimensions, if given)."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{op}: {name} must be a minicnn.Tensor, got {type(value).__name__}"
                        + (" (wrap it: minicnn.Tensor(array))" if hasattr(value, "shape") else ""))
    if value.dtype.kind != "f":
        raise TypeError(f"{op}: {name} must hold floating-point values, got dtype {value.dtype} "
                        f"(convert it, e.g. array.astype(numpy.float32))")
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"{op}: {name} must be {ndim}-D {layout or ''}".rstrip()
                         + f", got shape {value.shape}")
    return value


def require_same_dtype(op, name, value, reference_name, reference):
    """Check that two tensors share a dtype (float32 and float64 are never mixed silently)."""
    if value.dtype != reference.dtype:
        raise TypeError(f"{op}: {name} has dtype {value.dtype} but {reference_name} has dtype "
                        f"{reference.dtype}; convert one with .to(dtype=...)")


def pair(op, name, value, minimum):
    """``value`` as a pair of ints (h, w), each at least ``minimum``."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        result = (int(value), int(value))
    elif (isinstance(value, (tuple, list)) and len(value) == 2
          and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)):
        result = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if min(result) < minimum:
        what = "positive" if minimum == 1 else f"at least {minimum}"
        raise ValueError(f"{op}: {name} must be {what}, got {value!r}")
    return result


def probability(op, name, value):
    """``value`` as a float in [0, 1]."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{op}: {name} must be a probability in [0, 1], got {value!r}")
    return float(value)


def normalize_axis(op, axis, ndim):
    """``axis`` as a non-negative int below ``ndim`` (negative counts from the end)."""
    if not isinstance(axis, numbers.Integral) or not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis must be an int in [{-ndim}, {ndim}) for a {ndim}-D tensor, "
                         f"got {axis!r}")
    return int(axis) % ndim
