"""Fast kernels for the hot paths: numba on the CPU (:mod:`.cpu`).

Each op in :mod:`minicnn.functional` has a plain version written once for
NumPy and CuPy. Where the CPU has a faster kernel for the same job, the op
chooses explicitly, in code a reader (and a linter) can follow::

    if kernels.use_numba(x):
        return kernels.cpu.im2col(x, kernel, stride, padding)
    return im2col_strided(x, kernel, stride, padding)

Every fast kernel is tested against its plain twin. Set the environment
variable ``MINICNN_PLAIN_KERNELS=1`` to use only the plain versions (for
comparisons and debugging).

``kernels.cpu`` is imported on first use, not with ``import minicnn``
(importing numba takes a while).

Importing minicnn changes nothing in the process. :func:`configure_cpu` holds
the two process-wide settings that make CPU training faster; the trainer and
the benchmark call it, and a library user may.
"""
import importlib
import os

import numpy as np

from ..backend import keep_freed_host_memory


def use_numba(array):
    """True when ``array`` is a NumPy array and the numba kernels are switched on."""
    return isinstance(array, np.ndarray) and os.environ.get("MINICNN_PLAIN_KERNELS") != "1"


def __getattr__(name):
    # `kernels.cpu` is loaded (and numba imported) the first time an op reaches for it.
    if name == "cpu":
        return importlib.import_module(f"{__name__}.cpu")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def configure_cpu(threading_layer="workqueue", keep_freed_memory=True):
    """Opt in to the process-wide settings that make CPU training faster. Returns what was applied.

    Args:
        threading_layer: numba's thread pool for the parallel kernels. numba's
            default (OpenMP) keeps its threads spinning after each parallel loop, and
            so does the BLAS library after each matrix product; on a machine with few
            cores they take the cores the other needs (a 0.03 ms kernel took 10 ms
            right after a matrix product). numba's "workqueue" threads sleep when idle.
            numba fixes its pool when the first parallel kernel runs, so call this
            before any (a later call cannot change it and leaves it as it is). A layer
            chosen in the NUMBA_THREADING_LAYER environment variable is respected.
            None: leave numba alone.
        keep_freed_memory: ask glibc to keep freed memory for reuse
            (:func:`minicnn.backend.keep_freed_host_memory`): -15% time per training
            step, at the cost of the process keeping its peak memory.
    Returns:
        dict with "threading_layer" (the layer numba will use or uses, or None when
        left alone) and "keep_freed_memory" (True if glibc accepted it).
    """
    applied = {"threading_layer": None, "keep_freed_memory": False}
    if threading_layer is not None:
        import numba
        try:
            applied["threading_layer"] = numba.threading_layer()  # the pool already runs: too late
        except ValueError:  # not started yet
            if "NUMBA_THREADING_LAYER" not in os.environ:
                numba.config.THREADING_LAYER = threading_layer
            applied["threading_layer"] = numba.config.THREADING_LAYER
    if keep_freed_memory:
        applied["keep_freed_memory"] = keep_freed_host_memory()
    return applied
