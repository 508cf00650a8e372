"""Batch normalization (Ioffe & Szegedy, 2015), over every axis but the channel axis 1.

Training: normalize with the batch's mean and (biased) variance per channel,
and update the running statistics in place with the unbiased variance, as
PyTorch does: running = (1 - momentum) * running + momentum * batch_statistic.
Evaluation: normalize with the running statistics.

Backward in training mode (x_hat the normalized input, recomputed from x rather
than stored; m the count per channel; g = dL/dx_hat = dL/dy * weight):

    dL/dx = (g - mean(g) - x_hat * mean(g * x_hat)) / sqrt(var + eps)
"""
from .. import kernels
from ..backend import get_array_module
from ..tensor import Function, Tensor
from .validation import require_same_dtype, require_tensor


def batch_norm_forward_plain(x, weight, bias, mean, var, eps):
    """Normalize per channel; the plain twin of the fast kernels.

    Args:
        x: array (N, C, L) (trailing axes merged into L).
        weight, bias: arrays (C,).
        mean, var: arrays (C,) to normalize with, or None to use the batch's own.
    Returns:
        y (N, C, L), mean (C,), var (C,) (biased), inv_std (C,).
    """
    if mean is None:
        mean = x.mean(axis=(0, 2))
        centred = x - mean[:, None]
        var = (centred * centred).mean(axis=(0, 2))
    inv_std = (1.0 / get_array_module(x).sqrt(var + eps)).astype(x.dtype)
    scale = weight * inv_std  # normalisation and the affine map in one multiply per value
    return (x - mean[:, None]) * scale[:, None] + bias[:, None], mean, var, inv_std


def batch_norm_backward_plain(gy, x, mean, weight, inv_std, training):
    """Returns (gx, gweight, gbias) for dL/dy = gy; x, mean, inv_std as in :func:`batch_norm_forward_plain`."""
    x_hat = (x - mean[:, None]) * inv_std[:, None]
    gweight, gbias = (gy * x_hat).sum(axis=(0, 2)), gy.sum(axis=(0, 2))
    scale = (weight * inv_std)[:, None]
    if not training:  # the statistics are constants
        return gy * scale, gweight, gbias
    count = gy.shape[0] * gy.shape[2]
    gx = scale * (gy - gbias[:, None] / count - x_hat * (gweight[:, None] / count))
    return gx, gweight, gbias


class BatchNormFunction(Function):
    def __init__(self, running_mean, running_var, training, momentum, eps):
        self.running_mean, self.running_var = running_mean, running_var
        self.training, self.momentum, self.eps = training, momentum, eps

    def forward(self, x, weight=None, bias=None):
        xp = get_array_module(x)
        channels = x.shape[1]
        self.shape = x.shape
        weight = weight if weight is not None else xp.ones(channels, x.dtype)
        bias = bias if bias is not None else xp.zeros(channels, x.dtype)
        x3 = x.reshape(x.shape[0], channels, -1)  # (N, C, L): every axis but the channel one is averaged over
        given = (None, None) if self.training else (self.running_mean, self.running_var)
        forward = kernels.cpu.batch_norm_forward if kernels.use_numba(x3) else batch_norm_forward_plain
        y, mean, var, self.inv_std = forward(x3, weight, bias, *given, self.eps)
        if self.training and self.running_mean is not None:
            count = x3.shape[0] * x3.shape[2]
            self.running_mean *= 1 - self.momentum
            self.running_mean += self.momentum * mean
            self.running_var *= 1 - self.momentum
            self.running_var += self.momentum * var * (count / (count - 1))  # unbiased, as PyTorch keeps it
        self.x3, self.mean, self.weight = x3, mean, weight  # x is kept by the graph anyway; x_hat is not stored
        return y.reshape(x.shape)

    def backward(self, gy):
        gy3 = gy.reshape(self.x3.shape)
        backward = kernels.cpu.batch_norm_backward if kernels.use_numba(gy3) else batch_norm_backward_plain
        gx, gweight, gbias = backward(gy3, self.x3, self.mean, self.weight, self.inv_std, self.training)
        needs = self.needs_input_grad
        grads = (gx.reshape(self.shape), gweight, gbias)  # inputs: x, then weight and bias if given
        return tuple(grad if need else None for grad, need in zip(grads, needs))


def _buffer(op, name, value, channels, x):
    """A running-statistics buffer as a raw array of shape (C,), or None."""
    if value is None:
        return None
    array = value.data if isinstance(value, Tensor) else value
    if getattr(array, "shape", None) != (channels,):
        raise ValueError(f"{op}: {name} must have shape ({channels},) to match x's channels, "
                         f"got {getattr(array, 'shape', type(array).__name__)}")
    if array.dtype != x.dtype:
        raise TypeError(f"{op}: {name} has dtype {array.dtype} but x has dtype {x.dtype}")
    return array


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalization over channel axis 1 (PyTorch's ``F.batch_norm``).

    Args:
        x: Tensor (N, C) or (N, C, H, W) (any number of trailing axes).
        running_mean, running_var: Tensors or arrays (C,), updated in place
            when ``training``; may be None in training (then nothing is tracked).
        weight, bias: Tensors (C,) (gamma and beta) or None.
        training: use batch statistics (and update running ones) or running ones.
        momentum: weight of the new batch in the running averages.
        eps: added to the variance before the square root.
    Returns:
        Tensor of x's shape.
    """
    op = "batch_norm"
    require_tensor(op, "x", x)
    if x.ndim < 2:
        raise ValueError(f"{op}: x must be at least 2-D (N, C, ...), got shape {x.shape}")
    channels = x.shape[1]
    running_mean = _buffer(op, "running_mean", running_mean, channels, x)
    running_var = _buffer(op, "running_var", running_var, channels, x)
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{op}: give both running_mean and running_var, or neither")
    if not training and running_mean is None:
        raise ValueError(f"{op}: evaluation (training=False) needs running_mean and running_var")
    if training and x.size // channels < 2:
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
    return BatchNormFunction(running_mean, running_var, bool(training), float(momentum), float(eps))(*inputs)
