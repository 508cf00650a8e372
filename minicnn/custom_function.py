"""PyTorch's way for a user to write an op: ``minicnn.autograd.Function`` with a ``ctx``.

    class ScaledExp(Function):           # y = scale * exp(x)
        @staticmethod
        def forward(ctx, x, scale):         # scale: a number, no gradient
            y = scale * x.exp()
            ctx.save_for_backward(y)        # dy/dx = y
            return y

        @staticmethod
        def backward(ctx, grad_output):
            (y,) = ctx.saved_tensors
            return grad_output * y, None

    y = ScaledExp.apply(x, 2.0)

Both methods work on Tensors (``forward`` runs without recording a graph, as
in PyTorch). ``apply`` runs it as one op of the graph: a small adapter
:class:`~minicnn.engine.Op` (one subclass per Function, named like PyTorch's
``grad_fn``: ``ScaledExpBackward``) turns the engine's raw arrays into Tensors and
back. So hooks, ``autograd.trace``, the version check on saved tensors and
``minicnn.gradcheck`` see it like any built-in op.
"""
from .engine import Op, Tensor, no_grad


class FunctionCtx:
    """The ``ctx`` of a :class:`Function`: what ``forward`` leaves for ``backward``.

    Attributes:
        needs_input_grad: one bool per argument of ``forward`` (after ``ctx``): whether its gradient is wanted.
        saved_tensors: the tensors given to :meth:`save_for_backward`, in order.
    Any other attribute may be set in ``forward`` and read in ``backward``.
    """

    def __init__(self, needs_input_grad):
        self.needs_input_grad = needs_input_grad
        self._saved = ()

    def save_for_backward(self, *tensors):
        """Keep ``tensors`` (inputs, outputs or None) for backward. In-place changes to an input or
        the output saved here make backward refuse, as in PyTorch."""
        for index, tensor in enumerate(tensors):
            if tensor is not None and not isinstance(tensor, Tensor):
                raise TypeError(f"save_for_backward: argument {index} must be a Tensor or None, "
                                f"got {type(tensor).__name__} (keep other values as attributes of ctx)")
        self._saved = tensors

    @property
    def saved_tensors(self):
        return self._saved


class Function:
    """Base class of a user-defined op: subclass it and write two static methods.

    ``forward(ctx, *args)`` takes Tensors (and any other arguments) and returns
    one Tensor. ``backward(ctx, *grad_outputs)`` takes the gradient of that
    output (a Tensor) and returns one gradient per argument of ``forward``: a
    Tensor of that argument's shape, or None (for an argument that is not a
    Tensor, or whose gradient is not needed). Call it as ``MyFunction.apply(*args)``.
    """

    @staticmethod
    def forward(ctx, *args):
        raise NotImplementedError("a Function subclass must define forward(ctx, *args)")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("a Function subclass must define backward(ctx, *grad_outputs)")

    @classmethod
    def apply(cls, *args):
        """Run ``forward`` as one op of the graph; returns its output Tensor."""
        tensors = [arg for arg in args if isinstance(arg, Tensor)]
        if not tensors:
            with no_grad():
                return _output(cls, cls.forward(FunctionCtx((False,) * len(args)), *args))
        adapter = cls.__dict__.get("_adapter")
        if adapter is None:  # one Op subclass per Function, named as PyTorch names its grad_fn
            adapter = type(f"{cls.__name__}Backward", (FunctionAdapter,), {"function": cls})
            cls._adapter = adapter
        return adapter(args)(*tensors)


def _output(function, output):
    if not isinstance(output, Tensor):
        raise TypeError(f"{function.__name__}.forward must return one Tensor, got {type(output).__name__} "
                        "(minicnn's custom Functions have one output)")
    return output


class FunctionAdapter(Op):
    """The engine's Op for one call of a :class:`Function` (``function``): raw arrays in and out of it.

    ``saved_inputs`` and ``saves_output`` are set per call from what
    ``forward`` gave to ``ctx.save_for_backward``, for the version check.
    """

    function = None  # the Function subclass

    def __init__(self, args):
        self.args = args
        self.tensor_positions = [i for i, arg in enumerate(args) if isinstance(arg, Tensor)]

    def forward(self, *arrays):
        args = list(self.args)
        inputs = [Tensor._wrap(array, False) for array in arrays]
        for position, tensor in zip(self.tensor_positions, inputs):
            args[position] = tensor
        needs = [False] * len(args)
        for position, need in zip(self.tensor_positions, self.needs_input_grad):
            needs[position] = need
        self.ctx = FunctionCtx(tuple(needs))
        with no_grad():
            output = _output(self.function, self.function.forward(self.ctx, *args))
        saved = self.ctx.saved_tensors
        self.saved_inputs = tuple(i for i, tensor in enumerate(inputs) if any(tensor is s for s in saved))
        self.saves_output = any(output is s for s in saved)
        return output.array

    def backward(self, grad_output):
        name = self.function.__name__
        with no_grad():
            grads = self.function.backward(self.ctx, Tensor._wrap(grad_output, False))
        grads = grads if isinstance(grads, tuple) else (grads,)
        if len(grads) != len(self.args):
            raise RuntimeError(f"{name}.backward returned {len(grads)} gradient(s), but forward took "
                               f"{len(self.args)} argument(s): return one per argument (None where there is none)")
        for position, grad in enumerate(grads):
            if grad is not None and not isinstance(grad, Tensor):
                raise TypeError(f"{name}.backward: the gradient for argument {position} must be a Tensor or "
                                f"None, got {type(grad).__name__}")
            if grad is not None and position not in self.tensor_positions:
                raise RuntimeError(f"{name}.backward returned a gradient for argument {position}, which is not "
                                   "a Tensor: return None there")
        return tuple(None if grads[p] is None else grads[p].array for p in self.tensor_positions)
