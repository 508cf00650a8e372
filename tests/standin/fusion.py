"""``cupy.fuse`` on the stand-in: the function runs on the device arrays, and a call counts as one device operation.

What CuPy's fusion makes of a function (its tracing, the kernel it generates,
that NVRTC compiles it, and that it never falls back to the experimental
fusion) is proven on real CuPy: tests/test_real_cupy.py, over tests/fakecuda.
The stand-in keeps CuPy's rules for the arguments (device arrays on the current
device, scalars, None; a NumPy array is host memory, refused) and runs the
numbers: the function's steps are the stand-in's own operations, whose outputs
are new C-ordered arrays as a fused kernel's are.
"""
import functools

import numpy as np

from . import api, counters, cuda
from .ndarray import ndarray, new_array

_PYTHON_SCALARS = (bool, int, float, complex)


def _complex_part(name):
    def part(val):
        """cupy.real / cupy.imag: ``val.real`` (``val.imag``): a view, no kernel."""
        if not isinstance(val, ndarray):
            raise api.not_implemented(f"cupy.{name} of a {type(val).__name__} (CuPy uploads it first)")
        return getattr(val, name)
    part.__name__ = part.__qualname__ = name
    return part


COMPLEX_PARTS = {"real": _complex_part("real"), "imag": _complex_part("imag")}


class Fusion:
    """What ``cupy.fuse`` returns: calling it runs the function as one kernel."""

    __module__ = "cupy._core.fusion"

    def __init__(self, func, name=None):
        self.func, self.name = func, name or func.__name__
        self.new_fusion = None  # CuPy's experimental fusion, where it falls back to it (never on the stand-in)

    def __repr__(self):
        return f"<Fusion '{self.name}'>"

    def __call__(self, *args):
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
        empty = 0 in np.broadcast_shapes(*(a.shape for a in arrays))
        with counters.one_operation(0 if empty else 1):
            returned = self.func(*args)
        if isinstance(returned, tuple):
            return tuple(self._own(r, arrays) for r in returned)
        return self._own(returned, arrays)

    @staticmethod
    def _own(value, arrays):
        """An output that is an argument itself becomes a copy: a kernel's outputs are new arrays."""
        if any(value is a for a in arrays):
            return new_array(np.array(value._data, order="C"))
        return value


def fuse(*args, **kwargs):
    """``cupy.fuse(f)``, ``cupy.fuse()(f)``, ``cupy.fuse(kernel_name=...)(f)``: f as one kernel (see the module)."""
    def wrap(f, kernel_name=None):
        return functools.update_wrapper(Fusion(f, kernel_name), f)

    if len(args) == 1 and not kwargs and callable(args[0]):
        return wrap(args[0])
    return lambda f: wrap(f, *args, **kwargs)
