"""Concatenation along the channels and its backward, the split, as fast forms (plain twins: functional/shape.py).

Both lay their results out channels-last, as convolutions want their input:
an inception block's output feeds 1x1 convolutions, which then read it as
pixel rows without a copy.
"""
import numpy as np

from . import host_memory
from ..backend import get_array_module
from ..layout import from_channels_last, pixel_rows
from .chunks import jit, rows_per_chunk, run_chunks


# -- CPU ---------------------------------------------------------------------------------------
@jit
def _concat_rows(parts, offsets, out, start, stop):
    for p in range(start, stop):  # one pixel: each part's channels land side by side in out's row
        for i in range(len(parts)):
            source = parts[i][p]
            target = out[p, offsets[i]:offsets[i] + source.size]  # see chunks.py: loop indices from 0 vectorise
            for ch in range(source.size):
                target[ch] = source[ch]


def concat_channels_numba(*arrays):
    """np.concatenate(arrays, axis=1) for arrays (N, C_i, H, W); the result is stored channels-last."""
    n, _, h, w = arrays[0].shape
    rows = tuple(pixel_rows(a) for a in arrays)  # views of inputs stored channels-last
    widths = [r.shape[1] for r in rows]
    out = host_memory.empty((n * h * w, sum(widths)), dtype=arrays[0].dtype)
    run_chunks(out.shape[0], rows_per_chunk(out.shape[1]), _concat_rows, rows, np.cumsum([0] + widths[:-1]), out)
    return from_channels_last(out.reshape(n, h, w, -1))


@jit
def _split_rows(x, offsets, parts, start, stop):
    for p in range(start, stop):  # the mirror of _concat_rows
        for i in range(len(parts)):
            target = parts[i][p]
            source = x[p, offsets[i]:offsets[i] + target.size]
            for ch in range(target.size):
                target[ch] = source[ch]


def split_channels_numba(x, sizes):
    """x (N, C, H, W) cut along the channels into pieces of ``sizes``, each its own array stored channels-last.

    The plain version hands out views of x; separate dense pieces cost one pass
    but let every op after them (ReLU's backward first) read plain rows.
    """
    n, _, h, w = x.shape
    parts = tuple(host_memory.empty((n * h * w, size), dtype=x.dtype) for size in sizes)
    rows = pixel_rows(x)
    run_chunks(rows.shape[0], rows_per_chunk(rows.shape[1]), _split_rows, rows, np.cumsum([0] + list(sizes[:-1])),
                parts)
    return [from_channels_last(part.reshape(n, h, w, -1)) for part in parts]


# -- GPU ---------------------------------------------------------------------------------------
def concat_channels_gpu(*arrays):
    """concatenate(arrays, axis=1) for arrays (N, C_i, H, W), stored channels-last. One copy per array.

    As many launches as ``cupy.concatenate``, whose result is channels-first; this
    one lies as convolutions want their input, so the ops after it (1x1
    convolutions read it as pixel rows) need no copy of their own.
    """
    n, _, h, w = arrays[0].shape
    out = get_array_module(*arrays).empty((n, h, w, sum(a.shape[1] for a in arrays)), dtype=arrays[0].dtype)
    start = 0
    for a in arrays:
        out[..., start:start + a.shape[1]] = a.transpose(0, 2, 3, 1)
        start += a.shape[1]
    return from_channels_last(out)

