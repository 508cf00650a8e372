"""Optimizer base class: holds the parameters, their per-parameter state, and the learning rate."""
import numbers

from .. import backend
from ..tensor import Tensor


class Optimizer:
    """Base class. Subclasses implement ``update(param, grad, state)`` on raw arrays, in place.

    Attributes:
        params: list of the Tensors being trained.
        lr: the learning rate (schedules in :mod:`minicnn.optim.lr_scheduler` change it).
        state: one dict of arrays per parameter (momentum buffers, moment estimates).
        step_count: how many times :meth:`step` has run.
    """

    def __init__(self, params, lr):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: params is empty; pass model.parameters()")
        for index, p in enumerate(self.params):
            if not isinstance(p, Tensor) or not p.requires_grad:
                raise TypeError(f"{type(self).__name__}: params[{index}] must be a Tensor with "
                                f"requires_grad=True, got {type(p).__name__}")
        self.lr = self._check_non_negative("lr", lr)
        self.state = [{} for _ in self.params]
        self.step_count = 0

    def _check_non_negative(self, name, value):
        if not isinstance(value, numbers.Real) or value < 0:
            raise ValueError(f"{type(self).__name__}: {name} must be a non-negative number, got {value!r}")
        return float(value)

    def zero_grad(self):
        """Forget all gradients (``.grad = None``), before the next backward pass."""
        for p in self.params:
            p.grad = None

    def step(self):
        """Update every parameter that has a gradient."""
        self.step_count += 1
        for p, state in zip(self.params, self.state):
            if p.grad is not None:
                with backend.on_device_of(p.data):  # the state is made, and the update runs, beside p
                    self.update(p.data, p.grad, state)

    def update(self, param, grad, state):
        raise NotImplementedError

    def state_dict(self):
        """{"lr", "step_count", "state": [ {name: NumPy array} per parameter ]}."""
        return {"lr": self.lr, "step_count": self.step_count,
                "state": [{name: backend.as_numpy(value) for name, value in s.items()} for s in self.state]}

    def load_state_dict(self, state_dict):
        """Restore what :meth:`state_dict` returned, onto each parameter's device."""
        states = state_dict["state"]
        if len(states) != len(self.params):
            raise ValueError(f"load_state_dict: the saved optimizer has {len(states)} parameters, "
                             f"this one {len(self.params)}")
        self.lr, self.step_count = float(state_dict["lr"]), int(state_dict["step_count"])
        self.state = [{name: _own_copy(value, p) for name, value in saved.items()}
                      for p, saved in zip(self.params, states)]


def _own_copy(value, param):
    """Saved state ``value`` on ``param``'s device and in its dtype, in an array the optimizer owns
    (its updates are in place, so it must never share the caller's array)."""
    moved = backend.to_device(value, backend.device_of(param.data), param.dtype)
    return moved.copy() if moved is value else moved
