"""The stand-in's CuPy API: the signatures its generic functions bind calls against, and its errors.

Only what the stand-in implements is here, written out; ``tests/test_standin.py``
holds every name the stand-in defines, and every signature below, to the
installed real CuPy with ``inspect`` (CI installs CuPy 14.2.0; where it is not
installed that test skips). So:

* ``bind(qualified_name, text, args, kwargs)``: a call must fit CuPy's
  signature, so a NumPy-only keyword (``where=``, ``initial=``...) is a
  TypeError here as it is on a GPU. The stand-in's hand-written functions carry
  CuPy's signatures in their own ``def`` lines.
* ``StandinModule``: a module holding exactly what the stand-in defines; any
  other name is an AttributeError saying the stand-in lacks it.
"""
import inspect
import types

VERSION = "14.2.0"  # the CuPy whose API this is (setup.cfg's fakecuda extra installs it for the check)

# cupy.<name> functions that the stand-in computes with NumPy's function of the same name (routines.wrap,
# the reductions, linalg): their CuPy signatures, "..." for every default.
SIGNATURES = {
    "reshape": "(a, newshape, order=..., *, copy=...)", "ravel": "(a, order=...)", "transpose": "(a, axes=...)",
    "swapaxes": "(a, axis1, axis2)", "moveaxis": "(a, source, destination)", "rollaxis": "(a, axis, start=...)",
    "expand_dims": "(a, axis)", "squeeze": "(a, axis=...)", "broadcast_to": "(array, shape)",
    "broadcast_arrays": "(*args)", "atleast_1d": "(*arys)", "atleast_2d": "(*arys)", "atleast_3d": "(*arys)",
    "split": "(ary, indices_or_sections, axis=...)", "array_split": "(ary, indices_or_sections, axis=...)",
    "flip": "(a, axis=...)", "fliplr": "(a)", "flipud": "(a)", "diagonal": "(a, offset=..., axis1=..., axis2=...)",
    "arange": "(start, stop=..., step=..., dtype=...)",
    "linspace": "(start, stop, num=..., endpoint=..., retstep=..., dtype=..., axis=...)",
    "clip": "(a, a_min, a_max, out=...)", "around": "(a, decimals=..., out=...)", "round": "(a, decimals=..., out=...)",
    "take": "(a, indices, axis=..., out=...)", "take_along_axis": "(a, indices, axis)",
    "repeat": "(a, repeats, axis=...)", "tile": "(A, reps)", "searchsorted": "(a, v, side=..., sorter=...)",
    "argsort": "(a, axis=..., kind=...)", "isclose": "(a, b, rtol=..., atol=..., equal_nan=...)",
    "outer": "(a, b, out=...)", "diff": "(a, n=..., axis=..., prepend=..., append=...)",
    "nan_to_num": "(x, copy=..., nan=..., posinf=..., neginf=...)", "pad": "(array, pad_width, mode=..., **kwargs)",
    "sum": "(a, axis=..., dtype=..., out=..., keepdims=...)", "prod": "(a, axis=..., dtype=..., out=..., keepdims=...)",
    "mean": "(a, axis=..., dtype=..., out=..., keepdims=...)",
    "var": "(a, axis=..., dtype=..., out=..., ddof=..., keepdims=...)",
    "std": "(a, axis=..., dtype=..., out=..., ddof=..., keepdims=...)",
    "max": "(a, axis=..., out=..., keepdims=...)", "amax": "(a, axis=..., out=..., keepdims=...)",
    "min": "(a, axis=..., out=..., keepdims=...)", "amin": "(a, axis=..., out=..., keepdims=...)",
    "argmax": "(a, axis=..., dtype=..., out=..., keepdims=...)",
    "argmin": "(a, axis=..., dtype=..., out=..., keepdims=...)",
    "all": "(a, axis=..., out=..., keepdims=...)", "any": "(a, axis=..., out=..., keepdims=...)",
    "cumsum": "(a, axis=..., dtype=..., out=...)", "cumprod": "(a, axis=..., dtype=..., out=...)",
    "where": "(condition, x=..., y=...)", "dot": "(a, b, out=...)", "tensordot": "(a, b, axes=...)",
    "inner": "(a, b)", "vdot": "(a, b)",
    "matmul": "(*args, axes=..., axis=..., keepdims=..., casting=..., dtype=..., signature=..., order=..., out=...)",
}

# CuPy's ufuncs that NumPy computes under the same name (cupyx.rsqrt has no NumPy twin)
UFUNCS = """abs absolute acos acosh add arccos arccosh arcsin arcsinh arctan arctan2 arctanh asin asinh atan atan2
atanh bitwise_and bitwise_count bitwise_invert bitwise_left_shift bitwise_not bitwise_or bitwise_right_shift
bitwise_xor cbrt ceil conj conjugate copysign cos cosh deg2rad degrees divide divmod equal exp exp2 expm1 fabs fix
float_power floor floor_divide fmax fmin fmod frexp gcd greater greater_equal heaviside hypot i0 invert isfinite
isinf isnan lcm ldexp left_shift less less_equal log log10 log1p log2 logaddexp logaddexp2 logical_and logical_not
logical_or logical_xor maximum minimum mod modf multiply negative nextafter not_equal positive pow power rad2deg
radians reciprocal remainder right_shift rint sign signbit sin sinc sinh sqrt square subtract tan tanh true_divide
trunc""".split()

# What ``cupy`` re-exports from NumPy: types, constants, and a few host-side helpers
NUMPY_NAMES = """bool bool_ byte cdouble complex128 complex64 complexfloating csingle double dtype e euler_gamma finfo
float16 float32 float64 floating generic half iinfo inexact inf int16 int32 int64 int8 int_ intc integer intp long
longlong nan ndindex newaxis number pi short signedinteger single ubyte uint uint16 uint32 uint64 uint8 uintc uintp
ulong ulonglong unsignedinteger ushort broadcast_shapes isdtype issubdtype iterable mintypecode promote_types
typename printoptions get_printoptions set_printoptions""".split()
NUMPY_EXCEPTIONS = "AxisError ComplexWarning ModuleDeprecationWarning RankWarning TooHardError " \
                   "VisibleDeprecationWarning"

_signatures = {}


def ufunc_signature(nin, nout):
    """The signature CuPy gives a ufunc of ``nin`` inputs and ``nout`` outputs."""
    inputs = "x" if nin == 1 else ", ".join(f"x{i + 1}" for i in range(nin))
    if nout == 1:
        return f"({inputs}, /, out=..., *, casting=..., dtype=...)"
    outputs = "".join(f", out{i + 1}=..." for i in range(nout))
    return f"({inputs}{outputs}, /, *, out=..., casting=..., dtype=...)"


def signature(text):
    """inspect.Signature for a signature such as '(a, axis=..., *, keepdims=...)'."""
    found = _signatures.get(text)
    if found is None:
        namespace = {}
        exec(f"def f{text}: pass", namespace)  # noqa: S102 (text comes from this module)
        found = _signatures[text] = inspect.signature(namespace["f"])
    return found


def table_signature(qualified_name):
    """The signature text of 'cupy.pad'."""
    return SIGNATURES[qualified_name.rpartition(".")[2]]


def bind(qualified_name, text, args, kwargs):
    """Check that ``args``/``kwargs`` fit CuPy's signature ``text``; TypeError naming the function if not."""
    try:
        return signature(text).bind(*args, **kwargs)
    except TypeError as error:
        raise TypeError(f"{qualified_name}(): {error}; CuPy {VERSION}'s signature is "
                        f"{qualified_name.rpartition('.')[2]}{text}") from None


def not_implemented(what):
    return NotImplementedError(f"{what}: CuPy {VERSION} has it, but the CuPy stand-in (tests/standin) "
                               "does not implement it: add it there (never silently differ from CuPy)")


def missing_member(class_key, owner_label, name):
    """The error for an attribute the stand-in's class lacks."""
    return AttributeError(f"'{owner_label}' object has no attribute '{name}' (on the CuPy stand-in: if "
                          f"{class_key} has it, add it to tests/standin)")


class StandinModule(types.ModuleType):
    """A module holding exactly the names the stand-in defines for one CuPy module."""

    def __getattr__(self, name):  # only reached for names not set on the module
        hint = "" if name.startswith("__") else " (on the CuPy stand-in: if CuPy has it, add it to tests/standin)"
        raise AttributeError(f"module '{self.__name__}' has no attribute '{name}'{hint}")

    def define(self, name, value):
        setattr(self, name, value)
