"""Pooling's fast forms: max and average pooling, forward and backward (plain twins: functional/pooling.py).

CPU: numba loops over each window once, channels innermost, on minicnn's
threads; backward gathers instead of scattering (each input cell adds the
gradients of the windows that cover it, in the plain version's order). GPU:
every window in one gather (:mod:`.gather`), then a reduction over the taps.
"""
import numpy as np
from numba import njit

from . import host_memory
from ..backend import get_array_module
from ..geometry import pool_geometry
from ..layout import channels_last, from_channels_last
from .chunks import jit, rows_per_chunk, run_chunks
from .gather import as_images, coverage, gather_windows, planes, sum_coverage


def _argmax_type(kernel):
    """The smallest integer type that holds a window's tap index."""
    return np.uint8 if kernel[0] * kernel[1] <= 256 else np.int32


# -- CPU ---------------------------------------------------------------------------------------
@jit
def _max_pool(x, kh, kw, sh, sw, ph, pw, y, argmax, start, stop):
    """Rows start..stop of y, and of argmax unless it is None (numba compiles that case without it)."""
    n, h, w, c = x.shape
    oh, ow = y.shape[1], y.shape[2]
    for row in range(start, stop):  # one row of output pixels: image b, output row i
        b, i = row // oh, row % oh
        for j in range(ow):
            r0, s0 = i * sh - ph, j * sw - pw
            # As the plain version: tap (0, 0) first (-inf if it lies in the padding), then every
            # other tap in row-major order with a strict ">", so the first maximum wins a tie.
            inside = 0 <= r0 < h and 0 <= s0 < w
            out = y[b, i, j]
            for ch in range(c):
                out[ch] = x[b, r0, s0, ch] if inside else -np.inf
            if argmax is not None:
                argmax[b, i, j] = 0
            for di in range(kh):
                r = r0 + di
                if r < 0 or r >= h:
                    continue
                for dj in range(kw):
                    s = s0 + dj
                    if s < 0 or s >= w or di + dj == 0:
                        continue
                    tap, pixel = di * kw + dj, x[b, r, s]
                    if argmax is None:
                        for ch in range(c):
                            out[ch] = pixel[ch] if pixel[ch] > out[ch] else out[ch]
                    else:
                        winner = argmax[b, i, j]
                        for ch in range(c):
                            if pixel[ch] > out[ch]:
                                out[ch] = pixel[ch]
                                winner[ch] = tap


def max_pool2d_numba(x, kernel, stride, padding, ceil_mode, need_argmax=True):
    """Returns (y, argmax or None) with the values of functional.pooling.max_pool2d_strided, stored channels-last."""
    (n, c, _, _), ((oh, ow), _) = x.shape, pool_geometry(x.shape, kernel, stride, padding, ceil_mode)
    y = host_memory.empty((n, oh, ow, c), dtype=x.dtype)
    argmax = host_memory.empty(y.shape, dtype=_argmax_type(kernel)) if need_argmax else None
    run_chunks(n * oh, rows_per_chunk(ow * c * kernel[0] * kernel[1]), _max_pool, channels_last(x), *kernel,
               *stride, *padding, y, argmax)
    return from_channels_last(y), None if argmax is None else from_channels_last(argmax)


@njit(inline="always")
def _window_covering(r, pad, tap, stride, out_size):
    """The window (output index) whose tap ``tap`` lies on input cell ``r``, or -1 if none does."""
    offset = r + pad - tap  # = window * stride
    if offset < 0 or offset % stride != 0 or offset // stride >= out_size:
        return -1
    return offset // stride


@jit
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
    run_chunks(n * h, rows_per_chunk(w * c * kernel[0] * kernel[1]), _pool_backward, channels_last(gy), average,
                argmax, divisor, *kernel, *stride, *padding, gx)
    return from_channels_last(gx)


def max_pool2d_backward_numba(gy, argmax, x_shape, kernel, stride, padding, ceil_mode):
    """Route each output gradient to its window's winner; see max_pool2d_backward_strided."""
    return _pool_backward_rows(gy, channels_last(argmax), None, x_shape, kernel, stride, padding)


@jit
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


def avg_pool2d_numba(x, divisor, kernel, stride, padding, ceil_mode):
    """Window sums over ``divisor`` (OH, OW), as functional.pooling.avg_pool2d_strided; stored channels-last."""
    (n, c, _, _), ((oh, ow), _) = x.shape, pool_geometry(x.shape, kernel, stride, padding, ceil_mode)
    y = host_memory.empty((n, oh, ow, c), dtype=x.dtype)
    run_chunks(n * oh, rows_per_chunk(ow * c * kernel[0] * kernel[1]), _avg_pool, channels_last(x), *kernel,
                *stride, *padding, divisor, y)
    return from_channels_last(y)


def avg_pool2d_backward_numba(gy, divisor, x_shape, kernel, stride, padding, ceil_mode):
    """Spread each output gradient evenly over its window; see avg_pool2d_backward_strided."""
    return _pool_backward_rows(gy, None, divisor, x_shape, kernel, stride, padding)


# -- GPU ---------------------------------------------------------------------------------------
def max_pool2d_gather(x, kernel, stride, padding, ceil_mode, need_argmax=True):
    """(y, argmax or None) as functional.pooling.max_pool2d_strided, both stored channels-last. 5 launches
    (3 without ``need_argmax``).

    ``argmax`` is the first maximum in tap order, the plain version's tie rule.
    (A NaN wins its window here, as in PyTorch; the plain version skips NaNs after the first tap.)
    """
    (n, c, _, _), (out, _) = x.shape, pool_geometry(x.shape, kernel, stride, padding, ceil_mode)
    taps = gather_windows(x, out, kernel, stride, padding, -np.inf, taps_first=True).reshape(n, -1, out[0] * out[1], c)
    y = as_images(taps.max(axis=1), n, *out)
    if not need_argmax:
        return y, None
    argmax = taps.argmax(axis=1).astype(_argmax_type(kernel))  # int64 first: CuPy's argmax makes no other type
    return y, as_images(argmax, n, *out)


def max_pool2d_backward_gather(gy, argmax, x_shape, kernel, stride, padding, ceil_mode):
    """Route each output gradient to its window's winner, as max_pool2d_backward_strided. 5 launches."""
    xp, (n, c, h, w), out = get_array_module(gy), x_shape, gy.shape[2:]
    plan = coverage(x_shape, gy, out, kernel, stride, padding)
    grads = planes(gy).take(plan.window, axis=1)       # (N, K*H*W, C): the gradient of the window...
    winners = planes(argmax).take(plan.window, axis=1)  # ...and the tap that won it
    xp.copyto(grads, 0, where=winners != plan.tap)      # kept where this tap won (tap -1, no window: never)
    return as_images(grads.reshape(n, -1, h * w, c).sum(axis=1), n, h, w)


def avg_pool2d_gather(x, divisor, kernel, stride, padding, ceil_mode):
    """Window sums (zero padding) over ``divisor`` (OH, OW), as avg_pool2d_strided; channels-last. 4 launches."""
    (n, c, _, _), (out, _) = x.shape, pool_geometry(x.shape, kernel, stride, padding, ceil_mode)
    taps = gather_windows(x, out, kernel, stride, padding, 0, taps_first=True)
    total = taps.reshape(n, -1, out[0] * out[1], c).sum(axis=1)  # (N, OH*OW, C), adding the taps in order
    return as_images(total / divisor.reshape(-1, 1), n, *out)


def avg_pool2d_backward_gather(gy, divisor, x_shape, kernel, stride, padding, ceil_mode):
    """Give every cell of each window an equal share of its gradient, as avg_pool2d_backward_strided. 4 launches."""
    (n, _, h, w), out = x_shape, gy.shape[2:]
    plan = coverage(x_shape, gy, out, kernel, stride, padding)
    share = planes(gy) / divisor.reshape(-1, 1)  # (N, OH*OW, C)
    return as_images(sum_coverage(share, plan.window, plan.outside, x_shape, kernel), n, h, w)

