"""Argument checks shared by the ops.

Each check raises a TypeError or ValueError that names the op, the argument,
what was expected and what came, so that a mistake is reported where the user
made it, not as a broadcasting error deep inside a kernel.
"""
import numbers

from ..engine import Tensor


def require_tensor(op, name, value, ndim=None, layout=None, floating=True):
    """Check that ``value`` is a Tensor, floating-point unless ``floating=False`` (and ``ndim``-D, if given)."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{op}: {name} must be a minicnn.Tensor, got {type(value).__name__}"
                        + (" (wrap it: minicnn.tensor(array))" if hasattr(value, "shape") else ""))
    if floating and value.dtype.kind != "f":
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


def normalize_axis(op, axis, ndim, name="dim"):
    """``axis`` as a non-negative int below ``ndim`` (negative counts from the end)."""
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral) or not -ndim <= axis < ndim:
        raise ValueError(f"{op}: {name} must be an int in [{-ndim}, {ndim}) for a {ndim}-D tensor, "
                         f"got {axis!r}")
    return int(axis) % ndim


def normalize_dims(op, dims, ndim, name="dim"):
    """``dims`` (an int, a sequence of ints, or None) as a sorted tuple of distinct axes; None stays None.

    An empty sequence means every axis, as in PyTorch's reductions.
    """
    if dims is None:
        return None
    if isinstance(dims, (tuple, list)):
        axes = [normalize_axis(op, d, ndim, name) for d in dims]
        for axis in axes:
            if axes.count(axis) > 1:
                raise ValueError(f"{op}: {name} lists axis {axis} more than once, got {dims!r}")
        return tuple(sorted(axes)) if axes else None
    return (normalize_axis(op, dims, ndim, name),)


def dim_or_axis(op, dim, axis, dim_name="dim", axis_name="axis"):
    """The one of PyTorch's ``dim`` and NumPy's ``axis`` that was given (they name the same argument)."""
    if dim is not None and axis is not None:
        raise TypeError(f"{op}: got both {dim_name}={dim!r} and {axis_name}={axis!r}, which name the same "
                        f"argument ({dim_name} is PyTorch's name, {axis_name} NumPy's); give one")
    return axis if dim is None else dim
