"""Module: a layer or a network, holding Parameters, Buffers and sub-Modules.

A Module finds its parts by looking at its own attributes: every
:class:`Parameter` (trained), :class:`Buffer` (state that is saved but not
trained, such as batch norm's running mean) and sub-:class:`Module`, in the
order they were assigned. Their dotted names (``"inception3a.branch1.conv.weight"``)
key the ``state_dict``.
"""
from collections import OrderedDict, namedtuple

import numpy as np

from .. import backend, grad_buffers
from ..hooks import call_with_hooks, register_module_hook
from ..engine import Tensor


class Parameter(Tensor):
    """A Tensor that a Module trains (requires_grad=True unless told otherwise).

    ``data`` is an array, or a Tensor whose array the parameter then shares, as
    ``torch.nn.Parameter(torch.randn(()))`` does.
    """

    def __init__(self, data, requires_grad=True):
        super().__init__(data.array if isinstance(data, Tensor) else data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter" + super().__repr__()[len("Tensor"):]


class Buffer(Tensor):
    """A Tensor that a Module saves and moves with it, but does not train (PyTorch's ``nn.Buffer``)."""

    def __init__(self, data):
        super().__init__(data, requires_grad=False)


LoadResult = namedtuple("LoadResult", ["missing_keys", "unexpected_keys"])


class Module:
    """Base class of layers and networks: subclasses set parts in ``__init__`` and define ``forward``."""

    training = True
    _hooks = None  # a minicnn.hooks.ModuleHooks once a hook is registered

    def __call__(self, *args, **kwargs):
        if not self._hooks:
            return self.forward(*args, **kwargs)
        return call_with_hooks(self, args, kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __setattr__(self, name, value):
        # A Module finds its parts among its attributes; one inside a plain list or dict
        # would be silently left out of parameters(), state_dict(), to() and train().
        if isinstance(value, (list, tuple, dict)):
            items = value.values() if isinstance(value, dict) else value
            if any(isinstance(item, Module) for item in items):
                container = "nn.ModuleDict" if isinstance(value, dict) else "nn.ModuleList"
                raise TypeError(f"{type(self).__name__}.{name}: a plain {type(value).__name__} of Modules is not "
                                f"registered (their parameters would not be trained, saved or moved); "
                                f"use self.{name} = {container}(...)")
        object.__setattr__(self, name, value)

    # -- hooks (PyTorch's; see minicnn.hooks) --------------------------------------------
    def register_forward_pre_hook(self, hook):
        """Call ``hook(module, args)`` before each forward; it may return new args (a tuple, or
        one value). Returns a handle: ``handle.remove()``."""
        return register_module_hook(self, "forward_pre", hook)

    def register_forward_hook(self, hook):
        """Call ``hook(module, args, output)`` after each forward; it may return a new output.
        Returns a handle: ``handle.remove()``."""
        return register_module_hook(self, "forward", hook)

    def register_full_backward_hook(self, hook):
        """Call ``hook(module, grad_input, grad_output)`` once the gradients with respect to this
        module's inputs are computed; it may return a new grad_input (a tuple, one entry per input).
        Returns a handle: ``handle.remove()``."""
        return register_module_hook(self, "backward", hook)

    # -- the parts: generators, as in PyTorch (list(model.parameters()) for a list) ------------
    def named_children(self):
        """(name, module) for each direct sub-module, in assignment order."""
        return ((name, value) for name, value in list(vars(self).items()) if isinstance(value, Module))

    def children(self):
        return (module for _, module in self.named_children())

    def named_modules(self, prefix="", _seen=None):
        """(dotted name, module) for this module ("") and every module inside it, depth first, each once."""
        seen = set() if _seen is None else _seen
        if id(self) in seen:
            return
        seen.add(id(self))
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name, seen)

    def modules(self):
        return (module for _, module in self.named_modules())

    def _named_tensors(self, kind):
        seen = set()
        for prefix, module in self.named_modules():
            for name, value in vars(module).items():
                if isinstance(value, kind) and id(value) not in seen:
                    seen.add(id(value))
                    yield (f"{prefix}.{name}" if prefix else name), value

    def named_parameters(self):
        """(dotted name, Parameter) for every parameter, each once."""
        return self._named_tensors(Parameter)

    def parameters(self):
        return (p for _, p in self.named_parameters())

    def named_buffers(self):
        """(dotted name, Buffer) for every buffer, each once."""
        return self._named_tensors(Buffer)

    def buffers(self):
        return (b for _, b in self.named_buffers())

    def _named_state(self):
        """(dotted name, tensor) for every parameter, then every buffer: what state_dict holds."""
        return [*self.named_parameters(), *self.named_buffers()]

    def apply(self, fn):
        """Call ``fn(module)`` on every sub-module and then on this one; returns self."""
        for module in reversed(list(self.modules())):
            fn(module)
        return self

    # -- modes, devices, gradients -----------------------------------------------
    def train(self, mode=True):
        """Set training mode (dropout active, batch norm on batch statistics) here and below."""
        for module in self.modules():
            module.training = bool(mode)
        return self

    def eval(self):
        """Set evaluation mode; same as ``train(False)``."""
        return self.train(False)

    def to(self, *args, device=None, dtype=None):
        """Move every parameter and buffer (in place) to a device and/or floating dtype; returns self.

        Takes what :meth:`Tensor.to` takes: ``model.to("gpu")``, ``model.to(numpy.float64)``,
        ``model.to("gpu", "float32")``, ``model.to(device=..., dtype=...)``.
        """
        device, dtype = backend.device_and_dtype(f"{type(self).__name__}.to", args, device, dtype)
        if dtype is not None and dtype.kind != "f":
            raise TypeError(f"{type(self).__name__}.to: parameters must stay floating-point, got dtype {dtype}")
        for _, tensor in self._named_state():
            target = backend.device_of(tensor.array) if device is None else device
            data = backend.to_device(tensor.array, target, dtype)
            if data is not tensor.array:
                tensor.array = data
                grad_buffers.withdraw(tensor)  # out of any optimizer's buffer now
            if tensor.grad is not None:
                tensor.grad = Tensor(backend.to_device(tensor.grad.array, target, tensor.dtype))
        return self

    def cpu(self):
        """Move every parameter and buffer to the CPU (in place); returns self."""
        return self.to("cpu")

    def cuda(self, device=None):
        """Move every parameter and buffer to a GPU (in place): ``device`` (an index, "cuda:N" or a
        minicnn.device), else GPU 0; returns self."""
        if isinstance(device, int) and not isinstance(device, bool):
            device = f"cuda:{device}"
        return self.to("cuda" if device is None else device)

    def zero_grad(self, set_to_none=True):
        """Forget every parameter's gradient (set ``.grad`` to None), or with ``set_to_none=False``
        (PyTorch's option) fill each with zeros, for the next backward to add to."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.zero_()

    # -- saving and loading ------------------------------------------------------
    def state_dict(self):
        """OrderedDict of dotted name -> Tensor for every parameter and buffer.

        Each Tensor shares the live array (NumPy or CuPy, not a copy) and is cut
        from the graph (requires_grad=False), as in PyTorch.
        """
        return OrderedDict((name, tensor.detach()) for name, tensor in self._named_state())

    def load_state_dict(self, state_dict, strict=True):
        """Copy values from ``state_dict`` into this module's parameters and buffers.

        Values may be NumPy or CuPy arrays (or Tensors) on any device; they are
        copied into the existing arrays, keeping each one's device and dtype.
        With ``strict``, missing or unexpected keys raise a KeyError; a shape
        mismatch always raises a ValueError.
        Returns:
            LoadResult(missing_keys, unexpected_keys).
        """
        own = OrderedDict(self._named_state())
        missing = [name for name in own if name not in state_dict]
        unexpected = [name for name in state_dict if name not in own]
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: missing keys: {', '.join(missing) or 'none'}; "
                           f"unexpected keys: {', '.join(unexpected) or 'none'}")
        for name, tensor in own.items():
            if name not in state_dict:
                continue
            value = state_dict[name]
            value = value.array if isinstance(value, Tensor) else value
            if tuple(value.shape) != tensor.shape:
                raise ValueError(f"load_state_dict: {name} has shape {tensor.shape} here but "
                                 f"{tuple(value.shape)} in the state dict")
            device = backend.device_of(tensor.array)
            with backend.running_on(device):
                tensor.array[...] = backend.to_device(value, device, tensor.dtype)
            tensor._bump_version()  # as PyTorch's copy_ does
        return LoadResult(missing, unexpected)

    # -- printing ----------------------------------------------------------------
    def extra_repr(self):
        """The arguments shown inside this module's parentheses when printed."""
        return ""

    def __repr__(self):
        children = list(self.named_children())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, child in children:
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return "\n".join(lines) + "\n)"


def count_parameters(module):
    """Total number of trainable values in ``module``."""
    return int(sum(np.prod(p.shape) for p in module.parameters()))
