"""Batch normalization's fast forms, with an optional ReLU in the same passes (plain twins:
functional/normalization.py).

Forward: ``(x3, weight, bias, mean, var, eps, running=None, relu=False) -> (y, mean, var, inv_std)``;
backward: ``(gy3, x3, mean, weight, inv_std, training, relu_output=None, into=None) -> (gx, gweight,
gbias)``, as ``batch_norm_forward_plain`` and ``batch_norm_backward_plain``.

CPU: one numba pass for the statistics and one for the normalization, on
minicnn's threads. GPU: three fused kernels forward in training, two backward.
"""
import numpy as np

from . import host_memory
from .chunks import as_rows, from_rows, jit, rows_per_chunk, run_chunks
from .fusion import cp, fused

# -- CPU ---------------------------------------------------------------------------------------
# The statistics are sums over every pixel row of each channel. Each chunk sums a range of fixed
# blocks of rows, all C channels at once (the innermost loop runs over channels, side by side in
# memory, so the vector lanes hold different channels), into one float64 row per block; the
# blocks' rows are then added up in order. The blocks do not depend on the thread count, so
# neither do the results.
_BLOCK_ROWS = 1024


@jit
def _block_sums(x, other, mask, mean, inv_std, kind, sums, start, stop):
    """For each block of rows: sums[block, 0] = sum of the first term, sums[block, 1] of the second.

    kind 0 (statistics): x - mean and (x - mean)**2, ``mean`` any shift (a sample of x);
    kind 1 (gradients): other (= dL/dy) and other * x_hat, x_hat = (x - mean) * inv_std;
    kind 2: as 1, with other taken as 0 where mask (a ReLU's output) is not positive.
    """
    rows, channels = x.shape
    for block in range(start, stop):
        first, second = sums[block, 0], sums[block, 1]
        first[:] = 0.0
        second[:] = 0.0
        for p in range(block * _BLOCK_ROWS, min(rows, (block + 1) * _BLOCK_ROWS)):
            for ch in range(channels):
                centred = np.float64(x[p, ch]) - mean[ch]
                if kind == 0:
                    first[ch] += centred
                    second[ch] += centred * centred
                else:  # gy * (y > 0) as a product, as the plain ReLU gradient: a select here ran 2x slower
                    g = np.float64(other[p, ch]) * np.float64(kind == 1 or mask[p, ch] > 0)
                    first[ch] += g
                    second[ch] += g * (centred * inv_std[ch])


def _channel_sums(x, other, mean, inv_std, kind, mask=None):
    """The two per-channel float64 sums of :func:`_block_sums` over all rows of x (rows, C)."""
    rows, channels = x.shape
    blocks = -(-rows // _BLOCK_ROWS)
    sums = host_memory.empty((blocks, 2, channels))
    run_chunks(blocks, 1, _block_sums, x, other, other if mask is None else mask, mean, inv_std, kind, sums)
    return sums.sum(axis=0)


@jit
def _normalize_rows(x, mean, scale, bias, relu, y, start, stop):
    """y = (x - mean) * scale + bias, per channel; then max(y, 0) if relu."""
    for p in range(start, stop):
        for ch in range(x.shape[1]):
            value = (x[p, ch] - mean[ch]) * scale[ch] + bias[ch]
            y[p, ch] = 0 if relu and value < 0 else value


def batch_norm_forward_numba(x, weight, bias, mean, var, eps, running=None, relu=False):
    """As functional.normalization.batch_norm_forward_plain: x (N, C, L) -> (y, mean, var, inv_std);
    with ``relu``, y is max(y, 0), taken in the same pass; ``running`` (or None) updated as there.

    One pass for the statistics (sums of x - x[first pixel] and its squares
    in float64: shifting by a sample keeps the variance exact however far the
    mean is from 0) and one pass for y = (x - mean) * scale + bias, the
    normalisation and the affine map folded together (scale = weight * inv_std).
    """
    rows = as_rows(x)
    pixels, channels = rows.shape
    if mean is None:
        shift = rows[0].astype(np.float64)
        total, squares = _channel_sums(rows, rows, shift, shift, 0)
        offset = total / pixels
        mean = (shift + offset).astype(x.dtype)
        var = np.maximum(squares / pixels - offset * offset, 0.0).astype(x.dtype)
    inv_std = (1.0 / np.sqrt(var.astype(np.float64) + eps)).astype(x.dtype)
    y = host_memory.empty_like(rows)
    run_chunks(pixels, rows_per_chunk(channels), _normalize_rows, rows, mean, weight * inv_std, bias, relu, y)
    if running is not None:
        running.update(mean, var, pixels)
    return from_rows(y, x.shape), mean, var, inv_std


@jit
def _batch_norm_grad_input(gy, mask, masked, x, mean, inv_std, scale, mean_g, mean_g_xhat, gx, start, stop):
    for p in range(start, stop):
        for ch in range(x.shape[1]):
            x_hat = (x[p, ch] - mean[ch]) * inv_std[ch]
            g = gy[p, ch] * gy.dtype.type(not masked or mask[p, ch] > 0)  # a product, as in _block_sums
            gx[p, ch] = scale[ch] * (g - mean_g[ch] - x_hat * mean_g_xhat[ch])


def batch_norm_backward_numba(gy, x, mean, weight, inv_std, training, relu_output=None, into=None):
    """As functional.normalization.batch_norm_backward_plain: returns (gx, gweight, gbias).

    With ``relu_output`` (the forward's output, after its ReLU), gy first goes through the ReLU
    (zero where that output is not positive), in the same passes. ``into`` is not used (the engine's copy
    of the parameter gradients costs nothing worth saving on the CPU).
    """
    rows, grad_rows = as_rows(x), as_rows(gy)
    pixels, channels = rows.shape
    mask = grad_rows if relu_output is None else as_rows(relu_output)
    sum_g, sum_g_xhat = _channel_sums(rows, grad_rows, mean.astype(np.float64), inv_std.astype(np.float64),
                                      1 if relu_output is None else 2, mask)
    if training:
        mean_g, mean_g_xhat = (sum_g / pixels).astype(gy.dtype), (sum_g_xhat / pixels).astype(gy.dtype)
    else:  # the statistics are constants
        mean_g = mean_g_xhat = np.zeros(channels, gy.dtype)
    gx = host_memory.empty_like(grad_rows)
    run_chunks(pixels, rows_per_chunk(channels), _batch_norm_grad_input, grad_rows, mask, relu_output is not None,
                rows, mean, inv_std, weight * inv_std, mean_g, mean_g_xhat, gx)
    return from_rows(gx, gy.shape), sum_g_xhat.astype(gy.dtype), sum_g.astype(gy.dtype)


# -- GPU ---------------------------------------------------------------------------------------
# x3 (N, C, L) is handled as its view (N, L, C): channels last, contiguous when x is stored channels-last,
# so that the per-channel vectors (C,) broadcast along the last axis with no reshaping.
#
# Each pass needs two sums per channel, and a fused function may reduce only once. So one reduction
# sums complex numbers, a + i*b: the real parts sum a, the imaginary parts b, and ``sums.real`` and
# ``sums.imag`` are views (free). The forward sums x and x**2 in float64 (complex128): the variance is
# then E[x^2] - E[x]^2, which in float32 would lose the digits that cancel (as SyncBatchNormFunction).
_IMAGINARY_UNIT = {np.dtype(np.float32): np.complex64(1j), np.dtype(np.float64): np.complex128(1j)}


@fused
def _sum_and_sum_of_squares(x, unit):
    x = x.astype(np.float64)
    return cp().sum(x + unit * (x * x), axis=(0, 1))


def _statistics_of(sums, count, like):
    """Mean and (biased) variance, in like's dtype, from the complex sums of x and x**2."""
    mean = cp().real(sums) / count
    var = cp().maximum(cp().imag(sums) / count - mean * mean, 0.0)
    return mean.astype(like.dtype), var.astype(like.dtype)


@fused
def _batch_statistics(sums, weight, count, eps):
    mean, var = _statistics_of(sums, count, weight)
    inv_std = 1.0 / cp().sqrt(var + eps)
    return mean, var, inv_std, weight * inv_std


@fused
def _batch_statistics_tracked(sums, weight, running_mean, running_var, count, eps, keep, momentum, unbias):
    mean, var = _statistics_of(sums, count, weight)
    inv_std = 1.0 / cp().sqrt(var + eps)
    running_mean *= keep
    running_mean += momentum * mean
    running_var *= keep
    running_var += momentum * var * unbias
    return mean, var, inv_std, weight * inv_std


@fused
def _given_statistics(var, weight, eps):
    inv_std = 1.0 / cp().sqrt(var + eps)
    return inv_std, weight * inv_std


@fused
def _normalize(x, mean, scale, bias):
    return (x - mean) * scale + bias


@fused
def _normalize_relu(x, mean, scale, bias):
    return cp().maximum((x - mean) * scale + bias, 0)


def batch_norm_forward_fused(x3, weight, bias, mean, var, eps, running=None, relu=False):
    """Twin of ``batch_norm_forward_plain`` (same arguments and results), of the running-statistics update
    and of a ReLU after it.

    Args:
        x3: array (N, C, L); weight, bias: (C,); mean, var: (C,), or None for the batch's own.
        running: None, or a functional.normalization.RunningStatistics (running_mean, running_var,
            momentum) to update in place as its ``update`` does (training only).
        relu: y = max(normalized, 0).
    Returns:
        y (N, C, L), mean (C,), var (C,) (biased), inv_std (C,).
    Kernels: 3 in training (the two sums, the statistics, the normalization), 2 otherwise.
    """
    xl = x3.transpose(0, 2, 1)
    if mean is None:
        count = float(x3.shape[0] * x3.shape[2])
        sums = _sum_and_sum_of_squares(xl, np.complex128(1j))
        if running is None:
            mean, var, inv_std, scale = _batch_statistics(sums, weight, count, eps)
        else:
            running_mean, running_var, momentum = running
            mean, var, inv_std, scale = _batch_statistics_tracked(
                sums, weight, running_mean, running_var, count, eps, 1.0 - momentum, momentum, count / (count - 1))
    else:
        inv_std, scale = _given_statistics(var, weight, eps)
    y = (_normalize_relu if relu else _normalize)(xl, mean, scale, bias)
    return y.transpose(0, 2, 1), mean, var, inv_std


# In backward, relu_output y (or None) is the output of a ReLU fused into the forward: the gradient is gy * (y > 0).
# (None is a fine argument to a fused function: the Python code sees None while CuPy traces it.)
def _through_relu(gy, relu_output):
    return gy if relu_output is None else gy * (relu_output > 0)


@fused
def _gradient_sums(gy, relu_output, x, mean, inv_std, unit):
    """sum(g) + i * sum(g * x_hat) per channel: the bias's and the weight's gradients."""
    g = _through_relu(gy, relu_output)
    return cp().sum(g + unit * (g * ((x - mean) * inv_std)), axis=(0, 1))


@fused
def _batch_norm_input_gradient(gy, relu_output, x, mean, weight, inv_std, sums, count):
    x_hat = (x - mean) * inv_std
    gbias, gweight = cp().real(sums), cp().imag(sums)
    return (weight * inv_std) * (_through_relu(gy, relu_output) - gbias / count - x_hat * (gweight / count))


@fused
def _scaled(gy, relu_output, weight, inv_std):
    return _through_relu(gy, relu_output) * (weight * inv_std)


@fused
def _store_parameter_gradients(weight_grad, bias_grad, sums):
    weight_grad[...] = cp().imag(sums)
    bias_grad[...] = cp().real(sums)


def batch_norm_backward_fused(gy3, x3, mean, weight, inv_std, training, relu_output=None, into=None):
    """Twin of ``batch_norm_backward_plain``: returns (gx, gweight, gbias). Kernels: 2 (3 with ``into``).

    relu_output: the forward's output (N, C, L) when a ReLU was fused into it (the gradient is masked by it).
    into: None, or arrays (C,) to write gweight and gbias into (the optimizer's gradient buffer, see
        Op.gradient_buffer): one kernel for both, where the engine would copy each.
    """
    gl, xl = gy3.transpose(0, 2, 1), x3.transpose(0, 2, 1)
    yl = None if relu_output is None else relu_output.transpose(0, 2, 1)
    sums = _gradient_sums(gl, yl, xl, mean, inv_std, _IMAGINARY_UNIT[gy3.dtype])
    if training:
        count = float(gy3.shape[0] * gy3.shape[2])
        gx = _batch_norm_input_gradient(gl, yl, xl, mean, weight, inv_std, sums, count)
    else:
        gx = _scaled(gl, yl, weight, inv_std)
    if into is None:
        return gx.transpose(0, 2, 1), sums.imag, sums.real
    _store_parameter_gradients(*into, sums)
    return (gx.transpose(0, 2, 1), *into)

