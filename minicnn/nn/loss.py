"""Losses as Modules (PyTorch's names): each calls its function in :mod:`minicnn.functional`.

    criterion = nn.CrossEntropyLoss()
    loss = criterion(model(x), y)       # logits (N, C), labels (N,)
"""
from .. import functional as F
from .module import Module

_REDUCTIONS = ("mean", "sum", "none")


class _Loss(Module):
    def __init__(self, reduction="mean"):
        if reduction not in _REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.reduction = reduction

    def extra_repr(self):
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy of logits (N, C) and integer labels (N,); see :func:`F.cross_entropy`.

    PyTorch's ``weight`` and ``ignore_index`` are not supported (an error if given).
    """

    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        super().__init__(reduction)
        if weight is not None or ignore_index != -100:
            raise NotImplementedError("CrossEntropyLoss: weight and ignore_index are not supported by minicnn")
        self.label_smoothing = label_smoothing

    def forward(self, input, target):  # noqa: A002 (PyTorch's argument names)
        return F.cross_entropy(input, target, self.label_smoothing, self.reduction)


class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities (N, C) and integer labels (N,); see :func:`F.nll_loss`.

    PyTorch's ``weight`` and ``ignore_index`` are not supported (an error if given).
    """

    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        super().__init__(reduction)
        if weight is not None or ignore_index != -100:
            raise NotImplementedError("NLLLoss: weight and ignore_index are not supported by minicnn")

    def forward(self, input, target):  # noqa: A002 (PyTorch's argument names)
        return F.nll_loss(input, target, self.reduction)


class MSELoss(_Loss):
    """Mean squared error of two tensors of one shape; see :func:`F.mse_loss`."""

    def forward(self, input, target):  # noqa: A002 (PyTorch's argument names)
        return F.mse_loss(input, target, self.reduction)
