"""Inverted dropout: zero each value with probability p, scale the rest by 1 / (1 - p).

The fast GPU form (one kernel): :mod:`minicnn.kernels.dropout`.
"""
from .. import random
from ..engine import Op
from ..kernels.dispatch import Forms
from .validation import probability, require_tensor


def dropout_plain(x, uniform, p):
    """(y, mask): mask = (uniform >= p) / (1 - p) (N, ...) of 0 or 1/(1-p) in x's dtype, y = x * mask."""
    mask = (uniform >= p).astype(x.dtype)
    mask *= 1.0 / (1.0 - p)
    return x * mask, mask


dropout_forward = Forms("dropout", plain=dropout_plain, gpu="dropout:dropout_fused")


class DropoutFunction(Op):
    def __init__(self, p):
        self.p = p

    def forward(self, x):
        y, self.mask = dropout_forward(x, random.uniform(x.shape, x.dtype, x), self.p)
        return y

    def backward(self, gy):
        return gy * self.mask


def dropout(x, p=0.5, training=True):
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p) (training only).

    The expected value is unchanged, so evaluation (``training=False``) returns
    ``x`` itself. The mask is drawn from :mod:`minicnn.random`: call
    ``minicnn.manual_seed`` before a forward pass to repeat its mask.
    Args:
        x: Tensor of any shape.
    Returns:
        Tensor of x's shape.
    """
    require_tensor("dropout", "x", x)
    p = probability("dropout", "p", p)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    return DropoutFunction(p)(x)


def gradcheck_cases(add):
    """The gradient-check cases of this module's ops (minicnn.gradcheck.cases collects them): add(layer,
    configuration, build), build(inputs) -> (function, input tensors), inputs a gradcheck.cases.Inputs."""
    def _dropout(p):
        def fn(x):
            random.manual_seed(1234)  # the same mask on every call
            return dropout(x, p, training=True)
        return lambda inp: (fn, [inp.normal(4, 5, 3)])

    add("dropout", "p 0.5, fixed mask", _dropout(0.5))
    add("dropout", "p 0.2, fixed mask", _dropout(0.2))
