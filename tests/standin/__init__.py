"""A strict CuPy stand-in backed by NumPy, for running minicnn's GPU code path without a GPU.

The test suite installs it in place of ``cupy`` and ``cupyx`` when no real GPU
is present (``install()``; the repository's conftest.py decides), and
``python -m tests.standin.run -m MODULE ...`` (or ``... SCRIPT.py``) runs a
command on it, also under ``mpiexec``, each process with its own simulated
devices. minicnn, models/, train/ and benchmarks/ never import this package:
they import ``cupy`` and get the stand-in.

Strict, because a stand-in that is kinder than CuPy would let GPU bugs pass:

* The array type (``ndarray.py``) is not a numpy.ndarray, and ``__array__``
  raises TypeError as CuPy's does: ``numpy.asarray(device_array)``, numba, or any
  NumPy code that would copy a device array to the host fails here as on a GPU.
  Reductions and ``x[i]`` give 0-d device arrays; there is no ``__index__``.
* Operands are checked as CuPy's kernels check them: Python and NumPy scalars
  are fine, a NumPy array (0-d too) is ``TypeError: Unsupported type``, and a
  device array must live on the current device (several devices are
  simulated, without peer access: ``cuda.py``).
* Only CuPy's names exist, with CuPy's signatures (``api.py``; every name and
  signature is held to the installed real CuPy by ``against_cupy.py``, in CI):
  a NumPy-only keyword is a TypeError, and a name the stand-in lacks an
  AttributeError that says so.
* ``CUPY_TF32`` is read once, at the first float32 matrix product, and TF32 is
  emulated by rounding the inputs of float32 products (``linalg.py``).
* ``x.data.ptr`` is a made-up device address that leads back to the array's
  memory (``addresses.py``), and ``cupy.cuda.nccl`` (``nccl.py``) carries
  NCCL's collectives over MPI between the processes, refusing a pointer into
  no live array or into one on another device, a count or datatype that does
  not fit, and ranks that make different calls.

What is counted (``counters.py``), per call site (the first frame outside this package):

    device_ops   one per kernel CuPy would launch: each ufunc call, reduction, fill,
                 memset (zeros), copy (astype, copy, ascontiguousarray, a reshape
                 that cannot be a view), gather/scatter (advanced indexing), matrix
                 product, random generation, NCCL collective (which reads nothing
                 either: its data stays on the devices). Views cost nothing (basic
                 slicing, transpose, a reshape that can be a view, broadcast_to,
                 split...), and nor does an allocation (empty) or reading
                 ``x.data.ptr``. Composite functions count the
                 kernels CuPy's implementation launches (pad: a fill and a copy;
                 concatenate: one copy per array; a batched matmul with a broadcast
                 operand: three pointer kernels and the gemm...), as each one's
                 docstring says. An operation on an empty array launches nothing.
    syncs        device -> host reads: .get(), .item(), .tolist(), float(), int(),
                 bool(), repr(), boolean-mask indexing, and the functions CuPy
                 must read the device in (nonzero, argwhere, flatnonzero, unique:
                 one each; bincount: two).
    uploads      host -> device copies: cupy.array/asarray of host data, ndarray.set,
                 a NumPy array or list used as an index, a host value scattered in.

Device.synchronize() waits but reads nothing, so it is not counted.

``cupy.fuse`` (``fusion.py``) runs the function on the device arrays and
counts the call as one device operation. What CuPy's fusion compiles, and that
it never falls back to its experimental fusion, is proven on real CuPy
(tests/test_real_cupy.py over tests/fakecuda), not here.

Extending it. ``counters.one_operation()`` counts a composite call as one device
operation (``cupy.fuse`` uses it); ``ElementwiseKernel``/``RawKernel``/
``ReductionKernel`` calls that run a registered NumPy twin belong there. A new
CuPy module (``cupy.fft``...) is added to ``installer.MODULE_NAMES`` and what it
implements listed in ``installer._implemented``.

The API for tests:

    from tests import standin
    standin.install(device_count=2)       # what conftest.py does
    with standin.counting() as counter:   # totals and a per-site breakdown
        ...
    counter.device_ops, counter.syncs, counter.uploads, counter.sites("syncs"), counter.report()
    with standin.simulated_devices(0):    # a machine with CuPy but no GPU
        ...
"""
import contextlib

from . import cuda
from .counters import Counter, counting, one_operation, reset, totals
from .installer import install

__all__ = ["Counter", "counting", "install", "one_operation", "reset", "simulated_devices", "totals"]


@contextlib.contextmanager
def simulated_devices(count):
    """Simulate ``count`` devices inside the block (0: CuPy installed, no GPU); restores the previous setup."""
    previous = cuda.state.device_count, cuda.state.current
    cuda.configure(count)
    try:
        yield
    finally:
        cuda.state.device_count, cuda.state.current = previous
