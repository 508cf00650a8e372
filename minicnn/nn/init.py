"""Weight initialisation, in place, with PyTorch's names (``nn.init.kaiming_normal_``...).

Values are drawn on the CPU from :mod:`minicnn.random` (so ``manual_seed``
repeats them) and copied to the tensor's device.

He/Kaiming (He et al., 2015) keeps the variance of activations steady through
ReLU layers: std = sqrt(2 / fan). Xavier/Glorot (2010) balances fan-in and
fan-out for linear or tanh units: std = gain * sqrt(2 / (fan_in + fan_out)).
For a conv weight (O, C, kh, kw): fan_in = C*kh*kw, fan_out = O*kh*kw.
"""
import math

import numpy as np

from .. import backend, random


def fan_in_and_fan_out(tensor):
    """(fan_in, fan_out) of a weight of shape (out, in, *kernel)."""
    if tensor.ndim < 2:
        raise ValueError(f"fan in/out needs a weight with at least 2 dimensions, got shape {tensor.shape}")
    receptive = int(np.prod(tensor.shape[2:]))
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _gain(nonlinearity, a=0.0):
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        return math.sqrt(2.0 / (1 + a * a))
    if nonlinearity in ("linear", "conv2d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    raise ValueError(f"nonlinearity must be 'relu', 'leaky_relu', 'linear', 'sigmoid' or 'tanh', "
                     f"got {nonlinearity!r}")


def _fan(tensor, mode):
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return fan_in if mode == "fan_in" else fan_out


def _fill(tensor, values):
    device = backend.device_of(tensor.array)
    with backend.running_on(device):
        tensor.array[...] = backend.to_device(values, device, tensor.dtype)
    tensor._bump_version()
    return tensor


def uniform_(tensor, a=0.0, b=1.0):
    """Fill with samples of U(a, b)."""
    return _fill(tensor, random.cpu_generator().uniform(a, b, tensor.shape))


def normal_(tensor, mean=0.0, std=1.0):
    """Fill with samples of N(mean, std**2)."""
    return _fill(tensor, random.cpu_generator().normal(mean, std, tensor.shape))


def constant_(tensor, value):
    """Fill with ``value``."""
    with backend.on_device_of(tensor.array):
        tensor.array[...] = value
    tensor._bump_version()
    return tensor


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="relu"):
    """He normal: N(0, std**2), std = gain / sqrt(fan) (sqrt(2 / fan_in) for ReLU)."""
    return normal_(tensor, 0.0, _gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode)))


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """He uniform: U(-bound, bound), bound = gain * sqrt(3 / fan)."""
    bound = _gain(nonlinearity, a) * math.sqrt(3.0 / _fan(tensor, mode))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor, gain=1.0):
    """Glorot normal: N(0, std**2), std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def xavier_uniform_(tensor, gain=1.0):
    """Glorot uniform: U(-bound, bound), bound = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def pytorch_default_(weight, bias=None):
    """PyTorch's default for Conv2d and Linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for both.

    (That is ``kaiming_uniform_(weight, a=sqrt(5))``, and the same bound for the bias.)
    """
    bound = 1.0 / math.sqrt(fan_in_and_fan_out(weight)[0])
    uniform_(weight, -bound, bound)
    if bias is not None:
        uniform_(bias, -bound, bound)
    return weight


SCHEMES = {
    "kaiming_normal": kaiming_normal_,
    "kaiming_uniform": lambda w: kaiming_uniform_(w, nonlinearity="relu"),
    "xavier_normal": xavier_normal_,
    "xavier_uniform": xavier_uniform_,
}


def initialize(module, scheme="kaiming_normal"):
    """Re-initialise every Conv2d and Linear inside ``module``: weights by ``scheme``, biases to 0.

    Args:
        scheme: "kaiming_normal" (He, for ReLU nets), "kaiming_uniform",
            "xavier_normal", "xavier_uniform", or "pytorch" (the layers' default).
    Returns:
        module.
    """
    from .layers import Conv2d, Linear
    if scheme != "pytorch" and scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {sorted(SCHEMES) + ['pytorch']}, got {scheme!r}")
    for layer in module.modules():
        if isinstance(layer, (Conv2d, Linear)):
            if scheme == "pytorch":
                pytorch_default_(layer.weight, layer.bias)
                continue
            SCHEMES[scheme](layer.weight)
            if layer.bias is not None:
                zeros_(layer.bias)
    return module
