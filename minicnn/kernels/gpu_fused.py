"""GPU fast paths: several elementwise steps as ONE kernel each, with ``cupy.fuse``.

On a GPU every array operation is a kernel launch with a fixed cost of a few
microseconds, however small the array. Batch norm written as plain array code
(:func:`minicnn.functional.normalization.batch_norm_forward_plain`) launches
about twenty kernels per layer forward; the fused version here launches three. Each
function here does the job of a plain twin in :mod:`minicnn.functional` or
:mod:`minicnn.optim` (named in its docstring), which stays the reference: the
tests hold one to the other on the CuPy stand-in, gradients included.

``cupy.fuse`` compiles a Python function, traced once per argument signature,
into one CUDA kernel. What CuPy's (default, "old") fusion accepts shapes the
code below (the stand-in in tests/standin/fusion.py enforces it):

* arguments are device arrays and scalars; the function sees them through
  *variables* that support operators, CuPy's ufuncs and ``cupy.where``, but no
  methods, indexing or reshaping: views (``[:, None]``, transposes) are made
  before the call, and they cost nothing;
* at most one reduction (``cupy.sum(..., axis=...)``), over the broadcast
  shape of all the arguments, and after it only the reduced values and
  constants: a kernel that reduces returns sums, and another kernel uses them;
* outputs are new C-contiguous arrays of the broadcast shape, so each call
  runs in the memory order of its input (``_in_memory_order``): a channels-last
  activation gives a channels-last result, as the plain code's would be;
* Python floats are weak scalars (``float32 * 0.5`` stays float32), but an
  operation on scalars alone makes a float64 one: scalars are combined on the
  host, before the call.

A flag such as Nesterov cannot be an argument (a variable has no truth value):
each variant is its own fused function. None can: the traced Python code sees
None and takes its branch (batch norm's optional ReLU mask).
"""
import functools
import sys

import numpy as np

from ..backend import is_gpu_array


def _fused(function):
    """``function`` as a ``cupy.fuse`` kernel, made on the first call (CuPy is imported by then).

    The kernel then takes this wrapper's place in the module, so that later calls go to it directly
    (and the CuPy stand-in charges each one to the line that makes it).
    """
    @functools.wraps(function)
    def first_call(*args):
        kernel = sys.modules["cupy"].fuse(kernel_name=function.__name__)(function)
        globals()[function.__name__] = kernel
        return kernel(*args)
    return first_call


def _cp():
    return sys.modules["cupy"]


def _memory_axes(a):
    """The axes of ``a`` from the slowest-varying in memory to the fastest."""
    return tuple(sorted(range(a.ndim), key=lambda axis: -abs(a.strides[axis])))


def _in_memory_order(kernel, like, *args):
    """``kernel(*args)`` run over the elements in the memory order of ``like``; arrays in ``args`` have its shape.

    A fused kernel's outputs are C-contiguous: running it on transposed views,
    and transposing its outputs back, gives them ``like``'s layout.
    """
    axes = _memory_axes(like)
    inverse = tuple(int(i) for i in np.argsort(axes))
    result = kernel(*(a.transpose(axes) if is_gpu_array(a) else a for a in args))
    if isinstance(result, tuple):
        return tuple(r.transpose(inverse) for r in result)
    return result.transpose(inverse)


# -- ReLU ----------------------------------------------------------------------------------------------
def relu(x):
    """max(x, 0): one ufunc, run in x's memory order so that the output keeps x's layout (channels-last
    after a convolution), where ``cupy.maximum(x, 0)`` would allocate it C-contiguous, channel-major."""
    return _in_memory_order(_cp().maximum, x, x, x.dtype.type(0))


@_fused
def _relu_backward(gy, y):
    return gy * (y > 0)


def relu_backward(gy, y):
    """``gy * (y > 0)`` in one kernel (twin: ReLUFunction.backward's array code).

    Laid out as y, the forward's output: after a convolution that is channels-last, which is what the
    convolution's backward wants (a gy from a pooling layer's backward may come channel-major).
    """
    return _in_memory_order(_relu_backward, y, gy, y)


# -- batch norm -----------------------------------------------------------------------------------------
# x3 (N, C, L) is handled as its view (N, L, C): channels last, contiguous when x is stored channels-last,
# so that the per-channel vectors (C,) broadcast along the last axis with no reshaping.
#
# Each pass needs two sums per channel, and a fused function may reduce only once. So one reduction
# sums complex numbers, a + i*b: the real parts sum a, the imaginary parts b, and ``sums.real`` and
# ``sums.imag`` are views (free). The forward sums x and x**2 in float64 (complex128): the variance is
# then E[x^2] - E[x]^2, which in float32 would lose the digits that cancel (as SyncBatchNormFunction).
_IMAGINARY_UNIT = {np.dtype(np.float32): np.complex64(1j), np.dtype(np.float64): np.complex128(1j)}


@_fused
def _sum_and_sum_of_squares(x, unit):
    x = x.astype(np.float64)
    return _cp().sum(x + unit * (x * x), axis=(0, 1))


def _statistics_of(sums, count, like):
    """Mean and (biased) variance, in like's dtype, from the complex sums of x and x**2."""
    mean = _cp().real(sums) / count
    var = _cp().maximum(_cp().imag(sums) / count - mean * mean, 0.0)
    return mean.astype(like.dtype), var.astype(like.dtype)


@_fused
def _batch_statistics(sums, weight, count, eps):
    mean, var = _statistics_of(sums, count, weight)
    inv_std = 1.0 / _cp().sqrt(var + eps)
    return mean, var, inv_std, weight * inv_std


@_fused
def _batch_statistics_tracked(sums, weight, running_mean, running_var, count, eps, keep, momentum, unbias):
    mean, var = _statistics_of(sums, count, weight)
    inv_std = 1.0 / _cp().sqrt(var + eps)
    running_mean *= keep
    running_mean += momentum * mean
    running_var *= keep
    running_var += momentum * var * unbias
    return mean, var, inv_std, weight * inv_std


@_fused
def _given_statistics(var, weight, eps):
    inv_std = 1.0 / _cp().sqrt(var + eps)
    return inv_std, weight * inv_std


@_fused
def _normalize(x, mean, scale, bias):
    return (x - mean) * scale + bias


@_fused
def _normalize_relu(x, mean, scale, bias):
    return _cp().maximum((x - mean) * scale + bias, 0)


def batch_norm_forward(x3, weight, bias, mean, var, eps, running=None, relu=False):
    """Twin of ``batch_norm_forward_plain`` (same arguments and results), of the running-statistics update
    and of a ReLU after it.

    Args:
        x3: array (N, C, L); weight, bias: (C,); mean, var: (C,), or None for the batch's own.
        running: None, or (running_mean, running_var, momentum) to update in place as
            BatchNormFunction._update_running_statistics does (training only).
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


@_fused
def _gradient_sums(gy, relu_output, x, mean, inv_std, unit):
    """sum(g) + i * sum(g * x_hat) per channel: the bias's and the weight's gradients."""
    g = _through_relu(gy, relu_output)
    return _cp().sum(g + unit * (g * ((x - mean) * inv_std)), axis=(0, 1))


@_fused
def _batch_norm_input_gradient(gy, relu_output, x, mean, weight, inv_std, sums, count):
    x_hat = (x - mean) * inv_std
    gbias, gweight = _cp().real(sums), _cp().imag(sums)
    return (weight * inv_std) * (_through_relu(gy, relu_output) - gbias / count - x_hat * (gweight / count))


@_fused
def _scaled(gy, relu_output, weight, inv_std):
    return _through_relu(gy, relu_output) * (weight * inv_std)


@_fused
def _store_parameter_gradients(weight_grad, bias_grad, sums):
    weight_grad[...] = _cp().imag(sums)
    bias_grad[...] = _cp().real(sums)


def batch_norm_backward(gy3, x3, mean, weight, inv_std, training, relu_output=None, into=None):
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


# -- optimizers: the update rule once over the flat buffers, in place -------------------------------------------
@_fused
def _sgd(param, grad, lr, weight_decay):
    param -= lr * (grad + weight_decay * param)


@_fused
def _sgd_momentum(param, grad, buffer, lr, momentum, weight_decay):
    grad = grad + weight_decay * param
    buffer *= momentum
    buffer += grad
    param -= lr * buffer


@_fused
def _sgd_nesterov(param, grad, buffer, lr, momentum, weight_decay):
    grad = grad + weight_decay * param
    buffer *= momentum
    buffer += grad
    param -= lr * (grad + momentum * buffer)


def sgd_update(param, grad, buffer, lr, momentum, weight_decay, nesterov):
    """Twin of ``SGD.update`` (PyTorch's rule) in one kernel; ``buffer`` (None without momentum) in place."""
    if buffer is None:
        _sgd(param, grad, lr, weight_decay)
    elif nesterov:
        _sgd_nesterov(param, grad, buffer, lr, momentum, weight_decay)
    else:
        _sgd_momentum(param, grad, buffer, lr, momentum, weight_decay)


@_fused
def _adam(param, grad, m, v, keep, beta1, beta2, one_minus_beta1, one_minus_beta2, step_size, bias2, eps,
          weight_decay):
    param *= keep  # AdamW's decoupled weight decay (keep = 1 - lr * weight_decay), else keep = 1
    grad = grad + weight_decay * param
    m *= beta1
    m += one_minus_beta1 * grad
    v *= beta2
    v += one_minus_beta2 * grad * grad
    param -= step_size * m / (_cp().sqrt(v / bias2) + eps)


def adam_update(param, grad, m, v, lr, betas, eps, weight_decay, decoupled, step):
    """Twin of ``Adam.update`` and ``AdamW``'s in one kernel: param, m and v in place."""
    beta1, beta2 = betas
    keep, weight_decay = (1.0 - lr * weight_decay, 0.0) if decoupled else (1.0, weight_decay)
    _adam(param, grad, m, v, keep, beta1, beta2, 1 - beta1, 1 - beta2, lr / (1 - beta1 ** step), 1 - beta2 ** step,
          eps, weight_decay)


# -- dropout --------------------------------------------------------------------------------------------
@_fused
def _dropout(x, uniform, p, scale):
    mask = (uniform >= p).astype(x.dtype) * scale
    return x * mask, mask


def dropout(x, uniform, p):
    """Twin of DropoutFunction.forward's array code: returns (y, mask), mask = (uniform >= p) / (1 - p). 1 kernel."""
    return _in_memory_order(_dropout, x, x, uniform, p, 1.0 / (1.0 - p))


# -- softmax cross-entropy --------------------------------------------------------------------------------
# logits z (N, C); per row m = max z and lse = log sum exp(z - m), so log softmax = z - m - lse. The target
# distribution q: (1 - s) + s/C on the label, s/C elsewhere (s the label smoothing), NaN everywhere for a label
# out of range.
@_fused
def _log_sum_exp(z, row_max):
    return _cp().log(_cp().sum(_cp().exp(z - row_max), axis=1))


def _target(z, labels, classes, on_label, spread, count):
    valid = (labels >= 0) & (labels < count)
    q = (classes == labels).astype(z.dtype) * on_label + spread
    return _cp().where(valid, q, np.nan)


@_fused
def _cross_entropy_rows(z, row_max, lse, labels, classes, on_label, spread, count):
    return -_cp().sum((z - row_max - lse) * _target(z, labels, classes, on_label, spread, count), axis=1)


@_fused
def _cross_entropy_gradient(z, row_max, lse, labels, classes, on_label, spread, count, gy, factor):
    return (_cp().exp(z - row_max - lse) - _target(z, labels, classes, on_label, spread, count)) * (gy * factor)


@_fused
def _scaled_total(values, scale):
    return _cp().sum(values * scale, axis=0)


def cross_entropy_forward(logits, labels, smoothing, reduction):
    """Twin of CrossEntropyFunction.forward: returns (loss, saved), ``saved`` what the backward needs.

    A label out of range makes its row's loss NaN (its target is NaN). Kernels: 4 (5 reduced).
    """
    xp = _cp()
    n, classes = logits.shape
    row_max = logits.max(axis=1)[:, None]
    lse = _log_sum_exp(logits, row_max)[:, None]
    class_index = xp.arange(classes)
    target = (labels[:, None], class_index, 1.0 - smoothing, smoothing / classes, classes)
    losses = _cross_entropy_rows(logits, row_max, lse, *target)
    saved = (logits, row_max, lse, *target)
    if reduction == "none":
        return losses, saved
    return _scaled_total(losses, 1.0 / n if reduction == "mean" else 1.0), saved


def cross_entropy_backward(gy, saved, reduction):
    """dL/dlogits = (softmax - q) * gy (/ N for the mean; gy (N,) for "none"). 1 kernel."""
    if reduction == "none":
        return _cross_entropy_gradient(*saved, gy[:, None], 1.0)
    return _cross_entropy_gradient(*saved, gy, 1.0 / saved[0].shape[0] if reduction == "mean" else 1.0)


# -- local response normalization ----------------------------------------------------------------------------
# A channel window sum is `size` shifted views of a zero-padded copy added up: the copy costs a memset and
# one kernel that writes its interior, and the views are free.
def _zeros_padded_channels(like, before, after):
    """Zeros (N, before + C + after, H, W), laid out in memory as ``like`` (N, C, H, W) is."""
    axes = _memory_axes(like)
    shape = list(like.shape)
    shape[1] += before + after
    return _cp().zeros([shape[axis] for axis in axes], like.dtype).transpose([int(i) for i in np.argsort(axes)])


def _windows(padded, size, channels):
    """The ``size`` views padded[:, s : s + channels]: window member s of every channel."""
    return [padded[:, shift:shift + channels] for shift in range(size)]


@_fused
def _square_into(out, x):
    out[...] = x * x


@_fused
def _lrn_forward(x, coefficient, k, neg_beta, *windows):
    total = windows[0]
    for window in windows[1:]:
        total = total + window
    scale = total * coefficient + k
    scale_pow = scale ** neg_beta
    return x * scale_pow, scale, scale_pow


def lrn_forward(x, size, alpha, beta, k):
    """Twin of ``lrn_forward_plain``: returns (y, scale, scale ** -beta), all (N, C, H, W). Kernels: 3."""
    channels = x.shape[1]
    padded = _zeros_padded_channels(x, size // 2, (size - 1) // 2)
    _square_into(padded[:, size // 2:size // 2 + channels], x)
    return _in_memory_order(_lrn_forward, x, x, alpha / size, k, -beta, *_windows(padded, size, channels))


@_fused
def _ratio_into(out, gy, x, scale, scale_pow):
    out[...] = gy * x * scale_pow / scale


@_fused
def _lrn_backward(gy, x, scale_pow, coefficient, *windows):
    total = windows[0]
    for window in windows[1:]:
        total = total + window
    return gy * scale_pow - coefficient * x * total


def lrn_backward(gy, x, scale, scale_pow, size, alpha, beta):
    """Twin of ``lrn_backward_plain``: dL/dx (N, C, H, W). Kernels: 3."""
    channels, before = x.shape[1], (size - 1) // 2
    padded = _zeros_padded_channels(x, before, size // 2)
    _ratio_into(padded[:, before:before + channels], gy, x, scale, scale_pow)
    return _in_memory_order(_lrn_backward, x, gy, x, scale_pow, 2.0 * alpha * beta / size,
                            *_windows(padded, size, channels))
