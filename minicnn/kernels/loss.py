"""Softmax cross-entropy's fast GPU form: four kernels forward, one backward (plain twin: functional/loss.py).

Both forms save the same values for backward, so that either backward can follow either forward.
"""
import numpy as np

from .fusion import cp, fused

# logits z (N, C); per row m = max z and lse = log sum exp(z - m), so log softmax = z - m - lse. The target
# distribution q: (1 - s) + s/C on the label, s/C elsewhere (s the label smoothing), NaN everywhere for a label
# out of range.
@fused
def _log_sum_exp(z, row_max):
    return cp().log(cp().sum(cp().exp(z - row_max), axis=1))


def _target(z, labels, classes, on_label, spread, count):
    valid = (labels >= 0) & (labels < count)
    q = (classes == labels).astype(z.dtype) * on_label + spread
    return cp().where(valid, q, np.nan)


@fused
def _cross_entropy_rows(z, row_max, lse, labels, classes, on_label, spread, count):
    return -cp().sum((z - row_max - lse) * _target(z, labels, classes, on_label, spread, count), axis=1)


@fused
def _cross_entropy_gradient(z, row_max, lse, labels, classes, on_label, spread, count, gy, factor):
    return (cp().exp(z - row_max - lse) - _target(z, labels, classes, on_label, spread, count)) * (gy * factor)


@fused
def _scaled_total(values, scale):
    return cp().sum(values * scale, axis=0)


def cross_entropy_forward_fused(logits, labels, smoothing, reduction):
    """Twin of ``cross_entropy_forward_plain``: returns (loss, saved), ``saved`` what the backward needs.

    A label out of range makes its row's loss NaN (its target is NaN). Kernels: 4 (5 reduced).
    """
    xp = cp()
    n, classes = logits.shape
    row_max = logits.max(axis=1)[:, None]
    lse = _log_sum_exp(logits, row_max)[:, None]
    class_index = xp.arange(classes)
    target = (labels[:, None], class_index, 1.0 - smoothing, smoothing / classes, classes)
    losses = _cross_entropy_rows(logits, row_max, lse, *target)
    saved = (logits, row_max, lse, *target)
    if reduction == "none":
        return losses, saved
    return _scaled_total(losses, 1.0 / n if reduction == "mean" else 1.0), saved


def cross_entropy_backward_fused(gy, saved, reduction):
    """Twin of ``cross_entropy_backward_plain``: dL/dlogits = (softmax - q) * gy (/ N for the mean; gy (N,) for
    "none"). 1 kernel."""
    if reduction == "none":
        return _cross_entropy_gradient(*saved, gy[:, None], 1.0)
    return _cross_entropy_gradient(*saved, gy, 1.0 / saved[0].shape[0] if reduction == "mean" else 1.0)

