"""ReLU's fast forms (plain twins: functional/activation.py).

CPU: NumPy's maximum split over minicnn's threads, and a numba pass for the
gradient. GPU: one kernel each, run in the input's memory order so that the
output keeps its layout (channels-last after a convolution).
"""
import numpy as np

from .chunks import flat_memory, jit, over_images, run_chunks
from .fusion import cp, fused, in_memory_order


# -- CPU ---------------------------------------------------------------------------------------
def relu_threads(x):
    """max(x, 0), as functional.activation's plain version; keeps x's layout."""
    return over_images(lambda x, out: np.maximum(x, x.dtype.type(0), out=out), np.empty_like(x), x)


@jit
def _relu_backward_loop(gy, y, gx, start, stop):
    for i in range(start, stop):
        gx[i] = gy[i] if y[i] > 0 else 0


def relu_backward_numba(gy, y):
    """gy * (y > 0), as functional.activation's plain version, in one pass where gy and y lie alike."""
    gx = np.empty_like(y)
    flat = [flat_memory(a) for a in (gy, y, gx)]
    if gy.strides != y.strides or any(f is None for f in flat):
        return over_images(lambda gy, y, out: np.multiply(gy, y > 0, out=out), gx, gy, y)
    run_chunks(y.size, 16384, _relu_backward_loop, *flat)
    return gx


# -- GPU ---------------------------------------------------------------------------------------
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

