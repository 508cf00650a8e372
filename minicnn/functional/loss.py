"""Cross-entropy loss for integer class labels, with optional label smoothing."""
import numpy as np

from .. import backend, kernels
from ..backend import get_array_module
from ..engine import Op, Tensor
from .validation import probability, require_tensor


class CrossEntropyFunction(Op):
    """Mean (or sum) over the batch of -sum_c q_c log softmax(z)_c.

    q is the one-hot label, or with label smoothing s, (1 - s) * one_hot + s / C.
    d/dz = softmax(z) - q, divided by N for the mean.
    """

    def __init__(self, target, label_smoothing, reduction):
        self.target, self.smoothing, self.reduction = target, label_smoothing, reduction

    def forward(self, logits):
        if kernels.use_gpu_kernels(logits):  # what backward needs is kept in self.saved
            loss, self.saved = kernels.gpu_fused.cross_entropy_forward(logits, self.target, self.smoothing,
                                                                       self.reduction)
            return loss
        xp = get_array_module(logits)
        n, classes = logits.shape
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
        self.probs = xp.exp(log_probs)
        valid = (self.target >= 0) & (self.target < classes)  # checked on the host for CPU labels
        self.index = xp.arange(n), xp.where(valid, self.target, 0)  # in range even where a label is not
        picked = log_probs[self.index]
        losses = -(1 - self.smoothing) * picked - (self.smoothing / classes) * log_probs.sum(axis=1)
        losses = xp.where(valid, losses, losses.dtype.type(np.nan))  # an out-of-range GPU label: NaN loss
        if self.reduction == "none":
            return losses
        total = losses.sum()
        return total / n if self.reduction == "mean" else total

    def backward(self, gy):
        if kernels.use_gpu_kernels(gy):
            return kernels.gpu_fused.cross_entropy_backward(gy, self.saved, self.reduction)
        n, classes = self.probs.shape
        grad = self.probs - self.smoothing / classes
        grad[self.index] -= 1 - self.smoothing
        if self.reduction == "none":
            return grad * gy[:, None]
        return grad * (gy / n if self.reduction == "mean" else gy)


def cross_entropy(logits, target, label_smoothing=0.0, reduction="mean"):
    """Softmax cross-entropy between logits and integer class labels.

    Args:
        logits: Tensor (N, C) of unnormalized scores.
        target: integer labels (N,) in [0, C): a Tensor, NumPy/CuPy array or list. Labels
            on the host are range-checked (ValueError); labels already on a GPU are not
            read back, and one out of range makes the loss NaN.
        label_smoothing: s in [0, 1]: the target becomes (1 - s) * one_hot + s / C.
        reduction: "mean" (default), "sum" or "none" (per-sample losses (N,)).
    Returns:
        Tensor: a scalar, or (N,) for reduction="none".
    """
    op = "cross_entropy"
    require_tensor(op, "logits", logits, 2, "(N, C)")
    label_smoothing = probability(op, "label_smoothing", label_smoothing)
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    labels = target.array if isinstance(target, Tensor) else target
    if not (isinstance(labels, np.ndarray) or backend.is_gpu_array(labels)):
        labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class labels, got dtype {labels.dtype}")
    n, classes = logits.shape
    if labels.shape != (n,):
        raise ValueError(f"{op}: target must have shape ({n},) to match logits {logits.shape}, "
                         f"got {labels.shape}")
    if not backend.is_gpu_array(labels):
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= classes:
            raise ValueError(f"{op}: target labels must lie in [0, {classes}), got values from {low} to {high}")
    # GPU labels are not read back to check them (that would stall the GPU at every step): a label
    # out of range makes its sample's loss NaN instead.
    labels = backend.to_device(labels, logits.device)
    return CrossEntropyFunction(labels, label_smoothing, reduction)(logits)
