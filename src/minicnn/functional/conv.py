"""2-D convolution as im2col + one matrix product.

im2col copies every receptive field of the input into one column of a matrix
``cols`` of shape (C*kh*kw, N*OH*OW). The convolution is then a single matrix
product ``weight.reshape(O, C*kh*kw) @ cols``. In backward, the same product
rule gives the weight gradient (``grad_out @ cols.T``) and the column gradient
(``weight.T @ grad_out``); col2im scatters column gradients back to the pixels
they were copied from, adding where receptive fields overlap.

A 1x1 convolution with stride 1 and no padding needs no im2col: each image
(C, H*W) is already its own column matrix.

Columns are laid out channel-major, (C, kh, kw, N, OH, OW), so that all N images
share one matrix product instead of N small ones. ``im2col_strided`` and
``col2im_strided`` are the plain versions (one strided copy per kernel tap, on
NumPy or CuPy); :mod:`minicnn.kernels` holds faster ones that must agree with them.
"""
from .. import kernels
from ..backend import get_array_module
from ..geometry import conv_output_size
from ..engine import Function
from .validation import pair, require_same_dtype, require_tensor


def im2col(x, kernel, stride, padding):
    """Unfold images into columns.

    Args:
        x: array (N, C, H, W).
        kernel, stride, padding: pairs (h, w).
    Returns:
        array (C*kh*kw, N*OH*OW); row (c, i, j) holds, for every output pixel,
        the input value under kernel tap (i, j) of channel c (zero in the padding).
    """
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
    padded = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
    cols = xp.empty((c, kh, kw, n, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            tap = padded[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
            cols[:, i, j] = tap.transpose(1, 0, 2, 3)
    return cols.reshape(c * kh * kw, n * oh * ow)


def col2im(cols, x_shape, kernel, stride, padding):
    """The adjoint of :func:`im2col`: add each column entry back onto its input pixel.

    Args:
        cols: array (C*kh*kw, N*OH*OW).
        x_shape: (N, C, H, W) of the images that were unfolded.
    Returns:
        array (N, C, H, W).
    """
    if kernels.use_numba(cols):
        return kernels.cpu.col2im(cols, x_shape, kernel, stride, padding)
    return col2im_strided(cols, x_shape, kernel, stride, padding)


def col2im_strided(cols, x_shape, kernel, stride, padding):
    """col2im with one strided add per kernel tap; the reference for the fast kernels."""
    xp = get_array_module(cols)
    (n, c, h, w), (kh, kw), (sh, sw), (ph, pw) = x_shape, kernel, stride, padding
    oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    cols = cols.reshape(c, kh, kw, n, oh, ow)
    padded = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            tap = padded[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
            tap += cols[:, i, j].transpose(1, 0, 2, 3)
    return xp.ascontiguousarray(padded[:, :, ph:ph + h, pw:pw + w])


class Conv2dFunction(Function):
    def __init__(self, stride, padding):
        self.stride, self.padding = stride, padding

    def forward(self, x, weight, bias=None):
        xp = get_array_module(x)
        n, c, h, w = x.shape
        out_channels, _, kh, kw = weight.shape
        self.x_shape, self.weight = x.shape, weight
        w2d = weight.reshape(out_channels, c * kh * kw)
        self.pointwise = (kh, kw) == (1, 1) and self.stride == (1, 1) and self.padding == (0, 0)
        if self.pointwise:
            self.x = x
            y = xp.matmul(w2d, x.reshape(n, c, h * w)).reshape(n, out_channels, h, w)
        else:
            self.cols = im2col(x, (kh, kw), self.stride, self.padding)  # (C*kh*kw, N*OH*OW)
            oh = conv_output_size(h, kh, self.stride[0], self.padding[0])
            ow = conv_output_size(w, kw, self.stride[1], self.padding[1])
            y = (w2d @ self.cols).reshape(out_channels, n, oh, ow)
            y = xp.ascontiguousarray(y.transpose(1, 0, 2, 3))
        if bias is not None:
            y += bias.reshape(1, out_channels, 1, 1)
        return y

    def backward(self, gy):
        xp = get_array_module(gy)
        n, out_channels = gy.shape[:2]
        w2d = self.weight.reshape(out_channels, -1)
        need_x, need_w = self.needs_input_grad[:2]
        gx = gw = None
        if need_w or not self.pointwise:  # (O, N*OH*OW): the layout of w2d @ cols
            gy2d = gy.transpose(1, 0, 2, 3).reshape(out_channels, -1)
        if need_w:
            # the columns of a 1x1 convolution are the input itself, channel-major: (C, N*H*W)
            cols = self.x.transpose(1, 0, 2, 3).reshape(self.x_shape[1], -1) if self.pointwise else self.cols
            gw = (gy2d @ cols.T).reshape(self.weight.shape)
        if need_x and self.pointwise:
            gx = xp.matmul(w2d.T, gy.reshape(n, out_channels, -1)).reshape(self.x_shape)
        elif need_x:
            gx = col2im(w2d.T @ gy2d, self.x_shape, self.weight.shape[2:], self.stride, self.padding)
        if len(self.needs_input_grad) == 2:  # no bias
            return gx, gw
        return gx, gw, gy.sum(axis=(0, 2, 3)) if self.needs_input_grad[2] else None


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
