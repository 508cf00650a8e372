"""Fast kernels for the hot paths: numba on the CPU (:mod:`.cpu`), CuPy on the GPU (:mod:`.gpu`).

Each op in :mod:`minicnn.functional` has a plain version written once for NumPy
and CuPy; where a backend has a faster kernel for the same job, the op asks
:func:`find` for it. Every fast kernel is tested against its plain twin.
Set the environment variable ``MINICNN_PLAIN_KERNELS=1`` to use only the plain
versions (for comparisons and debugging).
"""
import importlib
import os

import numpy as np

# numba's default OpenMP threads spin-wait after each parallel loop and fight the BLAS threads
# (see cpu.py), so minicnn asks for numba's sleeping "workqueue" threads. numba fixes its
# threads the first time any code starts them, so the choice is made here, when minicnn is
# imported: through the variable numba reads when it is imported, and in cpu.py for a numba
# imported earlier. A layer the user chose in NUMBA_THREADING_LAYER is left alone.
USER_THREADING_LAYER = os.environ.get("NUMBA_THREADING_LAYER")
os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")

_modules = {}


def _load(name):
    if name not in _modules:
        try:
            _modules[name] = importlib.import_module(f"{__name__}.{name}")
        except ImportError:  # numba missing: the plain versions still work
            _modules[name] = None
    return _modules[name]


def find(name, array):
    """The fast kernel called ``name`` for ``array``'s backend, or None if there is none."""
    if os.environ.get("MINICNN_PLAIN_KERNELS") == "1":
        return None
    module = _load("cpu" if isinstance(array, np.ndarray) else "gpu")
    return getattr(module, name, None) if module is not None else None
