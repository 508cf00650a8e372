"""Dropout's fast GPU form: the mask and the product in one kernel (plain twin: functional/dropout.py)."""
from .fusion import fused, in_memory_order


@fused
def _dropout(x, uniform, p, scale):
    mask = (uniform >= p).astype(x.dtype) * scale
    return x * mask, mask


def dropout_fused(x, uniform, p):
    """Twin of DropoutFunction.forward's array code: returns (y, mask), mask = (uniform >= p) / (1 - p). 1 kernel."""
    return in_memory_order(_dropout, x, x, uniform, p, 1.0 / (1.0 - p))

