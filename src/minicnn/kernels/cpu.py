"""numba kernels for the CPU hot paths: im2col/col2im, max pooling, LRN, batch norm.

Each one does the same job as its plain twin in :mod:`minicnn.functional`
(``im2col_strided``, ``max_pool2d_strided``, ``lrn_forward_plain``...), and the
tests hold them to it. What makes them faster: one pass over memory instead of
one per kernel tap, no padded copies (out-of-bounds taps are skipped or read as
zero), and ``prange`` spreading independent rows over the CPU cores (NumPy's
elementwise ops use one core).

Parallel loops write disjoint outputs (one channel plane per iteration in
col2im and pooling backward), so the results never depend on thread timing.

Threads: numba's default OpenMP threads spin-wait after each parallel loop,
and so do the BLAS threads after each matrix product; on a machine with few
cores the two fight. :func:`minicnn.kernels.configure_cpu` (called by the
trainer and the benchmark) chooses numba's sleeping "workqueue" threads.
"""
import numpy as np
from numba import njit, prange

from ..geometry import conv_output_size, pool_geometry

_jit = njit(parallel=True, cache=True, nogil=True)
# Reductions may add in any order: LLVM then sums in vector lanes (still the same order on every run).
_jit_reduce = njit(parallel=True, cache=True, nogil=True, fastmath={"reassoc", "contract"})


@_jit
def _im2col(x, kh, kw, sh, sw, ph, pw, cols):
    n, c, h, w = x.shape
    oh, ow = cols.shape[3], cols.shape[4]
    for row in prange(c * kh * kw):  # one row (channel, tap i, tap j) of the column matrix
        ch, i, j = row // (kh * kw), (row // kw) % kh, row % kw
        for b in range(n):
            for y in range(oh):
                r = y * sh - ph + i
                if r < 0 or r >= h:
                    cols[ch, i * kw + j, b, y, :] = 0
                    continue
                for q in range(ow):
                    s = q * sw - pw + j
                    cols[ch, i * kw + j, b, y, q] = x[b, ch, r, s] if 0 <= s < w else 0


def im2col(x, kernel, stride, padding):
    """x (N, C, H, W) -> columns (C*kh*kw, N*OH*OW); see functional.conv.im2col."""
    (n, c, h, w), (kh, kw) = x.shape, kernel
    oh, ow = conv_output_size(h, kh, stride[0], padding[0]), conv_output_size(w, kw, stride[1], padding[1])
    cols = np.empty((c, kh * kw, n, oh, ow), dtype=x.dtype)
    _im2col(np.ascontiguousarray(x), kh, kw, stride[0], stride[1], padding[0], padding[1], cols)
    return cols.reshape(c * kh * kw, n * oh * ow)


@_jit
def _col2im(cols, kh, kw, sh, sw, ph, pw, gx):
    n, c, h, w = gx.shape
    oh, ow = cols.shape[3], cols.shape[4]
    for ch in prange(c):  # each iteration owns the plane gx[:, ch]: no two threads add to one pixel
        gx[:, ch] = 0
        for i in range(kh):
            for j in range(kw):
                for b in range(n):
                    for y in range(oh):
                        r = y * sh - ph + i
                        if r < 0 or r >= h:
                            continue
                        for q in range(ow):
                            s = q * sw - pw + j
                            if 0 <= s < w:
                                gx[b, ch, r, s] += cols[ch, i * kw + j, b, y, q]


def col2im(cols, x_shape, kernel, stride, padding):
    """columns (C*kh*kw, N*OH*OW) -> (N, C, H, W), adding overlaps; see functional.conv.col2im."""
    (n, c, h, w), (kh, kw) = x_shape, kernel
    oh, ow = conv_output_size(h, kh, stride[0], padding[0]), conv_output_size(w, kw, stride[1], padding[1])
    gx = np.empty(x_shape, dtype=cols.dtype)
    _col2im(np.ascontiguousarray(cols).reshape(c, kh * kw, n, oh, ow), kh, kw, stride[0], stride[1],
            padding[0], padding[1], gx)
    return gx


@njit(inline="always")
def _larger(value, tap, best, where):
    """(value, tap) if value beats best (strictly: the first maximum keeps a tie), else (best, where)."""
    better = value > best
    return (value if better else best), (tap if better else where)


@njit(inline="always")
def _window_max_at_border(x, b, ch, r0, s0, kh, kw):
    """(max, tap) of the window at (r0, s0) that pokes into the padding: those taps are skipped."""
    h, w = x.shape[2], x.shape[3]
    best, where = -np.inf, 0
    for di in range(kh):
        if 0 <= r0 + di < h:
            for dj in range(kw):
                if 0 <= s0 + dj < w:
                    best, where = _larger(x[b, ch, r0 + di, s0 + dj], di * kw + dj, best, where)
    return best, where


@_jit
def _max_pool(x, kh, kw, sh, sw, ph, pw, y, argmax):
    n, c, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    for plane in prange(n * c):
        b, ch = plane // c, plane % c
        for i in range(oh):
            r0 = i * sh - ph
            for j in range(ow):
                s0 = j * sw - pw
                # taps in row-major order with a strict ">": the first maximum wins a tie
                if r0 >= 0 and s0 >= 0 and r0 + kh <= h and s0 + kw <= w:  # inside: no bounds checks
                    best, where = -np.inf, 0
                    for di in range(kh):
                        for dj in range(kw):
                            best, where = _larger(x[b, ch, r0 + di, s0 + dj], di * kw + dj, best, where)
                else:
                    best, where = _window_max_at_border(x, b, ch, r0, s0, kh, kw)
                y[b, ch, i, j] = best
                argmax[b, ch, i, j] = where


@_jit
def _max_pool_3x3_stride1_pad1(x, y, argmax):
    """The inception blocks' pool, 9 of GoogLeNet's 11: the interior unrolled, which LLVM
    vectorises across a row (about twice the general kernel's speed)."""
    n, c, h, w = x.shape
    for plane in prange(n * c):
        b, ch = plane // c, plane % c
        for i in range(h):
            for j in range(w):
                if 1 <= i < h - 1 and 1 <= j < w - 1:
                    best, where = x[b, ch, i - 1, j - 1], 0
                    best, where = _larger(x[b, ch, i - 1, j], 1, best, where)
                    best, where = _larger(x[b, ch, i - 1, j + 1], 2, best, where)
                    best, where = _larger(x[b, ch, i, j - 1], 3, best, where)
                    best, where = _larger(x[b, ch, i, j], 4, best, where)
                    best, where = _larger(x[b, ch, i, j + 1], 5, best, where)
                    best, where = _larger(x[b, ch, i + 1, j - 1], 6, best, where)
                    best, where = _larger(x[b, ch, i + 1, j], 7, best, where)
                    best, where = _larger(x[b, ch, i + 1, j + 1], 8, best, where)
                else:
                    best, where = _window_max_at_border(x, b, ch, i - 1, j - 1, 3, 3)
                y[b, ch, i, j] = best
                argmax[b, ch, i, j] = where


def max_pool2d(x, kernel, stride, padding, ceil_mode):
    """Returns (y, argmax) exactly as functional.pooling.max_pool2d_strided does."""
    (oh, ow), _ = pool_geometry(x.shape, kernel, stride, padding, ceil_mode)
    y = np.empty(x.shape[:2] + (oh, ow), dtype=x.dtype)
    argmax = np.empty(y.shape, dtype=np.uint8 if kernel[0] * kernel[1] <= 256 else np.int32)
    if kernel == (3, 3) and stride == (1, 1) and padding == (1, 1):
        _max_pool_3x3_stride1_pad1(np.ascontiguousarray(x), y, argmax)
    else:
        _max_pool(np.ascontiguousarray(x), kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1],
                  y, argmax)
    return y, argmax


@_jit
def _max_pool_backward(gy, argmax, kw, sh, sw, ph, pw, gx):
    n, c, h, w = gx.shape
    oh, ow = gy.shape[2], gy.shape[3]
    for plane in prange(n * c):
        b, ch = plane // c, plane % c
        gx[b, ch] = 0
        for i in range(oh):
            for j in range(ow):
                r = i * sh - ph + argmax[b, ch, i, j] // kw
                s = j * sw - pw + argmax[b, ch, i, j] % kw
                if 0 <= r < h and 0 <= s < w:
                    gx[b, ch, r, s] += gy[b, ch, i, j]


def max_pool2d_backward(gy, argmax, x_shape, kernel, stride, padding, ceil_mode):
    """Route each output gradient to its window's winner; see max_pool2d_backward_strided."""
    gx = np.empty(x_shape, dtype=gy.dtype)
    _max_pool_backward(np.ascontiguousarray(gy), argmax, kernel[1], stride[0], stride[1], padding[0],
                       padding[1], gx)
    return gx


@_jit
def _lrn_forward(x, size, alpha, beta, k, y, scale, scale_pow):
    n, c, length = x.shape
    before, after = size // 2, (size - 1) // 2
    for plane in prange(n * c):
        b, ch = plane // c, plane % c
        energy = scale[b, ch]  # this plane's rows of scale hold the running sum first
        energy[:] = 0
        for j in range(max(0, ch - before), min(c - 1, ch + after) + 1):
            for p in range(length):  # the innermost loop runs over pixels, so it vectorises
                energy[p] += x[b, j, p] * x[b, j, p]
        for p in range(length):
            scale[b, ch, p] = k + alpha / size * energy[p]
        if beta == 0.75:  # GoogLeNet's beta: s ** -0.75 = 1/sqrt(s) * sqrt(1/sqrt(s)); square roots vectorise, pow doesn't
            for p in range(length):
                root = 1.0 / np.sqrt(scale[b, ch, p])
                scale_pow[b, ch, p] = root * np.sqrt(root)
        else:
            for p in range(length):
                scale_pow[b, ch, p] = scale[b, ch, p] ** -beta
        for p in range(length):
            y[b, ch, p] = x[b, ch, p] * scale_pow[b, ch, p]


def lrn_forward(x, size, alpha, beta, k):
    """Returns (y, scale, scale ** -beta) as functional.lrn.lrn_forward_plain does."""
    flat = np.ascontiguousarray(x).reshape(x.shape[0], x.shape[1], -1)
    y, scale, scale_pow = (np.empty_like(flat) for _ in range(3))
    _lrn_forward(flat, size, alpha, beta, k, y, scale, scale_pow)
    return y.reshape(x.shape), scale.reshape(x.shape), scale_pow.reshape(x.shape)


@_jit
def _lrn_backward(gy, x, scale, scale_pow, size, alpha, beta, ratio, gx):
    n, c, length = x.shape
    for plane in prange(n * c):  # first pass: g_j * b_j / U_j for every channel
        b, ch = plane // c, plane % c
        for p in range(length):
            ratio[b, ch, p] = gy[b, ch, p] * x[b, ch, p] * scale_pow[b, ch, p] / scale[b, ch, p]
    before, after = (size - 1) // 2, size // 2  # the mirrored window
    factor = 2.0 * alpha * beta / size
    for plane in prange(n * c):
        b, ch = plane // c, plane % c
        total = gx[b, ch]  # this plane's rows of gx hold the window sum first
        total[:] = 0
        for j in range(max(0, ch - before), min(c - 1, ch + after) + 1):
            for p in range(length):
                total[p] += ratio[b, j, p]
        for p in range(length):
            gx[b, ch, p] = gy[b, ch, p] * scale_pow[b, ch, p] - factor * x[b, ch, p] * total[p]


def lrn_backward(gy, x, scale, scale_pow, size, alpha, beta):
    """dL/dx as functional.lrn.lrn_backward_plain computes it."""
    shape3 = (x.shape[0], x.shape[1], -1)
    flat = [np.ascontiguousarray(a).reshape(shape3) for a in (gy, x, scale, scale_pow)]
    ratio, gx = np.empty_like(flat[0]), np.empty_like(flat[0])
    _lrn_backward(*flat, size, alpha, beta, ratio, gx)
    return gx.reshape(x.shape)


@_jit_reduce
def _batch_norm_forward(x, weight, bias, mean, var, eps, training, y, x_hat, inv_std):
    n, c, length = x.shape
    count = n * length
    for ch in prange(c):  # one channel per iteration; sums in float64
        if training:
            total = 0.0
            for b in range(n):
                for p in range(length):
                    total += x[b, ch, p]
            m = total / count
            squares = 0.0
            for b in range(n):
                for p in range(length):
                    squares += (x[b, ch, p] - m) ** 2
            mean[ch], var[ch] = m, squares / count
        s = 1.0 / np.sqrt(var[ch] + eps)
        inv_std[ch] = s
        for b in range(n):
            for p in range(length):
                normalized = (x[b, ch, p] - mean[ch]) * s
                x_hat[b, ch, p] = normalized
                y[b, ch, p] = normalized * weight[ch] + bias[ch]


def batch_norm_forward(x, weight, bias, mean, var, eps):
    """As functional.normalization.batch_norm_forward_plain: x (N, C, L) -> (y, x_hat, mean, var, inv_std)."""
    training = mean is None
    channels = x.shape[1]
    if training:
        mean, var = np.empty(channels, x.dtype), np.empty(channels, x.dtype)
    y, x_hat, inv_std = np.empty_like(x), np.empty_like(x), np.empty(channels, x.dtype)
    _batch_norm_forward(np.ascontiguousarray(x), weight, bias, mean, var, eps, training, y, x_hat, inv_std)
    return y, x_hat, mean, var, inv_std


@_jit_reduce
def _batch_norm_backward(gy, x_hat, weight, inv_std, training, gx, gweight, gbias):
    n, c, length = gy.shape
    count = n * length
    for ch in prange(c):
        sum_g, sum_gx = 0.0, 0.0
        for b in range(n):
            for p in range(length):
                sum_g += gy[b, ch, p]
                sum_gx += gy[b, ch, p] * x_hat[b, ch, p]
        gweight[ch], gbias[ch] = sum_gx, sum_g
        scale = weight[ch] * inv_std[ch]
        mean_g, mean_gx = (sum_g / count, sum_gx / count) if training else (0.0, 0.0)
        for b in range(n):
            for p in range(length):
                gx[b, ch, p] = scale * (gy[b, ch, p] - mean_g - x_hat[b, ch, p] * mean_gx)


def batch_norm_backward(gy, x_hat, weight, inv_std, training):
    """As functional.normalization.batch_norm_backward_plain: returns (gx, gweight, gbias)."""
    channels = gy.shape[1]
    gx, gweight, gbias = np.empty_like(gy), np.empty(channels, gy.dtype), np.empty(channels, gy.dtype)
    _batch_norm_backward(np.ascontiguousarray(gy), x_hat, weight, inv_std, training, gx, gweight, gbias)
    return gx, gweight, gbias
