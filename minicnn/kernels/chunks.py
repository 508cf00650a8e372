"""What the CPU's fast forms share: numba's compiler settings, chunks on the thread pool, pixel rows.

Each fast CPU form does the same job as its op's plain twin, and the tests hold
them to it. What makes them faster: one pass over memory instead of one per
kernel tap, no padded copies (taps in the padding are skipped), and all cores
at work (NumPy uses one for everything but matrix products).

Layout: the forms take and return arrays of shape (N, C, H, W); inside, the
kernels work on the channels-last (N, H, W, C) memory that convolutions
produce (:mod:`minicnn.layout`). Their innermost loops run over channels,
which lie side by side, so LLVM turns them into vector instructions. It
does so only where it can tell that the innermost index is never negative:
numba wraps a negative index around (x[-1] is the last value), and the check
for that, made on every iteration, stops the vectorising. ``for i in
range(n)`` is never negative; ``range(start, stop)`` or ``offset + i`` might
be. So a kernel whose innermost loop would index with those first takes the
slice it works on (``x[start:stop]``, ``out[p, offset:offset + n]``) and loops
from 0: ReLU's backward ran 7x faster that way, the channel concatenation 3.5x.

Threads: each kernel runs over a range of rows (or images, or channels), and
the form hands out chunks of that range to minicnn's thread pool
(:mod:`.threads`). Chunks write disjoint outputs, and every output value is
computed by one thread in a fixed order, so results never depend on timing.
Where a sum over several taps or windows lands in one value, the kernels add
in the plain version's order, so that they agree bit for bit.
"""
import numpy as np
from numba import njit

from .threads import chunk_bounds, parallel_for

jit = njit(cache=True, nogil=True)


def run_chunks(total, min_size, kernel, *args):
    """kernel(*args, start, stop) for chunks of range(total), on the thread pool."""
    bounds = chunk_bounds(total, min_size)
    parallel_for(len(bounds), lambda chunk: kernel(*args, *bounds[chunk]))


def rows_per_chunk(row_size):
    """Rows per chunk so that a chunk handles at least ~16k values (less is all overhead)."""
    return max(1, 16384 // max(1, row_size))


def as_rows(x):
    """x (N, C, ...) as the C-contiguous (N*..., C) rows of its channels-last memory (one row per pixel)."""
    return np.ascontiguousarray(np.moveaxis(x, 1, -1)).reshape(-1, x.shape[1])


def from_rows(rows, shape):
    """(N*..., C) rows -> an array of ``shape`` (N, C, ...), stored channels-last."""
    return np.moveaxis(rows.reshape((shape[0],) + tuple(shape[2:]) + (shape[1],)), -1, 1)


def over_images(compute, out, *arrays):
    """compute(*chunks, out=out_chunk) for chunks of the first axis (images), on the threads.

    NumPy releases the GIL inside its loops, so the chunks run side by side,
    and every value comes out exactly as from one call over the whole arrays.
    """
    per_image = max(1, out.size // max(1, out.shape[0]))
    bounds = [slice(*chunk) for chunk in chunk_bounds(out.shape[0], max(1, 65536 // per_image))]
    parallel_for(len(bounds), lambda i: compute(*(a[bounds[i]] for a in arrays), out=out[bounds[i]]))
    return out


def flat_memory(a):
    """The 1-D view of a's memory, in memory order, or None when a has gaps (a slice)."""
    order = sorted(range(a.ndim), key=lambda axis: -a.strides[axis])
    dense = a.transpose(order)
    return dense.reshape(-1) if dense.flags.c_contiguous else None
