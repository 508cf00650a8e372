"""``cupy.ndarray`` on the stand-in: a NumPy array that only the device may touch.

The class wraps a NumPy array (``_data``, never handed out) and the number of
the device that holds it. It is deliberately *not* a ``numpy.ndarray``:

* ``__array__`` raises TypeError with CuPy's message, so ``numpy.asarray(x)``,
  a numba kernel or any code that would silently copy a GPU array to the host
  fails as it does on a GPU. ``__array_ufunc__``/``__array_function__``
  dispatch NumPy calls to the stand-in's CuPy functions, as CuPy does.
* No ``__index__``; ``float()``, ``int()``, ``bool()``, ``.item()``,
  ``.get()``, ``.tolist()``, ``repr()`` are device -> host reads (counted).
* Reductions and ``x[i]`` return 0-d device arrays, never Python scalars.
* Views (basic slicing, a reshape that needs no copy, ``transpose``, ``.T``)
  share memory like CuPy's, cost nothing, and in-place ops write through them.
* Operands are checked as CuPy's kernels check them: a device array must be
  on the current device; Python and NumPy scalars are fine; a NumPy array
  (0-d included) is ``TypeError: Unsupported type <class 'numpy.ndarray'>``.

The helpers at the top (``operand``, ``wrap_result``...) are what every
stand-in routine uses to take device arrays in and give them out.
"""
import sys
import warnings

import numpy as np

from . import addresses, api, counters, cuda

_SCALAR_TYPES = (bool, int, float, complex, np.number, np.bool_)
# CuPy's exact scalar types (Python's and NumPy's numeric ones), for the rules that test type(x) in ...
_EXACT_SCALAR_TYPES = {bool, int, float, complex} | {np.dtype(char).type for char in "?bhilqBHILQefdFD"}
_IMPLICIT_CONVERSION = ("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")


# -- taking values in, giving arrays out -------------------------------------------------------------
def unsupported(value):
    return TypeError(f"Unsupported type {type(value)}")


def operand(value):
    """What a kernel sees for ``value``: a device array's data (which must be on the current device), or a scalar."""
    if isinstance(value, ndarray):
        cuda.check_current(value._device)
        return value._data
    if isinstance(value, _SCALAR_TYPES):
        return value
    raise unsupported(value)


def unwrap(value):
    """Routine arguments as NumPy sees them: device arrays checked and unwrapped, inside lists and tuples too.

    NumPy arrays are refused (TypeError) anywhere: CuPy's kernels reject them,
    and the routines that would upload one behind the caller's back are refused
    too, so that no hidden host -> device copy goes unnoticed.
    """
    if isinstance(value, ndarray):
        cuda.check_current(value._device)
        return value._data
    if isinstance(value, np.ndarray):
        raise unsupported(value)
    if isinstance(value, (list, tuple)):
        return type(value)(unwrap(item) for item in value)
    return value


def device_arrays(values):
    """The device arrays among ``values`` (and inside lists and tuples there)."""
    found = []
    for value in values:
        if isinstance(value, ndarray):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            found += device_arrays(value)
    return found


def _root(data):
    while isinstance(data.base, np.ndarray):
        data = data.base
    return data


def wrap_result(result, inputs=(), cost=1):
    """Wrap a NumPy result (array, scalar, or a tuple/list of them) as device arrays.

    A result that is a view of an input's memory becomes a view of that input
    (free, on its device); anything else is a new array on the current device,
    and the call counts ``cost`` device operations.
    """
    roots = {id(_root(a._data)): a for a in inputs}
    made_new = []

    def wrap(value):
        if isinstance(value, (tuple, list)):
            return type(value)(wrap(item) for item in value)
        if isinstance(value, np.generic):
            value = np.asarray(value)
        if not isinstance(value, np.ndarray):
            return value
        source = roots.get(id(_root(value)))
        if source is not None:
            return source._view(value)
        made_new.append(True)
        return ndarray._new(value, cuda.current_device())

    wrapped = wrap(result)
    if made_new:  # a kernel ran: it needs every input on the current device
        for array in inputs:
            cuda.check_current(array._device)
        counters.record("device_ops", cost)
    return wrapped


def c_ordered(result):
    """A kernel's new output as CuPy allocates it: C-contiguous whatever its inputs' layout (NumPy's ufuncs
    and concatenate keep theirs; CuPy's take no order= and allocate C order), and a 0-d array where NumPy
    gives a scalar."""
    result = np.asarray(result)
    return result if result.flags.c_contiguous else np.ascontiguousarray(result)


def new_array(data, device=None):
    """A device array holding NumPy array ``data`` (not copied), charged to the pool."""
    return ndarray._new(data, cuda.current_device() if device is None else device)


def _kernel_on_empty(data):
    """CuPy launches no kernel for an empty result."""
    return 0 if data.size == 0 else 1


def _cupy(name):
    return getattr(sys.modules["cupy"], name)


# -- the array type ----------------------------------------------------------------------------------
class ndarray:  # noqa: N801 (CuPy's name)
    """cupy.ndarray(shape, dtype=float, memptr=None, strides=None, order='C'): an array on the current device."""

    # _charged: the bytes this array holds in its device's memory pool (0 for a view), given back when
    # it dies; a view keeps the array it views alive (_base), so the memory stays charged as long as any.
    # _address: where its memory starts in the made-up device addresses (addresses.py), 0 until .data is
    # first read on it or on a view of it (always 0 for a view)
    __slots__ = ("_data", "_device", "_base", "_charged", "_address")
    __array_priority__ = 100  # CuPy's
    __module__ = "cupy"

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        if memptr is not None or strides is not None:
            raise api.not_implemented("cupy.ndarray(..., memptr=, strides=)")
        data = np.empty(shape, dtype=dtype, order=order)
        self._data, self._device, self._base, self._address = data, cuda.current_device(), None, 0
        self._charged = cuda.allocate(data.nbytes, self._device)

    @classmethod
    def _new(cls, data, device):
        array = cls.__new__(cls)
        array._data, array._device, array._base, array._address = data, device, None, 0
        array._charged = cuda.allocate(_root(data).nbytes, device)
        return array

    def _view(self, data):
        """A view of this array (free): ``data`` shares this array's memory."""
        view = ndarray.__new__(ndarray)
        view._data, view._device, view._base = data, self._device, self._base if self._base is not None else self
        view._charged = view._address = 0
        return view

    def __del__(self):
        charged = getattr(self, "_charged", 0)  # (unset if __init__ failed)
        if charged:
            cuda.release(charged, self._device)
        if getattr(self, "_address", 0):
            addresses.release(self._address)

    def __getattr__(self, name):
        raise api.missing_member("cupy.ndarray", "ndarray", name)

    # -- plain facts (no device work) -------------------------------------------------------------
    @property
    def shape(self):
        """Lengths of axes; assigning one reshapes without a copy (AttributeError if a copy would be needed)."""
        return self._data.shape

    @shape.setter
    def shape(self, value):
        self._data.shape = value

    dtype = property(lambda self: self._data.dtype, doc="numpy.dtype of the elements.")
    ndim = property(lambda self: self._data.ndim, doc="Number of dimensions.")
    size = property(lambda self: self._data.size, doc="Number of elements.")
    strides = property(lambda self: self._data.strides, doc="Strides in bytes.")
    itemsize = property(lambda self: self._data.itemsize, doc="Bytes per element.")
    nbytes = property(lambda self: self._data.nbytes, doc="Bytes of all elements.")
    base = property(lambda self: self._base, doc="The array this one is a view of, or None.")
    device = property(lambda self: cuda.Device(self._device), doc="The cupy.cuda.Device holding the array.")

    @property
    def data(self):
        """cupy.cuda.MemoryPointer to the first element: a made-up device address (addresses.py); free."""
        owner = self if self._base is None else self._base
        if not owner._address:
            owner._address = addresses.allocate(_root(owner._data), owner.dtype, owner._device)
            if not owner._address:  # no bytes: CuPy's pointer is 0
                return addresses.MemoryPointer._at(0, self._device)
        return addresses.MemoryPointer._at(addresses.allocation_at(owner._address).address_of(self._data),
                                           self._device)

    @property
    def flags(self):
        """c_contiguous, f_contiguous and owndata (as attributes or by key), like CuPy's Flags."""
        return _Flags(self._data.flags.c_contiguous, self._data.flags.f_contiguous, self._base is None)

    @property
    def T(self):  # noqa: N802
        """Transposed view (self for fewer than 2 dimensions)."""
        return self if self.ndim < 2 else self._view(self._data.T)

    @property
    def mT(self):  # noqa: N802
        """View with the last two axes swapped."""
        if self.ndim < 2:
            raise ValueError("matrix transpose with ndim < 2 is undefined")
        return self._view(self._data.swapaxes(-1, -2))

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of unsized object")
        return self._data.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self._data.shape[0]))

    # -- device -> host ----------------------------------------------------------------------------
    def get(self, stream=None, order="C", out=None, blocking=True):
        """Copy to the host (a device -> host read, from any device)."""
        counters.record("syncs")
        if out is not None:
            if not isinstance(out, np.ndarray):
                raise TypeError("Only numpy.ndarray can be obtained from cupy.ndarray")
            if out.dtype != self.dtype:
                raise TypeError(f"{out.dtype} array cannot be obtained from {self.dtype} array")
            if out.shape != self.shape:
                raise ValueError(f"Shape mismatch. Expected shape: {self.shape}, actual shape: {out.shape}")
            out[...] = self._data
            return out
        return np.array(self._data, order="F" if order.upper() == "F" else "C", copy=True)

    def item(self):
        """The single element as a Python scalar (a device -> host read)."""
        if self.size != 1:
            raise ValueError("can only convert an array of size 1 to a Python scalar")
        return self.get().item()

    def tolist(self):
        return self.get().tolist()

    def tobytes(self, order="C"):
        return self.get().tobytes(order)

    def __float__(self):
        return float(self.get())

    def __int__(self):
        return int(self.get())

    def __complex__(self):
        return complex(self.get())

    def __bool__(self):
        if self.size == 0:
            warnings.warn("The truth value of an empty array is ambiguous. Returning False, but in future this "
                          "will result in an error. Use `array.size > 0` to check that an array is not empty.",
                          DeprecationWarning, stacklevel=2)
            return False
        if self.size == 1:
            return bool(self.get())
        raise ValueError("The truth value of an array with more than one element is ambiguous. "
                         "Use a.any() or a.all()")

    def __repr__(self):
        return repr(self.get())

    def __str__(self):
        return str(self.get())

    def __format__(self, format_spec):
        return format(self.get(), format_spec)

    def __array__(self, dtype=None, copy=None):
        raise TypeError(_IMPLICIT_CONVERSION)

    def set(self, arr, stream=None):
        """Copy NumPy array ``arr`` (same shape and dtype) into this array (a host -> device copy)."""
        if not isinstance(arr, np.ndarray):
            raise TypeError("Only numpy.ndarray can be set to cupy.ndarray")
        if self.dtype != arr.dtype:
            raise TypeError(f"{arr.dtype} array cannot be set to {self.dtype} array")
        if self.shape != arr.shape:
            raise ValueError(f"Shape mismatch. Old shape: {self.shape}, new shape: {arr.shape}")
        counters.record("uploads")
        self._data[...] = arr

    # -- copies and casts --------------------------------------------------------------------------
    def copy(self, order="C"):
        """A copy on the *current* device (CuPy copies across devices here; only contiguous arrays)."""
        if self._device != cuda.current_device():
            if not (self._data.flags.c_contiguous or self._data.flags.f_contiguous):
                raise NotImplementedError("CuPy cannot copy non-contiguous array between devices.")
        counters.record("device_ops", _kernel_on_empty(self._data))
        return new_array(np.array(self._data, order=order, copy=True))

    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        """Cast; returns self when ``copy`` is False and nothing changes, else a copy on the current device."""
        if casting is not None:
            raise TypeError("casting is not supported yet")
        if subok is not None:
            raise TypeError("subok is not supported yet")
        dtype, order = np.dtype(dtype), (order or "K").upper()
        flags = self._data.flags
        layout_kept = (order == "K" or (order == "A" and (flags.c_contiguous or flags.f_contiguous))
                       or (order == "C" and flags.c_contiguous) or (order == "F" and flags.f_contiguous))
        if not copy and dtype == self.dtype and layout_kept:
            return self
        cuda.check_current(self._device)
        counters.record("device_ops", _kernel_on_empty(self._data))
        return new_array(self._data.astype(dtype, order=order, copy=True))

    @property
    def real(self):
        """The real parts: a view (free) of a complex array, the array itself otherwise (as CuPy)."""
        return self._view(self._data.real) if self.dtype.kind == "c" else self

    @property
    def imag(self):
        """The imaginary parts: a view (free) of a complex array, otherwise new zeros (one fill, as CuPy)."""
        if self.dtype.kind == "c":
            return self._view(self._data.imag)
        counters.record("device_ops", _kernel_on_empty(self._data))
        return new_array(np.zeros_like(self._data))

    def view(self, dtype=None, type=None):  # noqa: A002 (CuPy's name)
        if type is not None:
            raise api.not_implemented("cupy.ndarray.view(type=)")
        return self._view(self._data.view() if dtype is None else self._data.view(dtype))

    def fill(self, value):
        """Set every element to the scalar ``value`` (one kernel)."""
        if isinstance(value, ndarray):
            if value.shape != ():
                raise ValueError("non-scalar cupy.ndarray cannot be used for fill")
            cuda.check_current(value._device)
            value = value._data
        elif isinstance(value, np.ndarray):
            if value.shape != ():
                raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
            value = value.item()
        elif not isinstance(value, _SCALAR_TYPES):
            raise unsupported(value)
        cuda.check_current(self._device)
        counters.record("device_ops", _kernel_on_empty(self._data))
        self._data[...] = value

    # -- shape -------------------------------------------------------------------------------------
    def reshape(self, *shape, order="C", copy=None):
        """A view when the strides allow one, else a copy (one kernel), as in CuPy."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        if copy:
            return self.copy(order=order).reshape(*shape, order=order)
        return wrap_result(self._data.reshape(shape, order=order), [self])

    def ravel(self, order="C"):
        return wrap_result(self._data.ravel(order), [self])

    def flatten(self, order="C"):
        cuda.check_current(self._device)
        counters.record("device_ops", _kernel_on_empty(self._data))
        return new_array(self._data.flatten(order))

    def transpose(self, *axes):
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0]
        return self._view(self._data.transpose(axes or None))

    def swapaxes(self, axis1, axis2):
        return self._view(self._data.swapaxes(axis1, axis2))

    def squeeze(self, axis=None):
        return self._view(self._data.squeeze(axis))

    def diagonal(self, offset=0, axis1=0, axis2=1):
        return self._view(self._data.diagonal(offset, axis1, axis2))

    # -- calculation: one kernel each (a reduction, an elementwise pass) ------------------------------
    def _kernel(self, method, *args, out=None, **kwargs):
        """Run NumPy's ``method`` of this array as one kernel on the current device."""
        cuda.check_current(self._device)
        if out is not None:
            if not isinstance(out, ndarray):
                raise unsupported(out)
            cuda.check_current(out._device)
            kwargs["out"] = out._data
        result = getattr(self._data, method)(*args, **kwargs)
        if out is not None:
            counters.record("device_ops", _kernel_on_empty(out._data))
            return out
        if isinstance(result, np.generic):
            result = np.asarray(result)
        counters.record("device_ops", _kernel_on_empty(result))
        return new_array(result)

    def sum(self, axis=None, dtype=None, out=None, keepdims=False):
        return self._kernel("sum", axis=_axis(axis), dtype=dtype, out=out, keepdims=keepdims)

    def prod(self, axis=None, dtype=None, out=None, keepdims=None):
        return self._kernel("prod", axis=_axis(axis), dtype=dtype, out=out, keepdims=bool(keepdims))

    def mean(self, axis=None, dtype=None, out=None, keepdims=False):
        return self._kernel("mean", axis=_axis(axis), dtype=dtype, out=out, keepdims=keepdims)

    def var(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
        return self._kernel("var", axis=_axis(axis), dtype=dtype, out=out, ddof=ddof, keepdims=keepdims)

    def std(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
        return self._kernel("std", axis=_axis(axis), dtype=dtype, out=out, ddof=ddof, keepdims=keepdims)

    def max(self, axis=None, out=None, keepdims=False):
        return self._kernel("max", axis=_axis(axis), out=out, keepdims=keepdims)

    def min(self, axis=None, out=None, keepdims=False):
        return self._kernel("min", axis=_axis(axis), out=out, keepdims=keepdims)

    def argmax(self, axis=None, out=None, dtype=None, keepdims=False):
        return self._arg("argmax", axis, out, dtype, keepdims)

    def argmin(self, axis=None, out=None, dtype=None, keepdims=False):
        return self._arg("argmin", axis, out, dtype, keepdims)

    def _arg(self, method, axis, out, dtype, keepdims):
        if isinstance(axis, tuple):
            raise api.not_implemented(f"cupy.ndarray.{method}(axis=tuple)")
        result = self._kernel(method, axis=axis, out=out, keepdims=keepdims)
        return result if dtype is None else result.astype(dtype, copy=False)

    def all(self, axis=None, out=None, keepdims=False):
        return self._kernel("all", axis=_axis(axis), out=out, keepdims=keepdims)

    def any(self, axis=None, out=None, keepdims=False):
        return self._kernel("any", axis=_axis(axis), out=out, keepdims=keepdims)

    def cumsum(self, axis=None, dtype=None, out=None):
        return self._kernel("cumsum", axis=axis, dtype=dtype, out=out)

    def cumprod(self, axis=None, dtype=None, out=None):
        return self._kernel("cumprod", axis=axis, dtype=dtype, out=out)

    def clip(self, min=None, max=None, out=None):  # noqa: A002 (CuPy's names)
        return self._kernel("clip", operand(min) if min is not None else None,
                            operand(max) if max is not None else None, out=out)

    def round(self, decimals=0, out=None):
        return self._kernel("round", decimals, out=out)

    def conj(self):
        return self._kernel("conj")

    conjugate = conj

    def trace(self, offset=0, axis1=0, axis2=1, dtype=None, out=None):
        return self._kernel("trace", offset, axis1, axis2, dtype=dtype, out=out)

    def take(self, indices, axis=None, out=None):
        """Gather along ``axis`` (one kernel; a host index array is uploaded first)."""
        indices = _device_index(indices)
        return self._kernel("take", operand(indices) if isinstance(indices, ndarray) else indices, axis=axis, out=out)

    def repeat(self, repeats, axis=None):
        if not isinstance(repeats, (int, np.integer)):
            raise api.not_implemented("cupy.ndarray.repeat(repeats=sequence)")
        return self._kernel("repeat", repeats, axis=axis)

    def sort(self, axis=-1, kind=None):
        """Sort in place (one kernel)."""
        cuda.check_current(self._device)
        counters.record("device_ops", _kernel_on_empty(self._data))
        self._data.sort(axis=axis, kind="stable")

    def argsort(self, axis=-1, kind=None):
        return self._kernel("argsort", axis=axis, kind="stable")

    def nonzero(self):
        """Indices of the non-zero elements: CuPy counts them on the host first (a device -> host read)."""
        cuda.check_current(self._device)
        # (x != 0 unless boolean,) a scan, a read of the count, the kernel that writes the indices
        counters.record("device_ops", 2 if self.dtype.kind == "b" else 3)
        counters.record("syncs")
        return tuple(new_array(index) for index in np.nonzero(self._data))

    def dot(self, b, out=None):
        return _cupy("dot")(self, b, out=out)

    def scatter_add(self, slices, value):
        warnings.warn("`ndarray.scatter_add` is deprecated. Please use `cupy.add.at` instead.",
                      DeprecationWarning, stacklevel=2)
        _scatter(self, slices, value, np.add.at)

    # -- indexing ----------------------------------------------------------------------------------
    def __getitem__(self, key):
        key, advanced = _index_tuple(key)
        if not advanced:
            return self._view(_basic(self._data, key))
        arrays = [k for k in key if isinstance(k, ndarray)]
        cuda.check_current(self._device)
        for index in arrays:
            cuda.check_current(index._device)
        result = self._data[tuple(k._data if isinstance(k, ndarray) else k for k in key)]
        _count_advanced_indexing(arrays)
        return new_array(result)

    def __setitem__(self, key, value):
        key, advanced = _index_tuple(key)
        cuda.check_current(self._device)
        if advanced:
            _scatter(self, key, value, None)
            return
        target = _basic(self._data, key)
        if isinstance(value, ndarray):
            cuda.check_current(value._device)
            if not _same_memory(target, value._data):  # CuPy skips copying an array onto itself
                counters.record("device_ops", _kernel_on_empty(target))
                target[...] = value._data
            return
        if isinstance(value, np.ndarray):
            if value.shape != ():
                raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
            value = value.item()
        elif not isinstance(value, _SCALAR_TYPES):
            raise unsupported(value)
        counters.record("device_ops", _kernel_on_empty(target))
        target[...] = value

    # -- NumPy interoperability (as CuPy: dispatch to CuPy's functions) --------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if "out" in kwargs:
            out = kwargs["out"]
            if len(out) != 1:
                raise ValueError("The 'out' parameter must have exactly one array value")
            inputs_and_outputs = inputs + out
            kwargs["out"] = out[0]
        else:
            inputs_and_outputs = inputs
        if method not in ("__call__", "outer", "at", "reduce", "accumulate", "reduceat"):
            return NotImplemented
        if not hasattr(sys.modules["cupy"], ufunc.__name__):
            return NotImplemented
        function = getattr(sys.modules["cupy"], ufunc.__name__)
        if method != "__call__":
            function = getattr(function, method)
        for value in inputs_and_outputs:
            if not isinstance(value, (ndarray, np.ndarray)) and type(value) not in _EXACT_SCALAR_TYPES:
                return NotImplemented
        if ufunc.__name__ in _COMPARISONS:  # CuPy's workaround: 0-d NumPy arrays become scalars
            inputs = tuple(x.item() if isinstance(x, np.ndarray) and x.ndim == 0 else x for x in inputs)
        return function(*inputs, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        suffix = func.__module__[len("numpy"):] if func.__module__.startswith("numpy") else None
        module = sys.modules.get("cupy" + (suffix or ""))
        if suffix is None or not hasattr(module, func.__name__):  # (as CuPy: a name it lacks is NumPy's error)
            return NotImplemented
        if not all(issubclass(t, (ndarray, np.ndarray)) for t in types):
            return NotImplemented
        return getattr(module, func.__name__)(*args, **kwargs)

    # -- copying -----------------------------------------------------------------------------------
    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        with cuda.Device(self._device):
            return self.copy()

    # -- operators ---------------------------------------------------------------------------------
    __hash__ = None

    def __neg__(self):
        return _cupy("negative")(self)

    def __pos__(self):
        return _cupy("positive")(self)

    def __abs__(self):
        return _cupy("absolute")(self)

    def __invert__(self):
        return _cupy("invert")(self)


_COMPARISONS = {"greater", "greater_equal", "less", "less_equal", "equal", "not_equal"}


def _should_use_rop(x, y):
    """CuPy's rule for ``x op y`` with a non-ndarray ``y``: defer to ``y`` (NotImplemented) or not."""
    try:
        y_ufunc = y.__array_ufunc__
    except AttributeError:
        return getattr(x, "__array_priority__", 0) < getattr(y, "__array_priority__", 0)
    return y_ufunc is None


def _binary(name):
    def forward(self, other):
        if isinstance(other, ndarray) or type(other) in _EXACT_SCALAR_TYPES:
            return _cupy(name)(self, other)
        if _should_use_rop(self, other):
            return NotImplemented
        return getattr(np, name)(self, other)  # through __array_ufunc__, as CuPy does

    def reflected(self, other):
        if type(other) in _EXACT_SCALAR_TYPES:
            return _cupy(name)(other, self)
        if _should_use_rop(self, other):
            return NotImplemented
        return getattr(np, name)(other, self)

    def in_place(self, other):
        return _cupy(name)(self, other, self)

    return forward, reflected, in_place


for _op, _ufunc in [("add", "add"), ("sub", "subtract"), ("mul", "multiply"), ("truediv", "true_divide"),
                    ("floordiv", "floor_divide"), ("mod", "remainder"), ("pow", "power"), ("and", "bitwise_and"),
                    ("or", "bitwise_or"), ("xor", "bitwise_xor"), ("lshift", "left_shift"),
                    ("rshift", "right_shift"), ("matmul", "matmul")]:
    _forward, _reflected, _in_place = _binary(_ufunc)
    setattr(ndarray, f"__{_op}__", _forward)
    setattr(ndarray, f"__r{_op}__", _reflected)
    if _op != "matmul":
        setattr(ndarray, f"__i{_op}__", _in_place)


def _comparison(name):
    def compare(self, other):
        if isinstance(other, ndarray) or type(other) in _EXACT_SCALAR_TYPES:
            return _cupy(name)(self, other)
        if _should_use_rop(self, other):
            return NotImplemented
        if isinstance(other, np.ndarray) and other.ndim == 0:
            other = other.item()
        if name in ("equal", "not_equal") and (other is None or type(other).__eq__ is object.__eq__):
            counters.record("device_ops")  # CuPy answers with a filled array: nothing equals such an object
            return new_array(np.full(self.shape, name == "not_equal"))
        return getattr(np, name)(self, other)
    return compare


for _op, _name in [("lt", "less"), ("le", "less_equal"), ("eq", "equal"), ("ne", "not_equal"),
                   ("gt", "greater"), ("ge", "greater_equal")]:
    setattr(ndarray, f"__{_op}__", _comparison(_name))


def _axis(axis):
    return tuple(axis) if isinstance(axis, list) else axis


class _Flags:
    """cupy._core.flags.Flags: c_contiguous, f_contiguous, owndata; also by key ('C_CONTIGUOUS'...)."""

    _KEYS = {"C_CONTIGUOUS": "c_contiguous", "F_CONTIGUOUS": "f_contiguous", "OWNDATA": "owndata"}

    def __init__(self, c_contiguous, f_contiguous, owndata):
        self.c_contiguous, self.f_contiguous, self.owndata = c_contiguous, f_contiguous, owndata

    def __getitem__(self, key):
        return getattr(self, self._KEYS[key.upper()] if key.upper() in self._KEYS else key)

    def __repr__(self):
        return "\n".join(f"  {key} : {getattr(self, name)}" for key, name in self._KEYS.items())


# -- indexing helpers ---------------------------------------------------------------------------------
def _device_index(index):
    """A NumPy array or list used as an index is uploaded first, as CuPy does (core.array)."""
    if isinstance(index, (np.ndarray, list)):
        counters.record("uploads")
        return new_array(np.array(index))
    return index


_BASIC_INDEX_TYPES = (int, slice, type(None), type(Ellipsis))


def _index_tuple(key):
    """(key as a tuple, whether it holds index arrays). NumPy arrays and lists in it become device
    arrays (uploads), as CuPy turns them into cupy arrays before indexing."""
    key = key if type(key) is tuple else (key,)
    for k in key:
        if type(k) not in _BASIC_INDEX_TYPES:
            break
    else:
        return key, False
    converted = []
    for k in key:
        if k is None or k is Ellipsis or isinstance(k, (slice, ndarray)):
            converted.append(k)
        elif isinstance(k, (bool, np.bool_)):
            converted.append(_device_index(np.array(k)))
        elif isinstance(k, (int, np.integer)):
            converted.append(int(k))
        elif isinstance(k, (np.ndarray, list, tuple)):
            converted.append(_device_index(np.asarray(k)))
        else:
            raise IndexError("only integers, slices (`:`), ellipsis (`...`),numpy.newaxis (`None`) and integer "
                             "or boolean arrays are valid indices")
    return tuple(converted), any(isinstance(k, ndarray) for k in converted)


def _basic(data, key):
    """NumPy's view for a basic index; a trailing ... keeps an all-integer index a 0-d view, not a scalar."""
    return data[key] if Ellipsis in key else data[key + (Ellipsis,)]  # (key holds no arrays: `in` is safe)


def _same_memory(a, b):
    return (a.shape == b.shape and a.strides == b.strides
            and a.__array_interface__["data"][0] == b.__array_interface__["data"][0])


def _count_advanced_indexing(arrays):
    """CuPy's kernels for x[arrays]: one take for one integer array; a scan, a read of its last
    element (the count) and a gather for one boolean mask; zero-fill, one index pass per array
    and a take for several arrays (a boolean one among them is first turned into indices)."""
    if len(arrays) == 1 and arrays[0].dtype.kind == "b":
        counters.record("device_ops", 2)
        counters.record("syncs")
        return
    if len(arrays) == 1:
        counters.record("device_ops")
        return
    for index in arrays:
        if index.dtype.kind == "b":
            counters.record("device_ops", 2)
            counters.record("syncs")
    counters.record("device_ops", len(arrays) + 2)


# The dtypes CuPy's atomic scatter kernels take (cupy/_core/_routines_indexing.pyx, _scatter_op_single)
_SCATTER_DTYPES = {"add": "int32 float16 float32 float64 uint32 uint64",
                   "maximum": "int32 float32 float64 uint32 uint64", "minimum": "int32 float32 float64 uint32 uint64"}


def _scatter(target, key, value, numpy_at):
    """x[key] = value (numpy_at None) or ufunc.at(x, key, value) with advanced indices, as CuPy's scatter."""
    if numpy_at is not None:
        name = numpy_at.__self__.__name__
        if target.dtype.name not in _SCATTER_DTYPES[name].split():
            short = {"add": "add", "maximum": "max", "minimum": "min"}[name]
            raise TypeError(f"scatter_{short} only supports {', '.join(_SCATTER_DTYPES[name].split())} as data type")
    key, _ = _index_tuple(key)
    arrays = [k for k in key if isinstance(k, ndarray)]
    cuda.check_current(target._device)
    for index in arrays:
        cuda.check_current(index._device)
    if isinstance(value, ndarray):
        cuda.check_current(value._device)
        if value.dtype != target.dtype:
            counters.record("device_ops")  # value.astype(a.dtype)
        np_value = value._data
    elif isinstance(value, _SCALAR_TYPES):
        counters.record("device_ops")  # CuPy first makes a 0-d device array of it (a fill)
        np_value = value
    else:  # CuPy turns anything else into a device array first (core.array): an upload
        counters.record("uploads")
        np_value = np.asarray(value)
    np_key = tuple(k._data if isinstance(k, ndarray) else k for k in key)
    if len(arrays) == 1 and arrays[0].dtype.kind == "b":
        counters.record("device_ops", 2)  # the scan of the mask, then the masked scatter
        counters.record("syncs")  # the number of True entries is read back
    elif len(arrays) == 1:
        counters.record("device_ops")
    else:
        _count_advanced_indexing(arrays)
    if numpy_at is None:
        target._data[np_key] = np_value
    else:
        numpy_at(target._data, np_key, np_value)


def scatter(target, key, value, numpy_at):
    """ufunc.at / cupyx.scatter_* on a device array."""
    if not isinstance(target, ndarray):
        raise unsupported(target)
    _scatter(target, key, value, numpy_at)

