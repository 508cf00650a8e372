"""The API table: which names real CuPy has, and the signatures calls are bound against.

The table itself (``cupy_api.py``) is generated from a real CuPy install by
``generate_api.py``. This module turns it into checks:

* ``bind(qualified_name, args, kwargs)``: the call must fit CuPy's signature, so
  a NumPy-only keyword (``where=``, ``order=`` on a ufunc, ``initial=``...) is a
  TypeError here as it is on a GPU.
* ``StandinModule``: a module whose ``__getattr__`` answers, for a name the
  stand-in does not define, AttributeError if CuPy has no such name either (as
  a real module would) and NotImplementedError if CuPy has it (so that nothing
  silently differs: the stand-in needs to learn it).
* ``missing_member``: the same for attributes of the stand-in's classes.
"""
import ast
import inspect
import types

from . import cupy_api

VERSION = cupy_api.CUPY_VERSION
MODULES = cupy_api.MODULES
CLASSES = cupy_api.CLASSES
_signatures = {}


def signature(text):
    """inspect.Signature for a table signature such as '(a, axis=..., *, keepdims=...)'."""
    found = _signatures.get(text)
    if found is None:
        namespace = {}
        exec(f"def f{text}: pass", namespace)  # noqa: S102 (text comes from the generated table)
        found = _signatures[text] = inspect.signature(namespace["f"])
    return found


def table_signature(qualified_name):
    """The signature text of 'cupy.pad' or 'cupy.ndarray.sum' (module entry or class member)."""
    module, _, name = qualified_name.rpartition(".")
    entry = MODULES[module][name] if module in MODULES else CLASSES[module][name]
    return entry[1]


def bind(qualified_name, text, args, kwargs):
    """Check that ``args``/``kwargs`` fit CuPy's signature ``text``; TypeError naming the function if not."""
    try:
        return signature(text).bind(*args, **kwargs)
    except TypeError as error:
        raise TypeError(f"{qualified_name}(): {error}; CuPy {VERSION}'s signature is "
                        f"{qualified_name.rpartition('.')[2]}{text}") from None


def not_implemented(what):
    return NotImplementedError(f"{what} exists in CuPy {VERSION}, but the CuPy stand-in (tests/standin) "
                               "does not implement it: add it there (never silently differ from CuPy)")


def missing_member(class_key, owner_label, name):
    """The error for an attribute the stand-in's class lacks: NotImplementedError or AttributeError."""
    if name in CLASSES[class_key]:
        return not_implemented(f"{class_key}.{name}")
    return AttributeError(f"'{owner_label}' object has no attribute '{name}'")


def constant_value(text):
    """The value of a ('constant', text) entry: 'numpy.float32', '3.14', 'inf', 'None'..."""
    if text.startswith("numpy."):
        import numpy
        return getattr(numpy, text[len("numpy."):])
    if text.lstrip("-") in ("inf", "nan"):
        return float(text)
    return ast.literal_eval(text)


class StandinModule(types.ModuleType):
    """A module with exactly the public names of one CuPy module (``table``)."""

    def __init__(self, name, table, doc):
        super().__init__(name, doc)
        self._table = table

    def __getattr__(self, name):  # only reached for names not set on the module
        if name.startswith("__"):  # module protocol (__path__, __wrapped__...): not an API name
            raise AttributeError(f"module '{self.__name__}' has no attribute '{name}'")
        if name in MODULES[self._table]:
            raise not_implemented(f"{self.__name__}.{name}")
        raise AttributeError(f"module '{self.__name__}' has no attribute '{name}'")

    def __dir__(self):
        return sorted(MODULES[self._table])

    def define(self, name, value):
        """Set ``name``, which must be one of CuPy's names (a stand-in that invents API is a bug)."""
        if name not in MODULES[self._table]:
            raise AssertionError(f"the stand-in defines {self.__name__}.{name}, which CuPy {VERSION} lacks")
        setattr(self, name, value)

