"""Winograd F(4x4, 3x3)'s tile transforms as numba loops (plain twins: functional/winograd.py).

Each kernel reads a tile's values once, applies the small transform with the
same products and additions in the same order as the plain form (so the two
agree bit for bit), and writes the result in the layout the 36 matrix
products want: (36, tiles, channels), channels side by side. There is no
padded copy: a block that reaches into the padding reads zeros. The work is
split over minicnn's threads by rows of tiles (:mod:`.chunks`).
"""
import numpy as np
from numba import njit

from . import host_memory
from ..geometry import WINOGRAD_TILE as TILE, winograd_output_tiles, winograd_tiles
from ..layout import channels_last, from_channels_last
from .chunks import jit, rows_per_chunk, run_chunks
from .conv import _col2im, _im2col, _product_into
from .threads import blas_on_one_thread, chunk_bounds, parallel_for

inline = njit(inline="always", nogil=True, cache=True)
BLOCK = TILE + 2        # 6x6 input blocks
POSITIONS = BLOCK ** 2  # 36 products


def _constants(dtype):
    """The transforms' coefficients other than +-1, in the arrays' dtype (as the plain form multiplies)."""
    return np.array([2, 4, 5, 8, 1 / 4, 1 / 6, 1 / 12, 1 / 24], dtype=dtype)


# The six small maps, each applied to rows of channels: ``out_a[ch] = sum_i M[a, i] * in_i[ch]``, with
# the products and additions in the order of the plain form's _combine (a - c*x is a + (-c)*x, exactly).
# One loop over channels per call, with no branch inside, so LLVM vectorises it.
@inline
def _b_t(k, d0, d1, d2, d3, d4, d5, v0, v1, v2, v3, v4, v5):
    """B^T: rows [4 0 -5 0 1 0], [0 -4 -4 1 1 0], [0 4 -4 -1 1 0], [0 -2 -1 2 1 0], [0 2 -1 -2 1 0],
    [0 4 0 -5 0 1]."""
    two, four, five = k[0], k[1], k[2]
    for ch in range(d0.shape[0]):
        v0[ch] = four * d0[ch] - five * d2[ch] + d4[ch]
        v1[ch] = -four * d1[ch] - four * d2[ch] + d3[ch] + d4[ch]
        v2[ch] = four * d1[ch] - four * d2[ch] - d3[ch] + d4[ch]
        v3[ch] = -two * d1[ch] - d2[ch] + two * d3[ch] + d4[ch]
        v4[ch] = two * d1[ch] - d2[ch] - two * d3[ch] + d4[ch]
        v5[ch] = four * d1[ch] - five * d3[ch] + d5[ch]


@inline
def _b(k, v0, v1, v2, v3, v4, v5, d0, d1, d2, d3, d4, d5):
    """B, the transpose of B^T: rows [4 0 0 0 0 0], [0 -4 4 -2 2 4], [-5 -4 -4 -1 -1 0], [0 1 -1 2 -2 -5],
    [1 1 1 1 1 0], [0 0 0 0 0 1]."""
    two, four, five = k[0], k[1], k[2]
    for ch in range(v0.shape[0]):
        d0[ch] = four * v0[ch]
        d1[ch] = -four * v1[ch] + four * v2[ch] - two * v3[ch] + two * v4[ch] + four * v5[ch]
        d2[ch] = -five * v0[ch] - four * v1[ch] - four * v2[ch] - v3[ch] - v4[ch]
        d3[ch] = v1[ch] - v2[ch] + two * v3[ch] - two * v4[ch] - five * v5[ch]
        d4[ch] = v0[ch] + v1[ch] + v2[ch] + v3[ch] + v4[ch]
        d5[ch] = v5[ch]


@inline
def _a_t(k, m0, m1, m2, m3, m4, m5, y0, y1, y2, y3):
    """A^T: rows [1 1 1 1 1 0], [0 1 -1 2 -2 0], [0 1 1 4 4 0], [0 1 -1 8 -8 1]."""
    two, four, eight = k[0], k[1], k[3]
    for ch in range(m0.shape[0]):
        y0[ch] = m0[ch] + m1[ch] + m2[ch] + m3[ch] + m4[ch]
        y1[ch] = m1[ch] - m2[ch] + two * m3[ch] - two * m4[ch]
        y2[ch] = m1[ch] + m2[ch] + four * m3[ch] + four * m4[ch]
        y3[ch] = m1[ch] - m2[ch] + eight * m3[ch] - eight * m4[ch] + m5[ch]


@inline
def _a(k, y0, y1, y2, y3, m0, m1, m2, m3, m4, m5):
    """A, the transpose of A^T: rows [1 0 0 0], [1 1 1 1], [1 -1 1 -1], [1 2 4 8], [1 -2 4 -8], [0 0 0 1]."""
    two, four, eight = k[0], k[1], k[3]
    for ch in range(y0.shape[0]):
        m0[ch] = y0[ch]
        m1[ch] = y0[ch] + y1[ch] + y2[ch] + y3[ch]
        m2[ch] = y0[ch] - y1[ch] + y2[ch] - y3[ch]
        m3[ch] = y0[ch] + two * y1[ch] + four * y2[ch] + eight * y3[ch]
        m4[ch] = y0[ch] - two * y1[ch] + four * y2[ch] - eight * y3[ch]
        m5[ch] = y3[ch]


# -- filters -----------------------------------------------------------------------------------
@inline
def _g(k, g0, g1, g2, u0, u1, u2, u3, u4, u5):
    """G: rows [1/4 0 0], [-1/6 -1/6 -1/6], [-1/6 1/6 -1/6], [1/24 1/12 1/6], [1/24 -1/12 1/6], [0 0 1]."""
    quarter, sixth, twelfth, twenty_fourth = k[4], k[5], k[6], k[7]
    for i in range(g0.shape[0]):
        u0[i] = quarter * g0[i]
        u1[i] = -sixth * g0[i] - sixth * g1[i] - sixth * g2[i]
        u2[i] = -sixth * g0[i] + sixth * g1[i] - sixth * g2[i]
        u3[i] = twenty_fourth * g0[i] + twelfth * g1[i] + sixth * g2[i]
        u4[i] = twenty_fourth * g0[i] - twelfth * g1[i] + sixth * g2[i]
        u5[i] = g2[i]


@inline
def _g_t(k, u0, u1, u2, u3, u4, u5, g0, g1, g2):
    """G^T: rows [1/4 -1/6 -1/6 1/24 1/24 0], [0 -1/6 1/6 1/12 -1/12 0], [0 -1/6 -1/6 1/6 1/6 1]."""
    quarter, sixth, twelfth, twenty_fourth = k[4], k[5], k[6], k[7]
    for i in range(u0.shape[0]):
        g0[i] = quarter * u0[i] - sixth * u1[i] - sixth * u2[i] + twenty_fourth * u3[i] + twenty_fourth * u4[i]
        g1[i] = -sixth * u1[i] + sixth * u2[i] + twelfth * u3[i] - twelfth * u4[i]
        g2[i] = -sixth * u1[i] - sixth * u2[i] + sixth * u3[i] + sixth * u4[i] + u5[i]


@jit
def _filters(g, k, u, start, stop):
    t = np.empty((BLOCK, 3, g.shape[3]), g.dtype)  # G g, for the filters of one input channel
    for c in range(start, stop):                    # one input channel, every output channel (the last axis)
        for j in range(3):
            _g(k, g[0, j, c], g[1, j, c], g[2, j, c], t[0, j], t[1, j], t[2, j], t[3, j], t[4, j], t[5, j])
        for a in range(BLOCK):
            r = BLOCK * a
            _g(k, t[a, 0], t[a, 1], t[a, 2], u[r, c], u[r + 1, c], u[r + 2, c], u[r + 3, c], u[r + 4, c],
               u[r + 5, c])


def filter_transform_numba(weight):
    """weight (O, C, 3, 3) -> U (36, C, O); see functional.winograd.filter_transform_plain."""
    o, c = weight.shape[:2]
    g = np.ascontiguousarray(weight.transpose(2, 3, 1, 0))  # (3, 3, C, O)
    u = np.empty((POSITIONS, c, o), weight.dtype)
    run_chunks(c, rows_per_chunk(POSITIONS * o), _filters, g, _constants(weight.dtype), u)
    return u


@jit
def _filters_adjoint(du, k, dw, start, stop):
    t = np.empty((3, BLOCK, du.shape[2]), du.dtype)  # G^T dU
    for c in range(start, stop):
        for j in range(BLOCK):
            _g_t(k, du[j, c], du[6 + j, c], du[12 + j, c], du[18 + j, c], du[24 + j, c], du[30 + j, c],
                 t[0, j], t[1, j], t[2, j])
        for i in range(3):
            _g_t(k, t[i, 0], t[i, 1], t[i, 2], t[i, 3], t[i, 4], t[i, 5], dw[i, 0, c], dw[i, 1, c], dw[i, 2, c])


def filter_transform_adjoint_numba(grad_u):
    """dU (36, C, O) -> dW (O, C, 3, 3); see functional.winograd.filter_transform_adjoint_plain."""
    _, c, o = grad_u.shape
    dw = np.empty((3, 3, c, o), grad_u.dtype)
    run_chunks(c, rows_per_chunk(POSITIONS * o), _filters_adjoint, np.ascontiguousarray(grad_u),
               _constants(grad_u.dtype), dw)
    return dw.transpose(3, 2, 0, 1)


# -- forward -----------------------------------------------------------------------------------
# Each kernel copies a tile's pixels into a small patch first (zeros where the tile reaches into the
# padding or past the output), then applies its map down the patch's columns, then along its rows,
# as the plain form's _sandwich does.
@jit
def _input_tiles(x, k, ph, pw, th, tw, v, start, stop):
    n, h, w, c = x.shape
    blocks = np.empty((1, tw, BLOCK, BLOCK, c), x.dtype)  # one row of input blocks, zeros in the padding
    t = np.empty((BLOCK, BLOCK, c), x.dtype)              # B^T d
    for row in range(start, stop):                        # one row of tiles: image b, tile row y
        # Reading the blocks is im2col, with 6x6 "taps" 4 apart: a tile row is a row of output pixels.
        _im2col(x, BLOCK, BLOCK, TILE, TILE, ph, pw, th, blocks, row, row, row + 1)
        for s in range(tw):
            d, p = blocks[0, s], row * tw + s
            for j in range(BLOCK):
                _b_t(k, d[0, j], d[1, j], d[2, j], d[3, j], d[4, j], d[5, j],
                     t[0, j], t[1, j], t[2, j], t[3, j], t[4, j], t[5, j])
            for a in range(BLOCK):
                r = BLOCK * a
                _b_t(k, t[a, 0], t[a, 1], t[a, 2], t[a, 3], t[a, 4], t[a, 5],
                     v[r, p], v[r + 1, p], v[r + 2, p], v[r + 3, p], v[r + 4, p], v[r + 5, p])


def input_transform_numba(x, padding):
    """x (N, C, H, W) -> V (36, N*th*tw, C); see functional.winograd.input_transform_plain."""
    n, c, h, w = x.shape
    th, tw = winograd_tiles(h, w, padding)
    v = host_memory.empty((POSITIONS, n * th * tw, c), dtype=x.dtype)
    run_chunks(n * th, rows_per_chunk(POSITIONS * tw * c), _input_tiles, channels_last(x), _constants(x.dtype),
               *padding, th, tw, v)
    return v


@jit
def _output_tiles(m, k, bias, relu, th, tw, y, first_row, start, stop):
    """Tile rows start..stop of y from M, whose tile 0 is the first tile of row ``first_row`` (+ bias, then
    max(., 0) if ``relu``)."""
    n, oh, ow, o = y.shape
    t = np.empty((TILE, BLOCK, o), m.dtype)  # A^T m
    out = np.empty((TILE, TILE, o), m.dtype)  # A^T m A: one output tile
    for row in range(start, stop):
        b, r0 = row // th, TILE * (row % th)
        for s in range(tw):
            p, q0 = (row - first_row) * tw + s, TILE * s
            for j in range(BLOCK):
                _a_t(k, m[j, p], m[6 + j, p], m[12 + j, p], m[18 + j, p], m[24 + j, p], m[30 + j, p],
                     t[0, j], t[1, j], t[2, j], t[3, j])
            for r in range(TILE):
                _a_t(k, t[r, 0], t[r, 1], t[r, 2], t[r, 3], t[r, 4], t[r, 5], out[r, 0], out[r, 1], out[r, 2],
                     out[r, 3])
            for r in range(min(TILE, oh - r0)):
                for q in range(min(TILE, ow - q0)):
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
    """M (36, N*th*tw, O) -> y (N, OH, OW, O) C-contiguous (+ bias); see functional.winograd.output_transform_plain."""
    n, oh, ow = out_shape
    (th, tw), o = winograd_output_tiles(oh, ow), m.shape[2]
    y = host_memory.empty((n, oh, ow, o), dtype=m.dtype)
    run_chunks(n * th, rows_per_chunk(POSITIONS * tw * o), _output_tiles, m, _constants(m.dtype), bias, False,
               th, tw, y, 0)
    return y


_BLOCK_BYTES = 4 << 20   # the M of one chunk of tiles: well inside the L3 cache, shared by the cores


def forward_numba(v, u, bias, out_shape, relu=False):
    """V (36, P, C), U (36, C, O) -> y (N, OH, OW, O) C-contiguous (+ bias, then max(., 0) if ``relu``), as
    functional.winograd.forward_plain: the 36 products and the output transform, chunk of tiles by chunk.

    M (36, P, O) is 2.25 times the output; made whole, it goes out to memory
    and comes back for the output transform. Here each chunk of tile rows
    multiplies its tiles' V by U (36 one-thread BLAS calls) into an M of a few
    MB and turns it into output pixels at once, while it is still in cache.
    """
    n, oh, ow = out_shape
    (th, tw), o = winograd_output_tiles(oh, ow), u.shape[2]
    y = host_memory.empty((n, oh, ow, o), dtype=v.dtype)
    bounds = chunk_bounds(n * th, max(1, _BLOCK_BYTES // (POSITIONS * tw * o * v.itemsize)))
    constants = _constants(v.dtype)

    def chunk(i):
        start, stop = bounds[i]
        tiles = slice(start * tw, stop * tw)
        m = host_memory.empty((POSITIONS, (stop - start) * tw, o), dtype=v.dtype)
        for k in range(POSITIONS):
            _product_into(v[k, tiles], u[k], m[k])
        _output_tiles(m, constants, bias, relu, th, tw, y, start, start, stop)

    with blas_on_one_thread():
        parallel_for(len(bounds), chunk)
    return y


# -- backward ----------------------------------------------------------------------------------
@jit
def _output_tiles_adjoint(g, k, th, tw, dm, start, stop):
    n, oh, ow, o = g.shape
    dy = np.empty((TILE, TILE, o), g.dtype)  # one tile of the output's gradient, zeros past the output
    t = np.empty((TILE, BLOCK, o), g.dtype)  # A dY
    for row in range(start, stop):
        b, r0 = row // th, TILE * (row % th)
        for s in range(tw):
            p, q0 = row * tw + s, TILE * s
            for r in range(TILE):
                for q in range(TILE):
                    if r0 + r < oh and q0 + q < ow:
                        dy[r, q] = g[b, r0 + r, q0 + q]
                    else:
                        dy[r, q] = 0
            for q in range(TILE):
                _a(k, dy[0, q], dy[1, q], dy[2, q], dy[3, q], t[q, 0], t[q, 1], t[q, 2], t[q, 3], t[q, 4], t[q, 5])
            for a in range(BLOCK):
                r = BLOCK * a
                _a(k, t[0, a], t[1, a], t[2, a], t[3, a],
                   dm[r, p], dm[r + 1, p], dm[r + 2, p], dm[r + 3, p], dm[r + 4, p], dm[r + 5, p])


def output_transform_adjoint_numba(gy):
    """dY (N, O, OH, OW) -> dM (36, N*th*tw, O); see functional.winograd.output_transform_adjoint_plain."""
    n, o, oh, ow = gy.shape
    th, tw = winograd_output_tiles(oh, ow)
    dm = host_memory.empty((POSITIONS, n * th * tw, o), dtype=gy.dtype)
    run_chunks(n * th, rows_per_chunk(POSITIONS * tw * o), _output_tiles_adjoint, channels_last(gy),
               _constants(gy.dtype), th, tw, dm)
    return dm


@jit
def _input_tiles_adjoint(dv, k, ph, pw, th, tw, gx, start, stop):
    n, h, w, c = gx.shape
    blocks = np.empty((th, tw, BLOCK, BLOCK, c), dv.dtype)  # B dV B^T for every tile of one image
    t = np.empty((BLOCK, BLOCK, c), dv.dtype)               # B dV
    for b in range(start, stop):  # each image owns its plane of gx: no two threads add to one pixel
        for y in range(th):
            for s in range(tw):
                p = (b * th + y) * tw + s
                for j in range(BLOCK):
                    _b(k, dv[j, p], dv[6 + j, p], dv[12 + j, p], dv[18 + j, p], dv[24 + j, p], dv[30 + j, p],
                       t[0, j], t[1, j], t[2, j], t[3, j], t[4, j], t[5, j])
                for i in range(BLOCK):
                    block = blocks[y, s, i]
                    _b(k, t[i, 0], t[i, 1], t[i, 2], t[i, 3], t[i, 4], t[i, 5],
                       block[0], block[1], block[2], block[3], block[4], block[5])
        # Adding the blocks back onto the pixels they were read from is col2im, with 6x6 "taps" 4 apart.
        _col2im(blocks.reshape(1, th, tw, BLOCK, BLOCK, c), BLOCK, BLOCK, TILE, TILE, ph, pw, gx[b:b + 1], 0, 1)


def input_transform_adjoint_numba(grad_v, x_shape, padding):
    """dV (36, N*th*tw, C) -> dX (N, C, H, W) stored channels-last; see
    functional.winograd.input_transform_adjoint_plain."""
    n, c, h, w = x_shape
    th, tw = winograd_tiles(h, w, padding)
    gx = host_memory.empty((n, h, w, c), dtype=grad_v.dtype)
    run_chunks(n, 1, _input_tiles_adjoint, np.ascontiguousarray(grad_v), _constants(grad_v.dtype), *padding,
               th, tw, gx)
    return from_channels_last(gx)
