"""Tensor and the autograd tape.

A :class:`Tensor` wraps an array (``.array``: a NumPy or CuPy array, never a
copy; ``.data`` is PyTorch's detached Tensor over the same array) and, once
``backward`` has run, its gradient (``.grad``: a Tensor of the same backend and
shape; inside the engine the raw array ``._grad``).

Every differentiable op is an :class:`Op`. ``forward`` maps input arrays to
an output array and keeps what ``backward`` will need; ``backward`` maps the
gradient of the loss with respect to the output to gradients with respect to
each input. When grad mode is on and some input requires grad, calling
an Op records it as the ``creator`` of its output. Those records form the
graph (define-by-run: the graph is whatever the Python code did this time), and
:meth:`Tensor.backward` walks it from the output back to the leaves.

In-place ops (``+=``, ``add_``, ``x[i] = v``, ...) write into ``.array`` and
follow PyTorch's rules: a leaf that requires grad refuses them under grad
mode, and on a tensor in the graph they are recorded as one more op (applied
to a copy of the old value), which becomes the tensor's ``creator``; the ops
that used the tensor before keep their route to its old creator
(``Op.input_creators``). Each array has a version counter, shared by the
tensors that ``detach()`` makes of it, that every in-place op bumps. An Op
notes the versions of the inputs its backward reads (``Op.saved_inputs``) and,
if ``Op.saves_output``, of its output; backward refuses to run on values that
changed since, which would give a silently wrong gradient.
"""
import contextlib

import numpy as np

from . import backend, grad_buffers

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


@contextlib.contextmanager
def enable_grad():
    """Context manager (or decorator) in which ops record the graph again, even inside ``no_grad``."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, True
    try:
        yield
    finally:
        _grad_enabled = previous


class set_grad_enabled:
    """Turn recording on or off (PyTorch's ``set_grad_enabled(mode)``).

    As a call, ``set_grad_enabled(False)`` switches at once; as a context manager,
    ``with set_grad_enabled(is_training):`` switches for the block and then
    restores the mode from before the call.
    """

    def __init__(self, mode):
        global _grad_enabled
        if not isinstance(mode, (bool, np.bool_)):
            raise TypeError(f"set_grad_enabled: mode must be True or False, got {mode!r}")
        self.previous, _grad_enabled = _grad_enabled, bool(mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        global _grad_enabled
        _grad_enabled = self.previous


# -- watching the engine -----------------------------------------------------------
# minicnn.autograd.trace() puts watchers here; each has before(function, phase, arrays) and
# after(function, phase, arrays, result). While the list is empty, an op pays one check for it.
_watchers = []


def _run_watched(function, phase, method, arrays):
    """``method(*arrays)``, an Op's forward or backward, announced to every watcher."""
    for watcher in _watchers:
        watcher.before(function, phase, arrays)
    result = method(*arrays)
    for watcher in reversed(_watchers):
        watcher.after(function, phase, arrays, result)
    return result


def _forward(function, arrays):
    """``function.forward(*arrays)``, seen by the watchers if there are any."""
    if _watchers:
        return _run_watched(function, "forward", function.forward, arrays)
    return function.forward(*arrays)


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

    ``minicnn.tensor(data, dtype, device, requires_grad)`` copies ``data``
    instead, as ``torch.tensor`` does. Indexing, comparisons, reductions with
    ``dim`` and the rest follow PyTorch; see :mod:`minicnn.functional`.
    """

    __array_priority__ = 1000  # `ndarray + Tensor` calls Tensor.__radd__
    _grad_buffer = None  # a parameter's view of its optimizer's flat gradient buffer (minicnn.grad_buffers)
    _grad_hooks = None  # {handle id: hook} once register_hook is called (see minicnn.hooks)
    _grad_tensor = None  # the Tensor that .grad last returned, over the array ._grad
    _version_box = None  # [version], made at the first in-place op or detach(); None means version 0

    def __init__(self, data, requires_grad=False):
        data = _as_array(data)
        if requires_grad and data.dtype.kind != "f":
            raise TypeError(f"requires_grad=True needs a floating-point array, got dtype {data.dtype}")
        self.array = data
        self._grad = None  # the gradient's raw array (what .grad wraps)
        self.requires_grad = bool(requires_grad)
        self.creator = None  # the Op that computed this tensor, if recorded

    @classmethod
    def _wrap(cls, data, requires_grad):
        """Fast constructor for op outputs: ``data`` is known to be a valid array."""
        tensor = cls.__new__(cls)
        tensor.array, tensor._grad, tensor.requires_grad, tensor.creator = data, None, requires_grad, None
        return tensor

    @property
    def grad(self):
        """The gradient that ``backward`` left here (a Tensor of this tensor's shape), or None.

        Filled for leaves that require grad, and for other tensors after
        :meth:`retain_grad`. Gradients add up over backward passes until set to
        None (``optimizer.zero_grad()``) or zeroed (``w.grad.zero_()``). For a
        parameter an optimizer holds, it shares the optimizer's flat gradient
        buffer (see :mod:`minicnn.grad_buffers`).
        """
        array = self._grad
        if array is None:
            return None
        wrapper = self._grad_tensor
        if wrapper is None or wrapper.array is not array:
            wrapper = self._grad_tensor = Tensor._wrap(array, False)
        return wrapper

    @grad.setter
    def grad(self, value):
        if value is None:
            self._grad = self._grad_tensor = None
            return
        if not isinstance(value, Tensor):
            raise TypeError(f"assigned grad expected to be a Tensor or None but got grad of type "
                            f"{type(value).__name__}")
        if value.shape != self.shape or value.dtype != self.dtype or value.device != self.device:
            raise RuntimeError(f"assigned grad has {value.dtype} of shape {value.shape} on {value.device}, "
                               f"but the tensor is {self.dtype} of shape {self.shape} on {self.device}")
        self._grad, self._grad_tensor = value.array, value

    grad_fn = property(lambda self: self.creator,
                       doc="The Op that computed this tensor (None for a leaf), PyTorch's name for ``creator``.")

    def retain_grad(self):
        """Keep this non-leaf tensor's gradient in ``.grad`` when backward passes through it
        (a leaf that requires grad keeps its own anyway)."""
        if not self.requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self.creator is not None:
            self.creator._retained = self

    def requires_grad_(self, requires_grad=True):
        """Set ``requires_grad`` in place (leaves only, floating-point only); returns self."""
        if self.creator is not None and not requires_grad:
            raise RuntimeError("requires_grad_(False): you can only change requires_grad flags of leaf "
                               "variables; use tensor.detach() for a copy cut from the graph")
        if requires_grad and self.array.dtype.kind != "f":
            raise RuntimeError(f"requires_grad_(): only tensors of floating point dtype can require "
                               f"gradients, got {self.dtype}")
        self.requires_grad = bool(requires_grad)
        return self

    # -- versions: what in-place ops changed ------------------------------------------
    @property
    def _version(self):
        """How many in-place ops changed this tensor's array (PyTorch's ``t._version``)."""
        box = self._version_box
        return 0 if box is None else box[0]

    def _shared_version_box(self):
        if self._version_box is None:
            self._version_box = [0]
        return self._version_box

    def _bump_version(self):
        """Count one in-place change of ``.array`` (by an op, an optimizer step, a load_state_dict): what
        reads ``_version`` (the autograd's checks, a cache of folded weights) sees the change."""
        self._shared_version_box()[0] += 1

    @property
    def data(self):
        """A new tensor sharing this one's array, cut from the graph (PyTorch's ``.data``).

        Writing into it changes this tensor's values without the autograd's knowledge, as in
        PyTorch. The raw NumPy/CuPy array itself is ``.array`` (minicnn's name, as in Chainer).
        """
        return Tensor._wrap(self.array, False)

    @data.setter
    def data(self, value):
        """``t.data = other``: this tensor now holds ``other``'s array (a Tensor or an array)."""
        array = value.array if isinstance(value, Tensor) else _as_array(value)
        if array.shape != self.array.shape:  # PyTorch allows a new shape; the optimizer's buffers do not
            raise ValueError(f"tensor.data = ...: expected shape {self.shape}, got {array.shape}")
        self.array = array

    # -- plain facts about the array ---------------------------------------
    shape = property(lambda self: self.array.shape, doc="Tuple of dimensions.")
    dtype = property(lambda self: self.array.dtype, doc="NumPy dtype of the data.")
    ndim = property(lambda self: self.array.ndim, doc="Number of dimensions.")
    is_leaf = property(lambda self: self.creator is None,
                       doc="True if no recorded op made this tensor (inputs, parameters).")

    @property
    def device(self):
        """"cpu" or "gpu:N"."""
        return str(backend.device_of(self.array))

    def size(self, dim=None):
        """The shape (a tuple), or with ``dim`` the length of that axis, as in PyTorch."""
        if dim is None:
            return self.array.shape
        return self.array.shape[_validation.normalize_axis("size", dim, self.array.ndim)]

    def numel(self):
        """Number of elements."""
        return self.array.size

    def dim(self):
        """Number of dimensions (PyTorch's name for ``ndim``)."""
        return self.array.ndim

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.array)

    def __repr__(self):
        body = np.array2string(backend.as_numpy(self.array), separator=", ", prefix="Tensor(",
                               threshold=20, edgeitems=2)
        extras = [f"dtype={self.dtype}"]
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self.requires_grad:
            extras.append("requires_grad=True")
        return f"Tensor({body}, {', '.join(extras)})"

    # -- conversions ---------------------------------------------------------
    def numpy(self):
        """The values as a NumPy array: ``.array`` itself on the CPU, a copy from a GPU."""
        return backend.as_numpy(self.array)

    def tolist(self):
        """The values as (nested) Python lists of numbers; a number for a 0-d tensor."""
        return self.numpy().tolist()

    def _one_value(self, what, hint=""):
        if self.array.size != 1:
            raise ValueError(f"{what} needs a one-element tensor, got shape {self.shape}{hint}")
        return self.array.reshape(()).item()

    def item(self):
        """The value of a one-element tensor as a Python number."""
        return self._one_value("item()")

    def __float__(self):
        return float(self._one_value("float()"))

    def __int__(self):
        return int(self._one_value("int()"))

    def __bool__(self):
        return bool(self._one_value("bool()", ": the truth value of more values is ambiguous (use .any() or .all())"))

    def __array__(self, dtype=None, copy=None):
        """``numpy.asarray(tensor)``: the values as a NumPy array (copied from a GPU)."""
        if copy is False and backend.is_gpu_array(self.array):
            raise ValueError(f"numpy.asarray(copy=False): this tensor is on {self.device}; its values "
                             "reach the CPU only as a copy")
        values = backend.as_numpy(self.array)
        if copy is None or backend.is_gpu_array(self.array):  # NumPy 1 never passes copy
            return np.asarray(values, dtype=dtype)
        return np.array(values, dtype=dtype, copy=copy)

    def detach(self):
        """A new tensor sharing ``.array`` and its version counter, cut from the graph (requires_grad=False).

        An in-place op on it counts as one on this tensor (PyTorch's rule; ``.data`` does not share the counter).
        """
        tensor = Tensor._wrap(self.array, False)
        tensor._version_box = self._shared_version_box()
        return tensor

    def to(self, *args, device=None, dtype=None):
        """This tensor on a device ("cpu", "gpu", "gpu:N") and/or as a dtype, as in PyTorch.

        ``t.to("gpu")``, ``t.to(numpy.float64)``, ``t.to("gpu", numpy.float32)``,
        ``t.to(device="cpu", dtype="float64")``. Returns ``self`` when nothing
        changes; otherwise a new tensor, recorded in the graph so that gradients
        flow back to the original, as in PyTorch.
        """
        device, dtype = backend.device_and_dtype("to", args, device, dtype)
        return _arith.to_device_and_dtype(self, device, dtype)

    # -- autograd ------------------------------------------------------------
    def backward(self, gradient=None):
        """Compute the gradient of this tensor with respect to every leaf that requires grad.

        Args:
            gradient: d(loss)/d(self), a Tensor or array of ``self.shape`` (PyTorch's
                name); may be omitted only when this tensor has one element (a loss),
                meaning 1.

        Gradients add into each leaf's ``.grad`` (an inception block's input
        feeds four branches; a tensor reused in one graph sums its gradients).
        The graph's saved arrays are freed as the pass goes, so call backward
        once per forward pass.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() needs a tensor that requires grad: no input of the ops "
                               "that made this tensor has requires_grad=True (or it was made under no_grad)")
        with backend.on_device_of(self.array):  # the gradients are made where this tensor is
            xp = backend.get_array_module(self.array)
            grad = gradient
            if grad is None:
                if self.array.size != 1:
                    raise RuntimeError(f"backward() without gradient needs a one-element tensor (a loss); "
                                       f"this one has shape {self.shape}: pass gradient of that shape")
                grad = xp.ones_like(self.array)
            else:
                grad = grad.array if isinstance(grad, Tensor) else xp.asarray(grad)
                if grad.shape != self.shape:
                    raise ValueError(f"backward(gradient): gradient must have this tensor's shape {self.shape}, "
                                     f"got {grad.shape}")
                grad = grad.astype(self.dtype, copy=False)
            if self.creator is None:
                grad_buffers.accumulate(self, _hooks.run_grad_hooks(self._grad_hooks, grad) if self._grad_hooks else grad)
            else:
                _run_backward(self.creator, grad)

    def register_hook(self, hook):
        """Call ``hook(grad)`` each time backward computes this tensor's gradient (PyTorch's name).

        ``grad`` is a raw array of this tensor's shape (what ``.grad.array`` holds). The
        hook returns None, or an array of that shape and dtype to use instead: for
        a leaf, what is added to ``.grad``; for any other tensor, what flows on to
        the ops that made it. A leaf's hooks run once per backward pass, on the sum
        of its gradients in that pass. Returns a handle: ``handle.remove()``.
        """
        return _hooks.register_tensor_hook(self, hook)

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
    def __rpow__(self, base): return _arith.power(base, self)
    def __matmul__(self, other): return _arith.matmul(self, other)
    def __rmatmul__(self, other): return _arith.matmul(other, self)
    def __abs__(self): return _arith.abs(self)

    def pow(self, exponent):
        """Elementwise self ** exponent (a number or a tensor)."""
        return _arith.power(self, exponent)

    def exp(self):
        """Elementwise e**x."""
        return _arith.exp(self)

    def log(self):
        """Elementwise natural logarithm."""
        return _arith.log(self)

    def abs(self):
        """Elementwise |x|."""
        return _arith.abs(self)

    def sqrt(self):
        """Elementwise square root."""
        return _arith.sqrt(self)

    def clamp(self, min=None, max=None):  # noqa: A002 (PyTorch's argument names)
        """Each element limited to [min, max]; see :func:`minicnn.functional.clamp`."""
        return _arith.clamp(self, min, max)

    clip = clamp

    # -- in-place ops: write into .array (views and an optimizer's flat buffers see it) --
    def __iadd__(self, other): return self._in_place("+=", _arith.add, other)
    def __isub__(self, other): return self._in_place("-=", _arith.sub, other)
    def __imul__(self, other): return self._in_place("*=", _arith.mul, other)
    def __itruediv__(self, other): return self._in_place("/=", _arith.div, other)

    def add_(self, other, *, alpha=1):
        """self += alpha * other, in place; returns self."""
        return self._in_place("add_", _arith.add, other if alpha == 1 else other * alpha)

    def sub_(self, other, *, alpha=1):
        """self -= alpha * other, in place; returns self."""
        return self._in_place("sub_", _arith.sub, other if alpha == 1 else other * alpha)

    def mul_(self, other):
        """self *= other, in place; returns self."""
        return self._in_place("mul_", _arith.mul, other)

    def div_(self, other):
        """self /= other, in place; returns self."""
        return self._in_place("div_", _arith.div, other)

    def clamp_(self, min=None, max=None):  # noqa: A002 (PyTorch's argument names)
        """Each element limited to [min, max], in place; returns self."""
        return self._in_place("clamp_", lambda a, bounds: _arith.clamp(a, *bounds), (min, max))

    def fill_(self, value):
        """Every element set to ``value`` (a number or a one-element tensor); returns self."""
        if self._check_in_place("fill_", value):
            return self._in_place_recorded("fill_", _overwrite(...), value)
        if isinstance(value, Tensor):
            value = value._one_value("fill_(value)")
        return self._write("fill_", value)

    def zero_(self):
        """Every element set to 0; returns self."""
        return self.fill_(0)

    def copy_(self, src):
        """The values of ``src`` (a Tensor or array, broadcast to this shape, from any device or dtype)
        copied into this tensor; returns self."""
        if self._check_in_place("copy_", src):
            src = _arith.to_device_and_dtype(src, backend.device_of(self.array), self.dtype)
            return self._in_place_recorded("copy_", _overwrite(...), src)
        array = src.array if isinstance(src, Tensor) else _as_array(src)
        return self._write("copy_", backend.to_device(array, backend.device_of(self.array), self.dtype))

    def __setitem__(self, key, value):
        """``x[key] = value``: the selected elements set, in place (NumPy's and PyTorch's indexing rules)."""
        if self._check_in_place("x[key] = value", value):
            if isinstance(value, Tensor):
                value = _arith.to_device_and_dtype(value, backend.device_of(self.array), self.dtype)
            self._in_place_recorded("x[key] = value", _overwrite(key), value)
            return
        if isinstance(value, Tensor):
            value = backend.to_device(value.array, backend.device_of(self.array))
        with backend.on_device_of(self.array):
            self.array[_indexing.checked_key(self, key)] = value
        self._bump_version()

    def _check_in_place(self, name, operand):
        """Refuse an in-place op that the autograd could not follow (PyTorch's rules). Returns True if
        it must be recorded: under grad mode, on a tensor in the graph or with an operand that is."""
        if not _grad_enabled:
            return False
        if self.requires_grad and self.creator is None:
            raise RuntimeError(f"{name}: a leaf Variable that requires grad is being used in an in-place "
                               "operation. (Update parameters inside `with minicnn.no_grad():`.)")
        return self.requires_grad or (isinstance(operand, Tensor) and operand.requires_grad)

    def _in_place(self, name, function, other):
        """``function(self, other)`` (an out-of-place op) written back into this tensor."""
        if self._check_in_place(name, other):
            return self._in_place_recorded(name, function, other)
        with no_grad():
            result = self._fitting(name, function(self, other))
        return self._write(name, result.array)

    def _fitting(self, name, result):
        """``result`` if it can be written into this tensor (its shape, a dtype of the same kind or
        lower); else PyTorch's RuntimeError."""
        if result.shape != self.shape:
            raise RuntimeError(f"{name}: output with shape {self.shape} doesn't match the broadcast "
                               f"shape {result.shape}")
        if not np.can_cast(result.dtype, self.dtype, "same_kind"):
            raise RuntimeError(f"{name}: result type {result.dtype} can't be cast to the desired output "
                               f"type {self.dtype}")
        return result

    def _in_place_recorded(self, name, function, other):
        """The in-place op as one more op of the graph (PyTorch's rule): ``function`` is applied to the
        value this tensor had, kept in a copy where the op's backward may read it, and this tensor,
        holding the result in its own array, becomes that op's output."""
        old = Tensor._wrap(self.array.copy(), self.requires_grad)
        old.creator = self.creator  # the ops that used this tensor so far keep their route to it
        result = self._fitting(name, function(old, other))
        result = _arith.to_device_and_dtype(result, dtype=self.dtype)  # recorded: the gradient flows back
        self._write(name, result.array)
        self.creator, self.requires_grad = result.creator, True
        return self

    def _write(self, name, values):
        """``values`` (an array broadcastable to this shape, or a number) stored into ``.array``; the
        version counter bumped. Returns self."""
        with backend.on_device_of(self.array):
            try:
                self.array[...] = values
            except ValueError as error:
                raise RuntimeError(f"{name}: cannot write into this tensor of shape {self.shape}: {error}") from None
        self._bump_version()
        return self

    # -- comparisons: bool tensors, never recorded (minicnn.functional.comparison)
    def __eq__(self, other): return _compare.compare("eq", self, other)
    def __ne__(self, other): return _compare.compare("ne", self, other)
    def __lt__(self, other): return _compare.compare("lt", self, other)
    def __le__(self, other): return _compare.compare("le", self, other)
    def __gt__(self, other): return _compare.compare("gt", self, other)
    def __ge__(self, other): return _compare.compare("ge", self, other)
    __hash__ = object.__hash__  # == is elementwise, so hashing stays by identity (as in PyTorch)

    # -- reductions (minicnn.functional.reduction): dim/keepdim, or NumPy's axis/keepdims
    def sum(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """Sum over ``dim`` (an int, a tuple, or None for all)."""
        return _reduce.sum(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def mean(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """Mean over ``dim`` (an int, a tuple, or None for all)."""
        return _reduce.mean(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, keepdims=None):
        """Variance over ``dim``, unbiased by default; see :func:`minicnn.functional.var`."""
        return _reduce.var(self, dim, unbiased, keepdim, correction=correction, axis=axis, keepdims=keepdims)

    def max(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """The largest element, or along ``dim`` a namedtuple (values, indices)."""
        return _reduce.max(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def min(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """The smallest element, or along ``dim`` a namedtuple (values, indices)."""
        return _reduce.min(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def argmax(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """Position of the first largest element along ``dim`` (None: in the flattened tensor)."""
        return _reduce.argmax(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def argmin(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """Position of the first smallest element along ``dim`` (None: in the flattened tensor)."""
        return _reduce.argmin(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def all(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """True where every element along ``dim`` is nonzero."""
        return _reduce.all(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def any(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """True where some element along ``dim`` is nonzero."""
        return _reduce.any(self, dim, keepdim, axis=axis, keepdims=keepdims)

    # -- shape and indexing (minicnn.functional.shape, .indexing) -----------
    def reshape(self, *shape):
        """The same values in a new shape, given as ints or one tuple; one dimension may be -1."""
        return _shape.reshape(self, _shape.shape_arguments(shape))

    def view(self, *shape):
        """Same as :meth:`reshape` (minicnn has no strides of its own to keep contiguous)."""
        return _shape.reshape(self, _shape.shape_arguments(shape))

    def flatten(self, start_dim=0, end_dim=-1):
        """Axes start_dim..end_dim merged into one."""
        return _shape.flatten(self, start_dim, end_dim)

    def squeeze(self, dim=None):
        """Axes of size 1 dropped: all of them, or those of ``dim``."""
        return _shape.squeeze(self, dim)

    def unsqueeze(self, dim):
        """A new axis of size 1 at position ``dim``."""
        return _shape.unsqueeze(self, dim)

    def permute(self, *dims):
        """The axes reordered, given as ints or one tuple: output axis i is axis dims[i]."""
        return _shape.permute(self, _shape.shape_arguments(dims))

    def transpose(self, dim0, dim1):
        """Axes dim0 and dim1 swapped."""
        return _shape.transpose(self, dim0, dim1)

    T = property(lambda self: _shape.permute(self, tuple(reversed(range(self.ndim)))),
                 doc="The axes in reverse order (for a matrix, its transpose).")

    def __getitem__(self, key):
        return _indexing.index(self, key)

    def __iter__(self):
        """The sub-tensors along the first axis: ``for row in x`` (each one differentiable)."""
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self)))

    # -- PyTorch conveniences: the names PyTorch programs reach for, each delegating to an op above --
    def clone(self):
        """A copy of the values, recorded in the graph (the gradient flows back to this tensor)."""
        return _pointwise.clone(self)

    def type(self, dtype=None):
        """This tensor as ``dtype`` (see :meth:`to`); without one, the type's name ("minicnn.FloatTensor")."""
        if dtype is None:
            return f"minicnn.{_TYPE_NAMES.get(self.dtype.name, self.dtype.name)}Tensor"
        return self._as_dtype(backend.parse_dtype(dtype, "type"))

    def _as_dtype(self, dtype):
        """As ``to(dtype=...)``, but an integer or bool result is cut from the graph (PyTorch's rule)."""
        return (self if dtype.kind == "f" else self.detach()).to(dtype=dtype) if dtype != self.dtype else self

    def float(self):
        """This tensor as float32 (``self`` if it already is)."""
        return self._as_dtype(np.dtype(np.float32))

    def double(self):
        """This tensor as float64 (``self`` if it already is)."""
        return self._as_dtype(np.dtype(np.float64))

    def half(self):
        """This tensor as float16 (``self`` if it already is)."""
        return self._as_dtype(np.dtype(np.float16))

    def long(self):
        """This tensor as int64 (``self`` if it already is)."""
        return self._as_dtype(np.dtype(np.int64))

    def int(self):
        """This tensor as int32 (``self`` if it already is)."""
        return self._as_dtype(np.dtype(np.int32))

    def bool(self):
        """This tensor as bool (``self`` if it already is)."""
        return self._as_dtype(np.dtype(np.bool_))

    def cpu(self):
        """This tensor on the CPU (``self`` if it is there)."""
        return self.to("cpu")

    def cuda(self, device=None):
        """This tensor on a GPU: ``device`` (an index, "cuda:N" or a minicnn.device), else GPU 0."""
        if isinstance(device, (int, np.integer)) and not isinstance(device, bool):
            device = f"cuda:{device}"
        return self.to("cuda" if device is None else device)

    def __index__(self):
        """An integer one-element tensor as a Python int, where Python wants an index (``range(t)``)."""
        if self.dtype.kind not in "iu":
            raise TypeError(f"only integer tensors of one element can be used as an index, got dtype {self.dtype}")
        return int(self._one_value("__index__()"))

    def t(self):
        """The transpose of a tensor of at most 2 dimensions (a 0-D or 1-D one is returned as it is)."""
        if self.ndim > 2:
            raise ValueError(f"t() needs a tensor of at most 2 dimensions, got shape {self.shape}; "
                             "use transpose(dim0, dim1)")
        return _shape.transpose(self, 0, 1) if self.ndim == 2 else self

    def mm(self, other):
        """Matrix product of 2-D tensors: (n, k) @ (k, m) -> (n, m)."""
        return _arith.matmul(self, other)

    def matmul(self, other):
        """Matrix product (``self @ other``); see :func:`minicnn.functional.matmul`."""
        return _arith.matmul(self, other)

    def add(self, other, alpha=1):
        """self + alpha * other, broadcasting."""
        return _arith.add(self, other if alpha == 1 else _arith.mul(other, alpha))

    def sub(self, other, alpha=1):
        """self - alpha * other, broadcasting."""
        return _arith.sub(self, other if alpha == 1 else _arith.mul(other, alpha))

    def mul(self, other):
        """self * other elementwise, broadcasting."""
        return _arith.mul(self, other)

    def div(self, other):
        """self / other elementwise, broadcasting."""
        return _arith.div(self, other)

    def eq(self, other):
        """self == other elementwise: a bool tensor."""
        return _compare.compare("eq", self, other)

    def ne(self, other):
        """self != other elementwise: a bool tensor."""
        return _compare.compare("ne", self, other)

    def __and__(self, other): return _compare.bitwise("and", self, other)
    def __rand__(self, other): return _compare.bitwise("and", self, other)
    def __or__(self, other): return _compare.bitwise("or", self, other)
    def __ror__(self, other): return _compare.bitwise("or", self, other)
    def __xor__(self, other): return _compare.bitwise("xor", self, other)
    def __rxor__(self, other): return _compare.bitwise("xor", self, other)

    def __invert__(self):
        """``~mask``: logical not of a bool tensor, bitwise not of an integer one (never recorded)."""
        if self.dtype.kind not in "biu":
            raise TypeError(f"~ needs a bool or integer tensor, got dtype {self.dtype}")
        with backend.on_device_of(self.array):
            return Tensor._wrap(~self.array, False)

    def norm(self, p=2, dim=None, keepdim=False):
        """The p-norm over ``dim`` (all elements if None): p = 2 ("fro"), 1, or float("inf")."""
        return _pointwise.norm(self, p, dim, keepdim)

    def relu(self):
        """max(self, 0) elementwise."""
        return _activation.relu(self)

    def sigmoid(self):
        """1 / (1 + exp(-self)) elementwise."""
        return _activation.sigmoid(self)

    def tanh(self):
        """The hyperbolic tangent elementwise."""
        return _activation.tanh(self)

    def sin(self):
        """Elementwise sine."""
        return _pointwise.sin(self)

    def cos(self):
        """Elementwise cosine."""
        return _pointwise.cos(self)

    def softmax(self, dim):
        """exp(self) / sum(exp(self)) along ``dim``."""
        return _activation.softmax(self, dim)

    def log_softmax(self, dim):
        """log(softmax(self)) along ``dim``, computed stably."""
        return _activation.log_softmax(self, dim)


# PyTorch's legacy type names, for Tensor.type() without a dtype
_TYPE_NAMES = {"float16": "Half", "float32": "Float", "float64": "Double", "uint8": "Byte", "int8": "Char",
               "int16": "Short", "int32": "Int", "int64": "Long", "bool": "Bool"}


class Op:
    """One differentiable op. Subclasses implement ``forward`` and ``backward`` on raw arrays.

    Non-tensor arguments (stride, axis, ...) go to ``__init__``; tensor
    arguments go to ``__call__``. ``forward(*arrays)`` returns one array;
    ``backward(grad_output)`` returns one gradient (or None) per input, in order.
    ``self.needs_input_grad[i]`` tells ``backward`` which gradients anyone wants.

    Two class attributes say what ``backward`` reads, for the version check
    (an in-place op on such a tensor before backward makes backward refuse):
    ``saved_inputs``, the indices of the inputs whose arrays it reads (None:
    all of them; ``()`` for an op such as addition), and ``saves_output``, True
    if it reads its own output (exp, ReLU).
    """

    saved_inputs = None  # indices of the inputs backward reads; None: all
    saves_output = False  # True if backward reads the output array
    _grad_hooks = None  # the hooks of this Op's output tensor (Tensor.register_hook)
    _retained = None  # the output tensor, once its retain_grad() was called
    _versions = ()  # the inputs' versions when recorded
    _output_version = None  # [version] of the output, if saves_output

    def __call__(self, *inputs):
        arrays = [tensor.array for tensor in inputs]
        device = _one_device(type(self).__name__, arrays)
        record = _grad_enabled and any(tensor.requires_grad for tensor in inputs)
        self.needs_input_grad = tuple(record and tensor.requires_grad for tensor in inputs)
        with backend.running_on(device):  # CuPy runs kernels on its current device: make it the inputs'
            data = self.forward(*arrays) if not _watchers else _run_watched(self, "forward", self.forward, arrays)
        output = Tensor._wrap(data, record)
        if record:
            _record(self, inputs, output)
        return output

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, grad_output):
        raise NotImplementedError

    def gradient_buffer(self, index):
        """Where ``backward`` may write the gradient of input ``index`` itself, or None
        (see :func:`minicnn.grad_buffers.destination`)."""
        return grad_buffers.destination(self.inputs, index)


class _Outline:
    """What backward needs of an input whose values it never reads: shape, dtype, device and creator.

    An op keeps its inputs until its backward has run. A ReLU, an addition or a
    concatenation reads none of them there (``Op.saved_inputs``), so an input
    made by another op is kept as this outline instead of the Tensor, and its
    array is freed as soon as nothing else holds it: a ReLU no longer keeps the
    convolution output before it alive through the forward pass (in GoogLeNet
    with LRN, one array per convolution; PyTorch's in-place ReLU saves the same).
    """

    __slots__ = ("shape", "dtype", "device", "creator")

    def __init__(self, tensor):
        self.shape, self.dtype, self.device, self.creator = tensor.shape, tensor.dtype, tensor.device, tensor.creator


def _kept_inputs(function, inputs):
    """``inputs`` as ``function`` keeps them for backward: the Tensors its backward reads, and every leaf
    (its gradient lands there); an :class:`_Outline` for the others (one per distinct Tensor)."""
    read = function.saved_inputs
    if read is None:
        return inputs
    outlines = {}
    return tuple(tensor if index in read or tensor.creator is None
                 else outlines.setdefault(id(tensor), _Outline(tensor)) for index, tensor in enumerate(inputs))


def _record(function, inputs, output):
    """Make ``function`` the creator of ``output``, noting the versions its backward will check."""
    function.inputs = _kept_inputs(function, inputs)
    # Where each input's gradient goes, fixed now: an in-place op later gives the tensor a new creator,
    # but this op used the value the old one made.
    function.input_creators = tuple(tensor.creator for tensor in inputs)
    output.creator = function
    function._versions = [0 if tensor._version_box is None else tensor._version_box[0] for tensor in inputs]
    if function.saves_output:
        function._output_version = output._version_box = [0]


def _check_versions(function):
    """Refuse to run ``function.backward`` if an array it reads was changed in place since the forward pass."""
    saved = function.saved_inputs
    for index in range(len(function.inputs)) if saved is None else saved:
        tensor = function.inputs[index]
        if tensor._version != function._versions[index]:
            _refuse_modified(function, f"input {index}", tensor, tensor._version, function._versions[index])
    if function._output_version is not None and function._output_version[0] != 0:
        _refuse_modified(function, "output", None, function._output_version[0], 0)


def _refuse_modified(function, which, tensor, version, expected):
    what = "" if tensor is None else f"[{tensor.dtype} {tensor.shape}] "
    raise RuntimeError(f"one of the variables needed for gradient computation has been modified by an inplace "
                       f"operation: {what}is at version {version}; expected version {expected} instead "
                       f"(the {which} of {type(function).__name__}). Change the in-place op (x += y) into an "
                       "out-of-place one (x = x + y), or clone the tensor before changing it")


def _overwrite(key):
    """The out-of-place form of ``x[key] = value``, for an in-place op that the graph records."""
    return lambda x, value: _indexing.set_item(x, key, value)


def _one_device(op_name, arrays):
    """The device holding every array in ``arrays``; ValueError naming each input's device if there are several."""
    devices = [backend.device_of(array) for array in arrays]
    if len(set(devices)) > 1:
        raise ValueError(device_mismatch(op_name, [f"input {i}" for i in range(len(devices))], devices))
    return devices[0]


def device_mismatch(op_name, names, devices):
    """The error message for arrays of one op on several devices."""
    where = ", ".join(f"{name} on {device}" for name, device in zip(names, devices))
    return f"{op_name}: all tensors must be on one device, got {where}; move them with .to(device)"


def _topological_order(root):
    """Ops reachable from ``root``, each before the Ops that made its inputs.

    An iterative depth-first search (no recursion limit, however deep the net):
    an Op is appended once all Ops feeding it are appended, and the
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
        _inputs_of(function)
        for creator in function.input_creators:
            if creator is not None and creator not in visited:
                stack.append((creator, False))
    order.reverse()
    return order


def _inputs_of(function):
    if not hasattr(function, "inputs"):
        raise RuntimeError("backward() through a graph that was already used: its saved arrays "
                           "were freed by the first backward(); run the forward pass again, or "
                           "add the losses and call backward() once")
    return function.inputs


def _check_gradients(function, input_grads):
    """Refuse a backward whose gradients do not fit its inputs, naming the Op and the input.

    A gradient must be an array of exactly its input's shape, dtype and device
    (None where no gradient is wanted). Checking here, right after the
    Op that made the mistake, turns a silent wrong result or a baffling
    error many ops later into one message at the cause.
    """
    name = type(function).__name__
    inputs = function.inputs
    if len(input_grads) != len(inputs):
        raise RuntimeError(f"{name}.backward returned {len(input_grads)} gradient(s) for {len(inputs)} "
                           f"input(s): return one per input, in order (None where none is needed)")
    for index, (tensor, grad, needed) in enumerate(zip(inputs, input_grads, function.needs_input_grad)):
        if grad is None or not needed:
            continue
        if not (isinstance(grad, (np.ndarray, np.generic)) or backend.is_gpu_array(grad)):
            problem = f"is a {type(grad).__name__}, not an array"
        elif grad.shape != tensor.shape:
            problem = f"has shape {grad.shape}"
        elif grad.dtype != tensor.dtype:
            problem = f"has dtype {grad.dtype}"
        elif str(backend.device_of(grad)) != tensor.device:
            problem = f"is on {backend.device_of(grad)}"
        else:
            continue
        raise RuntimeError(f"{name}.backward: the gradient for input {index} {problem}, but that input is "
                           f"{tensor.dtype} of shape {tensor.shape} on {tensor.device}; a gradient must "
                           "match its input in shape, dtype and device")


def _retain(tensor, grad):
    """Keep ``grad`` as non-leaf ``tensor``'s ``.grad`` (Tensor.retain_grad), added to one kept before."""
    tensor._grad = grad.copy() if tensor._grad is None else tensor._grad + grad


def _run_backward(root, grad):
    grads = {root: grad}  # gradient of each Op's output, summed over its consumers
    hooked_leaves = {}  # id -> [leaf, gradient summed over this pass], for leaves with hooks
    for function in _topological_order(root):
        grad_output = grads.pop(function, None)
        if grad_output is not None:
            with backend.on_device_of(grad_output):
                if function._grad_hooks:
                    grad_output = _hooks.run_grad_hooks(function._grad_hooks, grad_output)
                if function._retained is not None:
                    _retain(function._retained, grad_output)
                _check_versions(function)
                if _watchers:
                    input_grads = _run_watched(function, "backward", function.backward, (grad_output,))
                else:
                    input_grads = function.backward(grad_output)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            _check_gradients(function, input_grads)
            for tensor, creator, needed, input_grad in zip(function.inputs, function.input_creators,
                                                           function.needs_input_grad, input_grads):
                if input_grad is None or not needed:
                    continue
                with backend.on_device_of(input_grad):  # the input's device (ToDevice crosses devices)
                    if creator is None and tensor._grad_hooks:
                        _hooks.hold_leaf_gradient(hooked_leaves, tensor, input_grad)
                    elif creator is None:
                        grad_buffers.accumulate(tensor, input_grad)
                    elif creator in grads:
                        grads[creator] = _arith.add_arrays(grads[creator], input_grad)
                    else:
                        grads[creator] = input_grad
        function.__dict__.clear()  # free saved arrays and the links to inputs
    for leaf, leaf_grad in hooked_leaves.values():
        with backend.on_device_of(leaf_grad):
            grad_buffers.accumulate(leaf, _hooks.run_grad_hooks(leaf._grad_hooks, leaf_grad))


# The ops behind Tensor's methods, and the hooks; they need Tensor and Op above.
from . import hooks as _hooks  # noqa: E402
from .functional import arithmetic as _arith, comparison as _compare  # noqa: E402
from .functional import indexing as _indexing, reduction as _reduce, shape as _shape  # noqa: E402
from .functional import activation as _activation, pointwise as _pointwise  # noqa: E402
from .functional import validation as _validation  # noqa: E402
