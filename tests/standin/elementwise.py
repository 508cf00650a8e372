"""CuPy's ufuncs (``cupy.add``, ``cupy.exp``...): one kernel per call.

Every CuPy ufunc whose NumPy namesake is a ufunc (``api.UFUNCS``; the inputs
and outputs are held to CuPy's by ``against_cupy.py``) gets a stand-in: the call is bound against
CuPy's signature (``x, /, out=None, *, casting=..., dtype=...``, so NumPy's
``where=``, ``order=``, ``subok=`` are TypeErrors), its operands are checked as
CuPy's kernels check them (see ``arrays.operand``), NumPy computes, and one
device operation is counted (none for an empty result: CuPy launches nothing).
A new output is C-contiguous, as CuPy allocates it, even where NumPy would
keep the inputs' layout: a channels-last input comes out channels-first.
"""
import sys

import numpy as np

from . import api, counters, cuda, ndarray as arrays


_KEYWORDS = {"out", "casting", "dtype"}  # what every CuPy ufunc's __call__ accepts (see its signature)


class ufunc:  # noqa: N801 (CuPy's name)
    """A CuPy ufunc, computed by NumPy's ufunc of the same name."""

    __module__ = "cupy"

    def __init__(self, qualified_name, signature_text, nin, nout, numpy_ufunc):
        self._qualified, self._signature, self._numpy = qualified_name, signature_text, numpy_ufunc
        self.nin, self.nout, self.nargs = nin, nout, nin + nout
        self.name = self.__name__ = "cupy_" + qualified_name.rpartition(".")[2]
        self.__doc__ = f"{qualified_name}{signature_text}: NumPy's {numpy_ufunc.__name__} on the stand-in."

    def __repr__(self):
        return f"<ufunc '{self.name}'>"

    def __getattr__(self, name):
        raise api.missing_member("cupy.ufunc", "ufunc", name)

    def __call__(self, *args, **kwargs):
        if not (self.nin <= len(args) <= self.nargs and kwargs.keys() <= _KEYWORDS):  # else bind says why
            api.bind(self._qualified, self._signature, args, kwargs)
        inputs, outputs = args[:self.nin], args[self.nin:]
        out = kwargs.get("out")
        if out is not None:
            outputs = out if isinstance(out, tuple) else (out,)
        for target in outputs:
            if not isinstance(target, arrays.ndarray):
                raise arrays.unsupported(target)
            cuda.check_current(target._device)
        operands = [arrays.operand(value) for value in inputs]
        options = {key: kwargs[key] for key in ("dtype", "casting") if kwargs.get(key) is not None} if kwargs else {}
        if outputs:
            self._numpy(*operands, out=tuple(target._data for target in outputs), **options)
            counters.record("device_ops", min(arrays._kernel_on_empty(t._data) for t in outputs))
            return outputs[0] if self.nout == 1 else tuple(outputs)
        result = self._numpy(*operands, **options)
        if self.nout == 1:
            result = arrays.c_ordered(result)
            counters.record("device_ops", arrays._kernel_on_empty(result))
            return arrays.new_array(result)
        results = [arrays.c_ordered(r) for r in result]
        counters.record("device_ops", arrays._kernel_on_empty(results[0]))
        return tuple(arrays.new_array(r) for r in results)

    # -- methods ---------------------------------------------------------------------------------
    def at(self, a, indices, b=None):
        """In place on the elements at ``indices`` (one scatter kernel); CuPy has it for add, maximum, minimum."""
        if self.name not in ("cupy_add", "cupy_maximum", "cupy_minimum"):
            raise NotImplementedError(f"`{self.name}.at` is not supported yet")
        arrays.scatter(a, indices, b, self._numpy.at)

    def reduce(self, array_, axis=0, dtype=None, out=None, keepdims=False):
        if self.name == "cupy_add":
            return array_.sum(axis, dtype, out, keepdims)
        if self.name == "cupy_multiply":
            return array_.prod(axis, dtype, out, keepdims)
        raise NotImplementedError(f"`{self.name}.reduce` is not supported yet")

    def accumulate(self, array_, axis=0, dtype=None, out=None):
        if self.name == "cupy_add":
            return array_.cumsum(axis, dtype, out)
        if self.name == "cupy_multiply":
            return array_.cumprod(axis, dtype, out)
        raise NotImplementedError(f"`{self.name}.accumulate` is not supported yet")

    def outer(self, A, B, **kwargs):  # noqa: N803 (CuPy's names)
        A, B = (x if isinstance(x, arrays.ndarray) else sys.modules["cupy"].array(x) for x in (A, B))
        return self(A.reshape(A.shape + (1,) * B.ndim), B.reshape((1,) * A.ndim + B.shape), **kwargs)


def build():
    """{name: ufunc} for CuPy's ufuncs (``api.UFUNCS``) that NumPy computes as a ufunc of the same name."""
    ufuncs = {}
    for name in api.UFUNCS:
        numpy_ufunc = getattr(np, name, None)
        if isinstance(numpy_ufunc, np.ufunc):
            nin, nout = numpy_ufunc.nin, numpy_ufunc.nout
            ufuncs[name] = ufunc(f"cupy.{name}", api.ufunc_signature(nin, nout), nin, nout, numpy_ufunc)
    return ufuncs
