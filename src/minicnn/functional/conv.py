"""2-D convolution as im2col + one matrix product.

im2col copies every receptive field of the input into one column of a matrix
``cols`` of shape (C*kh*kw, N*OH*OW). The convolution is then a single matrix
product ``weight.reshape(O, C*kh*kw) @ cols`` of shape (O, N*OH*OW). In
backward, the same product rule gives the weight gradient (``grad_out @ cols.T``)
and the column gradient (``weight.T @ grad_out``); col2im scatters column
gradients back to the pixels they were copied from, adding where receptive
fields overlap.

Everything is channel-major, so that all N images share one matrix product:
the rows of ``cols`` are (C, kh, kw), its columns (N, OH, OW), and the product
(O, N*OH*OW) holds channel 0 of every image, then channel 1... ``conv2d``
returns that product as it is, viewed as (N, O, OH, OW) (no transpose; see
:mod:`minicnn.layout`), and im2col reads its input in the same order. A 1x1
convolution with stride 1 and no padding needs no im2col at all: its columns
are the input itself, (C, N*H*W).

``im2col_strided`` and ``col2im_strided`` are the plain versions (one strided
copy per kernel tap, on NumPy or CuPy); :mod:`minicnn.kernels` holds faster
ones that must agree with them.
"""
from .. import kernels
from ..backend import get_array_module
from ..geometry import conv_output_size
from ..layout import channel_major
from ..tensor import Function
from .validation import pair, require_same_dtype, require_tensor


def _is_pointwise(kernel, stride, padding):
    """A 1x1 kernel, stride 1, no padding: every pixel is its own receptive field."""
    return kernel == (1, 1) and stride == (1, 1) and padding == (0, 0)


def im2col(x, kernel, stride, padding):
    """Unfold images into columns.

    Args:
        x: array (N, C, H, W).
        kernel, stride, padding: pairs (h, w).
    Returns:
        array (C*kh*kw, N*OH*OW); row (c, i, j) holds, for every output pixel,
        the input value under kernel tap (i, j) of channel c (zero in the padding).
    """
    if _is_pointwise(kernel, stride, padding):  # the columns are x itself: no copy if x is channel-major
        return channel_major(x).reshape(x.shape[1], -1)
    if kernels.use_numba(x):
        return kernels.cpu.im2col(x, kernel, stride, padding)
    return im2col_strided(x, kernel, stride, padding)


def im2col_strided(x, kernel, stride, padding):
    """im2col with one strided copy per kernel tap (kh*kw copies, each over all pixels).

    Runs on NumPy and CuPy alike; the fast kernels in :mod:`minicnn.kernels` must agree with it.
    """
    xp = get_array_module(x)
    (n, c, h, w), (kh, kw), (sh, sw), (ph, pw) = x.shape, kernel, stride, padding
    oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    images = x.swapaxes(0, 1)  # (C, N, H, W), the order of the columns
    padded = xp.pad(images, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else images
    cols = xp.empty((c, kh, kw, n, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = padded[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
    return cols.reshape(c * kh * kw, n * oh * ow)


def col2im(cols, x_shape, kernel, stride, padding):
    """The adjoint of :func:`im2col`: add each column entry back onto its input pixel.

    Args:
        cols: array (C*kh*kw, N*OH*OW).
        x_shape: (N, C, H, W) of the images that were unfolded.
    Returns:
        array (N, C, H, W), stored channel-major.
    """
    if _is_pointwise(kernel, stride, padding):
        return cols.reshape(x_shape[1], x_shape[0], *x_shape[2:]).swapaxes(0, 1)
    if kernels.use_numba(cols):
        return kernels.cpu.col2im(cols, x_shape, kernel, stride, padding)
    return col2im_strided(cols, x_shape, kernel, stride, padding)


def col2im_strided(cols, x_shape, kernel, stride, padding):
    """col2im with one strided add per kernel tap; the reference for the fast kernels."""
    xp = get_array_module(cols)
    (n, c, h, w), (kh, kw), (sh, sw), (ph, pw) = x_shape, kernel, stride, padding
    oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    cols = cols.reshape(c, kh, kw, n, oh, ow)
    padded = xp.zeros((c, n, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            padded[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw] += cols[:, i, j]
    return xp.ascontiguousarray(padded[:, :, ph:ph + h, pw:pw + w]).swapaxes(0, 1)


def matrix_product(a, b):
    """a @ b for 2-D arrays; on the CPU split over minicnn's threads (:func:`minicnn.configure_cpu`)."""
    if kernels.use_numba(a):
        return kernels.cpu.matrix_product(a, b)
    return a @ b


class Conv2dFunction(Function):
    def __init__(self, stride, padding):
        self.stride, self.padding = stride, padding

    def forward(self, x, weight, bias=None):
        n, _, h, w = x.shape
        out_channels, _, kh, kw = weight.shape
        oh = conv_output_size(h, kh, self.stride[0], self.padding[0])
        ow = conv_output_size(w, kw, self.stride[1], self.padding[1])
        self.x_shape, self.weight = x.shape, weight
        self.cols = im2col(x, (kh, kw), self.stride, self.padding)          # (C*kh*kw, N*OH*OW)
        y2d = matrix_product(weight.reshape(out_channels, -1), self.cols)   # (O, N*OH*OW)
        if bias is not None:
            y2d += bias.reshape(out_channels, 1)
        return y2d.reshape(out_channels, n, oh, ow).swapaxes(0, 1)           # (N, O, OH, OW), channel-major

    def backward(self, gy):
        out_channels = gy.shape[1]
        gy2d = channel_major(gy).reshape(out_channels, -1)  # (O, N*OH*OW): the layout of the product
        need_x, need_w = self.needs_input_grad[:2]
        gx = gw = gb = None
        if need_w:
            gw = matrix_product(gy2d, self.cols.T).reshape(self.weight.shape)
        if need_x:
            gcols = matrix_product(self.weight.reshape(out_channels, -1).T, gy2d)  # (C*kh*kw, N*OH*OW)
            gx = col2im(gcols, self.x_shape, self.weight.shape[2:], self.stride, self.padding)
        if len(self.needs_input_grad) == 2:  # no bias
            return gx, gw
        if self.needs_input_grad[2]:
            gb = gy2d.sum(axis=1)
        return gx, gw, gb


def conv2d(x, weight, bias=None, stride=1, padding=0):
    """2-D convolution (cross-correlation, as in every deep-learning framework).

    Args:
        x: Tensor (N, C, H, W).
        weight: Tensor (O, C, kh, kw).
        bias: Tensor (O,) or None.
        stride, padding: int or pair (h, w); padding adds zeros on both sides.
    Returns:
        Tensor (N, O, OH, OW), OH = floor((H + 2*padding - kh) / stride) + 1.
    """
    op = "conv2d"
    require_tensor(op, "x", x, 4, "(N, C, H, W)")
    require_tensor(op, "weight", weight, 4, "(out_channels, in_channels, kh, kw)")
    require_same_dtype(op, "weight", weight, "x", x)
    stride, padding = pair(op, "stride", stride, 1), pair(op, "padding", padding, 0)
    if weight.shape[1] != x.shape[1]:
        raise ValueError(f"conv2d: weight expects {weight.shape[1]} input channels but x has "
                         f"{x.shape[1]} (x shape {x.shape}, weight shape {weight.shape})")
    padded = (x.shape[2] + 2 * padding[0], x.shape[3] + 2 * padding[1])
    if weight.shape[2] > padded[0] or weight.shape[3] > padded[1]:
        raise ValueError(f"conv2d: kernel {weight.shape[2]}x{weight.shape[3]} is larger than the padded "
                         f"input {padded[0]}x{padded[1]} (x shape {x.shape}, padding {padding})")
    if bias is None:
        return Conv2dFunction(stride, padding)(x, weight)
    require_tensor(op, "bias", bias, 1, "(out_channels,)")
    require_same_dtype(op, "bias", bias, "x", x)
    if bias.shape[0] != weight.shape[0]:
        raise ValueError(f"conv2d: bias must have one entry per output channel ({weight.shape[0]}), "
                         f"got shape {bias.shape}")
    return Conv2dFunction(stride, padding)(x, weight, bias)
