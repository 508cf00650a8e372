"""PyTorch's ``torch.autograd`` names: ``Function`` (a user's own op, :mod:`minicnn.custom_function`),
``no_grad``, and ``trace()``: watching the engine, every op, forward and backward, in the order it ran.

    from minicnn import autograd

    with autograd.trace(model) as ops:      # model: optional, to learn which module ran each op
        loss = F.cross_entropy(model(x), y)
        loss.backward()
    for op in ops:
        print(op)    # forward   Conv2dFunction in conv:  (2, 3, 8, 8) float32, (4, 3, 3, 3) float32 -> ...

``trace()`` is the one engine-level hook: while it is active, every Op's
``forward`` and ``backward`` is announced to it (``minicnn.engine._watchers``),
and it keeps an :class:`OpRecord` for each: the op's name, its input and output
arrays' shapes, dtypes and devices, its time, the bytes it returned and kept
for backward, its multiply-adds and (where something counts them) the device
operations it caused. A backward record's inputs are the gradient arriving at
the op's output; its outputs are the gradients it returns, one per input of
the forward call (None where nobody needs one).

Outside a ``trace()`` block the engine pays one check per op for this.
"""
import contextlib
import time
import weakref
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from . import backend
from . import engine as _engine
from .custom_function import Function, FunctionCtx  # noqa: F401 (torch.autograd.Function)
from .engine import no_grad  # noqa: F401 (torch.autograd.no_grad)


class ArraySpec(NamedTuple):
    """What a trace keeps of an array: never the array itself, which would stay in memory."""

    shape: tuple
    dtype: np.dtype
    device: str

    @property
    def nbytes(self):
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    def __str__(self):
        where = "" if self.device == "cpu" else f" {self.device}"
        return f"{self.shape} {self.dtype}{where}"


def describe(array):
    """The :class:`ArraySpec` of ``array`` (None stays None)."""
    if array is None:
        return None
    return ArraySpec(tuple(array.shape), array.dtype, str(backend.device_of(array)))


@dataclass
class OpRecord:
    """One call of one op's forward or backward.

    Attributes:
        phase: "forward" or "backward".
        name: the Op's class name ("Conv2dFunction").
        inputs: ArraySpecs of the arrays going in (backward: the output's gradient).
        outputs: ArraySpecs of what came out (backward: one gradient per forward input, or None).
        seconds: wall time of the call (on a GPU, with ``synchronize``: including the device's work).
        module: dotted name of the innermost module that made the op ("" for the model itself),
            or None (outside the model, or no model given).
        multiply_adds: products of a weight with an input (conv, linear, matmul); 0 for other ops.
        saved_bytes: forward only: bytes of the new arrays the op keeps for its backward
            (im2col columns, masks, normalized values), not counting its inputs and output.
        device_ops: device operations the call caused, where a counter is registered
            (:func:`minicnn.backend.set_device_counter`); else None.
    """

    phase: str
    name: str
    inputs: tuple
    outputs: tuple
    seconds: float
    module: str = None
    multiply_adds: int = 0
    saved_bytes: int = 0
    device_ops: int = None

    @property
    def output_bytes(self):
        """Bytes of the arrays the call returned: new memory for its results."""
        return sum(spec.nbytes for spec in self.outputs if spec is not None)

    def __str__(self):
        def listed(specs):
            return ", ".join("-" if spec is None else str(spec) for spec in specs)
        where = f" in {self.module}" if self.module else ""
        return f"{self.phase:<8}  {self.name}{where}:  {listed(self.inputs)} -> {listed(self.outputs)}"


# -- multiply-adds ---------------------------------------------------------------------------------
def _size(shape):
    return int(np.prod(shape, dtype=np.int64))


# op name -> (input shapes, output shape) -> products of a weight with an input in its forward
FORWARD_MULTIPLY_ADDS = {
    "Conv2dFunction": lambda inputs, out: _size(out) * _size(inputs[1][1:]),  # weight (O, C, kh, kw)
    "LinearFunction": lambda inputs, out: _size(out) * inputs[1][1],          # weight (out, in)
    "MatMulFunction": lambda inputs, out: _size(out) * inputs[0][-1],
}


def multiply_adds(name, phase, input_shapes, output_shape, gradients=None):
    """Multiply-adds of one call of op ``name``: its forward's, or in backward the same again for
    each of the first two inputs (data and weight) whose gradient it computed."""
    rule = FORWARD_MULTIPLY_ADDS.get(name)
    if rule is None:
        return 0
    forward = rule(input_shapes, output_shape)
    if phase == "forward":
        return forward
    return forward * sum(grad is not None for grad in gradients[:2])


# -- the trace ---------------------------------------------------------------------------------------
def _root(array):
    """The array that owns ``array``'s memory (itself, or the base of a view)."""
    while getattr(array, "base", None) is not None:
        array = array.base
    return array


def _arrays_in(values):
    for value in values:
        if isinstance(value, (tuple, list)):
            yield from _arrays_in(value)
        elif isinstance(value, np.ndarray) or backend.is_gpu_array(value):
            yield value


class Trace:
    """What :func:`trace` records: the :class:`OpRecord` s in order (iterate, index, ``len``).

    Attributes:
        ops: the records.
        module_types: dotted module name -> class name, for the model given to trace().
        bookkeeping_seconds: time the trace spent on itself, outside the ops' own times.
    """

    def __init__(self, synchronize=None):
        self.ops, self.module_types, self.bookkeeping_seconds = [], {}, 0.0
        self._synchronize = synchronize
        self._module_stack = []
        self._module_of = weakref.WeakKeyDictionary()  # Op -> the module that called it
        self._pending = []  # per call in progress: (ids of arrays it held before, device ops, start)

    def __iter__(self):
        return iter(self.ops)

    def __len__(self):
        return len(self.ops)

    def __getitem__(self, index):
        return self.ops[index]

    def module_of(self, function):
        """Dotted name of the module that made ``function`` (an Op object), or None."""
        return self._module_of.get(function)

    # Called by the model's forward hooks (see trace()).
    def _enter_module(self, name):
        self._module_stack.append(name)

    def _leave_module(self):
        self._module_stack.pop()

    # The watcher protocol of minicnn.engine: around every forward and backward.
    def before(self, function, phase, arrays):
        entered = time.perf_counter()
        if phase == "forward" and self._module_stack:
            self._module_of[function] = self._module_stack[-1]
        held = {id(a) for a in _arrays_in(vars(function).values())} if phase == "forward" else None
        self.bookkeeping_seconds += time.perf_counter() - entered
        if self._synchronize is not None:
            self._synchronize()
        self._pending.append((held, backend.device_operation_count(), time.perf_counter()))

    def after(self, function, phase, arrays, result):
        count_after = backend.device_operation_count()
        if self._synchronize is not None:
            self._synchronize()
        finished = time.perf_counter()
        held, count_before, started = self._pending.pop()
        results = result if isinstance(result, tuple) else (result,)
        if phase == "forward":
            input_shapes, output_shape = [a.shape for a in arrays], result.shape
            not_new = held | {id(_root(a)) for a in (*arrays, result)}
            saved = sum(a.nbytes for a in _arrays_in(vars(function).values())
                        if id(a) not in not_new and id(_root(a)) not in not_new)
        else:
            input_shapes, output_shape = [t.shape for t in function.inputs], arrays[0].shape
            results, saved = results[:len(input_shapes)], 0  # e.g. no bias: conv still returns gb = None
        self.ops.append(OpRecord(
            phase, type(function).__name__, tuple(map(describe, arrays)), tuple(map(describe, results)),
            finished - started, self._module_of.get(function),
            multiply_adds(type(function).__name__, phase, input_shapes, output_shape, results), saved,
            None if count_before is None else count_after - count_before))
        self.bookkeeping_seconds += time.perf_counter() - finished


@contextlib.contextmanager
def trace(model=None, synchronize=None):
    """Record every op's forward and backward while the ``with`` block runs.

    Args:
        model: optional Module; forward hooks on it and on every module inside it
            tell the trace which module made each op (``OpRecord.module``).
        synchronize: optional function that waits for the device (e.g.
            ``lambda: minicnn.backend.synchronize("gpu")``), called before and
            after each op so that its time includes the device's work. Without
            it, a GPU op's time is only the time to queue its work.
    Yields:
        a :class:`Trace`, filled as ops run.
    """
    recorded = Trace(synchronize)
    handles = []
    try:
        if model is not None:
            for name, module in model.named_modules():
                recorded.module_types[name] = type(module).__name__
                handles.append(module.register_forward_pre_hook(
                    lambda module, args, name=name: recorded._enter_module(name)))
                handles.append(module.register_forward_hook(lambda module, args, output: recorded._leave_module()))
        _engine._watchers.append(recorded)
        yield recorded
    finally:
        if recorded in _engine._watchers:
            _engine._watchers.remove(recorded)
        for handle in handles:
            handle.remove()
