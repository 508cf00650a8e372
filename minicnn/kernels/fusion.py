"""What the GPU's fused forms share: several elementwise steps as ONE kernel each, with ``cupy.fuse``.

On a GPU every array operation is a kernel launch with a fixed cost of a few
microseconds, however small the array. Batch norm written as plain array code
(:func:`minicnn.functional.normalization.batch_norm_forward_plain`) launches
about twenty kernels per layer forward; the fused form
(:mod:`.normalization`) launches three. Each fused form does the job of a plain
twin in :mod:`minicnn.functional` or :mod:`minicnn.optim` (named in its
docstring), which stays the reference: the tests hold one to the other on the
CuPy stand-in, gradients included.

``cupy.fuse`` compiles a Python function, traced once per argument signature,
into one CUDA kernel. What CuPy's (default, "old") fusion accepts shapes the
fused forms (the stand-in in tests/standin/fusion.py enforces it):

* arguments are device arrays and scalars; the function sees them through
  *variables* that support operators, CuPy's ufuncs and ``cupy.where``, but no
  methods, indexing or reshaping: views (``[:, None]``, transposes) are made
  before the call, and they cost nothing;
* at most one reduction (``cupy.sum(..., axis=...)``), over the broadcast
  shape of all the arguments, and after it only the reduced values and
  constants: a kernel that reduces returns sums, and another kernel uses them;
* outputs are new C-contiguous arrays of the broadcast shape, so each call
  runs in the memory order of its input (:func:`in_memory_order`): a channels-last
  activation gives a channels-last result, as the plain code's would be;
* Python floats are weak scalars (``float32 * 0.5`` stays float32), but an
  operation on scalars alone makes a float64 one: scalars are combined on the
  host, before the call.

A flag such as Nesterov cannot be an argument (a variable has no truth value):
each variant is its own fused function. None can: the traced Python code sees
None and takes its branch (batch norm's optional ReLU mask).
"""
import functools
import sys

import numpy as np

from ..backend import is_gpu_array


def fused(function):
    """``function`` as a ``cupy.fuse`` kernel, made on the first call (CuPy is imported by then).

    The kernel then takes this wrapper's place in the function's module, so that later calls go to it
    directly (and the CuPy stand-in charges each one to the line that makes it).
    """
    @functools.wraps(function)
    def first_call(*args):
        kernel = sys.modules["cupy"].fuse(kernel_name=function.__name__)(function)
        setattr(sys.modules[function.__module__], function.__name__, kernel)
        return kernel(*args)
    return first_call


def cp():
    """The cupy module (imported by then: a fused form runs only on CuPy arrays)."""
    return sys.modules["cupy"]


def memory_axes(a):
    """The axes of ``a`` from the slowest-varying in memory to the fastest."""
    return tuple(sorted(range(a.ndim), key=lambda axis: -abs(a.strides[axis])))


def in_memory_order(kernel, like, *args):
    """``kernel(*args)`` run over the elements in the memory order of ``like``; arrays in ``args`` have its shape.

    A fused kernel's outputs are C-contiguous: running it on transposed views,
    and transposing its outputs back, gives them ``like``'s layout.
    """
    axes = memory_axes(like)
    inverse = tuple(int(i) for i in np.argsort(axes))
    result = kernel(*(a.transpose(axes) if is_gpu_array(a) else a for a in args))
    if isinstance(result, tuple):
        return tuple(r.transpose(inverse) for r in result)
    return result.transpose(inverse)
