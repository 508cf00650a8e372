"""The convolution's fast forms: im2col, col2im and the matrix products (plain twins: functional/conv.py, winograd.py).

CPU: numba loops that read each input value once per tap that uses it, with
no padded copy, on minicnn's threads (:mod:`.chunks`), and the matrix product
in blocks on the same threads. GPU: im2col and col2im as one gather each
(:mod:`.gather`).
"""
import numpy as np

from . import host_memory
from ..geometry import conv_output_size
from ..layout import channels_last, from_channels_last
from .chunks import jit, rows_per_chunk, run_chunks
from .gather import as_images, coverage, gather_windows, sum_coverage
from .threads import blas_on_one_thread, chunk_bounds, parallel_for, split_matmuls, thread_count

# -- matrix products (CPU) ---------------------------------------------------------------------
_BLOCK = 128             # rows or columns of the result per chunk, at least
_INNER_BLOCK = 4096      # a product whose result is small is split along its inner dimension, in blocks this long


def _product_into(a, b, out, bias=None, relu=False):
    """out = a @ b (+ bias, then max(., 0) if ``relu``: while the block is still in cache). Silent about NaN
    and inf, as BLAS's own threads are (NumPy checks only its own thread)."""
    with np.errstate(all="ignore"):
        np.matmul(a, b, out=out)
        _epilogue(out, bias, relu)


def _epilogue(out, bias, relu):
    """out += bias (if any), then max(out, 0) if ``relu``, in place."""
    if bias is not None:
        out += bias
    if relu:
        np.maximum(out, out.dtype.type(0), out=out)


def matrix_product_threads(a, b, bias=None, out=None, relu=False):
    """a @ b (+ bias, added to every row; then max(., 0) if ``relu``) for 2-D arrays, into ``out`` if given, in
    blocks on minicnn's threads.

    BLAS runs on one thread meanwhile (:func:`.threads.blas_on_one_thread`),
    and on as many as before afterwards: NumPy's own products elsewhere keep
    their threads. Where BLAS's thread count cannot be set (another BLAS than
    OpenBLAS), or the pool has one thread, it is one BLAS call
    (:func:`.threads.split_matmuls`).

    A tall result is split into blocks of rows, a wide one into blocks of
    columns (each block reads the other operand whole, so the longer side is
    split). A small result with a
    long inner dimension (a weight gradient, summed over every pixel) is the
    sum of partial products over fixed blocks of that dimension, added up in
    order: the same result whatever the thread count.
    """
    if out is None:
        out = host_memory.empty((a.shape[0], b.shape[1]), dtype=np.result_type(a, b))
    if not split_matmuls():
        _product_into(a, b, out, bias, relu)
        return out
    with blas_on_one_thread():  # each block a one-thread BLAS call; BLAS's own threads would spin beside the pool's
        _split_product(a, b, out, bias, relu)
    return out


def batched_product(a, b, out=None):
    """out[k] = a[k] @ b[k] for stacks a (K, m, n), b (K, n, p) -> (K, m, p), one product per thread at a time.

    Each product is one :func:`_product_into` call on minicnn's threads, BLAS
    on one thread meanwhile, as in :func:`matrix_product_threads`. (Winograd's
    16 products: each is big enough to keep a core busy, and there are more
    of them than cores.)
    """
    if out is None:
        out = host_memory.empty((a.shape[0], a.shape[1], b.shape[2]), dtype=np.result_type(a, b))
    if not split_matmuls():
        _product_into(a, b, out)
        return out
    with blas_on_one_thread():
        parallel_for(len(a), lambda k: _product_into(a[k], b[k], out[k]))
    return out


def _split_product(a, b, out, bias, relu):
    rows, inner = a.shape
    cols = b.shape[1]
    if max(rows, cols) < 2 * _BLOCK and inner < 2 * _INNER_BLOCK:
        _product_into(a, b, out, bias, relu)
        return
    if rows >= max(cols, 2 * _BLOCK):
        blocks = [slice(*chunk) for chunk in chunk_bounds(rows, _BLOCK)]
        parallel_for(len(blocks), lambda i: _product_into(a[blocks[i]], b, out[blocks[i]], bias, relu))
    elif cols >= 2 * _BLOCK:
        blocks = [slice(*chunk) for chunk in chunk_bounds(cols, _BLOCK)]
        parallel_for(len(blocks), lambda i: _product_into(a, b[:, blocks[i]], out[:, blocks[i]],
                                                          None if bias is None else bias[blocks[i]], relu))
    else:
        blocks = [slice(start, start + _INNER_BLOCK) for start in range(0, inner, _INNER_BLOCK)]
        partial = host_memory.empty((len(blocks), rows, cols), dtype=out.dtype)
        parallel_for(len(blocks), lambda i: _product_into(a[:, blocks[i]], b[blocks[i]], partial[i]))
        np.sum(partial, axis=0, out=out)
        _epilogue(out, bias, relu)


# -- im2col and col2im (CPU) ---------------------------------------------------------------------
@jit
def _im2col(x, kh, kw, sh, sw, ph, pw, oh, cols, first_row, start, stop):
    """Rows start..stop of output pixels (image b, output row y) into cols (rows, OW, kh, kw, C), whose row 0
    is row ``first_row``."""
    n, h, w, c = x.shape
    ow = cols.shape[1]
    for row in range(start, stop):
        b, y = row // oh, row % oh
        dst = cols[row - first_row]
        for q in range(ow):
            for i in range(kh):
                r = y * sh - ph + i
                for j in range(kw):
                    s = q * sw - pw + j
                    if 0 <= r < h and 0 <= s < w:
                        for ch in range(c):
                            dst[q, i, j, ch] = x[b, r, s, ch]
                    else:
                        for ch in range(c):
                            dst[q, i, j, ch] = 0


def im2col_numba(x, kernel, stride, padding):
    """x (N, C, H, W) -> rows (N*OH*OW, kh*kw*C); see functional.conv.im2col."""
    (n, c, h, w), (kh, kw) = x.shape, kernel
    oh, ow = conv_output_size(h, kh, stride[0], padding[0]), conv_output_size(w, kw, stride[1], padding[1])
    cols = host_memory.empty((n * oh, ow, kh, kw, c), dtype=x.dtype)
    run_chunks(n * oh, rows_per_chunk(ow * kh * kw * c), _im2col, channels_last(x), kh, kw, *stride, *padding,
               oh, cols, 0)
    return cols.reshape(n * oh * ow, kh * kw * c)


# The rows one thread unfolds at a time: well inside the L3 cache, as Winograd's chunks. Smaller blocks make
# more, smaller products, each paying for BLAS's packing of the weights (5x5 layers of GoogLeNet: 1 MB blocks
# ran ~10% slower, 256 KB ones 1.3-1.8x); the whole rows at once, 2-2.5x.
_UNFOLD_BYTES = 4 << 20


def unfolded_product_numba(x, kernel, stride, padding, b, bias=None, relu=False):
    """im2col(x) @ b (+ bias, then max(., 0) if ``relu``) -> (N*OH*OW, O), as functional.conv.unfolded_product_plain,
    without ever making the rows whole.

    The rows are kh*kw times the input: made whole, they go out to memory and
    come back for the product, which for a thin layer (a 5x5 convolution from
    16 channels to 32: 52 MB of rows at batch 32) takes longer than the
    multiplications. Here each thread unfolds a few megabytes of rows at a
    time and multiplies them at once, while they are still in cache.
    """
    (n, c, h, w), (kh, kw) = x.shape, kernel
    oh, ow = conv_output_size(h, kh, stride[0], padding[0]), conv_output_size(w, kw, stride[1], padding[1])
    out = host_memory.empty((n * oh * ow, b.shape[1]), dtype=np.result_type(x, b))
    pixels, inner = channels_last(x), kh * kw * c
    rows = n * oh  # rows of output pixels (image, output row)
    step = max(1, _UNFOLD_BYTES // (ow * inner * x.itemsize))  # of them per unfolding
    bounds = chunk_bounds(rows, min(step, max(1, rows // thread_count())))  # at least a chunk per thread

    def chunk(i):
        start, stop = bounds[i]
        cols = host_memory.empty((min(step, stop - start), ow, kh, kw, c), dtype=x.dtype)
        for first in range(start, stop, step):
            last = min(first + step, stop)
            _im2col(pixels, kh, kw, *stride, *padding, oh, cols, first, first, last)
            _product_into(cols[:last - first].reshape(-1, inner), b, out[first * ow:last * ow], bias, relu)

    with blas_on_one_thread():
        parallel_for(len(bounds), chunk)
    return out


@jit
def _col2im(cols, kh, kw, sh, sw, ph, pw, gx, start, stop):
    n, h, w, c = gx.shape
    oh, ow = cols.shape[1], cols.shape[2]
    for b in range(start, stop):  # each image owns its plane of gx: no two threads add to one pixel
        gx[b] = 0
        for i in range(kh):
            for j in range(kw):  # taps in the plain version's order
                for y in range(oh):
                    r = y * sh - ph + i
                    if r < 0 or r >= h:
                        continue
                    for q in range(ow):
                        s = q * sw - pw + j
                        if 0 <= s < w:
                            for ch in range(c):
                                gx[b, r, s, ch] += cols[b, y, q, i, j, ch]


def col2im_numba(cols, x_shape, kernel, stride, padding):
    """rows (N*OH*OW, kh*kw*C) -> (N, C, H, W) stored channels-last, adding overlaps; see functional.conv.col2im."""
    (n, c, h, w), (kh, kw) = x_shape, kernel
    oh, ow = conv_output_size(h, kh, stride[0], padding[0]), conv_output_size(w, kw, stride[1], padding[1])
    gx = host_memory.empty((n, h, w, c), dtype=cols.dtype)
    run_chunks(n, 1, _col2im, np.ascontiguousarray(cols).reshape(n, oh, ow, kh, kw, c), kh, kw, *stride,
                *padding, gx)
    return from_channels_last(gx)


# -- im2col and col2im (GPU) ---------------------------------------------------------------------
def im2col_gather(x, kernel, stride, padding):
    """x (N, C, H, W) -> rows (N*OH*OW, kh*kw*C), as functional.conv.im2col_strided. 1-2 launches (+1
    copy if x is not channels-last)."""
    n, c, h, w = x.shape
    out = conv_output_size(h, kernel[0], stride[0], padding[0]), conv_output_size(w, kernel[1], stride[1], padding[1])
    return gather_windows(x, out, kernel, stride, padding, 0).reshape(n * out[0] * out[1], -1)


def col2im_gather(cols, x_shape, kernel, stride, padding):
    """rows (N*OH*OW, kh*kw*C) -> (N, C, H, W) stored channels-last, adding overlaps in tap order, as
    functional.conv.col2im_strided. 3 launches."""
    n, c, h, w = x_shape
    out = conv_output_size(h, kernel[0], stride[0], padding[0]), conv_output_size(w, kernel[1], stride[1], padding[1])
    plan = coverage(x_shape, cols, out, kernel, stride, padding)
    return as_images(sum_coverage(cols.reshape(n, -1, c), plan.row, plan.outside, x_shape, kernel), n, h, w)

