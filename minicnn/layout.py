"""How activations lie in memory: NCHW shapes, stored channels-last.

Every op takes and returns arrays of shape (N, C, H, W), as PyTorch does; the
shape says what an index means. Where the values lie in memory is a separate
choice, which PyTorch calls the memory format. minicnn's convolutions store
their outputs **channels-last**: pixel by pixel, each pixel's C channels side
by side, the order an (N, H, W, C) array has (PyTorch's ``channels_last``).

The reason is the matrix product at the heart of a convolution (chapter 2).
It makes one row per output pixel, ``cols (N*OH*OW, kh*kw*C) @ weight.T``,
and its result (N*OH*OW, O) is the output channels-last. Returning it as it
is, viewed as (N, O, OH, OW),

    y2d.reshape(N, OH, OW, O).transpose(0, 3, 1, 2)     # no copy: only the strides change

saves a transpose after every convolution, forward and backward, and the next
convolution's im2col wants its input in that order anyway. (Products of this
shape also run faster in BLAS than the channel-major (O, N*OH*OW) ones.)

Ops that read their input element by element (ReLU, dropout) neither know nor
care on the CPU: NumPy keeps an input's memory order in its results. CuPy's
elementwise kernels do not (they allocate every output C-ordered), so on a GPU
those ops run over the input in its memory order (``kernels.fusion.in_memory_order``). Code that
wants one order asks for it with :func:`channels_last` or :func:`pixel_rows`,
which copy only when the array is not already stored that way.
"""
from .backend import get_array_module


def channels_last(x):
    """The values of ``x`` (N, C, H, W) as a C-contiguous (N, H, W, C) array.

    A view of ``x``'s own memory when ``x`` is stored channels-last (as
    :func:`minicnn.functional.conv2d` returns it), otherwise a copy.
    """
    return get_array_module(x).ascontiguousarray(x.transpose(0, 2, 3, 1))


def pixel_rows(x):
    """``x`` (N, C, H, W) as a 2-D (N*H*W, C) matrix: one row per pixel.

    A view whenever ``x`` is stored channels-last, even as a slice of channels
    (the rows then lie further apart than C, which matrix products accept);
    otherwise a copy.
    """
    return x.transpose(0, 2, 3, 1).reshape(-1, x.shape[1])


def from_channels_last(a):
    """(N, H, W, C) -> the same memory viewed as (N, C, H, W)."""
    return a.transpose(0, 3, 1, 2)


def is_channels_last(x):
    """True when ``x`` (N, C, H, W) lies in memory as a C-contiguous (N, H, W, C) array."""
    return x.transpose(0, 2, 3, 1).flags.c_contiguous
