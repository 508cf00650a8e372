"""Fast CPU twins of the hot ops: numba kernels and NumPy split over threads.

Each one does the same job as its plain twin in :mod:`minicnn.functional`
(``im2col_strided``, ``max_pool2d_strided``, ``lrn_forward_plain``...), and the
tests hold them to it. What makes them faster: one pass over memory instead of
one per kernel tap, no padded copies (taps in the padding are skipped), and
all cores at work (NumPy uses one for everything but matrix products).

Layout: the wrappers take and return arrays of shape (N, C, H, W); inside, the
kernels work on the channels-last (N, H, W, C) memory that convolutions
produce (:mod:`minicnn.layout`). Their innermost loops run over channels,
which lie side by side, so LLVM turns them into vector instructions.

Threads: each kernel runs over a range of rows (or images, or channels), and
the wrapper hands out chunks of that range to minicnn's thread pool
(:mod:`.threads`). Chunks write disjoint outputs, and every output value is
computed by one thread in a fixed order, so results never depend on timing.
Where a sum over several taps or windows lands in one value, the kernels add
in the plain version's order, so that they agree bit for bit.
"""
import numpy as np
from numba import njit

from ..geometry import conv_output_size, pool_geometry
from ..layout import channels_last, from_channels_last, pixel_rows
from . import host_memory
from .threads import blas_on_one_thread, chunk_bounds, parallel_for, split_matmuls

_jit = njit(cache=True, nogil=True)


def _run_chunks(total, min_size, kernel, *args):
    """kernel(*args, start, stop) for chunks of range(total), on the thread pool."""
    bounds = chunk_bounds(total, min_size)
    parallel_for(len(bounds), lambda chunk: kernel(*args, *bounds[chunk]))


def _rows_per_chunk(row_size):
    """Rows per chunk so that a chunk handles at least ~16k values (less is all overhead)."""
    return max(1, 16384 // max(1, row_size))


# -- matrix products -------------------------------------------------------------------------
_BLOCK = 128             # rows or columns of the result per chunk, at least
_INNER_BLOCK = 4096      # a product whose result is small is split along its inner dimension, in blocks this long


def _product_into(a, b, out, bias=None):
    """out = a @ b (+ bias). Silent about NaN and inf, as BLAS's own threads are (NumPy checks only its own thread)."""
    with np.errstate(all="ignore"):
        np.matmul(a, b, out=out)
        if bias is not None:
            out += bias


def matrix_product(a, b, bias=None, out=None):
    """a @ b (+ bias, added to every row) for 2-D arrays, into ``out`` if given, in blocks on minicnn's threads.

    BLAS runs on one thread meanwhile (:func:`.threads.blas_on_one_thread`),
    and on as many as before afterwards. Where BLAS's thread count cannot be
    set (another BLAS than OpenBLAS), or the pool has one thread, it is one
    BLAS call (:func:`.threads.split_matmuls`).
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
        _product_into(a, b, out, bias)
        return out
    with blas_on_one_thread():  # each block a one-thread BLAS call; BLAS's own threads would spin beside the pool's
        _split_product(a, b, out, bias)
    return out


def _split_product(a, b, out, bias):
    rows, inner = a.shape
    cols = b.shape[1]
    if max(rows, cols) < 2 * _BLOCK and inner < 2 * _INNER_BLOCK:
        _product_into(a, b, out, bias)
        return
    if rows >= max(cols, 2 * _BLOCK):
        blocks = [slice(*chunk) for chunk in chunk_bounds(rows, _BLOCK)]
        parallel_for(len(blocks), lambda i: _product_into(a[blocks[i]], b, out[blocks[i]], bias))
    elif cols >= 2 * _BLOCK:
        blocks = [slice(*chunk) for chunk in chunk_bounds(cols, _BLOCK)]
        parallel_for(len(blocks), lambda i: _product_into(a, b[:, blocks[i]], out[:, blocks[i]],
                                                          None if bias is None else bias[blocks[i]]))
    else:
        blocks = [slice(start, start + _INNER_BLOCK) for start in range(0, inner, _INNER_BLOCK)]
        partial = host_memory.empty((len(blocks), rows, cols), dtype=out.dtype)
        parallel_for(len(blocks), lambda i: _product_into(a[:, blocks[i]], b[blocks[i]], partial[i]))
        np.sum(partial, axis=0, out=out)
        if bias is not None:
            out += bias


# -- im2col and col2im -----------------------------------------------------------------------
@_jit
def _im2col(x, kh, kw, sh, sw, ph, pw, cols, start, stop):
    n, h, w, c = x.shape
    oh, ow = cols.shape[1], cols.shape[2]
    for row in range(start, stop):  # one row of output pixels: image b, output row y
        b, y = row // oh, row % oh
        for q in range(ow):
            for i in range(kh):
                r = y * sh - ph + i
                for j in range(kw):
                    s = q * sw - pw + j
                    if 0 <= r < h and 0 <= s < w:
                        for ch in range(c):
                            cols[b, y, q, i, j, ch] = x[b, r, s, ch]
                    else:
                        for ch in range(c):
                            cols[b, y, q, i, j, ch] = 0


def im2col(x, kernel, stride, padding):
    """x (N, C, H, W) -> rows (N*OH*OW, kh*kw*C); see functional.conv.im2col."""
    (n, c, h, w), (kh, kw) = x.shape, kernel
    oh, ow = conv_output_size(h, kh, stride[0], padding[0]), conv_output_size(w, kw, stride[1], padding[1])
    cols = host_memory.empty((n, oh, ow, kh, kw, c), dtype=x.dtype)
    _run_chunks(n * oh, _rows_per_chunk(ow * kh * kw * c), _im2col, channels_last(x), kh, kw, *stride, *padding,
                cols)
    return cols.reshape(n * oh * ow, kh * kw * c)


@_jit
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


def col2im(cols, x_shape, kernel, stride, padding):
    """rows (N*OH*OW, kh*kw*C) -> (N, C, H, W) stored channels-last, adding overlaps; see functional.conv.col2im."""
    (n, c, h, w), (kh, kw) = x_shape, kernel
    oh, ow = conv_output_size(h, kh, stride[0], padding[0]), conv_output_size(w, kw, stride[1], padding[1])
    gx = host_memory.empty((n, h, w, c), dtype=cols.dtype)
    _run_chunks(n, 1, _col2im, np.ascontiguousarray(cols).reshape(n, oh, ow, kh, kw, c), kh, kw, *stride,
                *padding, gx)
    return from_channels_last(gx)


# -- pooling ---------------------------------------------------------------------------------
@_jit
def _max_pool(x, kh, kw, sh, sw, ph, pw, y, argmax, start, stop):
    n, h, w, c = x.shape
    oh, ow = y.shape[1], y.shape[2]
    for row in range(start, stop):  # one row of output pixels: image b, output row i
        b, i = row // oh, row % oh
        for j in range(ow):
            r0, s0 = i * sh - ph, j * sw - pw
            # As the plain version: tap (0, 0) first (-inf if it lies in the padding), then every
            # other tap in row-major order with a strict ">", so the first maximum wins a tie.
            inside = 0 <= r0 < h and 0 <= s0 < w
            for ch in range(c):
                y[b, i, j, ch] = x[b, r0, s0, ch] if inside else -np.inf
                argmax[b, i, j, ch] = 0
            for di in range(kh):
                r = r0 + di
                if r < 0 or r >= h:
                    continue
                for dj in range(kw):
                    s = s0 + dj
                    if s < 0 or s >= w or di + dj == 0:
                        continue
                    tap = di * kw + dj
                    for ch in range(c):
                        if x[b, r, s, ch] > y[b, i, j, ch]:
                            y[b, i, j, ch] = x[b, r, s, ch]
                            argmax[b, i, j, ch] = tap


def max_pool2d(x, kernel, stride, padding, ceil_mode):
    """Returns (y, argmax) with the values of functional.pooling.max_pool2d_strided, stored channels-last."""
    (n, c, _, _), ((oh, ow), _) = x.shape, pool_geometry(x.shape, kernel, stride, padding, ceil_mode)
    y = host_memory.empty((n, oh, ow, c), dtype=x.dtype)
    argmax = host_memory.empty(y.shape, dtype=np.uint8 if kernel[0] * kernel[1] <= 256 else np.int32)
    _run_chunks(n * oh, _rows_per_chunk(ow * c * kernel[0] * kernel[1]), _max_pool, channels_last(x), *kernel,
                *stride, *padding, y, argmax)
    return from_channels_last(y), from_channels_last(argmax)


@njit(inline="always")
def _window_covering(r, pad, tap, stride, out_size):
    """The window (output index) whose tap ``tap`` lies on input cell ``r``, or -1 if none does."""
    offset = r + pad - tap  # = window * stride
    if offset < 0 or offset % stride != 0 or offset // stride >= out_size:
        return -1
    return offset // stride


@_jit
def _pool_backward(gy, average, argmax, divisor, kh, kw, sh, sw, ph, pw, gx, start, stop):
    """Gather instead of scatter: each input cell adds, tap by tap in the plain version's order (so
    the sums agree bit for bit), the gradient of every window that covers it: its share 1/divisor
    (``average`` pooling), or all of it if the cell won the window (max pooling, ``argmax``)."""
    n, h, w, c = gx.shape
    oh, ow = gy.shape[1], gy.shape[2]
    for row in range(start, stop):  # one row of input pixels: image b, input row r
        b, r = row // h, row % h
        for s in range(w):
            for ch in range(c):
                gx[b, r, s, ch] = 0
            for di in range(kh):
                i = _window_covering(r, ph, di, sh, oh)
                if i < 0:
                    continue
                for dj in range(kw):
                    j = _window_covering(s, pw, dj, sw, ow)
                    if j < 0:
                        continue
                    if average:
                        for ch in range(c):
                            gx[b, r, s, ch] += gy[b, i, j, ch] / divisor[i, j]
                    else:
                        tap = di * kw + dj
                        for ch in range(c):
                            if argmax[b, i, j, ch] == tap:
                                gx[b, r, s, ch] += gy[b, i, j, ch]


def _pool_backward_rows(gy, argmax, divisor, x_shape, kernel, stride, padding):
    """Runs _pool_backward; one of argmax (channels-last) and divisor is None."""
    n, c, h, w = x_shape
    gx = host_memory.empty((n, h, w, c), dtype=gy.dtype)
    average = argmax is None
    argmax = np.zeros((1, 1, 1, 1), np.uint8) if average else argmax  # numba wants arrays in both roles
    divisor = divisor if average else np.ones((1, 1), gy.dtype)
    _run_chunks(n * h, _rows_per_chunk(w * c * kernel[0] * kernel[1]), _pool_backward, channels_last(gy), average,
                argmax, divisor, *kernel, *stride, *padding, gx)
    return from_channels_last(gx)


def max_pool2d_backward(gy, argmax, x_shape, kernel, stride, padding, ceil_mode):
    """Route each output gradient to its window's winner; see max_pool2d_backward_strided."""
    return _pool_backward_rows(gy, channels_last(argmax), None, x_shape, kernel, stride, padding)


@_jit
def _avg_pool(x, kh, kw, sh, sw, ph, pw, divisor, y, start, stop):
    n, h, w, c = x.shape
    oh, ow = y.shape[1], y.shape[2]
    for row in range(start, stop):
        b, i = row // oh, row % oh
        for j in range(ow):
            for ch in range(c):
                y[b, i, j, ch] = 0
            for di in range(kh):
                r = i * sh - ph + di
                if r < 0 or r >= h:
                    continue
                for dj in range(kw):  # taps in the plain version's order (padding adds nothing)
                    s = j * sw - pw + dj
                    if 0 <= s < w:
                        for ch in range(c):
                            y[b, i, j, ch] += x[b, r, s, ch]
            for ch in range(c):
                y[b, i, j, ch] /= divisor[i, j]


def avg_pool2d(x, divisor, kernel, stride, padding, ceil_mode):
    """Window sums over ``divisor`` (OH, OW), as functional.pooling.avg_pool2d_strided; stored channels-last."""
    (n, c, _, _), ((oh, ow), _) = x.shape, pool_geometry(x.shape, kernel, stride, padding, ceil_mode)
    y = host_memory.empty((n, oh, ow, c), dtype=x.dtype)
    _run_chunks(n * oh, _rows_per_chunk(ow * c * kernel[0] * kernel[1]), _avg_pool, channels_last(x), *kernel,
                *stride, *padding, divisor, y)
    return from_channels_last(y)


def avg_pool2d_backward(gy, divisor, x_shape, kernel, stride, padding, ceil_mode):
    """Spread each output gradient evenly over its window; see avg_pool2d_backward_strided."""
    return _pool_backward_rows(gy, None, divisor, x_shape, kernel, stride, padding)


# -- local response normalization ------------------------------------------------------------
# Per pixel, the C channels lie side by side. The window sums read a scratch row that holds the
# pixel's values with size - 1 zeros around them (the plain version pads the same way), and add
# each window's channels in the plain version's order.
@_jit
def _lrn_forward(x, size, alpha, beta, k, y, scale, scale_pow, start, stop):
    pixels, c = x.shape
    before = size // 2
    squares = np.zeros(c + size - 1, dtype=x.dtype)  # squares[before + ch] = x[p, ch] ** 2, zeros around
    for p in range(start, stop):
        for ch in range(c):
            squares[before + ch] = x[p, ch] * x[p, ch]
        for ch in range(c):
            energy = squares[ch]
            for d in range(1, size):
                energy += squares[ch + d]
            scale[p, ch] = k + alpha / size * energy
            if beta == 0.75:  # GoogLeNet's beta: s ** -0.75 = 1/sqrt(s) * sqrt(1/sqrt(s)); square roots vectorise, pow doesn't
                root = 1.0 / np.sqrt(scale[p, ch])
                scale_pow[p, ch] = root * np.sqrt(root)
            else:
                scale_pow[p, ch] = scale[p, ch] ** -beta
            y[p, ch] = x[p, ch] * scale_pow[p, ch]


def _rows(x):
    """x (N, C, ...) as the C-contiguous (N*..., C) rows of its channels-last memory (one row per pixel)."""
    return np.ascontiguousarray(np.moveaxis(x, 1, -1)).reshape(-1, x.shape[1])


def _from_rows(rows, shape):
    """(N*..., C) rows -> an array of ``shape`` (N, C, ...), stored channels-last."""
    return np.moveaxis(rows.reshape((shape[0],) + tuple(shape[2:]) + (shape[1],)), -1, 1)


def lrn_forward(x, size, alpha, beta, k):
    """Returns (y, scale, scale ** -beta) as functional.lrn.lrn_forward_plain does, stored channels-last."""
    rows = _rows(x)
    y, scale, scale_pow = (host_memory.empty_like(rows) for _ in range(3))
    _run_chunks(rows.shape[0], _rows_per_chunk(rows.shape[1] * size), _lrn_forward, rows, size, alpha, beta, k,
                y, scale, scale_pow)
    return tuple(_from_rows(a, x.shape) for a in (y, scale, scale_pow))


@_jit
def _lrn_backward(gy, x, scale, scale_pow, size, alpha, beta, gx, start, stop):
    pixels, c = x.shape
    before = (size - 1) // 2  # the mirrored window
    factor = 2.0 * alpha * beta / size
    ratio = np.zeros(c + size - 1, dtype=x.dtype)  # ratio[before + ch] = g * b / U of channel ch, zeros around
    for p in range(start, stop):
        for ch in range(c):
            ratio[before + ch] = gy[p, ch] * x[p, ch] * scale_pow[p, ch] / scale[p, ch]
        for ch in range(c):
            total = ratio[ch]
            for d in range(1, size):
                total += ratio[ch + d]
            gx[p, ch] = gy[p, ch] * scale_pow[p, ch] - factor * x[p, ch] * total


def lrn_backward(gy, x, scale, scale_pow, size, alpha, beta):
    """dL/dx as functional.lrn.lrn_backward_plain computes it, stored channels-last."""
    rows = [_rows(a) for a in (gy, x, scale, scale_pow)]
    gx = host_memory.empty_like(rows[0])
    _run_chunks(rows[0].shape[0], _rows_per_chunk(rows[0].shape[1] * size), _lrn_backward, *rows, size, alpha,
                beta, gx)
    return _from_rows(gx, x.shape)


# -- batch normalization ---------------------------------------------------------------------
# The statistics are sums over every pixel row of each channel. Each chunk sums a range of fixed
# blocks of rows, all C channels at once (the innermost loop runs over channels, side by side in
# memory, so the vector lanes hold different channels), into one float64 row per block; the
# blocks' rows are then added up in order. The blocks do not depend on the thread count, so
# neither do the results.
_BLOCK_ROWS = 1024


@_jit
def _block_sums(x, other, mask, mean, inv_std, kind, sums, start, stop):
    """For each block of rows: sums[block, 0] = sum of the first term, sums[block, 1] of the second.

    kind 0 (statistics): x - mean and (x - mean)**2, ``mean`` any shift (a sample of x);
    kind 1 (gradients): other (= dL/dy) and other * x_hat, x_hat = (x - mean) * inv_std;
    kind 2: as 1, with other taken as 0 where mask (a ReLU's output) is not positive.
    """
    rows, channels = x.shape
    for block in range(start, stop):
        first, second = sums[block, 0], sums[block, 1]
        first[:] = 0.0
        second[:] = 0.0
        for p in range(block * _BLOCK_ROWS, min(rows, (block + 1) * _BLOCK_ROWS)):
            for ch in range(channels):
                centred = np.float64(x[p, ch]) - mean[ch]
                if kind == 0:
                    first[ch] += centred
                    second[ch] += centred * centred
                else:
                    g = np.float64(other[p, ch]) if kind == 1 or mask[p, ch] > 0 else 0.0
                    first[ch] += g
                    second[ch] += g * (centred * inv_std[ch])


def _channel_sums(x, other, mean, inv_std, kind, mask=None):
    """The two per-channel float64 sums of :func:`_block_sums` over all rows of x (rows, C)."""
    rows, channels = x.shape
    blocks = -(-rows // _BLOCK_ROWS)
    sums = host_memory.empty((blocks, 2, channels))
    _run_chunks(blocks, 1, _block_sums, x, other, other if mask is None else mask, mean, inv_std, kind, sums)
    return sums.sum(axis=0)


@_jit
def _normalize(x, mean, scale, bias, relu, y, start, stop):
    """y = (x - mean) * scale + bias, per channel; then max(y, 0) if relu."""
    for p in range(start, stop):
        for ch in range(x.shape[1]):
            value = (x[p, ch] - mean[ch]) * scale[ch] + bias[ch]
            y[p, ch] = 0 if relu and value < 0 else value


def batch_norm_forward(x, weight, bias, mean, var, eps, relu=False):
    """As functional.normalization.batch_norm_forward_plain: x (N, C, L) -> (y, mean, var, inv_std);
    with ``relu``, y is max(y, 0), taken in the same pass.

    One pass for the statistics (sums of x - x[first pixel] and its squares
    in float64: shifting by a sample keeps the variance exact however far the
    mean is from 0) and one pass for y = (x - mean) * scale + bias, the
    normalisation and the affine map folded together (scale = weight * inv_std).
    """
    rows = _rows(x)
    pixels, channels = rows.shape
    if mean is None:
        shift = rows[0].astype(np.float64)
        total, squares = _channel_sums(rows, rows, shift, shift, 0)
        offset = total / pixels
        mean = (shift + offset).astype(x.dtype)
        var = np.maximum(squares / pixels - offset * offset, 0.0).astype(x.dtype)
    inv_std = (1.0 / np.sqrt(var.astype(np.float64) + eps)).astype(x.dtype)
    y = host_memory.empty_like(rows)
    _run_chunks(pixels, _rows_per_chunk(channels), _normalize, rows, mean, weight * inv_std, bias, relu, y)
    return _from_rows(y, x.shape), mean, var, inv_std


@_jit
def _batch_norm_grad_input(gy, mask, masked, x, mean, inv_std, scale, mean_g, mean_g_xhat, gx, start, stop):
    for p in range(start, stop):
        for ch in range(x.shape[1]):
            x_hat = (x[p, ch] - mean[ch]) * inv_std[ch]
            g = gy[p, ch] if not masked or mask[p, ch] > 0 else 0
            gx[p, ch] = scale[ch] * (g - mean_g[ch] - x_hat * mean_g_xhat[ch])


def batch_norm_backward(gy, x, mean, weight, inv_std, training, relu_output=None):
    """As functional.normalization.batch_norm_backward_plain: returns (gx, gweight, gbias).

    With ``relu_output`` (the forward's output, after its ReLU), gy first goes through the ReLU
    (zero where that output is not positive), in the same passes.
    """
    rows, grad_rows = _rows(x), _rows(gy)
    pixels, channels = rows.shape
    mask = grad_rows if relu_output is None else _rows(relu_output)
    sum_g, sum_g_xhat = _channel_sums(rows, grad_rows, mean.astype(np.float64), inv_std.astype(np.float64),
                                      1 if relu_output is None else 2, mask)
    if training:
        mean_g, mean_g_xhat = (sum_g / pixels).astype(gy.dtype), (sum_g_xhat / pixels).astype(gy.dtype)
    else:  # the statistics are constants
        mean_g = mean_g_xhat = np.zeros(channels, gy.dtype)
    gx = host_memory.empty_like(grad_rows)
    _run_chunks(pixels, _rows_per_chunk(channels), _batch_norm_grad_input, grad_rows, mask, relu_output is not None,
                rows, mean, inv_std, weight * inv_std, mean_g, mean_g_xhat, gx)
    return _from_rows(gx, gy.shape), sum_g_xhat.astype(gy.dtype), sum_g.astype(gy.dtype)


# -- concatenation along channels ------------------------------------------------------------
@_jit
def _concat_rows(parts, offsets, out, start, stop):
    for p in range(start, stop):  # one pixel: each part's channels land side by side in out's row
        for i in range(len(parts)):
            part, offset = parts[i], offsets[i]
            for ch in range(part.shape[1]):
                out[p, offset + ch] = part[p, ch]


def concat_channels(arrays):
    """np.concatenate(arrays, axis=1) for arrays (N, C_i, H, W); the result is stored channels-last."""
    n, _, h, w = arrays[0].shape
    rows = tuple(pixel_rows(a) for a in arrays)  # views of inputs stored channels-last
    widths = [r.shape[1] for r in rows]
    out = host_memory.empty((n * h * w, sum(widths)), dtype=arrays[0].dtype)
    _run_chunks(out.shape[0], _rows_per_chunk(out.shape[1]), _concat_rows, rows, np.cumsum([0] + widths[:-1]), out)
    return from_channels_last(out.reshape(n, h, w, -1))


@_jit
def _split_rows(x, offsets, parts, start, stop):
    for p in range(start, stop):  # the mirror of _concat_rows
        for i in range(len(parts)):
            part, offset = parts[i], offsets[i]
            for ch in range(part.shape[1]):
                part[p, ch] = x[p, offset + ch]


def split_channels(x, sizes):
    """x (N, C, H, W) cut along the channels into pieces of ``sizes``, each its own array stored channels-last.

    The plain version hands out views of x; separate dense pieces cost one pass
    but let every op after them (ReLU's backward first) read plain rows.
    """
    n, _, h, w = x.shape
    parts = tuple(host_memory.empty((n * h * w, size), dtype=x.dtype) for size in sizes)
    rows = pixel_rows(x)
    _run_chunks(rows.shape[0], _rows_per_chunk(rows.shape[1]), _split_rows, rows, np.cumsum([0] + list(sizes[:-1])),
                parts)
    return [from_channels_last(part.reshape(n, h, w, -1)) for part in parts]


# -- NumPy's own elementwise ops, split over the threads ------------------------------------
def _over_images(compute, out, *arrays):
    """compute(*chunks, out=out_chunk) for chunks of the first axis (images), on the threads.

    NumPy releases the GIL inside its loops, so the chunks run side by side,
    and every value comes out exactly as from one call over the whole arrays.
    """
    per_image = max(1, out.size // max(1, out.shape[0]))
    bounds = [slice(*chunk) for chunk in chunk_bounds(out.shape[0], max(1, 65536 // per_image))]
    parallel_for(len(bounds), lambda i: compute(*(a[bounds[i]] for a in arrays), out=out[bounds[i]]))
    return out


def relu(x):
    """max(x, 0), as functional.activation's plain version; keeps x's layout."""
    return _over_images(lambda x, out: np.maximum(x, x.dtype.type(0), out=out), host_memory.empty_like(x), x)


@_jit
def _relu_backward(gy, y, gx, start, stop):
    for i in range(start, stop):
        gx[i] = gy[i] if y[i] > 0 else 0


def _memory(a):
    """The 1-D view of a's memory, in memory order, or None when a has gaps (a slice)."""
    order = sorted(range(a.ndim), key=lambda axis: -a.strides[axis])
    dense = a.transpose(order)
    return dense.reshape(-1) if dense.flags.c_contiguous else None


def relu_backward(gy, y):
    """gy * (y > 0), as functional.activation's plain version, in one pass where gy and y lie alike."""
    gx = host_memory.empty_like(y)
    flat = [_memory(a) for a in (gy, y, gx)]
    if gy.strides != y.strides or any(f is None for f in flat):
        return _over_images(lambda gy, y, out: np.multiply(gy, y > 0, out=out), gx, gy, y)
    _run_chunks(y.size, 16384, _relu_backward, *flat)
    return gx


def add(a, b):
    """a + b for two arrays of one shape (gradients meeting in backward); keeps a's layout."""
    return _over_images(np.add, host_memory.empty_like(a), a, b)
