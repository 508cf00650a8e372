"""Inverted dropout: zero each value with probability p, scale the rest by 1 / (1 - p)."""
from .. import kernels, random
from ..engine import Op
from .validation import probability, require_tensor


class DropoutFunction(Op):
    def __init__(self, p):
        self.p = p

    def forward(self, x):
        uniform = random.uniform(x.shape, x.dtype, x)
        if kernels.use_gpu_kernels(x):
            y, self.mask = kernels.gpu_fused.dropout(x, uniform, self.p)
            return y
        self.mask = (uniform >= self.p).astype(x.dtype)
        self.mask *= 1.0 / (1.0 - self.p)  # (N, ...) of 0 or 1/(1-p), in x's dtype
        return x * self.mask

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
