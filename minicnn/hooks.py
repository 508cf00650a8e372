"""Hooks: your code, called by the engine at a tensor's gradient or around a module's call.

The names, signatures and semantics are PyTorch's:

    handle = tensor.register_hook(hook)                 # hook(grad) -> None or a new grad
    handle = module.register_forward_pre_hook(hook)     # hook(module, args) -> None or new args
    handle = module.register_forward_hook(hook)         # hook(module, args, output) -> None or new output
    handle = module.register_full_backward_hook(hook)   # hook(module, grad_input, grad_output)
                                                        #   -> None or a new grad_input
    handle.remove()                                     # or: with module.register_forward_hook(hook): ...

Gradients are raw arrays (what ``.grad.array`` holds; PyTorch passes Tensors).
``grad_input`` holds one entry per positional argument of the module's forward (None for a non-Tensor, or a Tensor
that needs no gradient); ``grad_output`` one per output (a Tensor, or each item
of a tuple the module returns).

How a full backward hook sees a whole module. A module is many ops, so no single
op's backward knows the module's gradients. As PyTorch does, the module's call
routes the tensors going in, and those coming out, through identity ops whose
backward sees them pass. Each side is one :class:`BackwardHookFunction` that
gathers the tensors (so it runs once, when all their gradients are known, not
once per tensor) and a :class:`BackwardHookViewFunction` per tensor that hands
it back unchanged::

    inputs ─► BackwardHookFunction ─► views ─► module's ops ─► BackwardHookFunction ─► views ─► outputs

In backward the output side runs first and stores ``grad_output``; the input
side runs once every op of the module has run, calls the hooks with
``grad_input`` and passes on whatever they return.
"""
import itertools

from . import backend
from .engine import Op, Tensor, is_grad_enabled

_handle_ids = itertools.count()


class RemovableHandle:
    """What ``register_*hook`` returns: ``remove()`` unregisters the hook (also on leaving a ``with``)."""

    def __init__(self, hooks, hook):
        self.id = next(_handle_ids)
        self._hooks = hooks
        hooks[self.id] = hook

    def remove(self):
        self._hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.remove()


def _require_callable(where, hook):
    if not callable(hook):
        raise TypeError(f"{where}: hook must be callable, got {type(hook).__name__}")


# -- Tensor hooks ---------------------------------------------------------------------------------
def register_tensor_hook(tensor, hook):
    """Tensor.register_hook: see its docstring."""
    _require_callable("register_hook", hook)
    if not tensor.requires_grad:
        raise RuntimeError("register_hook: cannot register a hook on a tensor that doesn't require gradient")
    if "_grad_hooks" not in vars(tensor):
        tensor._grad_hooks = {}
    if tensor.creator is not None:
        # The gradient of an op's output is known to the engine by the op that made it.
        tensor.creator._grad_hooks = tensor._grad_hooks
    return RemovableHandle(tensor._grad_hooks, hook)


def run_grad_hooks(hooks, grad):
    """Pass ``grad`` through ``hooks`` in order; each may return a replacement."""
    for hook in list(hooks.values()):
        result = hook(grad)
        if result is not None:
            grad = _checked_replacement(f"hook {_name(hook)}", result, grad)
    return grad


def hold_leaf_gradient(held, leaf, grad):
    """Add ``grad`` to the sum kept for ``leaf`` in ``held`` (id -> [leaf, sum]) until the pass ends."""
    entry = held.get(id(leaf))
    if entry is None:
        held[id(leaf)] = [leaf, grad]
    else:
        entry[1] = entry[1] + grad


def _checked_replacement(who, new, old):
    """``new`` (an array, or a Tensor's array) if it can stand for the gradient ``old``."""
    new = new.array if isinstance(new, Tensor) else new
    if not hasattr(new, "shape") or new.shape != old.shape or new.dtype != old.dtype:
        got = f"shape {new.shape}, dtype {new.dtype}" if hasattr(new, "shape") else type(new).__name__
        raise RuntimeError(f"{who} returned a gradient of {got}; expected an array of shape "
                           f"{old.shape} and dtype {old.dtype}, or None")
    if backend.device_of(new) != backend.device_of(old):
        raise RuntimeError(f"{who} returned a gradient on {backend.device_of(new)}; expected one on "
                           f"{backend.device_of(old)}")
    return new


def _name(hook):
    return getattr(hook, "__qualname__", type(hook).__name__)


# -- Module hooks ------------------------------------------------------------------------------------
class ModuleHooks:
    """A module's hooks by kind, each a dict handle id -> hook in registration order."""

    def __init__(self):
        self.forward_pre, self.forward, self.backward = {}, {}, {}

    def __bool__(self):
        return bool(self.forward_pre or self.forward or self.backward)


def register_module_hook(module, kind, hook):
    """Add ``hook`` to ``module``'s hooks of ``kind`` ("forward_pre", "forward" or "backward")."""
    _require_callable(f"{type(module).__name__}.register_{kind}_hook", hook)
    if "_hooks" not in vars(module):
        module._hooks = ModuleHooks()
    return RemovableHandle(getattr(module._hooks, kind), hook)


def call_with_hooks(module, args, kwargs):
    """``module(*args, **kwargs)`` with its hooks, in PyTorch's order: forward pre-hooks (which may
    replace ``args``), forward, forward hooks (which may replace the output); backward hooks
    wrap the tensors going in and out."""
    hooks = module._hooks
    for hook in list(hooks.forward_pre.values()):
        result = hook(module, args)
        if result is not None:
            args = result if isinstance(result, tuple) else (result,)
    call = None
    if hooks.backward and is_grad_enabled():
        call = _BackwardHookCall(module, list(hooks.backward.values()))
        args = call.wrap_inputs(args)
    output = module.forward(*args, **kwargs)
    for hook in list(hooks.forward.values()):
        result = hook(module, args, output)
        if result is not None:
            output = result
    if call is not None:
        output = call.wrap_outputs(output)
    return output


class BackwardHookFunction(Op):
    """Gathers tensors for a module's backward hooks: forward gives a 0-d placeholder, and backward
    returns the gradients its :class:`BackwardHookViewFunction` s collected, after ``on_gradients``
    has seen them (and perhaps replaced them)."""

    def __init__(self, on_gradients):
        self.on_gradients = on_gradients

    def forward(self, *arrays):
        self.grads = [None] * len(arrays)
        self.placeholder = backend.get_array_module(arrays[0]).zeros((), dtype=arrays[0].dtype)
        return self.placeholder

    def backward(self, grad_placeholder):
        return tuple(self.on_gradients(self.grads))


class BackwardHookViewFunction(Op):
    """Hands back tensor ``index`` of a :class:`BackwardHookFunction` unchanged; in backward it
    passes that tensor's gradient to the gather (the placeholder gets a zero)."""

    def __init__(self, gather, index, array):
        self.gather, self.index, self.array = gather, index, array

    def forward(self, placeholder):
        return self.array

    def backward(self, grad):
        self.gather.grads[self.index] = grad
        return self.gather.placeholder  # d(placeholder) = 0; the real gradient goes through the gather


def _gate(values, on_gradients):
    """Route the Tensors among ``values`` (a tuple) that need a gradient through one BackwardHookFunction.

    ``on_gradients(grads)`` is called in backward with a tuple of one gradient per
    entry of ``values`` (None where none), and returns the tuple to pass on.
    Returns:
        (values with those Tensors replaced by views, True), or (values, False) when none needs one.
    """
    positions = [i for i, value in enumerate(values) if isinstance(value, Tensor) and value.requires_grad]
    if not positions:
        return values, False

    def by_position(gathered):  # one gradient per gated tensor -> one per entry of values
        grads = [None] * len(values)
        for position, grad in zip(positions, gathered):
            grads[position] = grad
        passed_on = on_gradients(tuple(grads))
        return [passed_on[position] for position in positions]

    gather = BackwardHookFunction(by_position)
    placeholder = gather(*(values[i] for i in positions))
    replaced = list(values)
    for index, position in enumerate(positions):
        replaced[position] = BackwardHookViewFunction(gather, index, values[position].array)(placeholder)
    return tuple(replaced), True


class _BackwardHookCall:
    """One call of a module that has full backward hooks: collects grad_output, then calls the hooks."""

    def __init__(self, module, hooks):
        self.module, self.hooks = module, hooks
        self.inputs_gated, self.grad_outputs = False, None

    def wrap_inputs(self, args):
        self.args = args  # what a replacement gradient must match
        args, self.inputs_gated = _gate(tuple(args), self._input_gradients)
        return args

    def wrap_outputs(self, output):
        single = not isinstance(output, tuple)
        outputs, _ = _gate((output,) if single else output, self._output_gradients)
        return outputs[0] if single else outputs

    def _output_gradients(self, grad_output):
        self.grad_outputs = grad_output
        if not self.inputs_gated:  # no input needs a gradient: the hooks run now, grad_input all None
            grad_input = (None,) * len(self.args)
            for hook in self.hooks:
                result = hook(self.module, grad_input, grad_output)
                if result is not None and any(grad is not None for grad in result):
                    raise RuntimeError(f"full backward hook {_name(hook)} of {type(self.module).__name__}: "
                                       "no input of this call needs a gradient, so the hook must return None "
                                       "or only Nones")
        return grad_output

    def _input_gradients(self, grad_input):
        if self.grad_outputs is None:  # the gradient reached the inputs without passing the outputs
            return grad_input
        for hook in self.hooks:
            result = hook(self.module, grad_input, self.grad_outputs)
            if result is None:
                continue
            who = f"full backward hook {_name(hook)} of {type(self.module).__name__}"
            if not isinstance(result, (tuple, list)) or len(result) != len(grad_input):
                raise RuntimeError(f"{who} must return None or a tuple of {len(grad_input)} gradients "
                                   f"(one per input), got {type(result).__name__}"
                                   + (f" of {len(result)}" if isinstance(result, (tuple, list)) else ""))
            grad_input = tuple(self._checked(f"{who}: grad_input[{i}]", i, new) for i, new in enumerate(result))
        self.grad_outputs = None
        return grad_input

    def _checked(self, who, index, grad):
        """A hook's ``grad`` for input ``index``: None drops that gradient, as in PyTorch."""
        if grad is None or not isinstance(self.args[index], Tensor):
            return None
        return _checked_replacement(who, grad, self.args[index].array)
