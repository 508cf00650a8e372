"""Swap the C functions one Cython module exports for Python functions.

A Cython module that ``cimport``s a function from another reads it, once, when
it is imported: from the exporter's ``__pyx_capi__`` dict, where each function
is a PyCapsule holding its address, named by its C signature, such as
``"int (int, int __pyx_skip_dispatch)"``. Putting a capsule with the same name
around a ctypes callback in that dict, before the importer is imported, makes
the importer call Python instead. The module's own Python-level name is
replaced as well, so ``cupy.cuda.runtime.getDevice()`` from Python gets it too.
"""
import ctypes
import re

_C_TYPES = {
    "int": ctypes.c_int, "CUdevice": ctypes.c_int, "cudaMemcpyKind": ctypes.c_int, "bint": ctypes.c_int,
    "unsigned int": ctypes.c_uint, "intptr_t": ctypes.c_ssize_t, "Py_ssize_t": ctypes.c_ssize_t,
    "size_t": ctypes.c_size_t, "uintmax_t": ctypes.c_uint64, "int64_t": ctypes.c_int64,
    "PY_LONG_LONG": ctypes.c_longlong,
    "float": ctypes.c_float, "double": ctypes.c_double, "PyObject *": ctypes.py_object, "void": None,
}
_new_capsule = ctypes.pythonapi.PyCapsule_New
_new_capsule.restype = ctypes.py_object
_new_capsule.argtypes = (ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p)
_alive = []  # callbacks and capsule names must outlive every module that imported them


def _c_type(text):
    text = text.strip()
    if text in _C_TYPES:
        return _C_TYPES[text]
    if text.startswith("struct ") and text.endswith("*"):
        return ctypes.py_object if "__pyx_obj_" in text else ctypes.c_void_p
    raise ValueError(f"no ctypes type for the C type {text!r}")


def parse(signature):
    """(return type, [argument types], count of trailing Cython-only arguments) of a capsule's name."""
    result, _, arguments = signature.partition("(")
    arguments = [a.strip() for a in arguments.rstrip(")").split(",") if a.strip() and a.strip() != "void"]
    hidden = sum(1 for a in arguments if "__pyx_skip_dispatch" in a or "__pyx_optional_args" in a)
    types = [_c_type(re.sub(r"\b__pyx_\w+$", "", a)) for a in arguments]
    return _c_type(result), types, hidden


def _signature_of(capsule):
    name = ctypes.pythonapi.PyCapsule_GetName
    name.restype, name.argtypes = ctypes.c_char_p, (ctypes.py_object,)
    return name(capsule).decode()


def variable(module, name):
    """The value of an ``int`` that ``module`` exports to other Cython modules (not a Python name)."""
    capsule = module.__pyx_capi__[name]
    pointer = ctypes.pythonapi.PyCapsule_GetPointer
    pointer.restype, pointer.argtypes = ctypes.c_void_p, (ctypes.py_object, ctypes.c_char_p)
    return ctypes.c_int.from_address(pointer(capsule, _signature_of(capsule).encode())).value


def replace(module, name, function, on_error):
    """Make ``module``'s C function ``name`` call ``function`` (without Cython's hidden arguments).

    A Python function cannot raise through C here, so an exception is passed to
    ``on_error`` (which records it) and the C caller gets a harmless value.
    """
    signature = _signature_of(module.__pyx_capi__[name])
    result, arguments, hidden = parse(signature)
    shown = len(arguments) - hidden

    def call(*args):
        try:
            value = function(*args[:shown])
        except BaseException as error:  # noqa: BLE001 (reported by on_error; C cannot take it)
            on_error(f"{module.__name__}.{name}", error)
            value = None
        if result is ctypes.py_object and value is None:
            return 0  # ctypes would hand C a borrowed None that Cython then releases: never None
        return 0 if value is None else value

    callback = ctypes.CFUNCTYPE(result, *arguments)(call)
    name_bytes = signature.encode()
    capsule = _new_capsule(ctypes.cast(callback, ctypes.c_void_p), name_bytes, None)
    _alive.append((callback, name_bytes))
    module.__pyx_capi__[name] = capsule
    setattr(module, name, function)
