"""Optimizer base class: the parameters in flat buffers, their state, and the learning rate.

An update rule (SGD's, Adam's) is a handful of elementwise array operations.
Applied parameter by parameter, GoogLeNet's 187 parameters cost a few hundred
operations per step, and on a GPU each one is a kernel launch. So the
optimizer keeps the parameters of one device and dtype in ONE flat buffer,
each parameter's ``.array`` a view into it, and their gradients in a second
flat buffer: the backward pass writes each gradient into its parameter's view
of that buffer (the protocol, and when an op may compute a gradient there
directly, is :mod:`minicnn.grad_buffers`), and a step runs the update rule once, on the
whole buffers (on a GPU, one fused kernel: :mod:`minicnn.kernels.optim`).
(Distributed training all-reduces that same gradient buffer in one call.)

Build the optimizer after moving the model (``model.to("gpu")``), as in
PyTorch: moving replaces each parameter's array, and :meth:`Optimizer.step`
refuses parameters that no longer live in its buffer.
"""
import numbers

from .. import backend, grad_buffers
from ..engine import Tensor


class FlatGroup:
    """Parameters of one device and dtype, their values and gradients in two flat buffers.

    Attributes:
        params: the Tensors, in the order given.
        data: flat array (total size,) holding every parameter; ``params[i].array`` is a view of it.
        grad: flat array (total size,) where the backward pass writes the gradients.
        slices: ``params[i]`` occupies ``data[slices[i]]`` and ``grad[slices[i]]``.
        views: ``views[i]`` is ``params[i].array``, the view of ``data`` it was given.
    """

    def __init__(self, params):
        self.params = params
        xp = backend.get_array_module(params[0].array)
        bounds = [0]
        for p in params:
            bounds.append(bounds[-1] + p.numel())
        self.slices = [slice(start, stop) for start, stop in zip(bounds, bounds[1:])]
        self.views = []
        with backend.on_device_of(params[0].array):
            self.array = xp.empty(bounds[-1], dtype=params[0].dtype)
            self.grad = xp.zeros(bounds[-1], dtype=params[0].dtype)
            for p, where in zip(params, self.slices):
                self.array[where] = p.array.reshape(-1)
                p.array = self.array[where].reshape(p.shape)
                self.views.append(p.array)
                grad_buffers.lend(p, self.grad[where].reshape(p.shape))  # the engine writes p's gradient here

    def check_in_place(self, owner):
        """Raise if a parameter's array was replaced (by ``.to()``) since the buffers were made."""
        for index, (p, view) in enumerate(zip(self.params, self.views)):
            if p.array is not view:
                raise RuntimeError(
                    f"{owner}: parameter {index} (shape {p.shape}) no longer lives in the optimizer's buffer; "
                    "it was given a new array (model.to(...) after building the optimizer?). Build the "
                    "optimizer after moving the model, as in PyTorch.")

    def gradients_ready(self):
        """True when every parameter's gradient is in the flat buffer (moving in any set by hand);
        False when some parameter has no gradient this step."""
        return all([grad_buffers.gather(p) for p in self.params])  # a list: gather every one


def _group_by_device_and_dtype(params):
    groups = {}
    for p in params:
        groups.setdefault((backend.device_of(p.array), p.dtype), []).append(p)
    return [FlatGroup(members) for members in groups.values()]


class Optimizer:
    """Base class. Subclasses implement ``update(param, grad, state)`` on raw arrays, in place.

    ``update`` runs once per step on the flat buffers of each group (see the
    module docs); where some parameter of a group has no gradient in a step,
    it runs on each parameter that has one instead, with views of the state,
    so parameters without gradients are left alone, as in PyTorch.

    Attributes:
        params: list of the Tensors being trained.
        param_groups: PyTorch's list of option dicts; minicnn has one group,
            ``{"params": params, "lr": ..., and the rule's other options}``. The rule reads its
            options from it at each step, so ``param_groups[0]["lr"] = 0.01`` changes the next step.
        lr: the learning rate, ``param_groups[0]["lr"]`` (schedules in :mod:`minicnn.optim.lr_scheduler`
            change it); a subclass's options (``momentum``...) are read and set the same way.
        groups: the :class:`FlatGroup` of each device and dtype.
        state: per group, a dict name -> flat array (momentum buffers, moment estimates),
            zero until the first step writes them.
        step_count: how many times :meth:`step` has run.
    """

    options = ()  # a subclass's options besides lr, kept in param_groups[0] (see __setattr__)

    def __init__(self, params, lr):
        self.params = list(params)
        name = type(self).__name__
        if not self.params:
            raise ValueError(f"{name}: params is empty; pass model.parameters()")
        if any(isinstance(p, dict) for p in self.params):
            raise TypeError(f"{name}: params must be tensors; minicnn has one parameter group, not dicts of options")
        self.param_groups = [{"params": self.params}]
        for index, p in enumerate(self.params):
            if not isinstance(p, Tensor) or not p.requires_grad:
                raise TypeError(f"{name}: params[{index}] must be a Tensor with requires_grad=True, "
                                f"got {type(p).__name__}")
            if any(p is q for q in self.params[:index]):
                raise ValueError(f"{name}: params[{index}] appears more than once")
        self.lr = self._check_non_negative("lr", lr)
        self.groups = _group_by_device_and_dtype(self.params)
        self.state = [{} for _ in self.groups]
        self.step_count = 0

    # lr and the options live in param_groups[0], as in PyTorch, so that changing either changes the other
    def __getattr__(self, name):  # called only for names that are not ordinary attributes
        if name == "lr" or name in type(self).options:
            try:
                return self.__dict__["param_groups"][0][name]
            except (KeyError, IndexError):
                pass
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __setattr__(self, name, value):
        if name == "lr" or name in type(self).options:
            self.param_groups[0][name] = value
        else:
            object.__setattr__(self, name, value)

    def _check_non_negative(self, name, value):
        if not isinstance(value, numbers.Real) or value < 0:
            raise ValueError(f"{type(self).__name__}: {name} must be a non-negative number, got {value!r}")
        return float(value)

    def zero_grad(self, set_to_none=True):
        """Forget all gradients (``.grad = None``), before the next backward pass.

        No array is touched: the next backward pass overwrites each parameter's
        part of the gradient buffer. With ``set_to_none=False`` (PyTorch's option)
        each gradient is filled with zeros instead, and the next backward adds to it.
        """
        for p in self.params:
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.zero_()

    def step(self):
        """Update every parameter that has a gradient."""
        self.step_count += 1
        for group, state in zip(self.groups, self.state):
            group.check_in_place(type(self).__name__)
            with backend.on_device_of(group.array):  # the state is made, and the update runs, beside the group
                self._update_group(group, state)

    def _update_group(self, group, state):
        """The update rule once on the whole buffers, or, where some parameter has no gradient, on each
        parameter that has one (views of the state), leaving the others alone."""
        if group.gradients_ready():
            self.update(group.array, group.grad, state)
            for p in group.params:
                p._bump_version()  # as PyTorch's in-place updates do
            return
        for p, where in zip(group.params, group.slices):
            if p.grad is not None:
                p._bump_version()
                views = {name: array[where].reshape(p.shape) for name, array in state.items()}
                self.update(p.array, p.grad.array, views)
                for name, array in views.items():
                    if name not in state:  # made by this first update: give it a flat home
                        state[name] = backend.get_array_module(group.array).zeros_like(group.array)
                        state[name][where] = array.reshape(-1)

    def update(self, param, grad, state):
        """Apply the update rule in place: ``param`` and ``grad`` are arrays of one shape, and
        ``state`` a dict of arrays of that shape (empty at first: create what the rule needs)."""
        raise NotImplementedError

    def state_dict(self):
        """{"lr", "step_count", "state": [ {name: NumPy array} per parameter ]}."""
        per_param = []
        for group, state in zip(self.groups, self.state):
            for p, where in zip(group.params, group.slices):
                per_param.append({name: backend.as_numpy(array[where]).reshape(p.shape)
                                  for name, array in state.items()})
        order = {id(p): i for i, p in enumerate(p for g in self.groups for p in g.params)}
        return {"lr": self.lr, "step_count": self.step_count,
                "state": [per_param[order[id(p)]] for p in self.params]}

    def load_state_dict(self, state_dict):
        """Restore what :meth:`state_dict` returned, onto each parameter's device."""
        states = state_dict["state"]
        if len(states) != len(self.params):
            raise ValueError(f"load_state_dict: the saved optimizer has {len(states)} parameters, "
                             f"this one {len(self.params)}")
        saved = {id(p): s for p, s in zip(self.params, states)}
        for group, state in zip(self.groups, self.state):
            xp, device = backend.get_array_module(group.array), backend.device_of(group.array)
            state.clear()
            with backend.on_device_of(group.array):
                for p, where in zip(group.params, group.slices):
                    for name, value in saved[id(p)].items():
                        if tuple(value.shape) != p.shape:
                            raise ValueError(f"load_state_dict: state {name!r} has shape {tuple(value.shape)}, "
                                             f"its parameter {p.shape}")
                        if name not in state:  # the optimizer's own arrays: never the caller's
                            state[name] = xp.zeros_like(group.array)
                        state[name][where] = backend.to_device(value, device, group.array.dtype).reshape(-1)
        self.lr, self.step_count = float(state_dict["lr"]), int(state_dict["step_count"])
