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


def configure_cpu(threading_layer="workqueue", keep_freed_memory=True, threads=None):
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
        threads: at most this many threads for numba's kernels and for NumPy's
            BLAS (OpenBLAS) products; None leaves both at their counts (one per
            core, or what NUMBA_NUM_THREADS / OPENBLAS_NUM_THREADS say). Processes
            sharing a machine should split its cores: two that each ran 2 threads
            on 2 cores took a training step in 68 s instead of 5.8 s.
    Returns:
        dict with "threading_layer" (the layer numba will use or uses, or None when
        left alone), "keep_freed_memory" (True if glibc accepted it), and with
        ``threads``, "threads": (numba's thread count, BLAS's or None where it
        could not be read).
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
    if threads is not None:
        applied["threads"] = _cap_threads(threads)
    return applied


# OpenBLAS's thread-count functions, by the names NumPy's wheels (scipy-openblas) and plain builds export.
_OPENBLAS_THREADS = (("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
                     ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
                     ("openblas_get_num_threads", "openblas_set_num_threads"))


def _cap_threads(threads):
    """Lower numba's and OpenBLAS's thread counts to ``threads`` (never raise them); returns both counts."""
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"configure_cpu: threads must be an int >= 1, got {threads!r}")
    import numba
    if threads < numba.config.NUMBA_NUM_THREADS:
        numba.set_num_threads(threads)  # starts numba's pool (of the layer chosen above)
    blas = None
    for get, set_ in _OPENBLAS_THREADS:
        library = _loaded_library(get)
        if library is not None:
            if threads < getattr(library, get)():
                getattr(library, set_)(threads)
            blas = getattr(library, get)()
            break
    return min(threads, numba.config.NUMBA_NUM_THREADS), blas


def _loaded_library(symbol):
    """A shared library already loaded into this process that exports ``symbol``, or None (Linux only)."""
    import ctypes
    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "blas" in line.split()[-1].lower()})
    except OSError:
        return None
    for path in paths:
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        if hasattr(library, symbol):
            return library
    return None
