"""Joining and reshaping: concat and flatten."""
import numpy as np

from .. import kernels
from ..backend import get_array_module
from ..tensor import Function, Tensor
from .arithmetic import reshape
from .validation import normalize_axis, require_same_dtype, require_tensor


class ConcatFunction(Function):
    def __init__(self, axis):
        self.axis = axis

    def forward(self, *arrays):
        self.sizes = [a.shape[self.axis] for a in arrays]
        if self.axis == 1 and arrays[0].ndim == 4 and kernels.use_numba(arrays[0]):
            return kernels.cpu.concat_channels(arrays)
        return get_array_module(*arrays).concatenate(arrays, axis=self.axis)

    def backward(self, gy):
        if self.axis == 1 and gy.ndim == 4 and kernels.use_numba(gy):
            pieces = kernels.cpu.split_channels(gy, self.sizes)
        else:
            pieces = get_array_module(gy).split(gy, np.cumsum(self.sizes)[:-1].tolist(), axis=self.axis)
        return tuple(piece if need else None for piece, need in zip(pieces, self.needs_input_grad))


def concat(tensors, axis=1):
    """Join tensors along ``axis`` (PyTorch's ``torch.cat``; default: channels of NCHW).

    Args:
        tensors: a sequence of Tensors whose shapes agree except along ``axis``.
    Returns:
        Tensor whose ``axis`` is the sum of theirs.
    """
    op = "concat"
    if isinstance(tensors, Tensor) or not len(tensors):
        raise TypeError(f"{op}: tensors must be a non-empty list or tuple of Tensors")
    first = require_tensor(op, "tensors[0]", tensors[0])
    axis = normalize_axis(op, axis, first.ndim)
    for i, t in enumerate(tensors[1:], start=1):
        require_tensor(op, f"tensors[{i}]", t)
        require_same_dtype(op, f"tensors[{i}]", t, "tensors[0]", first)
        if t.ndim != first.ndim or any(a != b for d, (a, b) in enumerate(zip(t.shape, first.shape)) if d != axis):
            raise ValueError(f"{op}: tensors[{i}] has shape {t.shape}, which does not match tensors[0]'s "
                             f"{first.shape} on every axis but {axis}")
    return ConcatFunction(axis)(*tensors)


def flatten(x, start_dim=0, end_dim=-1):
    """Merge axes start_dim..end_dim into one (``torch.flatten``; nn.Flatten starts at 1).

    Example: (N, C, H, W) with start_dim=1 -> (N, C*H*W).
    """
    require_tensor("flatten", "x", x)
    start = normalize_axis("flatten", start_dim, max(x.ndim, 1))
    end = normalize_axis("flatten", end_dim, max(x.ndim, 1))
    if start > end:
        raise ValueError(f"flatten: start_dim ({start_dim}) must not come after end_dim ({end_dim})")
    merged = int(np.prod(x.shape[start:end + 1]))
    return reshape(x, x.shape[:start] + (merged,) + x.shape[end + 1:])
