"""Matrix products (cuBLAS on a GPU) and TF32.

TF32. Real CuPy reads ``CUPY_TF32`` once per process, at its first float32
matrix product (``int(os.getenv('CUPY_TF32', '0')) > 0``), and from then on
every float32 product rounds its inputs to TF32 (a 10-bit mantissa, relative
error ~5e-4) before multiplying. The stand-in does the same: the first float32
product decides, later changes of the variable change nothing, and with TF32
on both inputs are rounded (to nearest, ties to even) before NumPy multiplies.
So the tolerance problems TF32 causes on a GPU show up here too.

Counts follow CuPy's implementation:
* a 2-D product (``dot``, ``matmul``, ``tensordot`` after reshaping, ``@``) is
  one gemm, plus one copy per operand that is neither C- nor F-contiguous (cuBLAS
  takes either, transposed views included) or that needs a cast;
* a batched ``matmul`` (3-D or more) makes each operand C-contiguous (a copy if
  it is not), then runs one strided-batched gemm; when one operand is broadcast
  over the batch (a 2-D weight against a batch of matrices) CuPy instead builds
  three arrays of matrix pointers (one kernel per batch axis each) for a
  pointer-batched gemm.
"""
import os

import numpy as np

from . import api, counters
from .ndarray import ndarray, new_array, operand, unsupported


class _TF32:
    enabled = None  # None until the first float32 product reads CUPY_TF32


tf32 = _TF32()


def tf32_enabled():
    """Whether float32 products use TF32: decided once, at the first float32 product."""
    if tf32.enabled is None:
        tf32.enabled = int(os.getenv("CUPY_TF32", "0")) > 0
    return tf32.enabled


def round_to_tf32(values):
    """float32 values rounded to TF32's 10-bit mantissa (to nearest, ties to even), still float32."""
    bits = np.array(values, dtype=np.float32).view(np.uint32)  # a copy, rounded in place
    lowest_kept = bits >> 13
    lowest_kept &= 1
    bits += 0x0FFF
    bits += lowest_kept  # 0x1000 when the kept part is odd: ties go to even
    bits &= 0xFFFFE000  # drop the 13 low mantissa bits
    return bits.view(np.float32)


def _prepare(a, b):
    """Operands as NumPy arrays, rounded to TF32 when that is on and the product is float32."""
    a, b = operand(a), operand(b)
    if np.result_type(a, b) == np.float32 and tf32_enabled():
        a, b = round_to_tf32(a), round_to_tf32(b)
    return a, b


def _matrix_copies(*matrices):
    """cuBLAS takes C- or F-contiguous matrices; CuPy copies any other operand first."""
    return sum(0 if m.flags.c_contiguous or m.flags.f_contiguous else 1 for m in matrices if m.ndim == 2)


def _casts(result_dtype, *operands):
    return sum(1 for x in operands if isinstance(x, np.ndarray) and x.dtype != result_dtype)


def _check_arrays(*values):
    for value in values:
        if not isinstance(value, ndarray):
            raise unsupported(value)


def _batched_cost(a, b):
    ndim = max(a.ndim, b.ndim)
    copies = sum(0 if x.flags.c_contiguous else 1 for x in (a, b))
    broadcast = a.ndim != b.ndim or any(x != y and 1 in (x, y) for x, y in zip(a.shape[:-2], b.shape[:-2]))
    return copies + (3 * (ndim - 2) + 1 if broadcast else 1)


def _finish(result, out, cost):
    counters.record("device_ops", cost)
    if out is None:
        return new_array(np.asarray(result))
    if not isinstance(out, ndarray):
        raise unsupported(out)
    operand(out)[...] = result
    return out


def dot(a, b, out=None):
    """cupy.dot: one gemm for matrices (plus CuPy's copies), one kernel for vectors."""
    api.bind("cupy.dot", api.table_signature("cupy.dot"), (a, b, out), {})
    _check_arrays(a, b)
    a_np, b_np = _prepare(a, b)
    result = np.dot(a_np, b_np)
    cost = 1 + _matrix_copies(a._data, b._data) + _casts(np.asarray(result).dtype, a._data, b._data)
    return _finish(result, out, cost)


def matmul(*args, **kwargs):
    """cupy.matmul (and ``@``): out= and dtype= are supported; CuPy's gufunc keywords beyond them are not."""
    api.bind("cupy.matmul", api.table_signature("cupy.matmul"), args, kwargs)
    if len(args) != 2:
        raise TypeError(f"cupy.matmul takes 2 positional arguments, got {len(args)}")
    others = sorted(set(kwargs) - {"out", "dtype"})
    if others:
        raise api.not_implemented(f"cupy.matmul({', '.join(others)}=)")
    a, b = args
    _check_arrays(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("Scalar operands are not allowed, use '*' instead")
    a_np, b_np = _prepare(a, b)
    result = np.matmul(a_np, b_np, dtype=kwargs.get("dtype"))
    if max(a.ndim, b.ndim) <= 2:
        cost = 1 + _matrix_copies(a._data, b._data) + _casts(result.dtype, a._data, b._data)
    else:
        cost = _batched_cost(a._data, b._data)
    return _finish(result, kwargs.get("out"), cost)


def tensordot(a, b, axes=2):
    """cupy.tensordot: the summed axes moved together and each operand reshaped to a matrix (a copy
    when the reshape needs one), then one gemm."""
    api.bind("cupy.tensordot", api.table_signature("cupy.tensordot"), (a, b, axes), {})
    _check_arrays(a, b)
    a_np, b_np = _prepare(a, b)
    if isinstance(axes, int):
        a_axes, b_axes = list(range(a.ndim - axes, a.ndim)), list(range(axes))
    else:
        a_axes, b_axes = ([axes] if isinstance(axes, int) else list(axis) for axis in axes)
    result = np.tensordot(a_np, b_np, axes=(a_axes, b_axes))
    cost = 1
    for data, summed in ((a._data, a_axes), (b._data, b_axes)):
        moved = np.moveaxis(data, summed, list(range(len(summed))))
        matrix = moved.reshape(int(np.prod([data.shape[i] for i in summed])), -1)
        cost += int(not np.shares_memory(matrix, data) or _matrix_copies(matrix) > 0)  # one copy at most
    return _finish(result, None, cost)


def inner(a, b):
    _check_arrays(a, b)
    api.bind("cupy.inner", api.table_signature("cupy.inner"), (a, b), {})
    a_np, b_np = _prepare(a, b)
    return _finish(np.inner(a_np, b_np), None, 1)


def vdot(a, b):
    _check_arrays(a, b)
    api.bind("cupy.vdot", api.table_signature("cupy.vdot"), (a, b), {})
    a_np, b_np = _prepare(a, b)
    return _finish(np.vdot(a_np, b_np), None, 1)


FUNCTIONS = {"dot": dot, "matmul": matmul, "tensordot": tensordot, "inner": inner, "vdot": vdot}
