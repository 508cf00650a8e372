"""Batch normalization (Ioffe & Szegedy, 2015), over every axis but the channel axis 1.

Training: normalize with the batch's mean and (biased) variance per channel,
and update the running statistics in place with the unbiased variance, as
PyTorch does: running = (1 - momentum) * running + momentum * batch_statistic.
Evaluation: normalize with the running statistics.

Backward in training mode (x_hat the normalized input, recomputed from x rather
than stored; m the count per channel; g = dL/dx_hat = dL/dy * weight):

    dL/dx = (g - mean(g) - x_hat * mean(g * x_hat)) / sqrt(var + eps)

Synchronised batch norm (``sync=True``, :class:`minicnn.nn.SyncBatchNorm`)
takes the mean, the variance and those two gradient means over the batches of
every process of :mod:`minicnn.distributed`, so that N processes with a slice
each compute what one process computes on the whole batch.

The fast forms (numba on the CPU, fused kernels on a GPU, each with the ReLU
that follows a batch norm in the same passes): :mod:`minicnn.kernels.normalization`.
"""
from typing import NamedTuple

import numpy as np

from .. import distributed
from ..backend import device_of, get_array_module
from ..engine import Op, Tensor, device_mismatch
from ..kernels.dispatch import Forms
from .activation import relu_gradient, relu_values
from .validation import require_same_dtype, require_tensor


class RunningStatistics(NamedTuple):
    """The running statistics that a batch norm in training updates in place: arrays (C,), and a float."""

    mean: object
    var: object
    momentum: float

    def update(self, mean, var, count):
        """running = (1 - momentum) * running + momentum * statistic, with var made unbiased (as PyTorch keeps it)."""
        running_mean, running_var = self.mean, self.var  # in place (a tuple's fields cannot be reassigned)
        running_mean *= 1 - self.momentum
        running_mean += (self.momentum * mean).astype(running_mean.dtype, copy=False)
        running_var *= 1 - self.momentum
        running_var += (self.momentum * var * (count / (count - 1))).astype(running_var.dtype, copy=False)


def batch_norm_forward_plain(x, weight, bias, mean, var, eps, running=None, relu=False):
    """Normalize per channel; the plain twin of the fast forms.

    Args:
        x: array (N, C, L) (trailing axes merged into L).
        weight, bias: arrays (C,).
        mean, var: arrays (C,) to normalize with, or None to use the batch's own.
        running: None, or the :class:`RunningStatistics` to update with the batch's.
        relu: y = max(normalized, 0).
    Returns:
        y (N, C, L), mean (C,), var (C,) (biased), inv_std (C,).
    """
    if mean is None:
        mean = x.mean(axis=(0, 2))
        centred = x - mean[:, None]
        var = (centred * centred).mean(axis=(0, 2))
    inv_std = (1.0 / get_array_module(x).sqrt(var + eps)).astype(x.dtype)
    scale = weight * inv_std  # normalisation and the affine map in one multiply per value
    y = (x - mean[:, None]) * scale[:, None] + bias[:, None]
    if running is not None:
        running.update(mean, var, x.shape[0] * x.shape[2])
    return (relu_values(y) if relu else y), mean, var, inv_std


def batch_norm_backward_plain(gy, x, mean, weight, inv_std, training, relu_output=None, into=None):
    """Returns (gx, gweight, gbias) for dL/dy = gy; x, mean, inv_std as in :func:`batch_norm_forward_plain`.

    relu_output: the forward's output when it applied a ReLU (gy goes through the ReLU first).
    into: where the parameter gradients may be written (Op.gradient_buffer); not used here.
    """
    if relu_output is not None:
        gy = relu_gradient(gy, relu_output)
    x_hat = (x - mean[:, None]) * inv_std[:, None]
    gweight, gbias = (gy * x_hat).sum(axis=(0, 2)), gy.sum(axis=(0, 2))
    scale = (weight * inv_std)[:, None]
    if not training:  # the statistics are constants
        return gy * scale, gweight, gbias
    count = gy.shape[0] * gy.shape[2]
    gx = scale * (gy - gbias[:, None] / count - x_hat * (gweight[:, None] / count))
    return gx, gweight, gbias


batch_norm_forward = Forms("batch_norm", plain=batch_norm_forward_plain, cpu="normalization:batch_norm_forward_numba",
                           gpu="normalization:batch_norm_forward_fused")
batch_norm_backward = Forms("batch_norm_backward", plain=batch_norm_backward_plain,
                            cpu="normalization:batch_norm_backward_numba",
                            gpu="normalization:batch_norm_backward_fused")


class BatchNormFunction(Op):
    def __init__(self, running_mean, running_var, training, momentum, eps, relu=False):
        self.running_mean, self.running_var = running_mean, running_var
        self.training, self.momentum, self.eps, self.relu = training, momentum, eps, relu
        self.y3 = None  # with relu: the output (N, C, L), whose zeros mask the gradient in backward

    def _as_arrays(self, x, weight, bias):
        """x as (N, C, L) (every axis but the channel one is averaged over); weight and bias, 1 and 0 if not given."""
        xp, channels = get_array_module(x), x.shape[1]
        self.shape = x.shape
        self.weight = weight if weight is not None else xp.ones(channels, x.dtype)
        bias = bias if bias is not None else xp.zeros(channels, x.dtype)
        return x.reshape(x.shape[0], channels, -1), self.weight, bias

    def _parameter_gradient_destinations(self):
        """(weight's, bias's) views of the optimizer's gradient buffer to write into, or None (see
        Op.gradient_buffer)."""
        if len(self.inputs) != 3:
            return None
        into = (self.gradient_buffer(1), self.gradient_buffer(2))
        return None if any(array is None for array in into) else into

    def _backward(self, gy3, training):
        """(gx, gweight, gbias) for gy3 (through the ReLU first, if any), the statistics live (training) or fixed."""
        return batch_norm_backward(gy3, self.x3, self.mean, self.weight, self.inv_std, training, relu_output=self.y3,
                                   into=self._parameter_gradient_destinations())

    def forward(self, x, weight=None, bias=None):
        x3, weight, bias = self._as_arrays(x, weight, bias)
        given = (None, None) if self.training else (self.running_mean, self.running_var)
        tracked = self.training and self.running_mean is not None
        running = RunningStatistics(self.running_mean, self.running_var, self.momentum) if tracked else None
        y, mean, var, self.inv_std = batch_norm_forward(x3, weight, bias, *given, self.eps, running, self.relu)
        self.y3 = y if self.relu else None  # the ReLU's output masks the gradient in backward
        self.x3, self.mean = x3, mean  # x is kept by the graph anyway; x_hat is not stored
        return y.reshape(x.shape)

    def backward(self, gy):
        gx, gweight, gbias = self._backward(gy.reshape(self.x3.shape), self.training)
        needs = self.needs_input_grad
        grads = (gx.reshape(self.shape), gweight, gbias)  # inputs: x, then weight and bias if given
        return tuple(grad if need else None for grad, need in zip(grads, needs))


class SyncBatchNormFunction(BatchNormFunction):
    """Batch norm in training mode with the statistics of every rank's batch together.

    As ChainerMN's MultiNodeBatchNormalization and PyTorch's SyncBatchNorm:
    forward all-reduces, per channel, the sum and the sum of squares of x and
    the count; backward all-reduces the sums of g and of g * x_hat. So each
    layer costs one small collective (2C + 1 numbers) forward and one (2C)
    backward. The forward sums are taken in float64: the variance is
    E[x^2] - E[x]^2, and float32 would lose the digits that cancel.

    The weight and bias gradients returned are this rank's own sums: averaging
    them over the ranks, as :func:`minicnn.distributed.all_reduce_gradients`
    does for every parameter, gives the whole batch's gradient.
    """

    def __init__(self, running_mean, running_var, momentum, eps, relu=False):
        super().__init__(running_mean, running_var, True, momentum, eps, relu)

    def forward(self, x, weight=None, bias=None):
        x3, weight, bias = self._as_arrays(x, weight, bias)
        xp, channels = get_array_module(x), x.shape[1]
        sums = xp.empty(2 * channels + 1, np.float64)  # (sum of x, sum of x^2) per channel, then the count
        sums[:channels] = x3.sum(axis=(0, 2), dtype=np.float64)
        sums[channels:-1] = (x3 * x3).sum(axis=(0, 2), dtype=np.float64)
        sums[-1] = x3.shape[0] * x3.shape[2]
        distributed.all_reduce(sums)
        self.count = sums[-1]  # the whole batch's, a 0-d array (no wait for the GPU here)
        mean = sums[:channels] / self.count
        var = xp.maximum(sums[channels:-1] / self.count - mean * mean, 0)
        self.x3, self.mean = x3, mean.astype(x.dtype)
        y, _, _, self.inv_std = batch_norm_forward(x3, weight, bias, self.mean, var.astype(x.dtype), self.eps, None,
                                                   self.relu)
        self.y3 = y if self.relu else None
        if self.running_mean is not None:  # the same on every rank: so are the statistics
            RunningStatistics(self.running_mean, self.running_var, self.momentum).update(mean, var, self.count)
        return y.reshape(x.shape)

    def backward(self, gy):
        gy3 = gy.reshape(self.x3.shape)
        channels = gy3.shape[1]
        # The gradient with the statistics held fixed (evaluation mode's), and this rank's two sums ...
        gx, gweight, gbias = self._backward(gy3, False)
        # ... then what flows through the statistics, from the sums over every rank.
        sums = distributed.all_reduce(get_array_module(gy).concatenate([gbias, gweight]))
        mean_g = (sums[:channels] / self.count).astype(gy.dtype)
        mean_gx = (sums[channels:] / self.count).astype(gy.dtype)
        x_hat = (self.x3 - self.mean[:, None]) * self.inv_std[:, None]
        gx -= (self.weight * self.inv_std)[:, None] * (mean_g[:, None] + x_hat * mean_gx[:, None])
        grads = (gx.reshape(self.shape), gweight, gbias)
        return tuple(grad if need else None for grad, need in zip(grads, self.needs_input_grad))


def _buffer(op, name, value, channels, x):
    """A running-statistics buffer as a raw array of shape (C,), or None."""
    if value is None:
        return None
    array = value.array if isinstance(value, Tensor) else value
    if getattr(array, "shape", None) != (channels,):
        raise ValueError(f"{op}: {name} must have shape ({channels},) to match x's channels, "
                         f"got {getattr(array, 'shape', type(array).__name__)}")
    if array.dtype != x.dtype:
        raise TypeError(f"{op}: {name} has dtype {array.dtype} but x has dtype {x.dtype}")
    return array


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5, sync=False, relu=False):
    """Batch normalization over channel axis 1 (PyTorch's ``F.batch_norm``).

    Args:
        x: Tensor (N, C) or (N, C, H, W) (any number of trailing axes).
        running_mean, running_var: Tensors or arrays (C,), updated in place
            when ``training``; may be None in training (then nothing is tracked).
        weight, bias: Tensors (C,) (gamma and beta) or None.
        training: use batch statistics (and update running ones) or running ones.
        momentum: weight of the new batch in the running averages.
        eps: added to the variance before the square root.
        sync: in training, take the statistics over the batches of every
            process of :mod:`minicnn.distributed` together (synchronised batch
            norm); with one process this changes nothing.
        relu: also apply ReLU, as ``F.relu(F.batch_norm(...))`` does, in the same op
            (minicnn's, not PyTorch's): on a GPU that saves a kernel launch forward and one backward.
    Returns:
        Tensor of x's shape.
    """
    op = "batch_norm"
    require_tensor(op, "x", x)
    if x.ndim < 2:
        raise ValueError(f"{op}: x must be at least 2-D (N, C, ...), got shape {x.shape}")
    channels = x.shape[1]
    buffers = [value for value in (running_mean, running_var) if isinstance(value, Tensor)]
    running_mean = _buffer(op, "running_mean", running_mean, channels, x)
    running_var = _buffer(op, "running_var", running_var, channels, x)
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{op}: give both running_mean and running_var, or neither")
    devices = [device_of(array) for array in (x.array, running_mean, running_var) if array is not None]
    if len(set(devices)) > 1:  # the buffers are not inputs of the Op, so its own check misses them
        raise ValueError(device_mismatch(op, ["x", "running_mean", "running_var"], devices))
    if not training and running_mean is None:
        raise ValueError(f"{op}: evaluation (training=False) needs running_mean and running_var")
    if training and x.numel() // channels < 2:
        raise ValueError(f"{op}: training needs more than one value per channel to estimate a "
                         f"variance, got x of shape {x.shape}")
    inputs = [x]
    for name, value in (("weight", weight), ("bias", bias)):
        if value is not None:
            require_tensor(op, name, value, 1, "(C,)")
            require_same_dtype(op, name, value, "x", x)
            if value.shape[0] != channels:
                raise ValueError(f"{op}: {name} must have shape ({channels},), got {value.shape}")
    if weight is None and bias is not None:
        raise ValueError(f"{op}: a bias without a weight is not supported; pass both or neither")
    inputs += [t for t in (weight, bias) if t is not None]
    if training and sync and distributed.world_size() > 1:
        function = SyncBatchNormFunction(running_mean, running_var, float(momentum), float(eps), bool(relu))
    else:
        function = BatchNormFunction(running_mean, running_var, bool(training), float(momentum), float(eps),
                                     bool(relu))
    output = function(*inputs)
    if training:  # the running statistics were updated in place
        for buffer in buffers:
            buffer._bump_version()
    return output


def gradcheck_cases(add):
    """The gradient-check cases of this module's ops (minicnn.gradcheck.cases collects them): add(layer,
    configuration, build), build(inputs) -> (function, input tensors), inputs a gradcheck.cases.Inputs."""
    def _batch_norm(training, shape):
        def build(inp):
            channels = shape[1]
            mean, var = inp.array(np.zeros(channels)), inp.array(np.ones(channels) * 1.5)
            return ((lambda x, w, b: batch_norm(x, mean, var, w, b, training=training, eps=1e-3)),
                   [inp.normal(*shape), inp.normal(channels), inp.normal(channels)])
        return build

    add("batch_norm", "training, (4, 3, 3, 3)", _batch_norm(True, (4, 3, 3, 3)))
    add("batch_norm", "training, (6, 4) (1-D features)", _batch_norm(True, (6, 4)))
    add("batch_norm", "evaluation, running statistics", _batch_norm(False, (4, 3, 3, 3)))
