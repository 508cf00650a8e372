"""Where a training step's time goes, per op type, from minicnn.autograd.trace().

``time_ops()`` watches every op's forward and backward for as long as the
``with`` block lasts (the engine's own hook: nothing is patched). On a GPU each
op is synchronised before and after, so the times are real but the step runs
slower than it does unprofiled: read them as shares of a step, and take
throughput from an unprofiled run.
"""
import collections
import contextlib

from minicnn import autograd

# Op class name -> the layer type it reports under
CATEGORY = {
    "Conv2dFunction": "conv", "MaxPool2dFunction": "pooling", "AvgPool2dFunction": "pooling",
    "AdaptiveAvgPool2dFunction": "pooling", "LocalResponseNormFunction": "LRN", "BatchNormFunction": "batch norm",
    "ConcatFunction": "concat", "ReLUFunction": "ReLU", "DropoutFunction": "dropout", "LinearFunction": "linear",
    "CrossEntropyFunction": "loss",
}


@contextlib.contextmanager
def time_ops(synchronize):
    """Yield a dict (category, "forward"|"backward") -> seconds, filled when the block ends.

    The trace's own bookkeeping goes under ("profiler", "bookkeeping"), so that
    it is not mistaken for the engine's overhead.

    Args:
        synchronize: a function that waits for the device (a no-op on the CPU).
    """
    totals = collections.defaultdict(float)
    with autograd.trace(synchronize=synchronize) as ops:
        yield totals
    for op in ops:
        totals[(CATEGORY.get(op.name, "other"), op.phase)] += op.seconds
    totals[("profiler", "bookkeeping")] += ops.bookkeeping_seconds
