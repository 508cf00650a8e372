"""The layers, as Modules wrapping :mod:`minicnn.functional` (PyTorch's names and defaults).

Parameters are created as float32 on the CPU; move a network with
``model.to("gpu")`` or ``model.to(dtype=numpy.float64)``.
"""
import numbers

import numpy as np

from .. import functional as F
from ..functional.validation import pair, probability
from . import init
from .module import Buffer, Module, Parameter


def _positive_int(layer, name, value):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{layer}: {name} must be a positive int, got {value!r}")
    return int(value)


class Conv2d(Module):
    """2-D convolution. Input (N, in_channels, H, W) -> (N, out_channels, OH, OW).

    weight: (out_channels, in_channels, kh, kw); bias: (out_channels,).
    Initialised as in PyTorch; see :func:`minicnn.nn.init.initialize` for He or Xavier.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        self.in_channels = _positive_int("Conv2d", "in_channels", in_channels)
        self.out_channels = _positive_int("Conv2d", "out_channels", out_channels)
        self.kernel_size = pair("Conv2d", "kernel_size", kernel_size, 1)
        self.stride = pair("Conv2d", "stride", stride, 1)
        self.padding = pair("Conv2d", "padding", padding, 0)
        self.weight = Parameter(np.empty((out_channels, in_channels) + self.kernel_size, np.float32))
        self.bias = Parameter(np.empty(out_channels, np.float32)) if bias else None
        init.pytorch_default_(self.weight, self.bias)

    def forward(self, x, relu=False):
        """x (N, C, H, W) -> (N, out_channels, OH, OW); with ``relu``, then max(., 0) in the same op (see F.conv2d)."""
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, relu=relu)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}" + ("" if self.bias is not None else ", bias=False"))


class Linear(Module):
    """Fully connected layer. Input (..., in_features) -> (..., out_features).

    weight: (out_features, in_features); bias: (out_features,).
    """

    def __init__(self, in_features, out_features, bias=True):
        self.in_features = _positive_int("Linear", "in_features", in_features)
        self.out_features = _positive_int("Linear", "out_features", out_features)
        self.weight = Parameter(np.empty((out_features, in_features), np.float32))
        self.bias = Parameter(np.empty(out_features, np.float32)) if bias else None
        init.pytorch_default_(self.weight, self.bias)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class MaxPool2d(Module):
    """Max pooling. Input (N, C, H, W) -> (N, C, OH, OW); see :func:`minicnn.functional.max_pool2d`."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False):
        self.kernel_size, self.stride, self.padding, self.ceil_mode = kernel_size, stride, padding, ceil_mode
        F.pooling.check_pool_arguments("MaxPool2d", kernel_size, stride, padding)

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, "
                f"padding={self.padding}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """Average pooling. Input (N, C, H, W) -> (N, C, OH, OW); see :func:`minicnn.functional.avg_pool2d`."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad
        F.pooling.check_pool_arguments("AvgPool2d", kernel_size, stride, padding)

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, "
                f"padding={self.padding}, ceil_mode={self.ceil_mode}, count_include_pad={self.count_include_pad}")


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed size; ``AdaptiveAvgPool2d(1)`` is global average pooling."""

    def __init__(self, output_size):
        self.output_size = pair("AdaptiveAvgPool2d", "output_size", output_size, 1)

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class LocalResponseNorm(Module):
    """Local response normalization across channels; see :func:`minicnn.functional.local_response_norm`."""

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        self.size = _positive_int("LocalResponseNorm", "size", size)
        self.alpha, self.beta, self.k = alpha, beta, k

    def forward(self, x):
        return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class BatchNorm2d(Module):
    """Batch normalization of (N, C, H, W) per channel, with learned scale and shift.

    Parameters weight (C,) = 1 and bias (C,) = 0; buffers running_mean (C,) = 0
    and running_var (C,) = 1, updated in training mode.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        self.num_features = _positive_int(type(self).__name__, "num_features", num_features)
        self.eps, self.momentum = float(eps), float(momentum)
        self.weight = Parameter(np.ones(num_features, np.float32))
        self.bias = Parameter(np.zeros(num_features, np.float32))
        self.running_mean = Buffer(np.zeros(num_features, np.float32))
        self.running_var = Buffer(np.ones(num_features, np.float32))

    def forward(self, x, relu=False):
        """x (N, C, H, W) normalized; with ``relu``, then max(., 0) in the same op (see F.batch_norm)."""
        if x.ndim != 4:
            raise ValueError(f"BatchNorm2d: x must be 4-D (N, C, H, W), got shape {x.shape}")
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            self.training, self.momentum, self.eps, relu=relu)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class SyncBatchNorm(BatchNorm2d):
    """BatchNorm2d whose training statistics are those of every process's batch together.

    In data-parallel training (:mod:`minicnn.distributed`) each process sees a
    slice of the batch, and a BatchNorm2d normalizes with that slice's own
    statistics. A SyncBatchNorm all-reduces them (``F.batch_norm(..., sync=True)``),
    so N processes normalize exactly as one process would on the whole batch,
    at the cost of one small collective per layer forward and one backward. With
    one process, or in evaluation mode, it is a BatchNorm2d. PyTorch's name and
    semantics; :meth:`convert_sync_batchnorm` switches a whole model over.
    """

    def forward(self, x, relu=False):
        if x.ndim != 4:
            raise ValueError(f"SyncBatchNorm: x must be 4-D (N, C, H, W), got shape {x.shape}")
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            self.training, self.momentum, self.eps, sync=True, relu=relu)

    @classmethod
    def convert_sync_batchnorm(cls, module):
        """Replace every BatchNorm2d in ``module`` by a SyncBatchNorm that keeps its parameters and buffers.

        The new layers hold the very same Parameter and Buffer objects (and eps,
        momentum, training mode), so an optimizer already built on the model
        still trains them. Returns ``module``, changed in place, or a new
        SyncBatchNorm if ``module`` is itself a BatchNorm2d.
        """
        if isinstance(module, BatchNorm2d) and not isinstance(module, SyncBatchNorm):
            synchronised = cls.__new__(cls)
            synchronised.__dict__.update(vars(module))
            return synchronised
        for name, child in module.named_children():
            converted = cls.convert_sync_batchnorm(child)
            if converted is not child:
                setattr(module, name, converted)
        return module


class Dropout(Module):
    """Inverted dropout with probability ``p`` in training mode; identity in eval mode."""

    def __init__(self, p=0.5):
        self.p = probability("Dropout", "p", p)

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class ReLU(Module):
    """max(x, 0) elementwise."""

    def forward(self, x):
        return F.relu(x)


class SiLU(Module):
    """x * sigmoid(x) elementwise (F.silu)."""

    def forward(self, x):
        return F.silu(x)


class Flatten(Module):
    """Merge axes start_dim..end_dim: (N, C, H, W) -> (N, C*H*W) by default."""

    def __init__(self, start_dim=1, end_dim=-1):
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return F.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Identity(Module):
    """Returns its input unchanged (a placeholder where a layer is switched off)."""

    def forward(self, x):
        return x


class Softmax(Module):
    """softmax along ``dim``: exp(x) / sum(exp(x)); see :func:`minicnn.functional.softmax`."""

    def __init__(self, dim):
        self.dim = dim

    def forward(self, x):
        return F.softmax(x, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """log(softmax(x)) along ``dim``, computed stably; see :func:`minicnn.functional.log_softmax`."""

    def forward(self, x):
        return F.log_softmax(x, self.dim)


class Tanh(Module):
    """The hyperbolic tangent, elementwise."""

    def forward(self, x):
        return F.tanh(x)


class Sigmoid(Module):
    """The logistic function 1 / (1 + exp(-x)), elementwise."""

    def forward(self, x):
        return F.sigmoid(x)
