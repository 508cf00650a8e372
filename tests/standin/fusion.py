"""``cupy.fuse`` on the stand-in: CuPy's default ("old") fusion, its rules enforced, one device operation per call.

CuPy (cupy/_core/fusion.pyx) runs the decorated function once per signature of
its arguments (dtypes, ndims), on *fusion variables* in place of the arrays,
records what they do, and compiles it into ONE ElementwiseKernel, or one
ReductionKernel if the function reduces. The stand-in runs the function on
variables that hold NumPy values, refuses what CuPy's tracer cannot record, and
counts the call as one device operation. The rules:

* Arguments: device arrays (on the current device), Python and NumPy scalars,
  None; anything else is ``TypeError: Invalid argument type``. A NumPy array is
  refused too (CuPy's kernel would be handed host memory). With no device array
  among the arguments the function is just called (CuPy does the same).
* Inside, a variable has ``dtype`` and ``ndim`` (-1 for a scalar), the Python
  operators (``+ - * / // % **``, comparisons, unary ``-``, bitwise ones), the
  in-place ones (``x += y`` writes into the argument array ``x``), ``x[...] = v``
  and ``x[:] = v``, ``.astype(dtype)`` and ``.copy()``. No other attribute:
  no ``.sum()``, ``.reshape``, ``.T``, ``.shape``, no indexing; ``bool(x)`` is an error.
* CuPy's ufuncs (``cupy.exp``, ``cupy.maximum``...) take variables and scalars
  (no ``dtype=``/``casting=``; ``out=`` must be a variable), as do
  ``cupy.where(condition, x, y)`` (``condition`` bool), ``cupy.copy``,
  ``cupy.clip``, ``cupy.real`` and ``cupy.imag``. A device array captured from
  outside the function is refused.
* At most ONE reduction (``cupy.sum, prod, amax, amin, max, min, all, any``,
  called as functions, with ``axis=`` only; ``keepdims``, ``dtype``, ``out`` are
  refused), over the broadcast shape of all the array arguments. After it only
  the reduced value and constants may be combined: a variable from before it
  (arguments included) is an error, and so is a second reduction.
* The function returns a variable, a tuple of them, or None. Elementwise, the
  outputs have the broadcast shape of all the array arguments (an argument
  written in place must have that shape); with a reduction, the reduced shape
  (and no argument may be written: CuPy would lose the write).
* Type promotion is NumPy 2's, as in CuPy 14: a Python scalar (argument or
  constant) is weak (``float32_variable * 0.5`` stays float32); the result of
  an operation on scalars only is a strong scalar of its dtype, as in CuPy's
  tracer (``x32 * (a * b)`` with Python floats ``a``, ``b`` is float64). A
  Python scalar of a higher kind than every typed operand (``bool_array * 0.5``)
  is refused: there CuPy's tracer and NumPy disagree (see _check_weak_scalars).

Real CuPy, when the old fusion fails while tracing, silently retries with its
experimental new fusion; the stand-in raises instead, so that code stays within
what the old fusion compiles.
"""
import functools

import numpy as np

from . import api, counters, cuda
from .ndarray import ndarray, new_array

_PYTHON_SCALARS = (bool, int, float, complex)
_REDUCTIONS = {"sum": np.sum, "prod": np.prod, "amax": np.max, "amin": np.min, "max": np.max, "min": np.min,
               "all": np.all, "any": np.any}
_trace = None  # the Trace of the fused call running now, or None


def tracing():
    """True while a fused function runs on fusion variables."""
    return _trace is not None


class FusionError(ValueError):
    """What CuPy's old fusion raises (as a bare Exception) for variables that cannot meet in one kernel."""


class Variable:
    """A fusion variable: what the fused function sees in place of an array (or scalar).

    ``_value`` is the NumPy value it stands for (an array, or a scalar for a
    scalar variable); ``_after_reduction`` tells the pre-map from the post-map
    phase; ``_argument`` is the device array it stands for, if it is an argument.
    """

    __slots__ = ("_value", "_is_array", "_after_reduction", "_argument", "_written")
    __array_ufunc__ = None  # NumPy's functions refuse it (CuPy's tracer cannot see them)

    def __init__(self, value, is_array, after_reduction, argument=None):
        self._value, self._is_array, self._after_reduction = value, is_array, after_reduction
        self._argument, self._written = argument, False

    dtype = property(lambda self: np.asarray(self._value).dtype, doc="numpy.dtype of the values.")
    _weak = property(lambda self: type(self._value) in _PYTHON_SCALARS,
                     doc="A Python scalar (an argument or a constant): weakly typed, as in NumPy 2.")
    ndim = property(lambda self: np.ndim(self._value) if self._is_array else -1,
                    doc="Number of dimensions; -1 for a scalar variable (CuPy's convention).")

    def __repr__(self):
        return f"<fusion variable {self.dtype} " + (f"{self.ndim}-dim array>" if self._is_array else "scalar>")

    def __getattr__(self, name):
        raise AttributeError(f"a cupy.fuse variable has no attribute {name!r}: inside a fused function only "
                             "operators, CuPy's ufuncs, cupy.where/copy/clip/real/imag, one reduction called as a "
                             "function (cupy.sum(x, axis=...)), x[...] = v, .astype() and .copy() are allowed")

    def __bool__(self):
        raise TypeError("Can't cast to bool: a cupy.fuse variable has no value while the kernel is traced "
                        "(use cupy.where instead of if)")

    __hash__ = None

    def __setitem__(self, key, value):
        if not (key is Ellipsis or key == slice(None)):
            raise ValueError("The fusion supports `[...]` or `[:]`.")
        _current().apply("copy", _copy, (value,), self)

    def copy(self):
        return _current().apply("copy", _copy, (self,))

    def astype(self, dtype, order=None, casting=None, subok=None, copy=True):
        for name, given in (("order", order), ("casting", casting), ("subok", subok)):
            if given is not None:
                raise TypeError(f"{name} is not supported yet")
        dtype = np.dtype(dtype)
        if not copy and self.dtype == dtype:
            return self
        return _current().apply(f"astype_{dtype}", lambda v: np.asarray(v).astype(dtype), (self,))


def _copy(value):
    return np.array(value, copy=True)


def _operator(ufunc_name, reflected=False, in_place=False):
    def method(self, other):
        ufunc = _cupy_ufunc(ufunc_name)
        if in_place and self._is_array:  # (a scalar variable has no in-place operators: Python falls back)
            return call_ufunc(ufunc, (self, other, self), {})
        return call_ufunc(ufunc, (other, self) if reflected else (self, other), {})
    return method


def _cupy_ufunc(name):
    import sys
    return getattr(sys.modules["cupy"], name)


for _name, _ufunc in [("add", "add"), ("sub", "subtract"), ("mul", "multiply"), ("truediv", "true_divide"),
                      ("floordiv", "floor_divide"), ("mod", "remainder"), ("pow", "power"), ("and", "bitwise_and"),
                      ("or", "bitwise_or"), ("xor", "bitwise_xor"), ("lshift", "left_shift"),
                      ("rshift", "right_shift")]:
    setattr(Variable, f"__{_name}__", _operator(_ufunc))
    setattr(Variable, f"__r{_name}__", _operator(_ufunc, reflected=True))
    setattr(Variable, f"__i{_name}__", _operator(_ufunc, in_place=True))
for _name, _ufunc in [("lt", "less"), ("le", "less_equal"), ("eq", "equal"), ("ne", "not_equal"),
                      ("gt", "greater"), ("ge", "greater_equal")]:
    setattr(Variable, f"__{_name}__", _operator(_ufunc))
Variable.__neg__ = lambda self: call_ufunc(_cupy_ufunc("negative"), (self,), {})
Variable.__invert__ = lambda self: call_ufunc(_cupy_ufunc("invert"), (self,), {})


_NO_WRITE_WITH_REDUCTION = ("cupy.fuse with a reduction cannot write into an argument (CuPy passes the arguments "
                            "of its ReductionKernel by value: the write would be lost)")


class Trace:
    """One fused call: the broadcast shape of its array arguments, and whether it has reduced yet."""

    def __init__(self, shape):
        self.shape = self.out_shape = shape  # out_shape: the reduced shape once reduced
        self.reduced = self.wrote_argument = False

    def operand(self, value):
        """The NumPy value of an operand: a variable of the current phase, or a Python/NumPy scalar constant."""
        if isinstance(value, Variable):
            if value._after_reduction != self.reduced:
                raise FusionError("Shape mismatch: cupy.fuse cannot combine a value from before its reduction "
                                  "(an argument, or computed from one) with one after it")
            return value
        if isinstance(value, (*_PYTHON_SCALARS, np.generic)):
            return Variable(value, False, self.reduced)  # a constant: a Python scalar stays weak
        raise TypeError(f"Unsupported type {type(value)} in a fused function (only its arguments and scalars "
                        "can enter the kernel)")

    def apply(self, name, numpy_function, inputs, out=None):
        """An elementwise operation on variables: a new variable, or the result written into ``out``."""
        inputs = [self.operand(value) for value in inputs]
        _check_weak_scalars(name, inputs)
        if out is not None:
            out = self.operand(out)
            if not out._is_array:
                raise TypeError("return arrays must be of ArrayType")
            if out.ndim < max(v.ndim for v in inputs):
                raise ValueError("non-broadcastable output operand")
        with np.errstate(all="ignore"):  # a GPU kernel does not warn
            result = numpy_function(*(v._value for v in inputs))
        is_array = any(v._is_array for v in inputs)
        result = np.asarray(result) if is_array else np.asarray(result)[()]  # scalars only: a strong NumPy scalar
        if out is None:
            return Variable(result, is_array, self.reduced)
        if not np.can_cast(result.dtype, out.dtype, "same_kind"):
            raise TypeError(f"output of {name}: cannot cast {result.dtype} to {out.dtype} with casting rule "
                            "'same_kind'")
        if out._argument is not None:
            self._check_writable(out, np.shape(result))
            out._written = self.wrote_argument = True
        out._value = np.broadcast_to(result, np.broadcast_shapes(np.shape(out._value), np.shape(result))) \
            .astype(out.dtype)
        return out

    def _check_writable(self, variable, result_shape):
        if self.reduced:
            raise FusionError(_NO_WRITE_WITH_REDUCTION)
        if variable._argument.shape != self.shape or np.broadcast_shapes(self.shape, result_shape) != self.shape:
            raise ValueError(f"cupy.fuse: an argument of shape {variable._argument.shape} is written in place, "
                             f"but the kernel runs over the broadcast shape {self.shape}: each element would be "
                             "written by several threads")

    def reduce(self, name, array, axis):
        """The one reduction of the fused function, over the broadcast shape of every array argument."""
        if self.reduced or (isinstance(array, Variable) and array._after_reduction):
            raise NotImplementedError("Multiple reduction is not implemented yet")
        if self.wrote_argument:
            raise FusionError(_NO_WRITE_WITH_REDUCTION)
        if not isinstance(array, Variable) or not array._is_array:
            raise TypeError(f"cupy.{name} in a fused function reduces an array variable, got {array!r}")
        if array.ndim != len(self.shape):
            raise FusionError(f"cupy.{name} in a fused function reduces over the broadcast shape of all the array "
                              f"arguments {self.shape}, but its operand has {array.ndim} dimensions")
        with np.errstate(all="ignore"):
            result = np.asarray(_REDUCTIONS[name](np.broadcast_to(array._value, self.shape), axis=axis))
        self.reduced, self.out_shape = True, result.shape
        return Variable(result, result.ndim > 0, True) if result.ndim else Variable(result[()], False, True)


_KIND_SCORE = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}


def _check_weak_scalars(name, inputs):
    """Refuse a Python scalar of a higher kind than every typed operand (``bool_array * 0.5``).

    NumPy then promotes to the default type of the scalar's kind (float64).
    CuPy's old fusion does not: it takes the first loop the scalar fits, which
    for a bool or integer array and a Python float is float16 (``ee->e``).
    """
    weak = [v for v in inputs if v._weak]
    typed = [v for v in inputs if not v._weak]
    if weak and typed:
        highest = max(_KIND_SCORE[v.dtype.kind] for v in typed)
        for v in weak:
            if _KIND_SCORE[v.dtype.kind] > highest:
                raise TypeError(f"{name} in a fused function mixes a Python {type(v._value).__name__} with "
                                f"{', '.join(str(t.dtype) for t in typed)} operands: CuPy's old fusion would pick "
                                "a loop NumPy does not (float16 for bool * 0.5); .astype() the operands first")


def _current():
    if _trace is None:
        raise RuntimeError("a cupy.fuse variable was used after its fused call ended")
    return _trace


def call_ufunc(ufunc, args, kwargs):
    """A CuPy ufunc called while tracing (``elementwise.ufunc`` sends its calls here)."""
    if set(kwargs) - {"out"}:
        raise TypeError(f"Wrong arguments {kwargs} for {ufunc.name} in a fused function (only out=)")
    inputs, outputs = args[:ufunc.nin], list(args[ufunc.nin:])
    if kwargs.get("out") is not None:
        if outputs:
            raise ValueError("cannot specify 'out' as both a positional and keyword argument")
        outputs = [kwargs["out"]]
    if len(inputs) != ufunc.nin or len(outputs) > ufunc.nout:
        raise ValueError("invalid number of arguments")
    if ufunc.nout != 1:
        raise NotImplementedError(f"{ufunc.name} with {ufunc.nout} outputs in a fused function")
    return _current().apply(ufunc.name, ufunc._numpy, inputs, outputs[0] if outputs else None)


# -- the routines CuPy lets into a fused function ---------------------------------------------------------
def _reduction(name, routine):
    text = api.MODULES["cupy"][name][1]

    @functools.wraps(routine)
    def fusion_aware(*args, **kwargs):
        if not tracing():
            return routine(*args, **kwargs)
        arguments = api.bind(f"cupy.{name}", text, args, kwargs).arguments
        if arguments.get("keepdims"):
            raise NotImplementedError(f"cupy.{name} does not support `keepdims` in fusion yet.")
        for refused in ("dtype", "out"):
            if arguments.get(refused) is not None:
                raise NotImplementedError(f"cupy.{name}({refused}=...) in a fused function: CuPy's old fusion "
                                          f"ignores {refused}= (the stand-in refuses it)")
        return _current().reduce(name, arguments["a"], arguments.get("axis"))
    return fusion_aware


def _where(routine):
    @functools.wraps(routine)
    def fusion_aware(condition, x=None, y=None):
        if not tracing():
            return routine(condition, x, y)
        if x is None or y is None:
            raise ValueError("cupy.where in a fused function needs x and y")
        if _current().operand(condition).dtype != np.bool_:
            raise TypeError(f"Invalid type cast in 'cupy_where': the condition must be bool in a fused function, "
                            f"got {_current().operand(condition).dtype}")
        return _current().apply("cupy_where", np.where, (condition, x, y))
    return fusion_aware


def _copy_routine(routine):
    @functools.wraps(routine)
    def fusion_aware(a, order="K"):
        if not tracing():
            return routine(a, order)
        if order != "K":
            raise NotImplementedError("cupy.copy does not support `order` in fusion yet.")
        return _current().apply("copy", _copy, (a,))
    return fusion_aware


def _clip(routine):
    @functools.wraps(routine)
    def fusion_aware(a, a_min, a_max, out=None):
        if not tracing():
            return routine(a, a_min, a_max, out=out)
        return _current().apply("clip", np.clip, (a, a_min, a_max), out)
    return fusion_aware


def _complex_part(name):
    def part(val):
        """cupy.real / cupy.imag: ``val.real`` (``val.imag``); a step of the kernel inside a fused function."""
        if tracing():
            return _current().apply(name, getattr(np, name), (val,))
        if not isinstance(val, ndarray):
            raise api.not_implemented(f"cupy.{name} of a {type(val).__name__} (CuPy uploads it first)")
        return getattr(val, name)
    part.__name__ = part.__qualname__ = name
    return part


def fusion_aware(functions):
    """{name: function} of the ``cupy`` routines that take fusion variables while tracing, wrapping ``functions``."""
    aware = {name: _reduction(name, functions[name]) for name in _REDUCTIONS}
    aware.update(where=_where(functions["where"]), copy=_copy_routine(functions["copy"]),
                 clip=_clip(functions["clip"]), real=_complex_part("real"), imag=_complex_part("imag"))
    return aware


# -- cupy.fuse ----------------------------------------------------------------------------------------------
class Fusion:
    """What ``cupy.fuse`` returns: calling it runs the function as one kernel."""

    __module__ = "cupy._core.fusion"

    def __init__(self, func, name=None):
        self.func, self.name = func, name or func.__name__
        # CuPy keeps here the experimental fusion it falls back to when its old fusion cannot trace the
        # function; the stand-in raises instead of falling back, so this stays None.
        self.new_fusion = None

    def __repr__(self):
        return f"<Fusion '{self.name}'>"

    def __call__(self, *args):
        global _trace
        if tracing():  # a fused function called inside another one is part of its kernel
            return self.func(*args)
        if not any(isinstance(a, ndarray) for a in args):
            return self.func(*args)
        for a in args:
            if isinstance(a, np.ndarray):
                raise TypeError(f"Invalid argument type for '{self.name}': a numpy.ndarray (host memory; "
                                "cupy.asarray it first)")
            if not isinstance(a, (ndarray, np.generic, *_PYTHON_SCALARS, type(None))):
                raise TypeError(f"Invalid argument type for '{self.name}': "
                                f"({', '.join(repr(type(b)) for b in args)})")
        arrays = [a for a in args if isinstance(a, ndarray)]
        for a in arrays:
            cuda.check_current(a._device)
        shape = np.broadcast_shapes(*(a.shape for a in arrays))
        variables = [None if a is None else
                     Variable(a._data, True, False, a) if isinstance(a, ndarray) else Variable(a, False, False)
                     for a in args]
        _trace = Trace(shape)
        try:
            with counters.one_operation(0 if 0 in shape else 1):
                returned = self.func(*variables)
                outputs = self._outputs(returned)
                self._write_back(variables, arrays)
        finally:
            _trace = None
        return outputs

    def _outputs(self, returned):
        if returned is None:
            return None
        single = isinstance(returned, Variable)
        if not (single or isinstance(returned, tuple)):
            raise TypeError(f"Fusion function can't return {type(returned)}")
        results = []
        for value in [returned] if single else [v for v in returned if v is not None]:
            value = _trace.operand(value) if isinstance(value, Variable) else None
            if value is None:
                raise TypeError(f"Fusion function '{self.name}' returns something other than fusion variables")
            results.append(new_array(np.array(np.broadcast_to(value._value, _trace.out_shape), dtype=value.dtype,
                                              order="C")))  # a copy of its own, C-ordered as CuPy allocates it
        return results[0] if single else tuple(results)

    @staticmethod
    def _write_back(variables, arrays):
        for variable in variables:
            if variable is None or not variable._written:
                continue
            target = variable._argument
            for other in arrays:
                if other is not target and np.shares_memory(other._data, target._data):
                    raise ValueError("cupy.fuse: an argument written in place shares memory with another "
                                     "argument; the result would depend on the order the threads run in")
            target._data[...] = variable._value


def fuse(*args, **kwargs):
    """``cupy.fuse(f)``, ``cupy.fuse()(f)``, ``cupy.fuse(kernel_name=...)(f)``: f as one kernel (see the module)."""
    def wrap(f, kernel_name=None):
        return functools.update_wrapper(Fusion(f, kernel_name), f)

    if len(args) == 1 and not kwargs and callable(args[0]):
        return wrap(args[0])
    return lambda f: wrap(f, *args, **kwargs)
