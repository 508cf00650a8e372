"""Fast kernels for the hot paths: numba on the CPU (:mod:`.cpu`).

Each op in :mod:`minicnn.functional` has a plain version written once for
NumPy and CuPy. Where the CPU has a faster kernel for the same job, the op
chooses explicitly, in code a reader (and a linter) can follow::

    if kernels.use_numba(x):
        return kernels.cpu.im2col(x, kernel, stride, padding)
    return im2col_strided(x, kernel, stride, padding)

On a GPU, :mod:`.gpu_fused` fuses chains of elementwise steps (batch norm,
LRN, the optimizers' update rules...) into single kernels with ``cupy.fuse``,
chosen with ``if kernels.use_gpu_kernels(x):`` in the same way.

Every fast kernel is tested against its plain twin. Set the environment
variable ``MINICNN_PLAIN_KERNELS=1`` to use only the plain versions (for
comparisons and debugging).

``kernels.cpu`` is imported on first use, not with ``import minicnn``
(importing numba takes a while). The kernels run on minicnn's own thread pool
(:mod:`.threads`), whose threads start with the first kernel that needs them.

Importing minicnn changes nothing in the process, and its ops leave nothing
changed behind them: BLAS runs on one thread only while minicnn's own products
run. :func:`configure_cpu` holds the process-wide settings (the thread count,
glibc's handling of freed memory); the trainer and the benchmark call it, and a
library user may.
"""
import importlib
import os

import numpy as np

from ..backend import is_gpu_array, keep_freed_host_memory
from . import threads as _threads


def use_numba(array):
    """True when ``array`` is a NumPy array and the numba kernels are switched on."""
    return isinstance(array, np.ndarray) and os.environ.get("MINICNN_PLAIN_KERNELS") != "1"


def use_gpu_kernels(array):
    """True when ``array`` is a CuPy array and the GPU's fast paths are switched on."""
    return is_gpu_array(array) and os.environ.get("MINICNN_PLAIN_KERNELS") != "1"


_SUBMODULES = ("cpu", "gpu", "gpu_fused")


def __getattr__(name):
    # `kernels.cpu` (numba) and the GPU modules are loaded the first time an op reaches for them.
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def configure_cpu(threads=None, keep_freed_memory=True):
    """Opt in to the process-wide settings of CPU training. Returns what was applied.

    minicnn is fast without it: its kernels and matrix products run on its own
    thread pool, one thread per core this process may use, and NumPy's BLAS
    (OpenBLAS) runs on one thread only while minicnn's products run, as blocks
    on that pool (BLAS's own threads cut each product into one equal share per
    thread and spin while they wait for the slowest: beside another busy
    program a training step got 16 times slower). NumPy's other products keep
    their threads.

    Args:
        threads: how many threads minicnn's CPU work uses (default: every core
            this process may run on).
        keep_freed_memory: ask glibc to keep freed memory for reuse
            (:func:`minicnn.backend.keep_freed_host_memory`), for the whole
            process and for good: big arrays are then not handed back to the
            system and faulted in again at every step, at the cost of the
            process keeping its peak memory.
    Returns:
        dict with "threads" (minicnn's thread count), "split_matmuls" (True
        when minicnn runs its products on its threads; with another BLAS than
        OpenBLAS they are left to it) and "keep_freed_memory" (True if glibc
        accepted it).
    """
    _threads.set_thread_count(_threads.available_cores() if threads is None else threads)
    return {"threads": _threads.thread_count(), "split_matmuls": _threads.split_matmuls(),
            "keep_freed_memory": bool(keep_freed_memory) and keep_freed_host_memory()}
