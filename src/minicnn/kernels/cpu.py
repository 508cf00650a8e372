"""numba kernels for the CPU hot paths: im2col/col2im, max pooling, LRN, batch norm, ReLU; split matrix products.

Each one does the same job as its plain twin in :mod:`minicnn.functional`
(``im2col_strided``, ``max_pool2d_strided``, ``lrn_forward_plain``...), and the
tests hold them to it. What makes them faster: one pass over memory instead of
one per kernel tap, no padded copies (out-of-bounds taps are skipped or read as
zero), and all cores at work (NumPy's elementwise ops use one).

Layout: the wrappers take and return arrays of shape (N, C, H, W); inside, the
kernels work on the channel-major (C, N, H, W) memory that convolutions produce
(:mod:`minicnn.layout`), so each (channel, image) plane is contiguous.

Threads: each kernel runs over a range of rows, planes or channels, and the
wrapper hands out chunks of that range to minicnn's thread pool
(:mod:`.threads`). Chunks write disjoint outputs, and every output value is
computed by one thread in a fixed order, so results never depend on timing.
"""
import numpy as np
from numba import njit

from ..geometry import conv_output_size, pool_geometry
from ..layout import channel_major
from .threads import chunk_bounds, parallel_for, split_matmuls

_jit = njit(cache=True, nogil=True)
# Reductions may add in any order: LLVM then sums in vector lanes (still the same order on every run).
_jit_reduce = njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})


def _run_chunks(total, min_size, kernel, *args):
    """kernel(*args, start, stop) for chunks of range(total), on the thread pool."""
    bounds = chunk_bounds(total, min_size)
    parallel_for(len(bounds), lambda chunk: kernel(*args, *bounds[chunk]))


# -- matrix products -------------------------------------------------------------------------
def matrix_product(a, b):
    """a @ b for 2-D arrays, as column blocks (or row blocks) on minicnn's threads.

    Used when :func:`minicnn.configure_cpu` has made BLAS single-threaded
    (see :func:`.threads.split_matmuls`); otherwise BLAS splits it itself.
    The longer side of the result is split, so the operand that every block
    reads whole is the smaller one.
    """
    if not split_matmuls():
        return a @ b
    rows, cols = a.shape[0], b.shape[1]
    out = np.empty((rows, cols), dtype=np.result_type(a, b))
    if cols >= rows:
        bounds = chunk_bounds(cols, 128)
        parallel_for(len(bounds), lambda i: np.matmul(a, b[:, slice(*bounds[i])], out=out[:, slice(*bounds[i])]))
    else:
        bounds = chunk_bounds(rows, 64)
        parallel_for(len(bounds), lambda i: np.matmul(a[slice(*bounds[i])], b, out=out[slice(*bounds[i])]))
    return out


# -- im2col and col2im -----------------------------------------------------------------------
@_jit
def _im2col(x, kh, kw, sh, sw, ph, pw, cols, start, stop):
    c, n, h, w = x.shape
    oh, ow = cols.shape[3], cols.shape[4]
    for row in range(start, stop):  # one row (channel, tap i, tap j) of the column matrix
        ch, i, j = row // (kh * kw), (row // kw) % kh, row % kw
        for b in range(n):
            for y in range(oh):
                r = y * sh - ph + i
                if r < 0 or r >= h:
                    cols[ch, i * kw + j, b, y, :] = 0
                    continue
                for q in range(ow):  # a branch per value, not a computed range: LLVM vectorises this with masks
                    s = q * sw - pw + j
                    cols[ch, i * kw + j, b, y, q] = x[ch, b, r, s] if 0 <= s < w else 0


def im2col(x, kernel, stride, padding):
    """x (N, C, H, W) -> columns (C*kh*kw, N*OH*OW); see functional.conv.im2col."""
    (n, c, h, w), (kh, kw) = x.shape, kernel
    oh, ow = conv_output_size(h, kh, stride[0], padding[0]), conv_output_size(w, kw, stride[1], padding[1])
    cols = np.empty((c, kh * kw, n, oh, ow), dtype=x.dtype)
    _run_chunks(c * kh * kw, 1, _im2col, channel_major(x), kh, kw, *stride, *padding, cols)
    return cols.reshape(c * kh * kw, n * oh * ow)


@_jit
def _col2im(cols, kh, kw, sh, sw, ph, pw, gx, start, stop):
    c, n, h, w = gx.shape
    oh, ow = cols.shape[3], cols.shape[4]
    for ch in range(start, stop):  # each channel owns the plane gx[ch]: no two threads add to one pixel
        gx[ch] = 0
        for i in range(kh):
            for j in range(kw):  # taps in the plain version's order, so the sums agree bit for bit
                for b in range(n):
                    for y in range(oh):
                        r = y * sh - ph + i
                        if r < 0 or r >= h:
                            continue
                        for q in range(ow):
                            s = q * sw - pw + j
                            if 0 <= s < w:
                                gx[ch, b, r, s] += cols[ch, i * kw + j, b, y, q]


def col2im(cols, x_shape, kernel, stride, padding):
    """columns (C*kh*kw, N*OH*OW) -> (N, C, H, W) stored channel-major, adding overlaps; see functional.conv.col2im."""
    (n, c, h, w), (kh, kw) = x_shape, kernel
    oh, ow = conv_output_size(h, kh, stride[0], padding[0]), conv_output_size(w, kw, stride[1], padding[1])
    gx = np.empty((c, n, h, w), dtype=cols.dtype)
    _run_chunks(c, 1, _col2im, np.ascontiguousarray(cols).reshape(c, kh * kw, n, oh, ow), kh, kw, *stride,
                *padding, gx)
    return gx.swapaxes(0, 1)


# -- max pooling -----------------------------------------------------------------------------
@njit(inline="always")
def _larger(value, tap, best, where):
    """(value, tap) if value beats best (strictly: the first maximum keeps a tie), else (best, where)."""
    better = value > best
    return (value if better else best), (tap if better else where)


@njit(inline="always")
def _window_max_at_border(x, plane, r0, s0, kh, kw):
    """(max, tap) of the window at (r0, s0) that pokes into the padding: those taps are skipped."""
    h, w = x.shape[1], x.shape[2]
    best, where = -np.inf, 0
    for di in range(kh):
        if 0 <= r0 + di < h:
            for dj in range(kw):
                if 0 <= s0 + dj < w:
                    best, where = _larger(x[plane, r0 + di, s0 + dj], di * kw + dj, best, where)
    return best, where


@_jit
def _max_pool(x, kh, kw, sh, sw, ph, pw, y, argmax, start, stop):
    planes, h, w = x.shape
    oh, ow = y.shape[1], y.shape[2]
    for plane in range(start, stop):
        for i in range(oh):
            r0 = i * sh - ph
            for j in range(ow):
                s0 = j * sw - pw
                # taps in row-major order with a strict ">": the first maximum wins a tie
                if r0 >= 0 and s0 >= 0 and r0 + kh <= h and s0 + kw <= w:  # inside: no bounds checks
                    best, where = -np.inf, 0
                    for di in range(kh):
                        for dj in range(kw):
                            best, where = _larger(x[plane, r0 + di, s0 + dj], di * kw + dj, best, where)
                else:
                    best, where = _window_max_at_border(x, plane, r0, s0, kh, kw)
                y[plane, i, j] = best
                argmax[plane, i, j] = where


@_jit
def _max_pool_3x3_stride1_pad1(x, y, argmax, start, stop):
    """The inception blocks' pool, 9 of GoogLeNet's 11: the interior unrolled, which LLVM
    vectorises across a row (about twice the general kernel's speed)."""
    planes, h, w = x.shape
    for plane in range(start, stop):
        for i in range(h):
            for j in range(w):
                if 1 <= i < h - 1 and 1 <= j < w - 1:
                    best, where = x[plane, i - 1, j - 1], 0
                    best, where = _larger(x[plane, i - 1, j], 1, best, where)
                    best, where = _larger(x[plane, i - 1, j + 1], 2, best, where)
                    best, where = _larger(x[plane, i, j - 1], 3, best, where)
                    best, where = _larger(x[plane, i, j], 4, best, where)
                    best, where = _larger(x[plane, i, j + 1], 5, best, where)
                    best, where = _larger(x[plane, i + 1, j - 1], 6, best, where)
                    best, where = _larger(x[plane, i + 1, j], 7, best, where)
                    best, where = _larger(x[plane, i + 1, j + 1], 8, best, where)
                else:
                    best, where = _window_max_at_border(x, plane, i - 1, j - 1, 3, 3)
                y[plane, i, j] = best
                argmax[plane, i, j] = where


def _planes(x):
    """x (N, C, H, W) as the C-contiguous (C*N, H, W) planes of its channel-major memory."""
    n, c, h, w = x.shape
    return channel_major(x).reshape(c * n, h, w)


def _from_planes(planes, n, c):
    """(C*N, H, W) planes -> (N, C, H, W), stored channel-major."""
    return planes.reshape(c, n, *planes.shape[1:]).swapaxes(0, 1)


def max_pool2d(x, kernel, stride, padding, ceil_mode):
    """Returns (y, argmax) with the values of functional.pooling.max_pool2d_strided, stored channel-major."""
    (n, c, h, w), ((oh, ow), _) = x.shape, pool_geometry(x.shape, kernel, stride, padding, ceil_mode)
    planes = _planes(x)
    y = np.empty((c * n, oh, ow), dtype=x.dtype)
    argmax = np.empty(y.shape, dtype=np.uint8 if kernel[0] * kernel[1] <= 256 else np.int32)
    min_planes = max(1, 4096 // (h * w))
    if kernel == (3, 3) and stride == (1, 1) and padding == (1, 1):
        _run_chunks(c * n, min_planes, _max_pool_3x3_stride1_pad1, planes, y, argmax)
    else:
        _run_chunks(c * n, min_planes, _max_pool, planes, *kernel, *stride, *padding, y, argmax)
    return _from_planes(y, n, c), _from_planes(argmax, n, c)


@_jit
def _max_pool_backward(gy, argmax, kw, sh, sw, ph, pw, gx, start, stop):
    planes, h, w = gx.shape
    oh, ow = gy.shape[1], gy.shape[2]
    for plane in range(start, stop):
        gx[plane] = 0
        for i in range(oh):
            for j in range(ow):
                r = i * sh - ph + argmax[plane, i, j] // kw
                s = j * sw - pw + argmax[plane, i, j] % kw
                if 0 <= r < h and 0 <= s < w:
                    gx[plane, r, s] += gy[plane, i, j]


def max_pool2d_backward(gy, argmax, x_shape, kernel, stride, padding, ceil_mode):
    """Route each output gradient to its window's winner; see max_pool2d_backward_strided."""
    n, c, h, w = x_shape
    gx = np.empty((c * n, h, w), dtype=gy.dtype)
    _run_chunks(c * n, max(1, 4096 // (h * w)), _max_pool_backward, _planes(gy), _planes(argmax), kernel[1],
                *stride, *padding, gx)
    return _from_planes(gx, n, c)


# -- local response normalization ------------------------------------------------------------
@_jit
def _lrn_forward(x, size, alpha, beta, k, y, scale, scale_pow, start, stop):
    c, n, length = x.shape
    before, after = size // 2, (size - 1) // 2
    for ch in range(start, stop):
        for b in range(n):
            energy = scale[ch, b]  # this plane's row of scale holds the running sum first
            energy[:] = 0
            for j in range(max(0, ch - before), min(c - 1, ch + after) + 1):
                for p in range(length):  # the innermost loop runs over pixels, so it vectorises
                    energy[p] += x[j, b, p] * x[j, b, p]
            for p in range(length):
                scale[ch, b, p] = k + alpha / size * energy[p]
            if beta == 0.75:  # GoogLeNet's beta: s ** -0.75 = 1/sqrt(s) * sqrt(1/sqrt(s)); square roots vectorise, pow doesn't
                for p in range(length):
                    root = 1.0 / np.sqrt(scale[ch, b, p])
                    scale_pow[ch, b, p] = root * np.sqrt(root)
            else:
                for p in range(length):
                    scale_pow[ch, b, p] = scale[ch, b, p] ** -beta
            for p in range(length):
                y[ch, b, p] = x[ch, b, p] * scale_pow[ch, b, p]


def _channel_rows(x):
    """x (N, C, ...) as the C-contiguous (C, N, L) array of its channel-major memory."""
    return channel_major(x).reshape(x.shape[1], x.shape[0], -1)


def _from_channel_rows(rows, shape):
    """(C, N, L) -> an array of ``shape`` (N, C, ...), stored channel-major."""
    return rows.reshape((shape[1], shape[0]) + tuple(shape[2:])).swapaxes(0, 1)


def lrn_forward(x, size, alpha, beta, k):
    """Returns (y, scale, scale ** -beta) as functional.lrn.lrn_forward_plain does, stored channel-major."""
    rows = _channel_rows(x)
    y, scale, scale_pow = (np.empty_like(rows) for _ in range(3))
    _run_chunks(x.shape[1], 1, _lrn_forward, rows, size, alpha, beta, k, y, scale, scale_pow)
    return tuple(_from_channel_rows(a, x.shape) for a in (y, scale, scale_pow))


@_jit
def _lrn_ratio(gy, x, scale, scale_pow, ratio, start, stop):
    for ch in range(start, stop):  # g_j * b_j / U_j for every channel
        for b in range(x.shape[1]):
            for p in range(x.shape[2]):
                ratio[ch, b, p] = gy[ch, b, p] * x[ch, b, p] * scale_pow[ch, b, p] / scale[ch, b, p]


@_jit
def _lrn_backward(gy, x, scale_pow, ratio, size, alpha, beta, gx, start, stop):
    c, n, length = x.shape
    before, after = (size - 1) // 2, size // 2  # the mirrored window
    factor = 2.0 * alpha * beta / size
    for ch in range(start, stop):
        for b in range(n):
            total = gx[ch, b]  # this plane's row of gx holds the window sum first
            total[:] = 0
            for j in range(max(0, ch - before), min(c - 1, ch + after) + 1):
                for p in range(length):
                    total[p] += ratio[j, b, p]
            for p in range(length):
                gx[ch, b, p] = gy[ch, b, p] * scale_pow[ch, b, p] - factor * x[ch, b, p] * total[p]


def lrn_backward(gy, x, scale, scale_pow, size, alpha, beta):
    """dL/dx as functional.lrn.lrn_backward_plain computes it, stored channel-major."""
    rows = [_channel_rows(a) for a in (gy, x, scale, scale_pow)]
    ratio, gx = np.empty_like(rows[0]), np.empty_like(rows[0])
    channels = x.shape[1]
    _run_chunks(channels, 1, _lrn_ratio, *rows, ratio)  # every channel's ratio first: the window reads neighbours
    _run_chunks(channels, 1, _lrn_backward, rows[0], rows[1], rows[3], ratio, size, alpha, beta, gx)
    return _from_channel_rows(gx, x.shape)


# -- batch normalization ---------------------------------------------------------------------
@_jit_reduce
def _batch_norm_forward(x, weight, bias, mean, var, eps, training, y, x_hat, inv_std, start, stop):
    c, n, length = x.shape
    count = n * length
    for ch in range(start, stop):  # one channel per iteration; sums in float64
        if training:
            total = 0.0
            for b in range(n):
                for p in range(length):
                    total += x[ch, b, p]
            m = total / count
            squares = 0.0
            for b in range(n):
                for p in range(length):
                    squares += (x[ch, b, p] - m) ** 2
            mean[ch], var[ch] = m, squares / count
        s = 1.0 / np.sqrt(var[ch] + eps)
        inv_std[ch] = s
        for b in range(n):
            for p in range(length):
                normalized = (x[ch, b, p] - mean[ch]) * s
                x_hat[ch, b, p] = normalized
                y[ch, b, p] = normalized * weight[ch] + bias[ch]


def batch_norm_forward(x, weight, bias, mean, var, eps):
    """As functional.normalization.batch_norm_forward_plain: x (N, C, L) -> (y, x_hat, mean, var, inv_std)."""
    training = mean is None
    channels = x.shape[1]
    if training:
        mean, var = np.empty(channels, x.dtype), np.empty(channels, x.dtype)
    rows = _channel_rows(x)
    y, x_hat, inv_std = np.empty_like(rows), np.empty_like(rows), np.empty(channels, x.dtype)
    _run_chunks(channels, 1, _batch_norm_forward, rows, weight, bias, mean, var, eps, training, y, x_hat, inv_std)
    return _from_channel_rows(y, x.shape), _from_channel_rows(x_hat, x.shape), mean, var, inv_std


@_jit_reduce
def _batch_norm_backward(gy, x_hat, weight, inv_std, training, gx, gweight, gbias, start, stop):
    c, n, length = gy.shape
    count = n * length
    for ch in range(start, stop):
        sum_g, sum_gx = 0.0, 0.0
        for b in range(n):
            for p in range(length):
                sum_g += gy[ch, b, p]
                sum_gx += gy[ch, b, p] * x_hat[ch, b, p]
        gweight[ch], gbias[ch] = sum_gx, sum_g
        scale = weight[ch] * inv_std[ch]
        mean_g, mean_gx = (sum_g / count, sum_gx / count) if training else (0.0, 0.0)
        for b in range(n):
            for p in range(length):
                gx[ch, b, p] = scale * (gy[ch, b, p] - mean_g - x_hat[ch, b, p] * mean_gx)


def batch_norm_backward(gy, x_hat, weight, inv_std, training):
    """As functional.normalization.batch_norm_backward_plain: returns (gx, gweight, gbias)."""
    channels = gy.shape[1]
    rows = _channel_rows(gy)
    gx, gweight, gbias = np.empty_like(rows), np.empty(channels, gy.dtype), np.empty(channels, gy.dtype)
    _run_chunks(channels, 1, _batch_norm_backward, rows, _channel_rows(x_hat), weight, inv_std, training, gx,
                gweight, gbias)
    return _from_channel_rows(gx, gy.shape), gweight, gbias
