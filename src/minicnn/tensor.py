"""Tensor and the autograd tape.

A :class:`Tensor` wraps an array (``.data``: a NumPy or CuPy array, never a
copy) and, once ``backward`` has run, its gradient (``.grad``: a raw array of
the same backend and shape).

Every differentiable op is a :class:`Function`. ``forward`` maps input arrays to
an output array and keeps what ``backward`` will need; ``backward`` maps the
gradient of the loss with respect to the output to gradients with respect to
each input. When grad mode is on and some input requires grad, calling a
Function records it as the ``creator`` of its output. Those records form the
graph (define-by-run: the graph is whatever the Python code did this time), and
:meth:`Tensor.backward` walks it from the output back to the leaves.
"""
import contextlib

import numpy as np

from . import backend

_grad_enabled = True


def is_grad_enabled():
    """True unless inside a :func:`no_grad` block."""
    return _grad_enabled


@contextlib.contextmanager
def no_grad():
    """Context manager (or decorator) in which ops record no graph: for evaluation."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def _as_array(data):
    """An ndarray for ``data``: NumPy/CuPy arrays as they are, Python numbers as float32/int64."""
    if isinstance(data, np.ndarray) or backend.is_gpu_array(data):
        return data
    if isinstance(data, Tensor):
        raise TypeError("Tensor(...) takes an array, not a Tensor; use tensor.detach() to share data")
    array = np.asarray(data)
    if array.dtype == np.float64:  # Python floats: float32, the training default, as in PyTorch
        array = array.astype(np.float32)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"Tensor data must be numeric, got dtype {array.dtype}")
    return array


class Tensor:
    """An n-dimensional array that can record the ops applied to it.

    Args:
        data: a NumPy or CuPy array (used as it is, not copied), or a Python
            number or nested list (converted; floats become float32).
        requires_grad: if True, ``backward`` fills ``.grad`` for this tensor.
    """

    __array_priority__ = 1000  # `ndarray + Tensor` calls Tensor.__radd__

    def __init__(self, data, requires_grad=False):
        data = _as_array(data)
        if requires_grad and data.dtype.kind != "f":
            raise TypeError(f"requires_grad=True needs a floating-point array, got dtype {data.dtype}")
        self.data = data
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self.creator = None  # the Function that computed this tensor, if recorded

    @classmethod
    def _wrap(cls, data, requires_grad):
        """Fast constructor for op outputs: ``data`` is known to be a valid array."""
        tensor = cls.__new__(cls)
        tensor.data, tensor.grad, tensor.requires_grad, tensor.creator = data, None, requires_grad, None
        return tensor

    # -- plain facts about the array ---------------------------------------
    shape = property(lambda self: self.data.shape, doc="Tuple of dimensions.")
    dtype = property(lambda self: self.data.dtype, doc="NumPy dtype of the data.")
    ndim = property(lambda self: self.data.ndim, doc="Number of dimensions.")
    size = property(lambda self: self.data.size, doc="Number of elements.")
    is_leaf = property(lambda self: self.creator is None,
                       doc="True if no recorded op made this tensor (inputs, parameters).")

    @property
    def device(self):
        """"cpu" or "gpu:N"."""
        return str(backend.device_of(self.data))

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        body = np.array2string(backend.as_numpy(self.data), separator=", ", prefix="Tensor(",
                               threshold=20, edgeitems=2)
        extras = [f"dtype={self.dtype}"]
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self.requires_grad:
            extras.append("requires_grad=True")
        return f"Tensor({body}, {', '.join(extras)})"

    # -- conversions ---------------------------------------------------------
    def numpy(self):
        """The values as a NumPy array: ``.data`` itself on the CPU, a copy from a GPU."""
        return backend.as_numpy(self.data)

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a one-element tensor, got shape {self.shape}")
        return self.data.reshape(()).item()

    def detach(self):
        """A new tensor sharing ``.data``, cut from the graph (requires_grad=False)."""
        return Tensor._wrap(self.data, False)

    def to(self, device=None, dtype=None):
        """This tensor on ``device`` ("cpu", "gpu", "gpu:N") and/or as ``dtype``.

        Returns ``self`` when nothing changes; otherwise a new tensor, recorded in
        the graph so that gradients flow back to the original, as in PyTorch.
        """
        from .functional.arithmetic import to_device_and_dtype
        return to_device_and_dtype(self, device, dtype)

    # -- autograd ------------------------------------------------------------
    def backward(self, grad=None):
        """Compute the gradient of this tensor with respect to every leaf that requires grad.

        Args:
            grad: d(loss)/d(self), an array of ``self.shape``; may be omitted
                only when this tensor has one element (a loss), meaning 1.

        Gradients add into each leaf's ``.grad`` (an inception block's input
        feeds four branches; a tensor reused in one graph sums its gradients).
        The graph's saved arrays are freed as the pass goes, so call backward
        once per forward pass.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() needs a tensor that requires grad: no input of the ops "
                               "that made this tensor has requires_grad=True (or it was made under no_grad)")
        xp = backend.get_array_module(self.data)
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward() without grad needs a one-element tensor (a loss); "
                                   f"this one has shape {self.shape}: pass grad of that shape")
            grad = xp.ones_like(self.data)
        else:
            grad = grad.data if isinstance(grad, Tensor) else xp.asarray(grad)
            if grad.shape != self.shape:
                raise ValueError(f"backward(grad): grad must have this tensor's shape {self.shape}, "
                                 f"got {grad.shape}")
            grad = grad.astype(self.dtype, copy=False)
        if self.creator is None:
            _accumulate_leaf(self, grad)
        else:
            _run_backward(self.creator, grad)

    # -- arithmetic, delegated to minicnn.functional.arithmetic --------------
    def __add__(self, other): return _arith.add(self, other)
    def __radd__(self, other): return _arith.add(other, self)
    def __sub__(self, other): return _arith.sub(self, other)
    def __rsub__(self, other): return _arith.sub(other, self)
    def __mul__(self, other): return _arith.mul(self, other)
    def __rmul__(self, other): return _arith.mul(other, self)
    def __truediv__(self, other): return _arith.div(self, other)
    def __rtruediv__(self, other): return _arith.div(other, self)
    def __neg__(self): return _arith.neg(self)
    def __pow__(self, exponent): return _arith.power(self, exponent)
    def __matmul__(self, other): return _arith.matmul(self, other)
    def __rmatmul__(self, other): return _arith.matmul(other, self)

    def sum(self, axis=None, keepdims=False):
        """Sum over ``axis`` (an int, a tuple, or None for all)."""
        return _arith.sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        """Mean over ``axis`` (an int, a tuple, or None for all)."""
        return _arith.mean(self, axis, keepdims)

    def reshape(self, *shape):
        """The same values in a new shape; one dimension may be -1."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _arith.reshape(self, shape)

    def exp(self):
        """Elementwise e**x."""
        return _arith.exp(self)

    def log(self):
        """Elementwise natural logarithm."""
        return _arith.log(self)


class Function:
    """One differentiable op. Subclasses implement ``forward`` and ``backward`` on raw arrays.

    Non-tensor arguments (stride, axis, ...) go to ``__init__``; tensor
    arguments go to ``__call__``. ``forward(*arrays)`` returns one array;
    ``backward(grad_output)`` returns one gradient (or None) per input, in order.
    ``self.needs_input_grad[i]`` tells ``backward`` which gradients anyone wants.
    """

    def __call__(self, *inputs):
        arrays = [tensor.data for tensor in inputs]
        _check_one_device(type(self).__name__, arrays)
        record = _grad_enabled and any(tensor.requires_grad for tensor in inputs)
        self.needs_input_grad = tuple(record and tensor.requires_grad for tensor in inputs)
        output = Tensor._wrap(self.forward(*arrays), record)
        if record:
            self.inputs = inputs
            output.creator = self
        return output

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, grad_output):
        raise NotImplementedError


def _check_one_device(op_name, arrays):
    devices = [backend.device_of(array) for array in arrays]
    if len(set(devices)) > 1:
        where = ", ".join(f"input {i} on {device}" for i, device in enumerate(devices))
        raise ValueError(f"{op_name}: all tensors must be on one device, got {where}; "
                         "move them with .to(device)")


def _accumulate_leaf(tensor, grad):
    if tensor.grad is None:
        # A leaf gets an array of its own: `grad` may be a read-only broadcast view, a view of
        # another gradient, the very array another leaf receives, or a NumPy scalar.
        tensor.grad = backend.get_array_module(grad).array(grad, dtype=tensor.dtype)
    else:
        tensor.grad = tensor.grad + grad  # out of place, for the same reasons


def _topological_order(root):
    """Functions reachable from ``root``, each before the Functions that made its inputs.

    An iterative depth-first search (no recursion limit, however deep the net):
    a Function is appended once all Functions feeding it are appended, and the
    reversed list puts every consumer before its producers.
    """
    order, visited, stack = [], set(), [(root, False)]
    while stack:
        function, inputs_done = stack.pop()
        if inputs_done:
            order.append(function)
            continue
        if function in visited:
            continue
        visited.add(function)
        stack.append((function, True))
        for tensor in _inputs_of(function):
            if tensor.creator is not None and tensor.creator not in visited:
                stack.append((tensor.creator, False))
    order.reverse()
    return order


def _inputs_of(function):
    if not hasattr(function, "inputs"):
        raise RuntimeError("backward() through a graph that was already used: its saved arrays "
                           "were freed by the first backward(); run the forward pass again, or "
                           "add the losses and call backward() once")
    return function.inputs


def _check_gradients(function, input_grads):
    """Refuse a backward whose gradients do not fit its inputs, naming the Function and the input.

    A gradient must be an array of exactly its input's shape, dtype and device
    (None where no gradient is wanted). Checking here, right after the
    Function that made the mistake, turns a silent wrong result or a baffling
    error many ops later into one message at the cause.
    """
    name = type(function).__name__
    inputs = function.inputs
    if len(input_grads) != len(inputs):
        raise RuntimeError(f"{name}.backward returned {len(input_grads)} gradient(s) for {len(inputs)} "
                           f"input(s): return one per input, in order (None where none is needed)")
    for index, (tensor, grad) in enumerate(zip(inputs, input_grads)):
        if grad is None or not tensor.requires_grad:
            continue
        if not (isinstance(grad, (np.ndarray, np.generic)) or backend.is_gpu_array(grad)):
            problem = f"is a {type(grad).__name__}, not an array"
        elif grad.shape != tensor.shape:
            problem = f"has shape {grad.shape}"
        elif grad.dtype != tensor.dtype:
            problem = f"has dtype {grad.dtype}"
        elif backend.device_of(grad) != backend.device_of(tensor.data):
            problem = f"is on {backend.device_of(grad)}"
        else:
            continue
        raise RuntimeError(f"{name}.backward: the gradient for input {index} {problem}, but that input is "
                           f"{tensor.dtype} of shape {tensor.shape} on {tensor.device}; a gradient must "
                           "match its input in shape, dtype and device")


def _run_backward(root, grad):
    grads = {root: grad}  # gradient of each Function's output, summed over its consumers
    for function in _topological_order(root):
        grad_output = grads.pop(function, None)
        if grad_output is not None:
            input_grads = function.backward(grad_output)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            _check_gradients(function, input_grads)
            for tensor, input_grad in zip(function.inputs, input_grads):
                if input_grad is None or not tensor.requires_grad:
                    continue
                if tensor.creator is None:
                    _accumulate_leaf(tensor, input_grad)
                elif tensor.creator in grads:
                    grads[tensor.creator] = _arith.add_arrays(grads[tensor.creator], input_grad)
                else:
                    grads[tensor.creator] = input_grad
        function.__dict__.clear()  # free saved arrays and the links to inputs


from .functional import arithmetic as _arith  # noqa: E402  (needs Tensor and Function above)
