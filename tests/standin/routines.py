"""CuPy's array functions on the stand-in: creation, manipulation, reductions, searching.

Most are *generic*: ``wrap(name)`` looks up NumPy's function of the same name,
binds each call against CuPy's signature (so a NumPy-only keyword is a
TypeError), refuses NumPy arrays among the arguments (CuPy's kernels do; see
``ndarray.unwrap``), checks that device arrays are on the current device when a
kernel runs, calls NumPy, and wraps the result. A result that NumPy returns as
a view of an input stays a view (free, as in CuPy); anything new counts as
the function's cost in device operations (one by default).

The rest are written out where CuPy's behaviour needs it: the host <-> device
copies (``array``, ``asarray``, ``asnumpy``), the functions that read the device
on the host before they can finish (``nonzero``, ``bincount``, ``unique``...:
CuPy must know how big the result is), and composite ones whose real cost is
several kernels (``pad``, ``concatenate``...). The cost of each is given in its
docstring, with the CuPy behaviour it follows.
"""
import sys

import numpy as np

from . import api, counters, cuda
from .ndarray import _kernel_on_empty, c_ordered, ndarray, new_array, operand, unwrap, wrap_result


def wrap(name, numpy_function=None, cost=1):
    """cupy.<name> computed by NumPy: bound against CuPy's signature; views free, new arrays cost ``cost``.

    ``cost`` is a number of device operations, or a function of the NumPy
    arguments returning one.
    """
    qualified, text = f"cupy.{name}", api.SIGNATURES[name]
    numpy_function = numpy_function or getattr(np, name)

    def routine(*args, **kwargs):
        bound = api.bind(qualified, text, args, kwargs)
        np_args, np_kwargs = unwrap(bound.args), {k: unwrap(v) for k, v in bound.kwargs.items()}
        result = numpy_function(*np_args, **np_kwargs)
        inputs = [value for value in list(args) + list(kwargs.values()) if isinstance(value, ndarray)]
        inputs += [item for value in args if isinstance(value, (list, tuple)) for item in value
                   if isinstance(item, ndarray)]
        return wrap_result(result, inputs, cost(*np_args, **np_kwargs) if callable(cost) else cost)

    routine.__name__ = routine.__qualname__ = name
    routine.__doc__ = f"{qualified}{text} on the stand-in: NumPy's {numpy_function.__name__}."
    return routine


def _require(name, value):
    if not isinstance(value, ndarray):
        raise TypeError(f"cupy.{name}: expected a cupy.ndarray, got {type(value).__name__}")
    return value


# -- creation ------------------------------------------------------------------------------------
def empty(shape, dtype=float, order="C"):
    """No kernel: the memory is only allocated."""
    return new_array(np.empty(shape, dtype, order))


def zeros(shape, dtype=float, order="C"):
    """One memset."""
    result = new_array(np.zeros(shape, dtype, order))
    counters.record("device_ops", _kernel_on_empty(result._data))
    return result


def ones(shape, dtype=float, order="C"):
    return full(shape, 1, dtype, order)


def full(shape, fill_value, dtype=None, order="C"):
    """One fill kernel."""
    if dtype is None:
        dtype = fill_value.dtype if isinstance(fill_value, ndarray) else np.array(fill_value).dtype
    result = empty(shape, dtype, order)
    result.fill(fill_value)
    return result


def empty_like(prototype, dtype=None, order="K", subok=None, shape=None):
    """No kernel. Order "K" lays the result out in memory as ``prototype`` is (a transposed or
    channels-last array gives one of the same strides), as CuPy's does."""
    data = prototype._data if isinstance(prototype, ndarray) else np.asarray(prototype)
    return new_array(np.empty_like(data, dtype=dtype, order=order, shape=shape))


def zeros_like(a, dtype=None, order="K", subok=None, shape=None):
    """One memset, into an array laid out as ``empty_like`` lays it out."""
    result = empty_like(a, dtype, order, shape=shape)
    result._data[...] = 0
    counters.record("device_ops", _kernel_on_empty(result._data))
    return result


def ones_like(a, dtype=None, order="K", subok=None, shape=None):
    return full_like(a, 1, dtype, order, shape=shape)


def full_like(a, fill_value, dtype=None, order="K", subok=None, shape=None):
    """One fill kernel, into an array laid out as ``empty_like`` lays it out."""
    result = empty_like(a, dtype, order, shape=shape)
    result.fill(fill_value)
    return result


def eye(N, M=None, k=0, dtype=float, order="C"):  # noqa: N803 (CuPy's names)
    """A zero-fill, then the diagonal set: two kernels."""
    counters.record("device_ops", 2)
    return new_array(np.eye(N, M, k, dtype, order))


def identity(n, dtype=float):
    return eye(n, dtype=dtype)


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, *, blocking=False):
    """A device array from a device array (a copy; across devices too), or from host data (an upload).

    As ``cupy.array``: an array on another device is copied to the current one
    (CuPy allows that copy without peer access); host data is one host -> device
    copy (a 0-d value is written by a fill kernel instead).
    """
    if subok:
        raise NotImplementedError
    if isinstance(obj, ndarray):
        source = obj
        if obj._device != cuda.current_device():
            source = obj.copy(order="C" if order in ("K", "A", None) else order)
        result = source.astype(obj.dtype if dtype is None else dtype, order=order, copy=bool(copy) and source is obj)
        if ndmin > result.ndim:
            result = result.reshape((1,) * (ndmin - result.ndim) + result.shape)
        return result
    if isinstance(obj, (list, tuple)) and any(isinstance(x, ndarray) for x in _flatten(obj)):
        raise api.not_implemented("cupy.array(a sequence of cupy arrays)")
    host = np.array(obj, dtype=dtype, order="C" if order in ("K", "A", None) else order, ndmin=ndmin)
    if host.dtype.kind not in "biufc":
        raise ValueError(f"Unsupported dtype {host.dtype}")
    counters.record("device_ops" if host.ndim == 0 else "uploads")
    return new_array(host)


def _flatten(values):
    for value in values:
        if isinstance(value, (list, tuple)):
            yield from _flatten(value)
        else:
            yield value


def asarray(a, dtype=None, order=None, *, copy=None, blocking=False):
    """``array(a, copy=False)``: ``a`` itself when it is already a device array of that dtype on this device."""
    return array(a, dtype, bool(copy), order, blocking=blocking)


def asanyarray(a, dtype=None, order=None, *, copy=None, blocking=False):
    return asarray(a, dtype, order, copy=copy, blocking=blocking)


def ascontiguousarray(a, dtype=None):
    """``a`` itself if already C-contiguous (and of ``dtype``), else one copy kernel."""
    if not isinstance(a, ndarray):
        raise TypeError(f"Argument 'a' has incorrect type (expected cupy._core.core._ndarray_base, "
                        f"got {type(a).__name__})")
    dtype = a.dtype if dtype is None else np.dtype(dtype)
    if a._data.flags.c_contiguous and dtype == a.dtype:
        return a if a.ndim else a._view(a._data.reshape(1))
    return a.astype(dtype, order="C").reshape(a.shape or (1,))


def copy(a, order="K"):
    return _require("copy", a).copy(order="C" if order in ("K", "A") else order)


def asnumpy(a, stream=None, order="C", out=None, *, blocking=True):
    """A NumPy array: from the device (a device -> host read), or the host data as it is."""
    if isinstance(a, ndarray):
        return a.get(stream=stream, order=order, out=out, blocking=blocking)
    if out is not None:
        out[...] = a
        return out
    return np.asarray(a, order=order)


def get_array_module(*args):
    """The stand-in ``cupy`` module if any argument is a device array, else ``numpy``."""
    return sys.modules["cupy"] if any(isinstance(a, ndarray) for a in args) else np


# -- manipulation ---------------------------------------------------------------------------------
def _concatenate_cost(tup, axis=0, out=None, *, dtype=None, casting="same_kind"):
    """CuPy copies each array into place (one kernel each); more than 8 small arrays of one dtype
    are joined by a single kernel instead, after uploading a table of pointers (and of strides and
    offsets unless they all have one shape)."""
    arrays = list(tup)
    same_dtype = len({a.dtype for a in arrays}) == 1
    small = sum(a.nbytes for a in arrays) < 2 * 2**20 * len(arrays)
    if len(arrays) > 8 and same_dtype and small:
        same_shape = len({a.shape for a in arrays}) == 1 and all(a.flags.c_contiguous for a in arrays)
        counters.record("uploads", 1 if same_shape else 3)
        return 1
    return len(arrays)


def concatenate(tup, axis=0, out=None, *, dtype=None, casting="same_kind"):
    """Join device arrays along ``axis``: one copy per array (see _concatenate_cost). The result is
    C-contiguous whatever the inputs' layout, as CuPy allocates it (NumPy would keep theirs)."""
    arrays = [_require("concatenate", a) for a in tup]
    cost = _concatenate_cost([a._data for a in arrays])
    np_out = out._data if isinstance(out, ndarray) else None
    if out is not None:
        operand(out)
    result = np.concatenate(unwrap(arrays), axis=axis, out=np_out, dtype=dtype, casting=casting)
    counters.record("device_ops", cost)
    return out if out is not None else new_array(c_ordered(result))


def stack(tup, axis=0, out=None, *, dtype=None, casting="same_kind"):
    """concatenate of the arrays with a new axis: the same kernels."""
    arrays = [_require("stack", a) for a in tup]
    expanded = [a._view(np.expand_dims(a._data, axis)) for a in arrays]
    return concatenate(expanded, axis=axis, out=out, dtype=dtype, casting=casting)


def copyto(dst, src, casting="same_kind", where=None):
    """In place: one kernel (a fill for a Python scalar, a memcpy, or an elementwise copy, masked by
    ``where``), none for an empty ``dst``. ``src`` is a device array or a Python scalar; ``where``
    a device array of bools."""
    _require("copyto", dst)
    mask = True if where is None else operand(_require("copyto", where))
    if mask is not True and mask.dtype != np.bool_:
        raise TypeError(f"Cannot cast array data from {mask.dtype!r} to dtype('bool') according to the rule 'safe'")
    np.copyto(operand(dst), operand(src), casting=casting, where=mask)
    counters.record("device_ops", _kernel_on_empty(dst._data))


def _pad_cost(array, pad_width, mode="constant", **kwargs):
    """CuPy's pad: allocate, copy the array in (1), then for mode 'constant' either one fill of
    everything first (value 0, and 1-D or < 4e6 elements) or one fill per padded side."""
    if mode != "constant":
        raise api.not_implemented(f"cupy.pad(mode={mode!r})")
    value = kwargs.get("constant_values", 0)
    if np.isscalar(value) and value == 0 and (array.ndim == 1 or array.size < 4e6):
        return 2
    widths = np.broadcast_to(np.asarray(pad_width), (array.ndim, 2))
    return 1 + int(np.count_nonzero(widths))


def where(condition, x=None, y=None):
    """One kernel for where(c, x, y); where(c) is nonzero(c) (which reads the device)."""
    if x is None and y is None:
        return nonzero(condition)
    if x is None or y is None:
        raise ValueError("Must provide both 'x' and 'y' or neither.")
    return _where3(condition, x, y)


_where3 = wrap("where")


# -- reductions: one kernel each, as ndarray's methods ---------------------------------------------------
def _method(name):
    text = api.SIGNATURES[name]
    method = {"amax": "max", "amin": "min"}.get(name, name)

    def reduction(a, *args, **kwargs):
        bound = api.bind(f"cupy.{name}", text, (a,) + args, kwargs)
        arguments = dict(bound.arguments)
        return getattr(_require(name, arguments.pop(next(iter(arguments)))), method)(**arguments)

    reduction.__name__ = reduction.__qualname__ = name
    reduction.__doc__ = f"cupy.{name}{text}: ndarray.{method} (one kernel)."
    return reduction


def count_nonzero(a, axis=None):
    """One reduction kernel; a 0-d device array when axis is None (CuPy reads nothing back)."""
    a = _require("count_nonzero", a)
    cuda.check_current(a._device)
    counters.record("device_ops")
    return new_array(np.asarray(np.count_nonzero(a._data, axis=axis)))


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """isclose, then all: two kernels, and a 0-d device array (not a Python bool)."""
    return isclose(a, b, rtol, atol, equal_nan).all()


def array_equal(a1, a2, equal_nan=False):
    """(a1 == a2).all(): two kernels, a 0-d device array."""
    if a1.shape != a2.shape:
        counters.record("device_ops")
        return new_array(np.array(False))
    if equal_nan:
        raise api.not_implemented("cupy.array_equal(equal_nan=True)")
    return (a1 == a2).all()


def put_along_axis(arr, indices, values, axis):
    """Writes into ``arr`` in place (CuPy returns None): one scatter kernel."""
    target = unwrap(_require("put_along_axis", arr))
    np.put_along_axis(target, unwrap(indices), unwrap(values), axis)
    counters.record("device_ops", _kernel_on_empty(target))


# -- sorting and searching: the ones that read the device back ------------------------------------------
def sort(a, axis=-1, kind=None):
    """A copy, then an in-place sort: two kernels."""
    result = _require("sort", a).copy()
    result.sort(axis=axis, kind=kind)
    return result


def nonzero(a):
    """CuPy counts the non-zero entries on the host to size the result: a device -> host read."""
    return _require("nonzero", a).nonzero()


def flatnonzero(a):
    return _require("flatnonzero", a).ravel().nonzero()[0]


def argwhere(a):
    """Like nonzero (a read of the count), then the indices as one (N, ndim) array."""
    a = _require("argwhere", a)
    cuda.check_current(a._device)
    counters.record("device_ops", 2 if a.dtype.kind == "b" else 3)
    counters.record("syncs")
    return new_array(np.argwhere(a._data))


def unique(ar, return_index=False, return_inverse=False, return_counts=False, axis=None, *, equal_nan=True):
    """CuPy sorts, marks the first of each run, and reads the number of distinct values back before
    gathering them: a device -> host read, and four kernels (more with the return_* options)."""
    ar = _require("unique", ar)
    if axis is not None:
        raise api.not_implemented("cupy.unique(axis=)")
    cuda.check_current(ar._device)
    counters.record("device_ops", 4 + return_index + 2 * return_inverse + 2 * return_counts)
    counters.record("syncs")
    result = np.unique(ar._data, return_index, return_inverse, return_counts, equal_nan=equal_nan)
    return tuple(new_array(r) for r in result) if isinstance(result, tuple) else new_array(result)


def bincount(x, weights=None, minlength=None):
    """CuPy checks ``(x < 0).any()`` and reads ``x.max()`` on the host (two device -> host reads), then
    zero-fills the counts and runs one histogram kernel: five kernels."""
    x = _require("bincount", x)
    if x.ndim != 1:
        raise ValueError("object too deep for desired array" if x.ndim > 1 else
                         "object of too small depth for desired array")
    if x.dtype.kind == "f":
        raise TypeError("x must be int array")
    cuda.check_current(x._device)
    if weights is not None:
        operand(weights)
    counters.record("device_ops", 5)
    counters.record("syncs", 2)
    if x.size and (x._data < 0).any():
        raise ValueError("The first argument of bincount must be non-negative")
    return new_array(np.bincount(x._data, None if weights is None else weights._data, minlength or 0))


# -- host-side helpers (no device work) ---------------------------------------------------------------
def shape(a):
    return a.shape


def ndim(a):
    return a.ndim


def size(a, axis=None):
    return a.size if axis is None else a.shape[axis]


def result_type(*arrays_and_dtypes):
    return np.result_type(*(x.dtype if isinstance(x, ndarray) else x for x in arrays_and_dtypes))


def isscalar(element):
    return np.isscalar(element)


def get_default_memory_pool():
    return cuda.get_default_memory_pool()


# -- the table ----------------------------------------------------------------------------------------
_GENERIC = {
    # views when NumPy gives one (free), a copy kernel otherwise
    "reshape": 1, "ravel": 1, "transpose": 1, "swapaxes": 1, "moveaxis": 1, "rollaxis": 1, "expand_dims": 1,
    "squeeze": 1, "broadcast_to": 1, "broadcast_arrays": 1, "atleast_1d": 1, "atleast_2d": 1, "atleast_3d": 1,
    "split": 1, "array_split": 1, "flip": 1, "fliplr": 1, "flipud": 1, "diagonal": 1,
    # one kernel each
    "arange": 1, "linspace": 1, "clip": 1, "around": 1, "round": 1, "take": 1, "take_along_axis": 1,
    "repeat": 1, "tile": 1,
    "searchsorted": 1, "argsort": 1, "isclose": 1, "outer": 1, "diff": 1, "nan_to_num": 1,
    # several kernels
    "pad": _pad_cost,
}
_REDUCTIONS = ("sum", "prod", "mean", "var", "std", "max", "amax", "min", "amin", "argmax", "argmin", "all",
               "any", "cumsum", "cumprod")
_WRITTEN = (empty, zeros, ones, full, empty_like, zeros_like, ones_like, full_like, eye, identity, array,
            asarray, asanyarray, ascontiguousarray, copy, copyto, asnumpy, get_array_module, concatenate, stack, where,
            count_nonzero, allclose, array_equal, put_along_axis, sort, nonzero, flatnonzero, argwhere, unique,
            bincount, shape, ndim, size, result_type, isscalar, get_default_memory_pool)


def functions():
    """{name: function} of every cupy.<name> routine the stand-in implements."""
    table = {name: wrap(name, cost=cost) for name, cost in _GENERIC.items()}
    table.update({name: _method(name) for name in _REDUCTIONS})
    table.update({function.__name__: function for function in _WRITTEN})
    table["isclose"] = isclose
    return table


isclose = wrap("isclose")
