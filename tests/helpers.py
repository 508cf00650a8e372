"""Small helpers for the tests."""
import contextlib
import os
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from minicnn import Tensor, backend, distributed

ROOT = pathlib.Path(__file__).resolve().parents[1]


def tensor(array, device="cpu", requires_grad=False):
    """A Tensor holding ``array`` (a NumPy array or nested list) on ``device``."""
    return Tensor(backend.to_device(np.asarray(array), device), requires_grad=requires_grad)


def tie_free(rng, shape):
    """Shuffled, well-separated values: max pooling has no ties to break."""
    size = int(np.prod(shape))
    return rng.permutation(np.linspace(-1, 1, size)).reshape(shape)


def on_cupy_standin():
    """True when the GPU code path runs on the CuPy stand-in, which counts device work (real CuPy does not)."""
    return backend.device_counts() is not None


def assert_same_as_plain(fast, plain):
    """A fast kernel's result against its plain twin's: bit for bit on NumPy and on the CuPy stand-in, where
    both add in the plain version's order. On a real GPU a CuPy reduction adds in an order of its own (a tree
    within a block), so a sum may differ in its last bits there."""
    exact = not backend.is_gpu_array(fast) or on_cupy_standin()
    fast, plain = backend.as_numpy(fast), backend.as_numpy(plain)
    if exact:
        np.testing.assert_array_equal(fast, plain)
    else:
        eps, scale = np.finfo(plain.dtype).eps, float(np.abs(plain).max(initial=0.0))
        np.testing.assert_allclose(fast, plain, rtol=4 * eps, atol=32 * eps * scale)


def mpiexec():
    """The mpiexec that belongs to the installed mpi4py: the one beside Python (the mpich wheel's), or on PATH."""
    pytest.importorskip("mpi4py", reason="the mpi extra is not installed (python -m pip install -e '.[mpi]')")
    beside_python = pathlib.Path(sys.executable).parent / "mpiexec"
    found = str(beside_python) if beside_python.exists() else shutil.which("mpiexec")
    assert found, "mpi4py is installed, but there is no mpiexec beside Python or on PATH"
    return found


def _mpi_job(command, ranks):
    """(argv, environment) that run ``python *command`` in ``ranks`` processes under mpiexec, with this
    checkout first and one thread per process."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1")  # 2 ranks on 2 cores: one thread each
    env = {name: value for name, value in env.items() if name not in distributed.LAUNCHER_VARIABLES}
    return [mpiexec(), "-n", str(ranks), sys.executable, *command], env


def launch_mpi(command, ranks=2, timeout=120):
    """Run ``python *command`` in ``ranks`` processes under mpiexec, from the repository root, with this
    checkout first and one thread per process; returns (exit code, output, seconds)."""
    argv, env = _mpi_job(command, ranks)
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stdout + done.stderr, time.perf_counter() - start


def start_mpi(command, ranks=2):
    """:func:`launch_mpi` without waiting: the running mpiexec (a Popen; its output, stdout and stderr
    together, is read with ``communicate``). The caller waits for it, or kills it."""
    argv, env = _mpi_job(command, ranks)
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@contextlib.contextmanager
def fast_form_replaced(forms, device, function):
    """Within the block, the op of ``forms`` (a minicnn.kernels.dispatch.Forms) runs ``function`` as its fast
    form for ``device`` ("cpu" or "gpu"), chosen afresh; afterwards its own again."""
    saved = forms.fast[device]
    forms.fast[device] = function
    forms.reset()
    try:
        yield
    finally:
        forms.fast[device] = saved
        forms.reset()
