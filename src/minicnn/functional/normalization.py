"""Batch normalization (Ioffe & Szegedy, 2015), over every axis but the channel axis 1.

Training: normalize with the batch's mean and (biased) variance per channel,
and update the running statistics in place with the unbiased variance, as
PyTorch does: running = (1 - momentum) * running + momentum * batch_statistic.
Evaluation: normalize with the running statistics.

Backward in training mode (x_hat the normalized input, m the count per channel,
g = dL/dx_hat = dL/dy * weight):

    dL/dx = (g - mean(g) - x_hat * mean(g * x_hat)) / sqrt(var + eps)
"""
from .. import kernels
from ..backend import device_of, get_array_module
from ..tensor import Function, Tensor, device_mismatch
from .validation import require_same_dtype, require_tensor


def batch_norm_forward_plain(x, weight, bias, mean, var, eps):
    """Normalize per channel; the plain twin of the fast kernels.

    Args:
        x: array (N, C, L) (trailing axes merged into L).
        weight, bias: arrays (C,).
        mean, var: arrays (C,) to normalize with, or None to use the batch's own.
    Returns:
        y (N, C, L), x_hat (N, C, L), mean (C,), var (C,) (biased), inv_std (C,).
    """
    if mean is None:
        mean = x.mean(axis=(0, 2))
        centred = x - mean[:, None]
        var = (centred * centred).mean(axis=(0, 2))
    else:
        centred = x - mean[:, None]
    inv_std = (1.0 / get_array_module(x).sqrt(var + eps)).astype(x.dtype)
    x_hat = centred * inv_std[:, None]
    return x_hat * weight[:, None] + bias[:, None], x_hat, mean, var, inv_std


def batch_norm_backward_plain(gy, x_hat, weight, inv_std, training):
    """Returns (gx, gweight, gbias) for dL/dy = gy; arrays as in :func:`batch_norm_forward_plain`."""
    gweight, gbias = (gy * x_hat).sum(axis=(0, 2)), gy.sum(axis=(0, 2))
    scale = (weight * inv_std)[:, None]
    if not training:  # the statistics are constants
        return gy * scale, gweight, gbias
    count = gy.shape[0] * gy.shape[2]
    gx = scale * (gy - gbias[:, None] / count - x_hat * (gweight[:, None] / count))
    return gx, gweight, gbias


class BatchNorm(Function):
    def __init__(self, running_mean, running_var, training, momentum, eps):
        self.running_mean, self.running_var = running_mean, running_var
        self.training, self.momentum, self.eps = training, momentum, eps

    def forward(self, x, weight=None, bias=None):
        xp = get_array_module(x)
        channels = x.shape[1]
        self.shape = x.shape
        self.has_weight = weight is not None
        weight = weight if weight is not None else xp.ones(channels, x.dtype)
        bias = bias if bias is not None else xp.zeros(channels, x.dtype)
        x3 = x.reshape(x.shape[0], channels, -1)  # (N, C, L): every axis but the channel one is averaged over
        given = (None, None) if self.training else (self.running_mean, self.running_var)
        fast = kernels.find("batch_norm_forward", x3)
        y, self.x_hat, mean, var, self.inv_std = (fast or batch_norm_forward_plain)(x3, weight, bias, *given, self.eps)
        if self.training and self.running_mean is not None:
            count = x3.shape[0] * x3.shape[2]
            self.running_mean *= 1 - self.momentum
            self.running_mean += self.momentum * mean
            self.running_var *= 1 - self.momentum
            self.running_var += self.momentum * var * (count / (count - 1))  # unbiased, as PyTorch keeps it
        self.weight = weight
        return y.reshape(x.shape)

    def backward(self, gy):
        gy3 = gy.reshape(self.x_hat.shape)
        fast = kernels.find("batch_norm_backward", gy3)
        gx, gweight, gbias = (fast or batch_norm_backward_plain)(gy3, self.x_hat, self.weight, self.inv_std,
                                                                 self.training)
        needs = self.needs_input_grad
        return (gx.reshape(self.shape) if needs[0] else None,
                gweight if self.has_weight and needs[1] else None,
                gbias if len(needs) > 2 and needs[2] else None)


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
    devices = [device_of(array) for array in (x.data, running_mean, running_var) if array is not None]
    if len(set(devices)) > 1:  # the buffers are not inputs of the Function, so its own check misses them
        raise ValueError(device_mismatch(op, ["x", "running_mean", "running_var"], devices))
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
    return BatchNorm(running_mean, running_var, bool(training), float(momentum), float(eps))(*inputs)
