"""What the scripts in tests/mpi/ share. Each script runs under `mpiexec -n 2 python tests/mpi/<script>.py [cpu|gpu]`
(tests/test_distributed.py launches them, on the CuPy stand-in's runner for "gpu" where no GPU is found), checks with
plain asserts, and exits 0 only if every check held: a failed check is an uncaught exception, which
minicnn.distributed.init() turns into an MPI abort of the whole job. (standin_nccl.py, the stand-in's own check of
its NCCL, shares none of this: tests/test_standin.py launches it; nor does record_training.py, which records what each
rank of the trainer does for tests/test_train_data_parallel.py to check.)"""
import contextlib
import sys

import numpy as np

import minicnn
from minicnn import backend, distributed, nn

GLOBAL_BATCH = 8


def setup():
    """init() the world and return (rank, world size, device) with the device from argv ("cpu" or "gpu")."""
    distributed.init()
    device = sys.argv[1] if len(sys.argv) > 1 else "cpu"
    if device == "gpu":
        device = distributed.local_gpu()
    return distributed.rank(), distributed.world_size(), device


def batch(channels=3, size=8, classes=5, seed=0):
    """The global batch: the same images and labels on every rank (each takes its slice)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((GLOBAL_BATCH, channels, size, size)) * 2 + 0.5, rng.integers(0, classes, GLOBAL_BATCH)


def my_slice(rank, size):
    per_rank = GLOBAL_BATCH // size
    return slice(rank * per_rank, (rank + 1) * per_rank)


def small_net(norm=None, classes=5):
    """conv, [norm], relu, max pool, linear: float64, with weights from minicnn's random stream."""
    layers = [nn.Conv2d(3, 4, 3, padding=1)] + ([norm(4)] if norm else []) + [
        nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, classes)]
    return nn.Sequential(*layers).to(dtype=np.float64)


def twin(model, device, norm=None):
    """A ``small_net(norm)`` with ``model``'s current values, for the single-process reference."""
    copy = small_net(norm)
    copy.load_state_dict(model.state_dict())
    return copy.to(device)


def assert_same_on_every_rank(array, what):
    """``array`` (NumPy) equals rank 0's, bit for bit."""
    reference = distributed.broadcast(np.array(array, copy=True), root=0)
    assert np.array_equal(reference, array), f"{what} differs from rank 0's on rank {distributed.rank()}"


def assert_close(got, want, what, rtol=1e-12, scale=None):
    """Equal to ``rtol`` relative to ``want``'s largest element, or to ``scale`` (for gradients that are 0 in exact
    arithmetic, such as a conv bias before batch norm: theirs is rounding noise, of the model's gradients' size)."""
    got, want = backend.as_numpy(got), backend.as_numpy(want)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * (np.abs(want).max() if scale is None else scale),
                               err_msg=f"{what} on rank {distributed.rank()}")


def tensor(array, device):
    return minicnn.Tensor(backend.to_device(np.ascontiguousarray(array), device))


def stand_in_costs():
    """A context that counts the CuPy stand-in's device operations and reads (a Counter), or None on real CuPy."""
    if backend.device_counts() is None:  # real CuPy counts nothing
        return contextlib.nullcontext()
    from tests import standin  # the stand-in runs this process (tests.standin.run installed it)
    return standin.counting()
