"""Batch normalization (Ioffe & Szegedy, 2015), over every axis but the channel axis 1.

Training: normalize with the batch's mean and (biased) variance per channel,
and update the running statistics in place with the unbiased variance, as
PyTorch does: running = (1 - momentum) * running + momentum * batch_statistic.
Evaluation: normalize with the running statistics.

Backward in training mode (x_hat the normalized input, m the count per channel,
g = dL/dx_hat = dL/dy * weight):

    dL/dx = (g - mean(g) - x_hat * mean(g * x_hat)) / sqrt(var + eps)
"""
from ..backend import get_array_module
from ..tensor import Function, Tensor
from .validation import require_same_dtype, require_tensor


class BatchNorm(Function):
    def __init__(self, running_mean, running_var, training, momentum, eps):
        self.running_mean, self.running_var = running_mean, running_var
        self.training, self.momentum, self.eps = training, momentum, eps

    def forward(self, x, weight=None, bias=None):
        xp = get_array_module(x)
        shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)  # broadcasts a per-channel vector over x
        axes = (0,) + tuple(range(2, x.ndim))
        if self.training:
            mean = x.mean(axis=axes)
            centred = x - mean.reshape(shape)
            var = (centred * centred).mean(axis=axes)
            if self.running_mean is not None:
                count = x.size // x.shape[1]
                self.running_mean *= 1 - self.momentum
                self.running_mean += self.momentum * mean
                self.running_var *= 1 - self.momentum
                self.running_var += self.momentum * var * (count / (count - 1))
        else:
            mean, var = self.running_mean, self.running_var
            centred = x - mean.reshape(shape)
        inv_std = (1.0 / xp.sqrt(var + self.eps)).astype(x.dtype).reshape(shape)
        self.x_hat, self.inv_std, self.shape, self.axes = centred * inv_std, inv_std, shape, axes
        self.weight = weight
        y = self.x_hat if weight is None else self.x_hat * weight.reshape(shape)
        return y + bias.reshape(shape) if bias is not None else y

    def backward(self, gy):
        x_hat, shape, axes = self.x_hat, self.shape, self.axes
        g = gy if self.weight is None else gy * self.weight.reshape(shape)
        if not self.needs_input_grad[0]:
            gx = None
        elif self.training:
            gx = (g - g.mean(axis=axes).reshape(shape)
                  - x_hat * (g * x_hat).mean(axis=axes).reshape(shape)) * self.inv_std
        else:
            gx = g * self.inv_std
        needs = self.needs_input_grad
        gw = (gy * x_hat).sum(axis=axes) if len(needs) > 1 and needs[1] else None
        gb = gy.sum(axis=axes) if len(needs) > 2 and needs[2] else None
        return gx, gw, gb


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
    return BatchNorm(running_mean, running_var, bool(training), float(momentum), float(eps))(*inputs)
