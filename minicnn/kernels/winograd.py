"""Winograd F(2x2, 3x3)'s tile transforms as numba loops (plain twins: functional/winograd.py).

Each kernel reads a tile's values once, applies the small transform with the
same additions in the same order as the plain form (so the two agree bit for
bit), and writes the result in the layout the 16 matrix products want:
(16, tiles, channels), channels side by side. There is no padded copy: a
block that reaches into the padding reads zeros. The work is split over
minicnn's threads by rows of tiles (:mod:`.chunks`).
"""
import numpy as np
from numba import njit

from . import host_memory
from ..geometry import winograd_tiles
from ..layout import channels_last, from_channels_last
from .chunks import jit, rows_per_chunk, run_chunks
from .conv import _product_into
from .threads import blas_on_one_thread, chunk_bounds, parallel_for

inline = njit(inline="always", nogil=True, cache=True)


# The four small maps, each applied to rows of channels: ``out_a[ch] = sum_i M[a, i] * in_i[ch]``, with
# the additions in the order of the plain form's _combine. One loop over channels per call, with no
# branch inside, so LLVM vectorises it.
@inline
def _b_t(d0, d1, d2, d3, v0, v1, v2, v3):
    """B^T: rows [1 0 -1 0], [0 1 1 0], [0 -1 1 0], [0 1 0 -1]."""
    for ch in range(d0.shape[0]):
        v0[ch] = d0[ch] - d2[ch]
        v1[ch] = d1[ch] + d2[ch]
        v2[ch] = -d1[ch] + d2[ch]
        v3[ch] = d1[ch] - d3[ch]


@inline
def _b(v0, v1, v2, v3, d0, d1, d2, d3):
    """B, the transpose of B^T: rows [1 0 0 0], [0 1 -1 1], [-1 1 1 0], [0 0 0 -1]."""
    for ch in range(v0.shape[0]):
        d0[ch] = v0[ch]
        d1[ch] = v1[ch] - v2[ch] + v3[ch]
        d2[ch] = -v0[ch] + v1[ch] + v2[ch]
        d3[ch] = -v3[ch]


@inline
def _a_t(m0, m1, m2, m3, y0, y1):
    """A^T: rows [1 1 1 0], [0 1 -1 -1]."""
    for ch in range(m0.shape[0]):
        y0[ch] = m0[ch] + m1[ch] + m2[ch]
        y1[ch] = m1[ch] - m2[ch] - m3[ch]


@inline
def _a(y0, y1, m0, m1, m2, m3):
    """A, the transpose of A^T: rows [1 0], [1 1], [1 -1], [0 -1]."""
    for ch in range(y0.shape[0]):
        m0[ch] = y0[ch]
        m1[ch] = y0[ch] + y1[ch]
        m2[ch] = y0[ch] - y1[ch]
        m3[ch] = -y1[ch]


# -- filters -----------------------------------------------------------------------------------
@inline
def _g(g0, g1, g2, half, u0, u1, u2, u3):
    """G: rows [1 0 0], [1/2 1/2 1/2], [1/2 -1/2 1/2], [0 0 1] (``half`` is 1/2 in the arrays' dtype)."""
    for k in range(g0.shape[0]):
        u0[k] = g0[k]
        u1[k] = half * g0[k] + half * g1[k] + half * g2[k]
        u2[k] = half * g0[k] + -half * g1[k] + half * g2[k]
        u3[k] = g2[k]


@inline
def _g_t(u0, u1, u2, u3, half, g0, g1, g2):
    """G^T: rows [1 1/2 1/2 0], [0 1/2 -1/2 0], [0 1/2 1/2 1]."""
    for k in range(u0.shape[0]):
        g0[k] = u0[k] + half * u1[k] + half * u2[k]
        g1[k] = half * u1[k] + -half * u2[k]
        g2[k] = half * u1[k] + half * u2[k] + u3[k]


@jit
def _filters(g, half, u, start, stop):
    t = np.empty((4, 3, g.shape[3]), g.dtype)   # G g, for the filters of one input channel
    for c in range(start, stop):                 # one input channel, every output channel (the last axis)
        for j in range(3):
            _g(g[0, j, c], g[1, j, c], g[2, j, c], half, t[0, j], t[1, j], t[2, j], t[3, j])
        for a in range(4):
            _g(t[a, 0], t[a, 1], t[a, 2], half, u[4 * a, c], u[4 * a + 1, c], u[4 * a + 2, c], u[4 * a + 3, c])


def filter_transform_numba(weight):
    """weight (O, C, 3, 3) -> U (16, C, O); see functional.winograd.filter_transform_plain."""
    o, c = weight.shape[:2]
    g = np.ascontiguousarray(weight.transpose(2, 3, 1, 0))  # (3, 3, C, O)
    u = np.empty((16, c, o), weight.dtype)
    run_chunks(c, rows_per_chunk(16 * o), _filters, g, weight.dtype.type(0.5), u)
    return u


@jit
def _filters_adjoint(du, half, dw, start, stop):
    t = np.empty((3, 4, du.shape[2]), du.dtype)  # G^T dU
    for c in range(start, stop):
        for j in range(4):
            _g_t(du[j, c], du[4 + j, c], du[8 + j, c], du[12 + j, c], half, t[0, j], t[1, j], t[2, j])
        for i in range(3):
            _g_t(t[i, 0], t[i, 1], t[i, 2], t[i, 3], half, dw[i, 0, c], dw[i, 1, c], dw[i, 2, c])


def filter_transform_adjoint_numba(grad_u):
    """dU (16, C, O) -> dW (O, C, 3, 3); see functional.winograd.filter_transform_adjoint_plain."""
    _, c, o = grad_u.shape
    dw = np.empty((3, 3, c, o), grad_u.dtype)
    run_chunks(c, rows_per_chunk(16 * o), _filters_adjoint, np.ascontiguousarray(grad_u), grad_u.dtype.type(0.5), dw)
    return dw.transpose(3, 2, 0, 1)


# -- forward -----------------------------------------------------------------------------------
# Each kernel copies a tile's pixels into a small patch first (zeros where the tile reaches into the
# padding or past the output), then applies its map down the patch's columns, then along its rows,
# as the plain form's _sandwich does.
@jit
def _input_tiles(x, ph, pw, th, tw, v, start, stop):
    n, h, w, c = x.shape
    d = np.empty((4, 4, c), x.dtype)  # one input block, zeros where it lies in the padding
    t = np.empty((4, 4, c), x.dtype)  # B^T d
    for row in range(start, stop):    # one row of tiles: image b, tile row y
        b, y = row // th, row % th
        for s in range(tw):
            for i in range(4):
                r = 2 * y - ph + i
                for j in range(4):
                    q = 2 * s - pw + j
                    if 0 <= r < h and 0 <= q < w:
                        d[i, j] = x[b, r, q]
                    else:
                        d[i, j] = 0
            p = row * tw + s
            for j in range(4):
                _b_t(d[0, j], d[1, j], d[2, j], d[3, j], t[0, j], t[1, j], t[2, j], t[3, j])
            for a in range(4):
                _b_t(t[a, 0], t[a, 1], t[a, 2], t[a, 3], v[4 * a, p], v[4 * a + 1, p], v[4 * a + 2, p],
                     v[4 * a + 3, p])


def input_transform_numba(x, padding):
    """x (N, C, H, W) -> V (16, N*th*tw, C); see functional.winograd.input_transform_plain."""
    n, c, h, w = x.shape
    th, tw = winograd_tiles(h, w, padding)
    v = host_memory.empty((16, n * th * tw, c), dtype=x.dtype)
    run_chunks(n * th, rows_per_chunk(16 * tw * c), _input_tiles, channels_last(x), *padding, th, tw, v)
    return v


@jit
def _output_tiles(m, bias, relu, th, tw, y, first_row, start, stop):
    """Tile rows start..stop of y from M, whose tile 0 is the first tile of row ``first_row`` (+ bias, then
    max(., 0) if ``relu``)."""
    n, oh, ow, o = y.shape
    t = np.empty((2, 4, o), m.dtype)  # A^T m
    out = np.empty((2, 2, o), m.dtype)  # A^T m A: one output tile
    for row in range(start, stop):
        b, r0 = row // th, 2 * (row % th)
        for s in range(tw):
            p, q0 = (row - first_row) * tw + s, 2 * s
            for j in range(4):
                _a_t(m[j, p], m[4 + j, p], m[8 + j, p], m[12 + j, p], t[0, j], t[1, j])
            for r in range(2):
                _a_t(t[r, 0], t[r, 1], t[r, 2], t[r, 3], out[r, 0], out[r, 1])
            for r in range(min(2, oh - r0)):
                for q in range(min(2, ow - q0)):
                    pixel, values = y[b, r0 + r, q0 + q], out[r, q]
                    if bias is not None:
                        for ch in range(o):
                            pixel[ch] = values[ch] + bias[ch]
                    else:
                        pixel[:] = values
                    if relu:  # as NumPy's maximum(y, 0): NaN stays NaN
                        for ch in range(o):
                            pixel[ch] = 0 if pixel[ch] < 0 else pixel[ch]


def output_transform_numba(m, bias, out_shape):
    """M (16, N*th*tw, O) -> y (N, OH, OW, O) C-contiguous (+ bias); see functional.winograd.output_transform_plain."""
    n, oh, ow = out_shape
    th, tw, o = (oh + 1) // 2, (ow + 1) // 2, m.shape[2]
    y = host_memory.empty((n, oh, ow, o), dtype=m.dtype)
    run_chunks(n * th, rows_per_chunk(16 * tw * o), _output_tiles, m, bias, False, th, tw, y, 0)
    return y


_BLOCK_BYTES = 4 << 20   # the M of one chunk of tiles: well inside the L3 cache, shared by the cores


def forward_numba(v, u, bias, out_shape, relu=False):
    """V (16, P, C), U (16, C, O) -> y (N, OH, OW, O) C-contiguous (+ bias, then max(., 0) if ``relu``), as
    functional.winograd.forward_plain: the 16 products and the output transform, chunk of tiles by chunk.

    M (16, P, O) is four times the output; made whole, it goes out to memory
    and comes back for the output transform. Here each chunk of tile rows
    multiplies its tiles' V by U (16 one-thread BLAS calls) into an M of a few
    MB and turns it into output pixels at once, while it is still in cache.
    """
    n, oh, ow = out_shape
    th, tw, o = (oh + 1) // 2, (ow + 1) // 2, u.shape[2]
    y = host_memory.empty((n, oh, ow, o), dtype=v.dtype)
    bounds = chunk_bounds(n * th, max(1, _BLOCK_BYTES // (16 * tw * o * v.itemsize)))

    def chunk(i):
        start, stop = bounds[i]
        tiles = slice(start * tw, stop * tw)
        m = host_memory.empty((16, (stop - start) * tw, o), dtype=v.dtype)
        for k in range(16):
            _product_into(v[k, tiles], u[k], m[k])
        _output_tiles(m, bias, relu, th, tw, y, start, start, stop)

    with blas_on_one_thread():
        parallel_for(len(bounds), chunk)
    return y


# -- backward ----------------------------------------------------------------------------------
@jit
def _output_tiles_adjoint(g, th, tw, dm, start, stop):
    n, oh, ow, o = g.shape
    dy = np.empty((2, 2, o), g.dtype)  # one tile of the output's gradient, zeros past the output
    t = np.empty((2, 4, o), g.dtype)   # A dY
    for row in range(start, stop):
        b, r0 = row // th, 2 * (row % th)
        for s in range(tw):
            p, q0 = row * tw + s, 2 * s
            for r in range(2):
                for q in range(2):
                    if r0 + r < oh and q0 + q < ow:
                        dy[r, q] = g[b, r0 + r, q0 + q]
                    else:
                        dy[r, q] = 0
            for q in range(2):
                _a(dy[0, q], dy[1, q], t[q, 0], t[q, 1], t[q, 2], t[q, 3])
            for a in range(4):
                _a(t[0, a], t[1, a], dm[4 * a, p], dm[4 * a + 1, p], dm[4 * a + 2, p], dm[4 * a + 3, p])


def output_transform_adjoint_numba(gy):
    """dY (N, O, OH, OW) -> dM (16, N*th*tw, O); see functional.winograd.output_transform_adjoint_plain."""
    n, o, oh, ow = gy.shape
    th, tw = (oh + 1) // 2, (ow + 1) // 2
    dm = host_memory.empty((16, n * th * tw, o), dtype=gy.dtype)
    run_chunks(n * th, rows_per_chunk(16 * tw * o), _output_tiles_adjoint, channels_last(gy), th, tw, dm)
    return dm


@jit
def _input_tiles_adjoint(dv, ph, pw, th, tw, gx, start, stop):
    n, h, w, c = gx.shape
    blocks = np.empty((th, tw, 4, 4, c), dv.dtype)  # B dV B^T for every tile of one image
    t = np.empty((4, 4, c), dv.dtype)               # B dV
    for b in range(start, stop):  # each image owns its plane of gx: no two threads add to one pixel
        for y in range(th):
            for s in range(tw):
                p = (b * th + y) * tw + s
                for j in range(4):
                    _b(dv[j, p], dv[4 + j, p], dv[8 + j, p], dv[12 + j, p], t[0, j], t[1, j], t[2, j], t[3, j])
                for i in range(4):
                    block = blocks[y, s, i]
                    _b(t[i, 0], t[i, 1], t[i, 2], t[i, 3], block[0], block[1], block[2], block[3])
        gx[b] = 0
        for i in range(4):
            for j in range(4):  # block positions in the plain form's order
                for y in range(th):
                    r = 2 * y - ph + i
                    if r < 0 or r >= h:
                        continue
                    for s in range(tw):
                        q = 2 * s - pw + j
                        if 0 <= q < w:
                            pixel, values = gx[b, r, q], blocks[y, s, i, j]
                            for ch in range(c):
                                pixel[ch] += values[ch]


def input_transform_adjoint_numba(grad_v, x_shape, padding):
    """dV (16, N*th*tw, C) -> dX (N, C, H, W) stored channels-last; see
    functional.winograd.input_transform_adjoint_plain."""
    n, c, h, w = x_shape
    th, tw = winograd_tiles(h, w, padding)
    gx = host_memory.empty((n, h, w, c), dtype=grad_v.dtype)
    run_chunks(n, 1, _input_tiles_adjoint, np.ascontiguousarray(grad_v), *padding, th, tw, gx)
    return from_channels_last(gx)
