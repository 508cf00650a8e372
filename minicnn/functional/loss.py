"""Cross-entropy loss for integer class labels, with optional label smoothing.

The fast GPU form (five kernels): :mod:`minicnn.kernels.loss`.
"""
import numpy as np

from .. import backend
from ..backend import get_array_module
from ..engine import Op, Tensor
from ..kernels.dispatch import Forms
from .validation import probability, require_tensor


def cross_entropy_forward_plain(logits, labels, smoothing, reduction):
    """Returns (loss, saved): the loss, and what :func:`cross_entropy_backward_plain` needs.

    ``saved`` = (logits, row max (N, 1), log-sum-exp of the shifted rows (N, 1), labels (N, 1), class
    indices (C,), 1 - s, s / C, C): the fast GPU form saves the same, so either backward follows either forward.
    """
    xp = get_array_module(logits)
    n, classes = logits.shape
    row_max = logits.max(axis=1, keepdims=True)
    shifted = logits - row_max
    lse = xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
    log_probs = shifted - lse
    valid = (labels >= 0) & (labels < classes)  # checked on the host for CPU labels
    picked = log_probs[xp.arange(n), xp.where(valid, labels, 0)]  # in range even where a label is not
    losses = -(1 - smoothing) * picked - (smoothing / classes) * log_probs.sum(axis=1)
    losses = xp.where(valid, losses, losses.dtype.type(np.nan))  # an out-of-range GPU label: NaN loss
    saved = (logits, row_max, lse, labels[:, None], xp.arange(classes), 1.0 - smoothing, smoothing / classes, classes)
    if reduction == "none":
        return losses, saved
    total = losses.sum()
    return (total / n if reduction == "mean" else total), saved


def cross_entropy_backward_plain(gy, saved, reduction):
    """dL/dlogits = (softmax - q) * gy (/ N for the mean; gy (N,) for "none")."""
    logits, row_max, lse, labels, _, on_label, spread, classes = saved
    xp, n = get_array_module(logits), logits.shape[0]
    labels = labels[:, 0]
    grad = xp.exp(logits - row_max - lse) - spread  # softmax - s / C
    grad[xp.arange(n), xp.where((labels >= 0) & (labels < classes), labels, 0)] -= on_label
    if reduction == "none":
        return grad * gy[:, None]
    return grad * (gy / n if reduction == "mean" else gy)


cross_entropy_forward = Forms("cross_entropy", plain=cross_entropy_forward_plain,
                              gpu="loss:cross_entropy_forward_fused")
cross_entropy_backward = Forms("cross_entropy_backward", plain=cross_entropy_backward_plain,
                               gpu="loss:cross_entropy_backward_fused")


class CrossEntropyFunction(Op):
    """Mean (or sum) over the batch of -sum_c q_c log softmax(z)_c.

    q is the one-hot label, or with label smoothing s, (1 - s) * one_hot + s / C.
    d/dz = softmax(z) - q, divided by N for the mean.
    """

    def __init__(self, target, label_smoothing, reduction):
        self.target, self.smoothing, self.reduction = target, label_smoothing, reduction

    def forward(self, logits):
        loss, self.saved = cross_entropy_forward(logits, self.target, self.smoothing, self.reduction)
        return loss

    def backward(self, gy):
        return cross_entropy_backward(gy, self.saved, self.reduction)


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
    reduction = _reduction(op, reduction)
    labels = _labels(op, target, logits.shape, "logits")
    # GPU labels are not read back to check them (that would stall the GPU at every step): a label
    # out of range makes its sample's loss NaN instead.
    labels = backend.to_device(labels, logits.device)
    return CrossEntropyFunction(labels, label_smoothing, reduction)(logits)


def _reduction(op, reduction):
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return reduction


def _reduce(losses, reduction):
    """The per-element ``losses`` array reduced as ``reduction`` says."""
    if reduction == "none":
        return losses
    total = losses.sum()
    return total / losses.size if reduction == "mean" else total


def _scale(gy, reduction, count):
    """The gradient arriving at the reduced loss, per element: 1/count of it for a mean."""
    return gy / count if reduction == "mean" else gy


class MSELossFunction(Op):
    """(input - target)**2, reduced; d/d input = 2 (input - target), d/d target its negative."""

    def __init__(self, reduction):
        self.reduction = reduction

    def forward(self, input, target):
        self.difference = input - target
        return _reduce(self.difference * self.difference, self.reduction)

    def backward(self, gy):
        grad = 2 * self.difference * _scale(gy, self.reduction, self.difference.size)
        return (grad if self.needs_input_grad[0] else None), (-grad if self.needs_input_grad[1] else None)


class NLLLossFunction(Op):
    """-input[n, target[n]], reduced; the gradient is -1 (scaled) at each picked entry, 0 elsewhere."""

    def __init__(self, target, reduction):
        self.target, self.reduction = target, reduction

    def forward(self, log_probs):
        xp = get_array_module(log_probs)
        self.shape = log_probs.shape
        self.index = xp.arange(log_probs.shape[0]), self.target
        return _reduce(-log_probs[self.index], self.reduction)

    def backward(self, gy):
        grad = get_array_module(gy).zeros(self.shape, gy.dtype)
        grad[self.index] = -_scale(gy, self.reduction, self.shape[0])
        return grad


def mse_loss(input, target, reduction="mean"):  # noqa: A002 (PyTorch's argument names)
    """Mean (or sum) of the squared differences (``torch.nn.functional.mse_loss``).

    Args:
        input, target: floating-point Tensors of one shape and dtype (any shape).
        reduction: "mean" (default), "sum" or "none" (the squared differences, input's shape).
    Returns:
        Tensor: a scalar, or input's shape for reduction="none". Gradients flow to both.
    """
    op = "mse_loss"
    require_tensor(op, "input", input)
    require_tensor(op, "target", target)
    if input.shape != target.shape:
        raise ValueError(f"{op}: target must have input's shape {input.shape}, got {target.shape}")
    if input.dtype != target.dtype:
        raise TypeError(f"{op}: target has dtype {target.dtype} but input has {input.dtype}; convert one "
                        "with .to(dtype=...)")
    return MSELossFunction(_reduction(op, reduction))(input, target)


def nll_loss(input, target, reduction="mean"):  # noqa: A002 (PyTorch's argument names)
    """Negative log-likelihood of integer class labels (``torch.nn.functional.nll_loss``).

    ``nll_loss(log_softmax(z, dim=1), y)`` is ``cross_entropy(z, y)``.

    Args:
        input: Tensor (N, C) of log-probabilities.
        target: integer labels (N,) in [0, C) (a Tensor, NumPy/CuPy array or list; labels on the
            host are range-checked).
        reduction: "mean" (default), "sum" or "none" (per-sample losses (N,)).
    Returns:
        Tensor: a scalar, or (N,) for reduction="none".
    """
    op = "nll_loss"
    require_tensor(op, "input", input, 2, "(N, C)")
    labels = _labels(op, target, input.shape, "input")
    return NLLLossFunction(backend.to_device(labels, input.device), _reduction(op, reduction))(input)


def _labels(op, target, shape, input_name):
    """``target`` as an integer array of shape (N,) with values in [0, C) (checked on the host; labels
    already on a GPU are not read back to check them, which would stall the GPU at every step)."""
    labels = target.array if isinstance(target, Tensor) else target
    if not (isinstance(labels, np.ndarray) or backend.is_gpu_array(labels)):
        labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class labels, got dtype {labels.dtype}")
    n, classes = shape
    if labels.shape != (n,):
        raise ValueError(f"{op}: target must have shape ({n},) to match {input_name} {shape}, got {labels.shape}")
    if not backend.is_gpu_array(labels) and labels.size:
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= classes:
            raise ValueError(f"{op}: target labels must lie in [0, {classes}), got values from {low} to {high}")
    return labels


def gradcheck_cases(add):
    """The gradient-check cases of this module's ops (minicnn.gradcheck.cases collects them): add(layer,
    configuration, build), build(inputs) -> (function, input tensors), inputs a gradcheck.cases.Inputs."""
    def _cross_entropy(smoothing, reduction):
        def build(inp):
            target = inp.labels(6, 5)
            return ((lambda z: cross_entropy(z, target, smoothing, reduction)), [inp.normal(6, 5)])
        return build

    add("cross_entropy", "mean", _cross_entropy(0.0, "mean"))
    add("cross_entropy", "label smoothing 0.1, sum", _cross_entropy(0.1, "sum"))
    add("cross_entropy", "per sample (reduction none)", _cross_entropy(0.0, "none"))
    for reduction in ("mean", "sum", "none"):
        add("mse_loss", reduction, lambda inp, r=reduction: (
            (lambda a, b: mse_loss(a, b, reduction=r)), [inp.normal(3, 4), inp.normal(3, 4)]))

        def _nll(inp, r=reduction):
            target = inp.labels(6, 5)
            return (lambda z: nll_loss(z, target, reduction=r)), [inp.normal(6, 5)]
        add("nll_loss", reduction, _nll)
