"""2-D convolution as im2col + one matrix product.

im2col copies the receptive field of every output pixel into one row of a
matrix ``cols`` of shape (N*OH*OW, kh*kw*C). The convolution is then a single
matrix product ``cols @ weight2d.T`` of shape (N*OH*OW, O), where ``weight2d``
(O, kh*kw*C) is the weight with its taps in the same order as the rows. In
backward, the same product rule gives the weight gradient (``grad_out.T @ cols``)
and the gradient of the rows (``grad_out @ weight2d``); col2im scatters those
back to the pixels they were copied from, adding where receptive fields overlap.

Everything is channels-last (see :mod:`minicnn.layout`): a row of ``cols``
holds tap (0, 0) of all C channels, then tap (0, 1)..., and the product
(N*OH*OW, O) is the output with each pixel's channels side by side.
``conv2d`` returns it as it is, viewed as (N, O, OH, OW), without a copy, and
im2col reads its input in the same order. A 1x1 convolution with stride 1 and
no padding needs no im2col at all: its rows are the input's pixels, (N*H*W, C).

``im2col_strided`` and ``col2im_strided`` are the plain forms (one strided
copy per kernel tap, on NumPy or CuPy); :mod:`minicnn.kernels.conv` holds the
fast ones, which must agree with them (tests/test_conv.py), and
:mod:`minicnn.kernels.dispatch` picks one per call.
"""
from ..backend import get_array_module, is_gpu_array
from ..engine import Op
from ..geometry import conv_output_size
from ..kernels.dispatch import Forms
from ..layout import from_channels_last, pixel_rows
from .validation import pair, require_same_dtype, require_tensor
from .activation import relu_gradient
from .winograd import Winograd, preferred


def _is_pointwise(kernel, stride, padding):
    """A 1x1 kernel, stride 1, no padding: every pixel is its own receptive field."""
    return kernel == (1, 1) and stride == (1, 1) and padding == (0, 0)


def im2col(x, kernel, stride, padding):
    """Unfold images into rows, one per output pixel.

    Args:
        x: array (N, C, H, W).
        kernel, stride, padding: pairs (h, w).
    Returns:
        array (N*OH*OW, kh*kw*C); row (n, r, s) holds the receptive field of
        output pixel (r, s) of image n, tap by tap, the C channels of each tap
        side by side (zero in the padding).
    """
    if _is_pointwise(kernel, stride, padding):  # the rows are x's pixels: no copy if x is channels-last
        return pixel_rows(x)
    return im2col_forms(x, kernel, stride, padding)


def im2col_strided(x, kernel, stride, padding):
    """im2col with one strided copy per kernel tap (kh*kw copies, each over all pixels).

    Runs on NumPy and CuPy alike; the fast kernels in :mod:`minicnn.kernels` must agree with it.
    """
    xp = get_array_module(x)
    (n, c, h, w), (kh, kw), (sh, sw), (ph, pw) = x.shape, kernel, stride, padding
    oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    pixels = x.transpose(0, 2, 3, 1)  # (N, H, W, C), the order of a row's taps
    padded = xp.pad(pixels, ((0, 0), (ph, ph), (pw, pw), (0, 0))) if ph or pw else pixels
    cols = xp.empty((n, oh, ow, kh, kw, c), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, i, j] = padded[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
    return cols.reshape(n * oh * ow, kh * kw * c)


def col2im(cols, x_shape, kernel, stride, padding):
    """The adjoint of :func:`im2col`: add each entry of the rows back onto its input pixel.

    Args:
        cols: array (N*OH*OW, kh*kw*C).
        x_shape: (N, C, H, W) of the images that were unfolded.
    Returns:
        array (N, C, H, W), stored channels-last.
    """
    if _is_pointwise(kernel, stride, padding):
        n, c, h, w = x_shape
        return from_channels_last(cols.reshape(n, h, w, c))
    return col2im_forms(cols, x_shape, kernel, stride, padding)


def col2im_strided(cols, x_shape, kernel, stride, padding):
    """col2im with one strided add per kernel tap; the reference for the fast kernels."""
    xp = get_array_module(cols)
    (n, c, h, w), (kh, kw), (sh, sw), (ph, pw) = x_shape, kernel, stride, padding
    oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    cols = cols.reshape(n, oh, ow, kh, kw, c)
    padded = xp.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            padded[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw] += cols[:, :, :, i, j]
    return from_channels_last(xp.ascontiguousarray(padded[:, ph:ph + h, pw:pw + w]))


def matrix_product_plain(a, b, bias=None, out=None, relu=False):
    """a @ b (+ bias, added to every row; then max(., 0) if ``relu``) for 2-D arrays, into ``out`` if given."""
    xp = get_array_module(a)
    out = xp.matmul(a, b, out=out)
    if bias is not None:
        out += bias
    if relu:
        xp.maximum(out, out.dtype.type(0), out=out)
    return out


def unfolded_product_plain(x, kernel, stride, padding, b, bias=None, relu=False):
    """im2col(x) @ b (+ bias, then max(., 0) if ``relu``): x (N, C, H, W), b (kh*kw*C, O) -> (N*OH*OW, O)."""
    return matrix_product(im2col(x, kernel, stride, padding), b, bias, relu=relu)


im2col_forms = Forms("im2col", plain=im2col_strided, cpu="conv:im2col_numba", gpu="conv:im2col_gather")
col2im_forms = Forms("col2im", plain=col2im_strided, cpu="conv:col2im_numba", gpu="conv:col2im_gather")
# On the CPU split over minicnn's threads; a GPU's matmul is one cuBLAS call already.
matrix_product = Forms("matrix_product", plain=matrix_product_plain, cpu="conv:matrix_product_threads")
# The CPU unfolds and multiplies a cache-sized block of rows at a time, never the whole rows.
unfolded_product = Forms("unfolded_product", plain=unfolded_product_plain, cpu="conv:unfolded_product_numba")


def _weight_rows(weight):
    """weight (O, C, kh, kw) -> (O, kh*kw*C): each filter in the order of im2col's rows."""
    return weight.transpose(0, 2, 3, 1).reshape(weight.shape[0], -1)


class Conv2dFunction(Op):
    """conv2d's Op. ``algorithm``: "im2col", "winograd" (3x3 kernels, stride 1 only), or None: Winograd
    where it pays (:func:`.winograd.preferred`), im2col everywhere else. ``relu``: max(., 0) of the output
    in the same op (added where bias is, while each block of the product is in cache); backward then reads
    the output, as a ReLU's does."""

    def __init__(self, stride, padding, kernel_size, algorithm=None, relu=False):
        self.stride, self.padding, self.kernel_size = stride, padding, tuple(kernel_size)
        self.relu = self.saves_output = relu
        if algorithm not in (None, "im2col", "winograd"):
            raise ValueError(f"Conv2dFunction: algorithm must be None, 'im2col' or 'winograd', got {algorithm!r}")
        if algorithm == "winograd" and (self.kernel_size != (3, 3) or tuple(stride) != (1, 1)):
            raise ValueError(f"Conv2dFunction: Winograd F(4x4, 3x3) needs a 3x3 kernel and stride 1, got kernel "
                             f"{self.kernel_size} and stride {tuple(stride)}")
        self.algorithm = algorithm

    def forward(self, x, weight, bias=None):
        if self.algorithm is None:
            self.algorithm = "winograd" if preferred(x, weight.shape, self.stride, self.padding) else "im2col"
        if self.algorithm == "winograd":
            self.winograd = Winograd(self.padding)
            return self._keep_for_relu(self.winograd.forward(x, weight, bias, self.relu))
        n, _, h, w = x.shape
        out_channels, _, kh, kw = weight.shape
        oh = conv_output_size(h, kh, self.stride[0], self.padding[0])
        ow = conv_output_size(w, kw, self.stride[1], self.padding[1])
        self.x_shape, self.weight2d = x.shape, _weight_rows(weight)
        # The CPU unfolds x again in backward rather than keep the rows: a kxk conv's rows are k*k times its
        # input (kept, they raised a GoogLeNet BN step's peak at batch 32 by 460 MB), and unfolding costs ~2%
        # of a step; so its forward never makes them whole. A GPU keeps them: there each unfolding is
        # launches, which bound a step at these sizes.
        if is_gpu_array(x) or _is_pointwise((kh, kw), self.stride, self.padding):
            cols = im2col(x, (kh, kw), self.stride, self.padding)  # (N*OH*OW, kh*kw*C); x itself if pointwise
            y2d = matrix_product(cols, self.weight2d.T, bias, relu=self.relu)  # (N*OH*OW, O)
            self.cols = cols if is_gpu_array(cols) else None
        else:
            y2d = unfolded_product(x, (kh, kw), self.stride, self.padding, self.weight2d.T, bias, relu=self.relu)
            self.cols = None
        return self._keep_for_relu(from_channels_last(y2d.reshape(n, oh, ow, out_channels)))  # (N, O, OH, OW)

    def _keep_for_relu(self, y):
        """y, kept for backward only with a ReLU (its gradient reads where y > 0)."""
        self.y = y if self.relu else None
        return y

    def backward(self, gy):
        if self.relu:
            gy = relu_gradient(gy, self.y)
        gy2d = pixel_rows(gy)  # (N*OH*OW, O): the layout of the product, free when gy is channels-last
        need_x, need_w = self.needs_input_grad[:2]
        if self.algorithm == "winograd":
            gx, gw = self.winograd.backward(gy, need_x, need_w)
        else:
            gx, gw = self._im2col_backward(gy2d, need_x, need_w)
        if len(self.needs_input_grad) == 2:  # no bias
            return gx, gw
        gb = gy2d.sum(axis=0, out=self.gradient_buffer(2)) if self.needs_input_grad[2] else None
        return gx, gw, gb

    def _im2col_backward(self, gy2d, need_x, need_w):
        out_channels, c, (kh, kw) = gy2d.shape[1], self.x_shape[1], self.kernel_size
        gx = gw = None
        if need_w:
            # A 1x1 filter bank (O, C, 1, 1) has the product's layout (O, C): made in the optimizer's buffer
            # where there is one (Op.gradient_buffer). A kxk one is returned as a view in the weight's
            # shape, and the engine's copy into the buffer (or into an array of the weight's layout) reorders it.
            into = self.gradient_buffer(1) if (kh, kw) == (1, 1) else None
            cols = self.cols if self.cols is not None else im2col(self.inputs[0].array, (kh, kw), self.stride,
                                                                   self.padding)
            gw2d = matrix_product(gy2d.T, cols, out=None if into is None else into.reshape(out_channels, c))
            gw = into if into is not None else gw2d.reshape(out_channels, kh, kw, c).transpose(0, 3, 1, 2)
        if need_x:
            gcols = matrix_product(gy2d, self.weight2d)  # (N*OH*OW, kh*kw*C)
            gx = col2im(gcols, self.x_shape, (kh, kw), self.stride, self.padding)
        return gx, gw


def conv2d(x, weight, bias=None, stride=1, padding=0, *, relu=False):
    """2-D convolution (cross-correlation, as in every deep-learning framework).

    Args:
        x: Tensor (N, C, H, W).
        weight: Tensor (O, C, kh, kw).
        bias: Tensor (O,) or None.
        stride, padding: int or pair (h, w); padding adds zeros on both sides.
        relu: minicnn's extension (PyTorch has none): ``relu(conv2d(...))`` in one op, the same values
            (as ``batch_norm(..., relu=True)``): no pass of its own over the output, forward or backward.
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
    if not isinstance(relu, bool):
        raise TypeError(f"conv2d: relu must be True or False, got {relu!r}")
    if bias is None:
        return Conv2dFunction(stride, padding, weight.shape[2:], relu=relu)(x, weight)
    require_tensor(op, "bias", bias, 1, "(out_channels,)")
    require_same_dtype(op, "bias", bias, "x", x)
    if bias.shape[0] != weight.shape[0]:
        raise ValueError(f"conv2d: bias must have one entry per output channel ({weight.shape[0]}), "
                         f"got shape {bias.shape}")
    return Conv2dFunction(stride, padding, weight.shape[2:], relu=relu)(x, weight, bias)


def gradcheck_cases(add):
    """The gradient-check cases of this module's ops (minicnn.gradcheck.cases collects them): add(layer,
    configuration, build), build(inputs) -> (function, input tensors), inputs a gradcheck.cases.Inputs."""
    for kernel, stride, padding, size, bias in [
        (1, 1, 0, 5, True),          # pointwise: a plain matrix product, no im2col
        (1, 2, 0, 7, True),          # 1x1 with stride: through im2col
        (3, 1, 1, 6, True),
        (3, 2, 1, 7, True),          # odd size, stride 2
        (5, 1, 2, 5, False),
        (7, 2, 3, 9, True),
        ((3, 2), (2, 1), (1, 0), 6, True),  # rectangular kernel, different strides per axis
    ]:
        def _build(inp, kernel=kernel, stride=stride, padding=padding, size=size, bias=bias):
            kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
            tensors = [inp.normal(2, 3, size, size), inp.normal(4, 3, kh, kw)] + ([inp.normal(4)] if bias else [])
            return (lambda x, w, b=None: conv2d(x, w, b, stride, padding)), tensors
        add("conv2d", f"kernel {kernel}, stride {stride}, padding {padding}, {size}x{size}"
            + ("" if bias else ", no bias"), _build)
    # With the ReLU in the op (the inputs' fixed seed leaves no output within the checker's step of 0).
    for algorithm in ("im2col", "winograd"):
        def _build(inp, algorithm=algorithm):
            tensors = [inp.normal(2, 3, 5, 5), inp.normal(4, 3, 3, 3), inp.normal(4)]
            return (lambda *t: Conv2dFunction((1, 1), (1, 1), (3, 3), algorithm=algorithm, relu=True)(*t)), tensors
        add("conv2d", f"kernel 3, padding 1, relu=True, {algorithm}", _build)
    # Winograd F(4x4, 3x3), whatever the channel count and device (conv2d itself picks it for wide layers
    # on the CPU): odd and even output sizes, padding 0 to 2, different padding per axis.
    for padding, size, bias in [((1, 1), 6, True), ((1, 1), 5, False), ((0, 0), 7, True), ((2, 2), 3, True),
                                ((0, 2), 6, True)]:
        def _build(inp, padding=padding, size=size, bias=bias):
            tensors = [inp.normal(2, 3, size, size), inp.normal(4, 3, 3, 3)] + ([inp.normal(4)] if bias else [])
            return (lambda *t: Conv2dFunction((1, 1), padding, (3, 3), algorithm="winograd")(*t)), tensors
        add("conv2d", f"Winograd, kernel 3, padding {padding}, {size}x{size}" + ("" if bias else ", no bias"),
            _build)
