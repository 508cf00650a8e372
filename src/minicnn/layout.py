"""How activations lie in memory: NCHW shapes, stored channel-major.

Every op takes and returns arrays of shape (N, C, H, W), as PyTorch does; the
shape says what an index means. Where the values lie in memory is a separate
choice (PyTorch calls it the memory format). minicnn's convolutions store their
outputs **channel-major**: all N images of channel 0, then channel 1, and so on,
which is the order a (C, N, H, W) array would have. The reason is the matrix
product at the heart of a convolution (chapter 2): it computes all images at
once as a (C, N*H*W) matrix, and the next convolution's im2col wants its input
in that same order. Returning the product as it is, viewed as (N, C, H, W),

    y2d.reshape(C, N, H, W).transpose(1, 0, 2, 3)     # no copy: only the strides change

saves a transpose after every convolution, forward and backward.

Ops that read their input element by element (ReLU, pooling, batch norm)
neither know nor care; NumPy and CuPy keep an input's memory order in their
results. Code that wants one order asks for it with :func:`channel_major`,
which copies only when the array is not already stored that way.
"""
from .backend import get_array_module


def channel_major(x):
    """The values of ``x`` (N, C, ...) as a C-contiguous (C, N, ...) array.

    A view of ``x``'s own memory when ``x`` is stored channel-major (as
    :func:`minicnn.functional.conv2d` returns it), otherwise a copy.
    """
    return get_array_module(x).ascontiguousarray(x.swapaxes(0, 1))


def is_channel_major(x):
    """True when ``x`` (N, C, ...) lies in memory as a C-contiguous (C, N, ...) array."""
    return x.swapaxes(0, 1).flags.c_contiguous
