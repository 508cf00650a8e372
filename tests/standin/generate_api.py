"""Write ``cupy_api.py``: every public name of real CuPy, with the signatures the stand-in binds against.

Run it with a Python that has real CuPy installed (it needs no GPU: CuPy imports
and can be introspected on any machine; only creating an array needs one):

    /path/to/cupy-venv/bin/python tests/standin/generate_api.py

What it reads, and how:

* Python functions and classes: ``inspect.signature``.
* Cython functions and methods (``cpdef``/``def`` in .pyx files, shown as
  ``builtin_function_or_method`` or ``method_descriptor``): inspect cannot
  read them, but Cython writes the signature as the first line of the
  docstring (``_ndarray_base.sum(self, axis=None, dtype=None, out=None,
  keepdims=False) -> _ndarray_base``); C types in it (``size_t size``) are
  dropped, keeping the parameter names.
* ufuncs (``cupy._core._kernel.ufunc``): ``nin`` and ``nout`` from the object,
  and the signature built from them as CuPy builds its docstrings: the keywords
  its ``__call__`` accepts are ``out``, ``casting`` and ``dtype`` (NumPy's
  ``where``, ``order``, ``subok``... are not among them).
* Properties (Cython ``getset_descriptor``), class attributes and constants
  (numbers, ``None``, NumPy scalar types such as ``cupy.float32``).
* NumPy's own helpers that CuPy re-exports (``cupy.promote_types`` is
  ``numpy.promote_types``), recorded with the NumPy object they are.

Every default value is written as ``...``: the stand-in only needs to know
which parameters exist and which may be left out (it passes on what the
caller gave, nothing else), and defaults such as ``<class 'float'>`` are not
valid Python anyway.

Only names that belong to CuPy are kept: a module attribute that is a foreign
module (``contextlib``) or a ``__future__`` feature is skipped. To cover more
of CuPy (``cupy.fft``, ``cupy.cuda.nccl``...), add it to MODULES or CLASSES
and run this again.

``cupy.cuda.nccl`` is a Cython module that CuPy imports only when asked, and only
if the NCCL library loads (otherwise it holds nothing but ``available = False``):
install it next to CuPy first (``pip install "nvidia-nccl-cu12>=2.18.1,<3"``, the
wheel CuPy's own warning names); the library loads without a GPU. The table
then lists ``cupy.cuda`` as ``import cupy`` leaves it, without ``nccl`` (which is
reached by ``from cupy.cuda import nccl``), since modules are read in order.

Attributes that CuPy sets on each instance (``Stream.ptr``) are not on the
class: they are read from an instance that exists without a GPU (INSTANCES).
"""
import inspect
import os
import re
import sys
import types

# Run as a script, this file's folder comes first on sys.path, where the stand-in's own modules
# (cuda.py...) would shadow packages real CuPy imports (cuda.pathfinder): take it off.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path = [path for path in sys.path if os.path.abspath(path or ".") != HERE]

import numpy  # noqa: E402

MODULES = ["cupy", "cupy.random", "cupy.linalg", "cupy.cuda", "cupy.cuda.runtime", "cupy.cuda.memory",
           "cupy.exceptions", "cupyx", "cupy.cuda.nccl"]
CLASSES = ["cupy.ndarray", "cupy.ufunc", "cupy.random.RandomState", "cupy.cuda.Device", "cupy.cuda.Stream",
           "cupy.cuda.Event", "cupy.cuda.MemoryPool", "cupy.cuda.PinnedMemoryPool", "cupy.ElementwiseKernel",
           "cupy.ReductionKernel", "cupy.RawKernel", "cupy.cuda.MemoryPointer", "cupy.cuda.nccl.NcclCommunicator"]
INSTANCES = {"cupy.cuda.Stream": "null"}  # class -> the name of an instance that exists without a GPU
OUTPUT = os.path.join(HERE, "cupy_api.py")
OWN_PREFIXES = ("cupy", "cupyx", "cupy_backends")
NUMPY_TYPES = {value: name for name, value in vars(numpy).items() if isinstance(value, type)}


# -- signatures --------------------------------------------------------------------------------
def _format(parameters):
    """'(a, b=..., /, *, c=..., **kwargs)' from (name, kind, has_default) triples."""
    parts, positional_only_done, star_done = [], True, False
    kinds = [kind for _, kind, _ in parameters]
    for name, kind, has_default in parameters:
        if kind == "positional_only":
            positional_only_done = False
        elif not positional_only_done:
            parts.append("/")
            positional_only_done = True
        if kind == "keyword_only" and not star_done:
            parts.append("*")
            star_done = True
        if kind == "var_positional":
            parts.append("*" + name)
            star_done = True
        elif kind == "var_keyword":
            parts.append("**" + name)
        else:
            parts.append(name + ("=..." if has_default else ""))
    if not positional_only_done and kinds:
        parts.append("/")
    return "(" + ", ".join(parts) + ")"


_KINDS = {inspect.Parameter.POSITIONAL_ONLY: "positional_only",
          inspect.Parameter.POSITIONAL_OR_KEYWORD: "positional_or_keyword",
          inspect.Parameter.VAR_POSITIONAL: "var_positional",
          inspect.Parameter.KEYWORD_ONLY: "keyword_only",
          inspect.Parameter.VAR_KEYWORD: "var_keyword"}


def _from_inspect(signature, drop_first=False):
    params = list(signature.parameters.values())
    if drop_first and params and params[0].kind != inspect.Parameter.VAR_POSITIONAL:
        params = params[1:]
    return _format([(p.name, _KINDS[p.kind], p.default is not inspect.Parameter.empty) for p in params])


def _split_top_level(text):
    """Split on commas that are not inside brackets, braces, angle brackets or quotes."""
    parts, depth, quote, current = [], 0, None, []
    for char in text:
        if quote:
            current.append(char)
            if char == quote:
                quote = None
            continue
        if char in "'\"":
            quote = char
        elif char in "([{<":
            depth += 1
        elif char in ")]}>":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    if "".join(current).strip():
        parts.append("".join(current).strip())
    return parts


_DOC_SIGNATURE = re.compile(r"^\s*[\w.]+\((.*)\)\s*(->.*)?$")


def _from_docstring(doc, drop_first):
    """Parse Cython's 'Name.method(self, size_t size, axis=None) -> T' first docstring line."""
    first = (doc or "").strip().split("\n")[0].replace("\\*", "*")
    match = _DOC_SIGNATURE.match(first)
    if not match:
        return None
    parameters, kind = [], "positional_or_keyword"
    tokens = _split_top_level(match.group(1))
    for token in tokens:
        if token == "/":
            parameters = [(n, "positional_only", d) for n, _, d in parameters]
            continue
        if token == "*":
            kind = "keyword_only"
            continue
        if token.startswith("**"):
            parameters.append((token[2:].split()[-1], "var_keyword", False))
            continue
        if token.startswith("*"):
            parameters.append((token[1:].split()[-1], "var_positional", False))
            kind = "keyword_only"
            continue
        head, has_default = (token.split("=", 1)[0], True) if "=" in token else (token, False)
        name = head.split()[-1]  # 'size_t size' -> 'size'; 'int axis' -> 'axis'
        parameters.append((name, kind, has_default))
    if drop_first and parameters and parameters[0][0] in ("self", "cls"):
        parameters = parameters[1:]
    return _format(parameters)


def signature_of(obj, drop_first=False):
    """The normalised signature of a callable, or None if neither inspect nor the docstring tells."""
    try:
        return _from_inspect(inspect.signature(obj), drop_first)
    except (TypeError, ValueError):
        return _from_docstring(getattr(obj, "__doc__", None), drop_first)


# -- classifying names ---------------------------------------------------------------------------
def _belongs_to_cupy(obj):
    module = getattr(obj, "__module__", None) or ""
    return module.split(".")[0] in OWN_PREFIXES


def _is_numpy_reexport(obj):
    """A NumPy function or helper class that CuPy imports into its namespace (not a type, not an exception)."""
    module = getattr(obj, "__module__", None) or ""
    is_type_or_error = isinstance(obj, type) and (issubclass(obj, BaseException) or obj in NUMPY_TYPES)
    return callable(obj) and module.split(".")[0] == "numpy" and not is_type_or_error


def describe(module_name, name, obj, ufunc_type):
    """(kind, *details) for the public name ``name`` of module ``module_name``, or None to skip it."""
    if isinstance(obj, types.ModuleType):
        return ("module",) if obj.__name__.split(".")[0] in OWN_PREFIXES else None
    if type(obj).__name__ == "_Feature":  # `from __future__ import annotations`
        return None
    if isinstance(obj, ufunc_type):
        return ("ufunc", signature_of_ufunc(obj), obj.nin, obj.nout)
    if _is_numpy_reexport(obj):  # cupy.promote_types is numpy.promote_types
        return ("numpy", f"{obj.__module__}.{obj.__qualname__}")
    if isinstance(obj, type):
        if issubclass(obj, BaseException):  # where it is defined, and its bases (NumPy's are re-exported)
            return ("exception", f"{obj.__module__}.{obj.__qualname__}",
                    tuple(f"{base.__module__}.{base.__qualname__}" for base in obj.__bases__))
        if obj in NUMPY_TYPES:  # cupy.float32 is numpy.float32
            return ("constant", f"numpy.{name if getattr(numpy, name, None) is obj else NUMPY_TYPES[obj]}")
        if not _belongs_to_cupy(obj):
            return None
        return ("class", signature_of_class(obj))
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return ("constant", repr(obj))
    if isinstance(obj, numpy.dtype) or type(obj).__module__ == "numpy":
        return ("constant", repr(obj))
    if callable(obj):
        if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType)) and not _belongs_to_cupy(obj):
            return None
        return ("function", signature_of(obj))
    return ("object", type(obj).__name__)


def signature_of_ufunc(ufunc):
    """What CuPy's ufunc __call__ takes: the inputs (positional only), the outputs (positionally or as out=),
    casting= and dtype=. CuPy's docstrings say the same in NumPy's bracket notation, which is not Python."""
    inputs = [("x" if ufunc.nin == 1 else f"x{i + 1}", "positional_only", False) for i in range(ufunc.nin)]
    keywords = [("casting", "keyword_only", True), ("dtype", "keyword_only", True)]
    if ufunc.nout == 1:
        return _format(inputs + [("out", "positional_or_keyword", True)] + keywords)
    outputs = [(f"out{i + 1}", "positional_only", True) for i in range(ufunc.nout)]
    return _format(inputs + outputs + [("out", "keyword_only", True)] + keywords)


def signature_of_class(cls):
    """The constructor's signature: inspect for Python classes, the class docstring for Cython ones."""
    try:
        return _from_inspect(inspect.signature(cls))
    except (TypeError, ValueError):
        pass
    doc = (cls.__doc__ or "").strip().split("\n")[0]
    if doc.startswith(cls.__name__ + "("):
        return _from_docstring(doc, drop_first=False)
    init = (cls.__doc__ or "").strip().split("\n")[0]
    return _from_docstring(init, drop_first=True)


def describe_member(cls, name):
    raw = inspect.getattr_static(cls, name)
    if isinstance(raw, property) or type(raw).__name__ in ("getset_descriptor", "member_descriptor"):
        return ("property",)
    if isinstance(raw, (staticmethod, classmethod)):
        return ("method", signature_of(getattr(cls, name), drop_first=False))
    if callable(raw):
        return ("method", signature_of(raw, drop_first=True))
    return ("attribute",)


def public_names(obj):
    return sorted(name for name in dir(obj) if not name.startswith("_"))


# -- writing -------------------------------------------------------------------------------------
def generate():
    import importlib

    import cupy
    ufunc_type = cupy.ufunc
    modules, classes = {}, {}
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        entries = {}
        for name in public_names(module):
            entry = describe(module_name, name, getattr(module, name), ufunc_type)
            if entry is not None:
                entries[name] = entry
        modules[module_name] = entries
    for qualified in CLASSES:
        module_name, _, class_name = qualified.rpartition(".")
        cls = getattr(importlib.import_module(module_name), class_name)
        classes[qualified] = {name: describe_member(cls, name) for name in public_names(cls)}
        if qualified in INSTANCES:
            instance = getattr(cls, INSTANCES[qualified])
            classes[qualified].update({name: ("attribute",) for name in vars(instance) if not name.startswith("_")})
            classes[qualified] = dict(sorted(classes[qualified].items()))
    return cupy, modules, classes


def nccl_version():
    """'NCCL 23203 (nvidia-nccl-cu12 2.32.3)': the library cupy.cuda.nccl was read with; exits if none loads."""
    from importlib import metadata

    from cupy.cuda import nccl
    if not nccl.available:
        sys.exit('cupy.cuda.nccl cannot load the NCCL library: pip install "nvidia-nccl-cu12>=2.18.1,<3" first')
    try:
        wheel = f" (nvidia-nccl-cu12 {metadata.version('nvidia-nccl-cu12')})"
    except metadata.PackageNotFoundError:
        wheel = ""
    return f"NCCL {nccl.get_version()}{wheel}"


def render(cupy, modules, classes):
    lines = [
        f'"""Generated by tests/standin/generate_api.py from CuPy {cupy.__version__}: do not edit by hand.',
        "",
        f"Read from real CuPy {cupy.__version__} (NumPy {numpy.__version__}, Python "
        f"{sys.version.split()[0]}) on a machine without a GPU;",
        f"cupy.cuda.nccl with {nccl_version()} loaded (no GPU needed for that),",
        "its signatures from the first lines of its Cython docstrings.",
        "MODULES maps each module to its public names: (kind, details...). CLASSES maps each class",
        "to its public members. Signatures list parameter names only; '...' marks a default.",
        '"""',
        f"CUPY_VERSION = {cupy.__version__!r}",
        "",
        "MODULES = {",
    ]
    for module_name, entries in modules.items():
        lines.append(f"    {module_name!r}: {{")
        lines += [f"        {name!r}: {entry!r}," for name, entry in entries.items()]
        lines.append("    },")
    lines += ["}", "", "CLASSES = {"]
    for class_name, entries in classes.items():
        lines.append(f"    {class_name!r}: {{")
        lines += [f"        {name!r}: {entry!r}," for name, entry in entries.items()]
        lines.append("    },")
    lines += ["}", ""]
    return "\n".join(lines)


def main():
    cupy, modules, classes = generate()
    text = render(cupy, modules, classes)
    with open(OUTPUT, "w") as file:
        file.write(text)
    count = sum(map(len, modules.values())) + sum(map(len, classes.values()))
    print(f"wrote {OUTPUT}: {count} names from CuPy {cupy.__version__}")


if __name__ == "__main__":
    main()
