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
def _lrn_forward_loop(x, size, alpha_over_size, beta, k, one, y, scale, scale_pow, start, stop):
    """``alpha_over_size``, ``k`` and ``one`` come in x's dtype, so that float32 stays float32 throughout, as in
    the plain version (NumPy computes float32 arrays with Python floats in float32)."""
    pixels, c = x.shape
    before = size // 2
    squares = np.zeros(c + size - 1, dtype=x.dtype)  # squares[before + ch] = x[p, ch] ** 2, zeros around
    energy = np.empty(c, dtype=x.dtype)              # the window sums of one pixel
    for p in range(start, stop):
        row, out, row_scale, row_pow = x[p], y[p], scale[p], scale_pow[p]
        for ch in range(c):
            squares[before + ch] = row[ch] * row[ch]
        # Window by window offset, all channels at once (an inner loop over channels vectorises; one over
        # the window would not), adding in the plain version's order: offset 0, 1, ...
        energy[:] = squares[:c]
        for d in range(1, size):
            shifted = squares[d:d + c]
            for ch in range(c):
                energy[ch] += shifted[ch]
        for ch in range(c):
            u = k + alpha_over_size * energy[ch]
            if beta == 0.75:  # GoogLeNet's beta: s ** -0.75 = 1/sqrt(s) * sqrt(1/sqrt(s)); square roots vectorise, pow doesn't
                root = one / np.sqrt(u)
                power = root * np.sqrt(root)
            else:
                power = u ** -beta
            row_scale[ch], row_pow[ch] = u, power
            out[ch] = row[ch] * power


def lrn_forward_numba(x, size, alpha, beta, k):
    """Returns (y, scale, scale ** -beta) as functional.lrn.lrn_forward_plain does, stored channels-last."""
    rows = as_rows(x)
    y, scale, scale_pow = (host_memory.empty_like(rows) for _ in range(3))
    typed = x.dtype.type
    run_chunks(rows.shape[0], rows_per_chunk(rows.shape[1] * size), _lrn_forward_loop, rows, size,
               typed(alpha / size), beta, typed(k), typed(1), y, scale, scale_pow)
    return tuple(from_rows(a, x.shape) for a in (y, scale, scale_pow))


@jit
def _lrn_backward_loop(gy, x, scale, scale_pow, size, factor, gx, start, stop):
    """``factor`` = 2 alpha beta / size, in x's dtype (as _lrn_forward_loop's constants)."""
    pixels, c = x.shape
    before = (size - 1) // 2  # the mirrored window
    ratio = np.zeros(c + size - 1, dtype=x.dtype)  # ratio[before + ch] = g * b / U of channel ch, zeros around
    total = np.empty(c, dtype=x.dtype)             # the mirrored window sums of one pixel
    for p in range(start, stop):
        g, row, row_scale, row_pow, out = gy[p], x[p], scale[p], scale_pow[p], gx[p]
        for ch in range(c):
            ratio[before + ch] = g[ch] * row[ch] * row_pow[ch] / row_scale[ch]
        total[:] = ratio[:c]  # offset by offset, as in forward
        for d in range(1, size):
            shifted = ratio[d:d + c]
            for ch in range(c):
                total[ch] += shifted[ch]
        for ch in range(c):
            out[ch] = g[ch] * row_pow[ch] - factor * row[ch] * total[ch]


def lrn_backward_numba(gy, x, scale, scale_pow, size, alpha, beta):
    """dL/dx as functional.lrn.lrn_backward_plain computes it, stored channels-last."""
    rows = [as_rows(a) for a in (gy, x, scale, scale_pow)]
    gx = host_memory.empty_like(rows[0])
    run_chunks(rows[0].shape[0], rows_per_chunk(rows[0].shape[1] * size), _lrn_backward_loop, *rows, size,
               x.dtype.type(2.0 * alpha * beta / size), gx)
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

