"""Local response normalization's fast forms (plain twins: functional/lrn.py).

CPU: numba loops, one pixel's C channels at a time, window sums over a
scratch row, on minicnn's threads. GPU: the window sums as shifted views of a
zero-padded copy, added up inside one fused kernel (:mod:`.fusion`).
"""
import numpy as np

from . import host_memory
from .chunks import as_rows, from_rows, jit, rows_per_chunk, run_chunks
from .fusion import cp, fused, in_memory_order, memory_axes


# -- CPU ---------------------------------------------------------------------------------------
# Per pixel, the C channels lie side by side. The window sums read a scratch row that holds the
# pixel's values with size - 1 zeros around them (the plain version pads the same way), and add
# each window's channels in the plain version's order.
@jit
def _lrn_forward_loop(x, size, alpha, beta, k, y, scale, scale_pow, start, stop):
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


def lrn_forward_numba(x, size, alpha, beta, k):
    """Returns (y, scale, scale ** -beta) as functional.lrn.lrn_forward_plain does, stored channels-last."""
    rows = as_rows(x)
    y, scale, scale_pow = (host_memory.empty_like(rows) for _ in range(3))
    run_chunks(rows.shape[0], rows_per_chunk(rows.shape[1] * size), _lrn_forward_loop, rows, size, alpha, beta, k,
                y, scale, scale_pow)
    return tuple(from_rows(a, x.shape) for a in (y, scale, scale_pow))


@jit
def _lrn_backward_loop(gy, x, scale, scale_pow, size, alpha, beta, gx, start, stop):
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


def lrn_backward_numba(gy, x, scale, scale_pow, size, alpha, beta):
    """dL/dx as functional.lrn.lrn_backward_plain computes it, stored channels-last."""
    rows = [as_rows(a) for a in (gy, x, scale, scale_pow)]
    gx = host_memory.empty_like(rows[0])
    run_chunks(rows[0].shape[0], rows_per_chunk(rows[0].shape[1] * size), _lrn_backward_loop, *rows, size, alpha,
                beta, gx)
    return from_rows(gx, x.shape)


# -- GPU ---------------------------------------------------------------------------------------
# A channel window sum is `size` shifted views of a zero-padded copy added up: the copy costs a memset and
# one kernel that writes its interior, and the views are free.
def _zeros_padded_channels(like, before, after):
    """Zeros (N, before + C + after, H, W), laid out in memory as ``like`` (N, C, H, W) is."""
    axes = memory_axes(like)
    shape = list(like.shape)
    shape[1] += before + after
    return cp().zeros([shape[axis] for axis in axes], like.dtype).transpose([int(i) for i in np.argsort(axes)])


def _windows(padded, size, channels):
    """The ``size`` views padded[:, s : s + channels]: window member s of every channel."""
    return [padded[:, shift:shift + channels] for shift in range(size)]


@fused
def _square_into(out, x):
    out[...] = x * x


@fused
def _lrn_forward(x, coefficient, k, neg_beta, *windows):
    total = windows[0]
    for window in windows[1:]:
        total = total + window
    scale = total * coefficient + k
    scale_pow = scale ** neg_beta
    return x * scale_pow, scale, scale_pow


def lrn_forward_fused(x, size, alpha, beta, k):
    """Twin of ``lrn_forward_plain``: returns (y, scale, scale ** -beta), all (N, C, H, W). Kernels: 3."""
    channels = x.shape[1]
    padded = _zeros_padded_channels(x, size // 2, (size - 1) // 2)
    _square_into(padded[:, size // 2:size // 2 + channels], x)
    return in_memory_order(_lrn_forward, x, x, alpha / size, k, -beta, *_windows(padded, size, channels))


@fused
def _ratio_into(out, gy, x, scale, scale_pow):
    out[...] = gy * x * scale_pow / scale


@fused
def _lrn_backward(gy, x, scale_pow, coefficient, *windows):
    total = windows[0]
    for window in windows[1:]:
        total = total + window
    return gy * scale_pow - coefficient * x * total


def lrn_backward_fused(gy, x, scale, scale_pow, size, alpha, beta):
    """Twin of ``lrn_backward_plain``: dL/dx (N, C, H, W). Kernels: 3."""
    channels, before = x.shape[1], (size - 1) // 2
    padded = _zeros_padded_channels(x, before, size // 2)
    _ratio_into(padded[:, before:before + channels], gy, x, scale, scale_pow)
    return in_memory_order(_lrn_backward, x, gy, x, scale_pow, 2.0 * alpha * beta / size,
                            *_windows(padded, size, channels))

