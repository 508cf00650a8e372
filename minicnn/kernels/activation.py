"""The activations' fast forms: ReLU and SiLU (plain twins: functional/activation.py).

CPU: NumPy's maximum split over minicnn's threads, and numba passes over the
arrays' memory on the same threads. GPU: one kernel each, run in the input's
memory order so that the output keeps its layout (channels-last after a
convolution).
"""
import numpy as np

from . import host_memory
from .chunks import flat_memory, jit, over_images, run_chunks
from .fusion import cp, fused, in_memory_order


# -- ReLU: CPU --------------------------------------------------------------------------------
def relu_threads(x):
    """max(x, 0), as functional.activation's plain version; keeps x's layout."""
    return over_images(lambda x, out: np.maximum(x, x.dtype.type(0), out=out), host_memory.empty_like(x), x)


@jit
def _relu_backward_loop(gy, y, gx, start, stop):
    gy, y, gx = gy[start:stop], y[start:stop], gx[start:stop]  # see chunks.py: loop indices from 0 vectorise
    for i in range(gx.size):
        gx[i] = gy[i] if y[i] > 0 else 0


def relu_backward_numba(gy, y):
    """gy * (y > 0), as functional.activation's plain version, in one pass where gy and y lie alike."""
    gx = host_memory.empty_like(y)
    flat = [flat_memory(a) for a in (gy, y, gx)]
    if gy.strides != y.strides or any(f is None for f in flat):
        return over_images(lambda gy, y, out: np.multiply(gy, y > 0, out=out), gx, gy, y)
    run_chunks(y.size, 16384, _relu_backward_loop, *flat)
    return gx


# -- ReLU: GPU --------------------------------------------------------------------------------
def relu_fused(x):
    """max(x, 0): one ufunc, run in x's memory order so that the output keeps x's layout (channels-last
    after a convolution), where ``cupy.maximum(x, 0)`` would allocate it C-contiguous, channel-major."""
    return in_memory_order(cp().maximum, x, x, x.dtype.type(0))


@fused
def _relu_backward(gy, y):
    return gy * (y > 0)


def relu_backward_fused(gy, y):
    """``gy * (y > 0)`` in one kernel (twin: ReLUFunction.backward's array code).

    Laid out as y, the forward's output: after a convolution that is channels-last, which is what the
    convolution's backward wants (a gy from a pooling layer's backward may come channel-major).
    """
    return in_memory_order(_relu_backward, y, gy, y)


# -- SiLU: CPU --------------------------------------------------------------------------------
# sigmoid(x) = 1 / (1 + e) for x >= 0 and e / (1 + e) below, with e = exp(-|x|) <= 1: exp never overflows.
# Backward recomputes it from x: d/dx x * sigmoid(x) = s * (1 + x * (1 - s)).
@jit
def _silu_loop(x, y, start, stop):
    x, y = x[start:stop], y[start:stop]
    for i in range(y.size):
        e = np.exp(-abs(x[i]))
        y[i] = x[i] * ((1.0 if x[i] >= 0 else e) / (1.0 + e))


@jit
def _silu_backward_loop(gy, x, gx, start, stop):
    gy, x, gx = gy[start:stop], x[start:stop], gx[start:stop]
    for i in range(gx.size):
        e = np.exp(-abs(x[i]))
        s = (1.0 if x[i] >= 0 else e) / (1.0 + e)
        gx[i] = gy[i] * (s * (1.0 + x[i] * (1.0 - s)))


def _laid_out_as(like, a):
    """``a`` in an array of ``like``'s memory layout (a copy), so that both are read in one order."""
    out = host_memory.empty_like(like)
    out[...] = a
    return out


def silu_numba(x):
    """x * sigmoid(x), as functional.activation.silu_plain: one pass on minicnn's threads, in x's layout."""
    x = x if flat_memory(x) is not None else np.ascontiguousarray(x)  # a slice: its values, without gaps
    y = host_memory.empty_like(x)
    run_chunks(x.size, 16384, _silu_loop, flat_memory(x), flat_memory(y))
    return y


def silu_backward_numba(gy, x):
    """gy * silu'(x), as functional.activation.silu_backward_plain: one pass, laid out as x."""
    x = x if flat_memory(x) is not None else np.ascontiguousarray(x)
    gy = gy if gy.strides == x.strides else _laid_out_as(x, gy)
    gx = host_memory.empty_like(x)
    run_chunks(x.size, 16384, _silu_backward_loop, flat_memory(gy), flat_memory(x), flat_memory(gx))
    return gx


# -- SiLU: GPU --------------------------------------------------------------------------------
@fused
def _silu(x):
    e = cp().exp(-cp().abs(x))
    return x * (cp().where(x >= 0, 1.0, e) / (1.0 + e))


@fused
def _silu_backward(gy, x):
    e = cp().exp(-cp().abs(x))
    s = cp().where(x >= 0, 1.0, e) / (1.0 + e)
    return gy * (s * (1.0 + x * (1.0 - s)))


def silu_fused(x):
    """x * sigmoid(x) in one kernel, in x's memory order (twin: functional.activation.silu_plain)."""
    return in_memory_order(_silu, x, x)


def silu_backward_fused(gy, x):
    """gy * silu'(x) in one kernel, laid out as x (twin: functional.activation.silu_backward_plain)."""
    return in_memory_order(_silu_backward, x, gy, x)
