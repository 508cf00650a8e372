"""Max and average pooling with padding and ceil mode, and adaptive average pooling.

Pooling reads each window directly (one strided view per window offset), not
through im2col: an im2col buffer for pooling would be kh*kw times the input.
The GPU's fast form (:mod:`minicnn.kernels.pooling`, beside the CPU's) pays
that transient buffer to gather every window in one kernel launch instead of a
few per window offset.

Output size follows PyTorch: floor((H + 2p - k) / s) + 1, or with ``ceil_mode``
ceil(...) + 1, minus one if the last window would start past the input and its
left padding. Cells that only ceil mode adds are never part of any average; in
max pooling no padded cell ever wins (padding counts as -inf).
"""
import functools

import numpy as np

from ..backend import device_of, get_array_module, is_gpu_array, to_device
from ..engine import Op
from ..geometry import pool_geometry, pool_output_size  # noqa: F401 (pool_output_size: part of this module's API)
from ..kernels.dispatch import Forms
from ..layout import from_channels_last
from .validation import pair, require_tensor


def _windows(padded, kernel, stride, out):
    """Yield (i, j, view): for each window offset, the strided view of that cell of every window."""
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            yield i, j, padded[:, :, i:i + stride[0] * (out[0] - 1) + 1:stride[0],
                               j:j + stride[1] * (out[1] - 1) + 1:stride[1]]


def _pad(x, padding, padded_size, value):
    xp = get_array_module(x)
    n, c, h, w = x.shape
    out = xp.full((n, c) + padded_size, value, dtype=x.dtype)
    out[:, :, padding[0]:padding[0] + h, padding[1]:padding[1] + w] = x
    return out


def max_pool2d_strided(x, kernel, stride, padding, ceil_mode, need_argmax=True):
    """Plain max pooling: returns (y, argmax), argmax = index i*kw + j of the winning cell (None without
    ``need_argmax``: no backward will ask for it).

    The first maximum in row-major window order wins a tie (as in PyTorch and Caffe).
    """
    xp = get_array_module(x)
    out, padded_size = pool_geometry(x.shape, kernel, stride, padding, ceil_mode)
    padded = _pad(x, padding, padded_size, -np.inf)
    index_type = np.uint8 if kernel[0] * kernel[1] <= 256 else np.int32
    y = argmax = None
    for i, j, window in _windows(padded, kernel, stride, out):
        if y is None:
            y, argmax = window.copy(), xp.zeros(window.shape, dtype=index_type) if need_argmax else None
            continue
        better = window > y
        y = xp.where(better, window, y)
        if need_argmax:
            argmax = xp.where(better, index_type(i * kernel[1] + j), argmax)
    return y, argmax


def max_pool2d_backward_strided(gy, argmax, x_shape, kernel, stride, padding, ceil_mode):
    """Route each output gradient to the input cell that won its window."""
    xp = get_array_module(gy)
    out, padded_size = pool_geometry(x_shape, kernel, stride, padding, ceil_mode)
    padded = xp.zeros(x_shape[:2] + padded_size, dtype=gy.dtype)
    for i, j, window in _windows(padded, kernel, stride, out):
        window += xp.where(argmax == i * kernel[1] + j, gy, 0)
    return xp.ascontiguousarray(padded[:, :, padding[0]:padding[0] + x_shape[2],
                                       padding[1]:padding[1] + x_shape[3]])


def avg_pool_divisor(x_shape, kernel, stride, padding, ceil_mode, count_include_pad, xp, dtype):
    """Array (OH, OW): how many cells each window averages over.

    With ``count_include_pad`` the window is clipped to the padded input (cells
    added only by ceil mode do not count); without it, to the input itself.
    """
    out, _ = pool_geometry(x_shape, kernel, stride, padding, ceil_mode)
    counts = []
    for a in (0, 1):
        start = np.arange(out[a]) * stride[a] - padding[a]
        end = np.minimum(start + kernel[a], x_shape[2 + a] + padding[a])
        if not count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, x_shape[2 + a])
        counts.append(end - start)
    return xp.asarray(np.outer(counts[0], counts[1]), dtype=dtype)


max_pool2d_forward = Forms("max_pool2d", plain=max_pool2d_strided, cpu="pooling:max_pool2d_numba",
                           gpu="pooling:max_pool2d_gather")
max_pool2d_backward = Forms("max_pool2d_backward", plain=max_pool2d_backward_strided,
                            cpu="pooling:max_pool2d_backward_numba", gpu="pooling:max_pool2d_backward_gather")


class MaxPool2dFunction(Op):
    def __init__(self, kernel, stride, padding, ceil_mode):
        self.geometry = kernel, stride, padding, ceil_mode

    def forward(self, x):
        self.x_shape = x.shape
        # Without a backward to come (inference), the winners' positions are not even computed.
        y, self.argmax = max_pool2d_forward(x, *self.geometry, need_argmax=any(self.needs_input_grad))
        return y

    def backward(self, gy):
        return max_pool2d_backward(gy, self.argmax, self.x_shape, *self.geometry)


def avg_pool2d_strided(x, divisor, kernel, stride, padding, ceil_mode):
    """Plain average pooling: the window sums (zero padding), over ``divisor`` (OH, OW)."""
    xp = get_array_module(x)
    out, padded_size = pool_geometry(x.shape, kernel, stride, padding, ceil_mode)
    total = xp.zeros(x.shape[:2] + out, dtype=x.dtype)
    for _, _, window in _windows(_pad(x, padding, padded_size, 0), kernel, stride, out):
        total += window
    return total / divisor


def avg_pool2d_backward_strided(gy, divisor, x_shape, kernel, stride, padding, ceil_mode):
    """Give every cell of each window an equal share of the window's gradient."""
    xp = get_array_module(gy)
    out, padded_size = pool_geometry(x_shape, kernel, stride, padding, ceil_mode)
    share = gy / divisor
    padded = xp.zeros(x_shape[:2] + padded_size, dtype=gy.dtype)
    for _, _, window in _windows(padded, kernel, stride, out):
        window += share
    return xp.ascontiguousarray(padded[:, :, padding[0]:padding[0] + x_shape[2], padding[1]:padding[1] + x_shape[3]])


@functools.lru_cache(maxsize=64)
def _divisor_on_device(device, x_shape, geometry, count_include_pad, dtype):
    return to_device(avg_pool_divisor(x_shape, *geometry, count_include_pad, np, dtype), device)


def divisor_for(x, geometry, count_include_pad):
    """avg_pool_divisor for input ``x``; on a GPU made once per geometry and kept there, so that a
    training step copies nothing from the host (it depends only on the shapes)."""
    if is_gpu_array(x):
        return _divisor_on_device(device_of(x), x.shape, geometry, count_include_pad, x.dtype)
    return avg_pool_divisor(x.shape, *geometry, count_include_pad, np, x.dtype)


avg_pool2d_forward = Forms("avg_pool2d", plain=avg_pool2d_strided, cpu="pooling:avg_pool2d_numba",
                           gpu="pooling:avg_pool2d_gather")
avg_pool2d_backward = Forms("avg_pool2d_backward", plain=avg_pool2d_backward_strided,
                            cpu="pooling:avg_pool2d_backward_numba", gpu="pooling:avg_pool2d_backward_gather")


class AvgPool2dFunction(Op):
    def __init__(self, kernel, stride, padding, ceil_mode, count_include_pad):
        self.geometry = kernel, stride, padding, ceil_mode
        self.count_include_pad = count_include_pad

    def forward(self, x):
        self.x_shape = x.shape
        self.divisor = divisor_for(x, self.geometry, self.count_include_pad)
        return avg_pool2d_forward(x, self.divisor, *self.geometry)

    def backward(self, gy):
        return avg_pool2d_backward(gy, self.divisor, self.x_shape, *self.geometry)


def check_pool_arguments(op, kernel_size, stride, padding):
    """Validate pooling arguments; returns (kernel, stride, padding) as pairs."""
    kernel = pair(op, "kernel_size", kernel_size, 1)
    stride = kernel if stride is None else pair(op, "stride", stride, 1)
    padding = pair(op, "padding", padding, 0)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"{op}: padding must be at most half the kernel size, got padding {padding} "
                         f"for kernel_size {kernel}")
    return kernel, stride, padding


def _pool_arguments(op, x, kernel_size, stride, padding):
    require_tensor(op, "x", x, 4, "(N, C, H, W)")
    kernel, stride, padding = check_pool_arguments(op, kernel_size, stride, padding)
    padded = (x.shape[2] + 2 * padding[0], x.shape[3] + 2 * padding[1])
    if kernel[0] > padded[0] or kernel[1] > padded[1]:
        raise ValueError(f"{op}: kernel_size {kernel} is larger than the padded input "
                         f"{padded[0]}x{padded[1]} (x shape {x.shape}, padding {padding})")
    return kernel, stride, padding


def max_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False):
    """Max pooling over kernel_size windows.

    Args:
        x: Tensor (N, C, H, W).
        kernel_size, stride (default: kernel_size), padding: int or pair (h, w).
            Padding is at most half the kernel and never wins the max.
        ceil_mode: round the output size up (PyTorch's rule; see module docs).
    Returns:
        Tensor (N, C, OH, OW).
    """
    geometry = _pool_arguments("max_pool2d", x, kernel_size, stride, padding)
    return MaxPool2dFunction(*geometry, bool(ceil_mode))(x)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """Average pooling over kernel_size windows.

    Args:
        x: Tensor (N, C, H, W).
        kernel_size, stride (default: kernel_size), padding: int or pair (h, w).
        ceil_mode: round the output size up (PyTorch's rule).
        count_include_pad: divide by the window size including zero padding
            (but never the cells ceil mode adds); if False, by the cells inside x.
    Returns:
        Tensor (N, C, OH, OW).
    """
    geometry = _pool_arguments("avg_pool2d", x, kernel_size, stride, padding)
    return AvgPool2dFunction(*geometry, bool(ceil_mode), bool(count_include_pad))(x)


def _adaptive_bins(size, out):
    """PyTorch's adaptive bins: bin i covers [floor(i*size/out), ceil((i+1)*size/out))."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


class AdaptiveAvgPool2dFunction(Op):
    def __init__(self, output_size):
        self.output_size = output_size

    def forward(self, x):
        xp = get_array_module(x)
        n, c, h, w = self.x_shape = x.shape
        oh, ow = self.output_size
        if h % oh == 0 and w % ow == 0:  # equal bins: one mean over a view of the pixels (channels-last: no copy)
            bins = x.transpose(0, 2, 3, 1).reshape(n, oh, h // oh, ow, w // ow, c)
            return from_channels_last(bins.mean(axis=(2, 4)))
        y = xp.empty((n, c, oh, ow), dtype=x.dtype)
        for i, (h0, h1) in enumerate(_adaptive_bins(h, oh)):
            for j, (w0, w1) in enumerate(_adaptive_bins(w, ow)):
                y[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
        return y

    def backward(self, gy):
        xp = get_array_module(gy)
        n, c, h, w = self.x_shape
        oh, ow = self.output_size
        if h % oh == 0 and w % ow == 0:  # equal bins: each cell's share, in one division, stored channels-last
            bh, bw = h // oh, w // ow
            shares = xp.broadcast_to(gy.transpose(0, 2, 3, 1)[:, :, None, :, None, :], (n, oh, bh, ow, bw, c))
            gx = xp.empty(shares.shape, dtype=gy.dtype)
            xp.divide(shares, bh * bw, out=gx)
            return from_channels_last(gx.reshape(n, h, w, c))
        gx = xp.zeros(self.x_shape, dtype=gy.dtype)
        for i, (h0, h1) in enumerate(_adaptive_bins(h, oh)):
            for j, (w0, w1) in enumerate(_adaptive_bins(w, ow)):
                gx[:, :, h0:h1, w0:w1] += gy[:, :, i:i + 1, j:j + 1] / ((h1 - h0) * (w1 - w0))
        return gx


def adaptive_avg_pool2d(x, output_size):
    """Average pooling to a fixed output size (1 = global average pooling).

    Args:
        x: Tensor (N, C, H, W).
        output_size: int or pair (OH, OW) (larger than the input repeats cells, as in PyTorch).
    Returns:
        Tensor (N, C, OH, OW).
    """
    op = "adaptive_avg_pool2d"
    require_tensor(op, "x", x, 4, "(N, C, H, W)")
    size = pair(op, "output_size", output_size, 1)
    return AdaptiveAvgPool2dFunction(size)(x)


def gradcheck_cases(add):
    """The gradient-check cases of this module's ops (minicnn.gradcheck.cases collects them): add(layer,
    configuration, build), build(inputs) -> (function, input tensors), inputs a gradcheck.cases.Inputs."""
    for kernel, stride, padding, ceil, size in [
        (2, 2, 0, False, 6),
        (3, 2, 0, True, 8),          # ceil mode (GoogLeNet's 224 stem): 8 -> 4 windows
        (3, 2, 1, False, 7),         # the CIFAR stem's pad-1 pool
        (3, 1, 1, False, 5),         # inception pool branch: same size out
        (3, 3, 1, True, 7),          # ceil mode with padding, odd size
        ((3, 2), (2, 1), (1, 0), False, 6),
    ]:
        geometry = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil)
        config = f"kernel {kernel}, stride {stride}, padding {padding}, {size}x{size}" + (", ceil" if ceil else "")
        add("max_pool2d", config, lambda inp, g=geometry, s=size:
            ((lambda x: max_pool2d(x, **g)), [inp.tie_free(2, 3, s, s)]))
        add("avg_pool2d", config, lambda inp, g=geometry, s=size:
            ((lambda x: avg_pool2d(x, **g)), [inp.normal(2, 3, s, s)]))
    add("avg_pool2d", "kernel 3, stride 2, padding 1, 7x7, ceil, count_include_pad=False",
        lambda inp: ((lambda x: avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False)),
                     [inp.normal(2, 3, 7, 7)]))
    add("avg_pool2d", "kernel 5, stride 3 (aux head), 16x16",
        lambda inp: ((lambda x: avg_pool2d(x, 5, 3)), [inp.normal(1, 2, 16, 16)]))
    add("adaptive_avg_pool2d", "global (output 1)",
        lambda inp: ((lambda x: adaptive_avg_pool2d(x, 1)), [inp.normal(2, 3, 5, 5)]))
    add("adaptive_avg_pool2d", "uneven bins (7x5 -> 3x2)",
        lambda inp: ((lambda x: adaptive_avg_pool2d(x, (3, 2))), [inp.normal(2, 3, 7, 5)]))
