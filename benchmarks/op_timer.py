"""Where a training step's time goes, per op type.

``time_ops()`` wraps the ``forward`` and ``backward`` of every minicnn Function
class with a timer for as long as the ``with`` block lasts. On a GPU each timed
call synchronises the device before and after, so the times are real but the
step runs slower than it does unprofiled: read them as shares of a step, and
take throughput from an unprofiled run.
"""
import collections
import contextlib
import time

from minicnn.tensor import Function

# Function class name -> the layer type it reports under
CATEGORY = {
    "Conv2dFunction": "conv", "MaxPool2dFunction": "pooling", "AvgPool2dFunction": "pooling",
    "AdaptiveAvgPool2dFunction": "pooling", "LocalResponseNormFunction": "LRN", "BatchNormFunction": "batch norm",
    "ConcatFunction": "concat", "ReLUFunction": "ReLU", "DropoutFunction": "dropout", "LinearFunction": "linear",
    "CrossEntropyFunction": "loss",
}


def _function_classes(base=Function):
    for cls in base.__subclasses__():
        yield cls
        yield from _function_classes(cls)


@contextlib.contextmanager
def time_ops(synchronize):
    """Yield a dict (category, "forward"|"backward") -> seconds, filled while the block runs.

    Args:
        synchronize: a function that waits for the device (a no-op on the CPU).
    """
    totals = collections.defaultdict(float)
    patched = []
    for cls in set(_function_classes()):
        for method in ("forward", "backward"):
            original = cls.__dict__.get(method)
            if original is None:
                continue
            key = (CATEGORY.get(cls.__name__, "other"), method)

            def timed(self, *args, _original=original, _key=key):
                synchronize()
                start = time.perf_counter()
                out = _original(self, *args)
                synchronize()
                totals[_key] += time.perf_counter() - start
                return out

            setattr(cls, method, timed)
            patched.append((cls, method, original))
    try:
        yield totals
    finally:
        for cls, method, original in patched:
            setattr(cls, method, original)
