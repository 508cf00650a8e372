"""3x3 convolution with stride 1 as Winograd's F(4x4, 3x3): 36 multiplications per 4x4 outputs, not 144.

Lavin & Gray (2015), "Fast Algorithms for Convolutional Neural Networks". Each
4x4 block of output pixels (a *tile*) depends on a 6x6 block of input pixels;
neighbouring input blocks overlap by 2. With the fixed matrices B^T (6x6),
G (6x3) and A^T (4x6) below, one channel pair's tile is

    y = A^T [ (G g G^T) * (B^T d B) ] A        (* elementwise, 36 products)

for a 3x3 filter g and a 6x6 input block d. Summed over input channels, the
36 elementwise products become 36 matrix products, one per position k of
the 6x6 Winograd-domain tile:

    U = G g G^T per (output, input) channel pair     -> (36, C, O)
    V = B^T d B per input tile                       -> (36, P, C), P = N * tiles
    M[k] = V[k] @ U[k]                               -> (36, P, O)
    Y = A^T m A per tile                             -> (N, OH, OW, O), channels-last

This is an exact identity (docs chapter 12 derives it); only rounding differs
from the direct sum. Backward is the transpose of each linear map: dM = A dY A^T,
dU[k] = V[k]^T @ dM[k], dW = G^T dU G, dV[k] = dM[k] @ U[k]^T, and dX adds
B dV B^T back into the overlapping input blocks.

The transforms below are the plain forms (array operations only, NumPy and
CuPy alike); :mod:`minicnn.kernels.winograd` holds numba forms that compute
every value with the same operations in the same order, so the two agree bit
for bit. An output size that 4 does not divide gets one more tile, whose extra
rows or columns read zeros beyond the padding and are dropped from the output.
"""
import numpy as np

from ..backend import get_array_module
from ..geometry import WINOGRAD_TILE as TILE, conv_output_size, winograd_output_tiles, winograd_tiles
from ..kernels.dispatch import Forms
from ..layout import channels_last, from_channels_last

# F(4, 3) from the points 0, 1, -1, 2, -2 and infinity (chapter 12 builds them from these points).
B_T = np.array([[4, 0, -5, 0, 1, 0],
                [0, -4, -4, 1, 1, 0],
                [0, 4, -4, -1, 1, 0],
                [0, -2, -1, 2, 1, 0],
                [0, 2, -1, -2, 1, 0],
                [0, 4, 0, -5, 0, 1]], dtype=np.float64)
G = np.array([[1 / 4, 0, 0],
              [-1 / 6, -1 / 6, -1 / 6],
              [-1 / 6, 1 / 6, -1 / 6],
              [1 / 24, 1 / 12, 1 / 6],
              [1 / 24, -1 / 12, 1 / 6],
              [0, 0, 1]], dtype=np.float64)
A_T = np.array([[1, 1, 1, 1, 1, 0],
                [0, 1, -1, 2, -2, 0],
                [0, 1, 1, 4, 4, 0],
                [0, 1, -1, 8, -8, 1]], dtype=np.float64)
BLOCK = TILE + 2          # an input block is 6x6 pixels
POSITIONS = BLOCK ** 2    # 36 products, one per position of the transformed block


# -- the small linear maps, applied to lists of arrays ------------------------------------------
def _combine(matrix, parts):
    """[sum_i matrix[a, i] * parts[i] for every row a]: zero coefficients skipped, the rest added left to right.

    A coefficient +-1 adds or subtracts the part itself; any other multiplies
    it in the arrays' dtype first. The numba kernels write the same products
    and sums in the same order, so the two forms round alike.
    """
    rows = []
    for coefficients in matrix:
        total = None
        for coefficient, part in zip(coefficients, parts):
            if coefficient == 0:
                continue
            term = part if coefficient == 1 else -part if coefficient == -1 else float(coefficient) * part
            total = term if total is None else total + term
        rows.append(total)
    return rows


def _sandwich(left, grid):
    """left . grid . left^T for a grid (list of rows) of arrays: down the columns first, then along the rows."""
    columns = [_combine(left, [row[j] for row in grid]) for j in range(len(grid[0]))]  # columns[j][a]
    return [_combine(left, [column[a] for column in columns]) for a in range(len(left))]


def _grid(stack, rows, cols):
    """stack (rows*cols, ...) -> a grid (list of rows) of its entries."""
    return [[stack[cols * i + j] for j in range(cols)] for i in range(rows)]


def _stack(grid, xp, dtype):
    """A grid (list of rows) of equal-shape arrays -> one array (rows*cols, ...)."""
    parts = [part for row in grid for part in row]
    out = xp.empty((len(parts),) + parts[0].shape, dtype=dtype)
    for k, part in enumerate(parts):
        out[k] = part
    return out


# -- filters -----------------------------------------------------------------------------------
def filter_transform_plain(weight):
    """weight (O, C, 3, 3) -> U (36, C, O), U[6a+b] = (G g G^T)[a, b] for every filter g."""
    xp = get_array_module(weight)
    g = xp.ascontiguousarray(weight.transpose(2, 3, 1, 0))  # (3, 3, C, O)
    return _stack(_sandwich(G, [[g[i, j] for j in range(3)] for i in range(3)]), xp, weight.dtype)


def filter_transform_adjoint_plain(grad_u):
    """The transpose of :func:`filter_transform_plain`: dU (36, C, O) -> dW (O, C, 3, 3), dW = G^T dU G."""
    xp = get_array_module(grad_u)
    dw = _stack(_sandwich(G.T, _grid(grad_u, BLOCK, BLOCK)), xp, grad_u.dtype)  # (9, C, O)
    return dw.reshape(3, 3, *grad_u.shape[1:]).transpose(3, 2, 0, 1)


# -- images: the plain forms ---------------------------------------------------------------------
def _padded_pixels(x, padding, tiles, xp):
    """x (N, C, H, W) as (N, 4*th + 2, 4*tw + 2, C): zeros around it, and below and right of it up to whole tiles."""
    (_, _, h, w), (ph, pw), (th, tw) = x.shape, padding, tiles
    return xp.pad(channels_last(x), ((0, 0), (ph, TILE * th + 2 - h - ph), (pw, TILE * tw + 2 - w - pw), (0, 0)))


def input_transform_plain(x, padding):
    """x (N, C, H, W) -> V (36, N*th*tw, C): B^T d B for every 6x6 input block d (blocks 4 apart)."""
    xp = get_array_module(x)
    n, c, h, w = x.shape
    th, tw = tiles = winograd_tiles(h, w, padding)
    padded = _padded_pixels(x, padding, tiles, xp)
    blocks = [[padded[:, i:i + TILE * th:TILE, j:j + TILE * tw:TILE] for j in range(BLOCK)]
              for i in range(BLOCK)]  # each (N, th, tw, C)
    return _stack(_sandwich(B_T, blocks), xp, x.dtype).reshape(POSITIONS, n * th * tw, c)


def output_transform_plain(m, bias, out_shape):
    """M (36, N*th*tw, O) -> y (N, OH, OW, O) C-contiguous: A^T m A for every tile (+ bias)."""
    xp = get_array_module(m)
    n, oh, ow = out_shape
    (th, tw), o = winograd_output_tiles(oh, ow), m.shape[2]
    tiles = _sandwich(A_T, _grid(m.reshape(POSITIONS, n, th, tw, o), BLOCK, BLOCK))  # 4x4 grid of (N, th, tw, O)
    y = xp.empty((n, th, TILE, tw, TILE, o), dtype=m.dtype)
    for r in range(TILE):
        for q in range(TILE):
            y[:, :, r, :, q] = tiles[r][q]
    y = xp.ascontiguousarray(y.reshape(n, TILE * th, TILE * tw, o)[:, :oh, :ow])
    if bias is not None:
        y += bias
    return y


def output_transform_adjoint_plain(gy):
    """The transpose of :func:`output_transform_plain` (without bias): dY (N, O, OH, OW) -> dM (36, N*th*tw, O)."""
    xp = get_array_module(gy)
    n, o, oh, ow = gy.shape
    th, tw = winograd_output_tiles(oh, ow)
    padded = xp.pad(channels_last(gy), ((0, 0), (0, TILE * th - oh), (0, TILE * tw - ow), (0, 0)))
    blocks = [[padded[:, r::TILE, q::TILE] for q in range(TILE)] for r in range(TILE)]  # each (N, th, tw, O)
    return _stack(_sandwich(A_T.T, blocks), xp, gy.dtype).reshape(POSITIONS, n * th * tw, o)


def input_transform_adjoint_plain(grad_v, x_shape, padding):
    """The transpose of :func:`input_transform_plain`: dV (36, N*th*tw, C) -> dX (N, C, H, W), channels-last.

    Each block's B dV B^T is added back onto the 36 pixels it was read from,
    block position by block position ((0, 0), (0, 1), ...), as col2im does.
    """
    xp = get_array_module(grad_v)
    (n, c, h, w), (ph, pw) = x_shape, padding
    th, tw = winograd_tiles(h, w, padding)
    blocks = _sandwich(B_T.T, _grid(grad_v.reshape(POSITIONS, n, th, tw, c), BLOCK, BLOCK))
    padded = xp.zeros((n, TILE * th + 2, TILE * tw + 2, c), dtype=grad_v.dtype)
    for i in range(BLOCK):
        for j in range(BLOCK):
            padded[:, i:i + TILE * th:TILE, j:j + TILE * tw:TILE] += blocks[i][j]
    return from_channels_last(xp.ascontiguousarray(padded[:, ph:ph + h, pw:pw + w]))


def forward_plain(v, u, bias, out_shape, relu=False):
    """V (36, P, C), U (36, C, O) -> y (N, OH, OW, O) C-contiguous (+ bias, then max(., 0) if ``relu``):
    M = the 36 products V[k] @ U[k], then the output transform."""
    y = output_transform(batched_product(v, u), bias, out_shape)
    return get_array_module(y).maximum(y, y.dtype.type(0), out=y) if relu else y


def batched_product_plain(a, b, out=None):
    """out[k] = a[k] @ b[k] for stacks a (K, m, n), b (K, n, p) -> (K, m, p)."""
    return get_array_module(a).matmul(a, b, out=out)


filter_transform = Forms("winograd_filter", plain=filter_transform_plain, cpu="winograd:filter_transform_numba")
filter_transform_adjoint = Forms("winograd_filter_adjoint", plain=filter_transform_adjoint_plain,
                                 cpu="winograd:filter_transform_adjoint_numba")
input_transform = Forms("winograd_input", plain=input_transform_plain, cpu="winograd:input_transform_numba")
output_transform = Forms("winograd_output", plain=output_transform_plain, cpu="winograd:output_transform_numba")
output_transform_adjoint = Forms("winograd_output_adjoint", plain=output_transform_adjoint_plain,
                                 cpu="winograd:output_transform_adjoint_numba")
input_transform_adjoint = Forms("winograd_input_adjoint", plain=input_transform_adjoint_plain,
                                cpu="winograd:input_transform_adjoint_numba")
# The 36 products on minicnn's threads, one BLAS call each; a GPU's matmul is one batched cuBLAS call already.
batched_product = Forms("batched_product", plain=batched_product_plain, cpu="conv:batched_product")
# Products and output transform chunk by chunk of tiles, M never whole (the CPU form).
winograd_forward = Forms("winograd_forward", plain=forward_plain, cpu="winograd:forward_numba")


class Winograd:
    """The arrays of one 3x3, stride-1 convolution in F(4x4, 3x3): forward, and backward from what it kept.

    Conv2dFunction runs this in place of im2col where it pays (:func:`preferred`).
    It keeps V (36, P, C), 2.25 values per input value, where im2col keeps nine.
    """

    def __init__(self, padding):
        self.padding = padding

    def forward(self, x, weight, bias=None, relu=False):
        """x (N, C, H, W), weight (O, C, 3, 3), bias (O,) or None -> y (N, O, OH, OW), stored channels-last;
        max(y, 0) with ``relu``."""
        n, _, h, w = self.x_shape = x.shape
        self.u = filter_transform(weight)                        # (36, C, O)
        self.v = input_transform(x, self.padding)                # (36, P, C)
        out_shape = (n, conv_output_size(h, 3, 1, self.padding[0]), conv_output_size(w, 3, 1, self.padding[1]))
        return from_channels_last(winograd_forward(self.v, self.u, bias, out_shape, relu))  # M = V[k] @ U[k], then A^T m A

    def backward(self, gy, need_x, need_w):
        """gy (N, O, OH, OW) -> (dx (N, C, H, W) or None, dw (O, C, 3, 3) or None)."""
        grad_m = output_transform_adjoint(gy)                    # (36, P, O)
        gx = gw = None
        if need_w:
            gw = filter_transform_adjoint(batched_product(self.v.transpose(0, 2, 1), grad_m))  # dU (36, C, O)
        if need_x:
            grad_v = batched_product(grad_m, self.u.transpose(0, 2, 1))                      # (36, P, C)
            gx = input_transform_adjoint(grad_v, self.x_shape, self.padding)
        return gx, gw


# Where Winograd pays (benchmarks/winograd.py and one-layer runs, CPU seconds of a forward and backward, F(4x4,
# 3x3)): below 32 input or output channels the 36 products are too thin to beat im2col's one product (F(2x2, 3x3)
# already lost there: 3->64, 8->16 and 16->32 ran 1.3-2.3x slower); with fewer than 32-64 output tiles (a 16x16
# image has 16) transforming the filters costs more than the products save (0.3-0.9x at 4-16 tiles).
MIN_CHANNELS = 32
MIN_TILES = 64


def preferred(x, weight_shape, stride, padding):
    """True when Conv2dFunction runs Winograd: a 3x3 kernel, stride 1, padding <= 2, at least MIN_CHANNELS
    channels in and out, at least MIN_TILES output tiles, NumPy arrays and the fast forms on (else im2col)."""
    out_channels, in_channels, kh, kw = weight_shape
    if (kh, kw) != (3, 3) or stride != (1, 1) or max(padding) > 2 or min(in_channels, out_channels) < MIN_CHANNELS:
        return False
    n, _, h, w = x.shape
    tiles_down, tiles_across = winograd_tiles(h, w, padding)
    return (n * tiles_down * tiles_across >= MIN_TILES and isinstance(x, np.ndarray)
            and input_transform.fast_form(x) is not None)
