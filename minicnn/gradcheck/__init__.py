"""Gradient checking: compare backward's gradients with central differences.

For a function f of tensors, reduce its output to a scalar L = sum(f(...) * r)
with a fixed random r (so every output element matters), compute dL/dx by
backward, and compare each entry with the central difference

    (L(x + eps * e_i) - L(x - eps * e_i)) / (2 * eps),

which is off by O(eps**2) from the true derivative. In float64, eps = 1e-6
balances that error against rounding (about 1e-16 * |L| / eps); in float32
rounding alone would swamp it, so the checker insists on float64.

Run ``python -m minicnn.gradcheck`` for the report over every layer.
"""
from dataclasses import dataclass

import numpy as np

from .. import backend
from ..engine import Tensor, no_grad


@dataclass
class GradcheckResult:
    """Largest errors over the entries checked: absolute, and relative to max(|analytic|, |numeric|, atol)."""

    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    checked: int = 0


class GradcheckError(AssertionError):
    """Raised when an analytic gradient disagrees with the numeric one; ``.result`` holds the errors."""

    def __init__(self, message, result):
        super().__init__(message)
        self.result = result


def _perturbed_loss(fn, inputs, projection, data, index, value):
    """The scalar loss with entry ``index`` of ``data`` (an input's array, on any device) set to ``value``."""
    with backend.on_device_of(data):
        data[index] = value
    return _scalar_loss(fn, inputs, projection)


def _scalar_loss(fn, inputs, projection):
    with no_grad():
        out = fn(*inputs)
    with backend.on_device_of(out.array):
        return float((out.array * projection).sum())


def gradcheck(fn, inputs, eps=1e-6, atol=1e-7, rtol=1e-5, max_elements=None, names=None, seed=0):
    """Check the gradients of ``fn(*inputs)`` with respect to every input that requires grad.

    Args:
        fn: function of the tensors in ``inputs`` returning a Tensor. It must
            be deterministic: re-seed (``minicnn.manual_seed``) inside it if it
            uses dropout.
        inputs: sequence of Tensors; those with ``requires_grad`` are checked
            and must be float64. Parameters of a model may be passed too (fn
            may ignore its arguments: entries are perturbed in place).
        eps: the finite-difference step.
        atol, rtol: an entry passes if |analytic - numeric| <= atol + rtol * |numeric|.
            The defaults are tight enough to catch a backward that is off by 0.1%
            (every op of minicnn passes them with a margin of 100x or more).
        max_elements: check at most this many randomly chosen entries per input
            (None: all of them).
        names: optional names for the inputs, used in the error message.
        seed: seed of the projection r and of the entry sample.
    Returns:
        GradcheckResult.
    Raises:
        GradcheckError naming the input, the worst entry's index, and the analytic
        and numeric values.
    """
    inputs = list(inputs)
    names = list(names) if names is not None else [f"input {i}" for i in range(len(inputs))]
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"gradcheck: {names[i]} must be a Tensor, got {type(t).__name__}")
        if t.requires_grad and t.dtype != np.float64:
            raise TypeError(f"gradcheck: {names[i]} is {t.dtype}; gradient checks need float64 "
                            f"(t.to(dtype='float64'))")
    checked_inputs = [i for i, t in enumerate(inputs) if t.requires_grad]
    if not checked_inputs:
        raise ValueError("gradcheck: no input has requires_grad=True, so there is nothing to check")

    rng = np.random.default_rng(seed)
    saved_grads = [t.grad for t in inputs]
    for t in inputs:
        t.grad = None
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    projection = backend.to_device(rng.standard_normal(out.shape), backend.device_of(out.array))
    out.backward(projection)
    analytic = [backend.as_numpy(t.grad.array) if t.grad is not None else np.zeros(t.shape) for t in inputs]
    for t, grad in zip(inputs, saved_grads):
        t.grad = grad

    result = GradcheckResult()
    worst = None  # (excess over tolerance, message)
    for i in checked_inputs:
        data = inputs[i].array
        count = data.size
        flat_indices = (np.arange(count) if max_elements is None or max_elements >= count
                        else rng.choice(count, size=max_elements, replace=False))
        for flat in flat_indices:
            index = np.unravel_index(int(flat), data.shape)
            original = float(data[index])
            try:
                plus = _perturbed_loss(fn, inputs, projection, data, index, original + eps)
                minus = _perturbed_loss(fn, inputs, projection, data, index, original - eps)
            finally:  # the caller's input comes back unchanged even when fn raises
                with backend.on_device_of(data):
                    data[index] = original
            numeric = (plus - minus) / (2 * eps)
            exact = float(analytic[i][index])
            error = abs(exact - numeric)
            result.checked += 1
            result.max_abs_error = max(result.max_abs_error, error)
            # relative to the gradient's size, but entries far below atol count as size atol
            result.max_rel_error = max(result.max_rel_error, error / max(abs(exact), abs(numeric), atol))
            excess = error - (atol + rtol * abs(numeric))
            if excess > 0 and (worst is None or excess > worst[0]):
                index_text = tuple(int(k) for k in index)
                worst = (excess, f"gradcheck failed for {names[i]} (shape {data.shape}) at index "
                                 f"{index_text}: analytic {exact:.8g} vs numeric {numeric:.8g} "
                                 f"(abs error {error:.3g} > atol {atol:g} + rtol {rtol:g} * |numeric|)")
    if worst is not None:
        raise GradcheckError(worst[1], result)
    return result
