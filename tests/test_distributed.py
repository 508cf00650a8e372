"""minicnn.distributed: the world of one in this process, and 2 real MPI ranks launched with mpiexec.

The multi-process checks are the scripts in tests/mpi/, each run as `mpiexec -n 2 python tests/mpi/<script>.py`.
They need the `mpi` extra (mpi4py and an MPI library); without mpi4py they skip, and with it they always run.
"""
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import minicnn
import minicnn.functional as F
from minicnn import Tensor, backend, distributed, gradcheck, nn, optim
from minicnn.distributed import world
from minicnn.functional.normalization import SyncBatchNormFunction
from helpers import launch_mpi, on_cupy_standin, tensor

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "tests" / "mpi"


# -- 2 ranks under mpiexec ---------------------------------------------------------------------------------------------

def launch(script, *arguments, ranks=2, timeout=120, gpu=False):
    """Run tests/mpi/<script> (or ``-m`` a module) in ``ranks`` processes; returns (exit code, output, seconds).

    ``gpu``: on this session's GPU path, so on the CuPy stand-in's runner where the stand-in runs the GPU
    tests (each process then simulates as many devices as this one)."""
    target = [script] if script == "-m" else [str(SCRIPTS / script)]
    runner = ["-m", "tests.standin.run", "--devices", str(backend.gpu_count())]
    on_the_stand_in = gpu and on_cupy_standin()
    return launch_mpi([*(runner if on_the_stand_in else []), *target, *arguments], ranks, timeout)


SCRIPTS_THAT_PASS = ["gradients_match_one_process.py", "sync_batch_norm_matches_one_process.py",
                     "bad_use_gets_clear_errors.py"]


@pytest.mark.parametrize("script", SCRIPTS_THAT_PASS)
def test_two_mpi_ranks(script):
    code, output, _ = launch(script)
    assert code == 0, output
    assert "rank 0: passed" in output and "rank 1: passed" in output, output  # each rank ran to its last line


def test_a_rank_that_raises_ends_the_job_with_its_error_instead_of_hanging():
    code, output, seconds = launch("failing_rank_ends_the_job.py", timeout=60)  # a hang fails with TimeoutExpired
    assert code != 0
    assert "ValueError: rank 1 fails on purpose" in output
    assert "rank 1 of 2 raised ValueError; aborting all 2 processes (MPI_Abort)" in output
    assert "rank 0 passed the barrier" not in output
    print(f"the job ended {seconds:.1f} s after launch")


def test_the_all_reduce_benchmark_runs_on_two_ranks():
    code, output, _ = launch("-m", "benchmarks.all_reduce", "--width", "0.0625", "--batch-size", "4",
                             "--repeats", "2", "--steps", "1")
    assert code == 0, output
    assert "2 ranks on cpu" in output and "all_reduce_gradients" in output and "of a training step" in output


@pytest.mark.gpu
@pytest.mark.parametrize("script", SCRIPTS_THAT_PASS[:2])
def test_two_mpi_ranks_on_two_gpus_through_nccl(script):
    if backend.gpu_count() < 2:
        pytest.skip(f"needs 2 GPUs (one per rank), found {backend.gpu_count()}")
    code, output, _ = launch(script, "gpu", gpu=True)
    assert code == 0, output
    assert "rank 0: passed" in output and "rank 1: passed" in output, output


# -- the world of one, in this process --------------------------------------------------------------------------------

@pytest.fixture
def fresh_world(monkeypatch):
    """No init() yet and no launcher in the environment; restored afterwards."""
    monkeypatch.setattr(world, "_world", None)
    for name in distributed.LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_importing_minicnn_imports_no_mpi():
    code = "import sys, minicnn, minicnn.distributed; print(sorted(m for m in sys.modules if 'mpi4py' in m))"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.split() == ["[]"]


def test_without_a_launcher_the_world_is_this_process(fresh_world):
    assert not distributed.is_initialized()
    assert (distributed.rank(), distributed.world_size(), distributed.local_rank()) == (0, 1, 0)
    distributed.init()
    distributed.init()  # again: nothing changes
    assert distributed.is_initialized() and isinstance(world._world, world.SingleProcess)
    assert (distributed.rank(), distributed.world_size(), distributed.local_rank()) == (0, 1, 0)
    distributed.barrier()
    array = np.arange(4.0)
    assert distributed.all_reduce(array) is array and distributed.broadcast(array) is array
    assert np.array_equal(array, np.arange(4.0))
    with pytest.raises(ValueError, match="C-contiguous"):  # refused alone too, not only under mpiexec
        distributed.all_reduce(np.ones((2, 2)).T)
    assert "mpi4py.MPI" not in sys.modules


@pytest.mark.parametrize("variable", ["PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"])
def test_under_a_launcher_nothing_runs_before_init(fresh_world, monkeypatch, variable):
    monkeypatch.setenv(variable, "1")
    assert distributed.launcher_variable() == variable
    for call in (distributed.rank, distributed.world_size, distributed.barrier,
                 lambda: distributed.all_reduce_gradients(nn.Linear(2, 2)),
                 lambda: F.batch_norm(tensor(np.ones((2, 3))), None, None, training=True, sync=True)):
        with pytest.raises(RuntimeError, match=rf"init\(\) has not been called.*\({variable}=1\)"):
            call()
    F.batch_norm(tensor(np.ones((2, 3))), None, None, training=True)  # plain batch norm needs no world


def test_init_under_a_launcher_without_mpi4py_says_how_to_install_it(fresh_world, monkeypatch):
    monkeypatch.setenv("PMI_RANK", "0")
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # `from mpi4py import MPI` now raises ImportError
    with pytest.raises(RuntimeError, match=r"PMI_RANK is set.*mpi4py cannot be imported.*pip install -e '\.\[mpi\]'"):
        distributed.init()
    assert not distributed.is_initialized()


@pytest.mark.parametrize("call,error,match", [
    (lambda: distributed.all_reduce([1.0, 2.0]), TypeError, r"all_reduce: expected a NumPy or CuPy array, got list"),
    (lambda: distributed.all_reduce(np.ones((3, 3))[:, 0]), ValueError, r"all_reduce: the array must be C-contiguous"),
    (lambda: distributed.all_reduce(np.ones(3, np.complex64)), TypeError, r"dtype complex64 is not supported"),
    (lambda: distributed.broadcast(np.ones(3, bool)), TypeError, r"broadcast: dtype bool is not supported"),
    (lambda: distributed.broadcast(np.ones(3), root=2), ValueError,
     r"broadcast: root must be a rank from 0 to 1, got 2"),
    (lambda: distributed.broadcast_parameters(nn.Linear(2, 2), root=-1), ValueError, r"root must be a rank"),
])
def test_collectives_reject_bad_arguments(call, error, match, monkeypatch):
    monkeypatch.setattr(world, "_world", TwinWorld())  # 2 ranks: root 1 is valid, root 2 is not
    with pytest.raises(error, match=match):
        call()


def small_model(device="cpu", dtype=np.float64):
    minicnn.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16, 3)).to(device, dtype)


def backward_once(model, device="cpu"):
    x = tensor(np.random.default_rng(0).standard_normal((2, 3, 4, 4)).astype(model[0].weight.dtype), device)
    F.cross_entropy(model(x), np.array([0, 2])).backward()


def test_in_a_world_of_one_gradients_stay_and_missing_ones_become_zero(fresh_world, device):
    model = small_model(device)
    distributed.broadcast_parameters(model)
    backward_once(model, device)
    model[3].bias.grad = None  # took no part in the loss
    before = [None if p.grad is None else backend.as_numpy(p.grad).copy() for p in model.parameters()]
    distributed.all_reduce_gradients(model)
    for p, old in zip(model.parameters(), before):
        assert np.array_equal(backend.as_numpy(p.grad), np.zeros(p.shape) if old is None else old)


def test_gradients_of_a_model_never_broadcast_or_changed_since_are_refused(fresh_world):
    model = small_model()
    with pytest.raises(RuntimeError, match=r"never passed to broadcast_parameters\(\)"):
        distributed.all_reduce_gradients(model)
    distributed.broadcast_parameters(model)
    distributed.all_reduce_gradients(model)  # fine now
    model.to(dtype=np.float32)
    with pytest.raises(RuntimeError, match=r"changed since broadcast_parameters\(\) \(first change: '0.weight'\)"):
        distributed.all_reduce_gradients(model)
    distributed.broadcast_parameters(model)
    setattr(model, "4", nn.Linear(3, 3))  # one more layer
    with pytest.raises(RuntimeError, match=r"first change: 6 parameters, 4 before"):
        distributed.all_reduce_gradients(model)


class TwinWorld:
    """A world of 2 ranks whose other rank holds exactly this one's arrays: a sum doubles, so a mean changes nothing.

    It records the arrays every all-reduce gets, to count the calls and see whether they copy."""

    rank, size, local_rank, local_size = 0, 2, 0, 1

    def __init__(self):
        self.reduced = []

    def all_reduce_sum(self, array):
        self.reduced.append(array)
        array *= 2
        return array

    def broadcast(self, array, root):
        return array

    def all_gather_objects(self, value):
        return [value, value]


@pytest.fixture
def twin_world(monkeypatch):
    twin = TwinWorld()
    monkeypatch.setattr(world, "_world", twin)
    return twin


def test_an_optimizers_gradient_buffer_is_reduced_in_place_in_one_call(twin_world, device):
    model = small_model(device)
    distributed.broadcast_parameters(model)
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    backward_once(model, device)
    model[3].bias.grad = None  # no gradient: its part of the buffer (last step's values) must become 0
    model[3].weight.grad = Tensor(model[3].weight.grad.array.copy())  # set by hand: moved into the buffer
    before = [backend.as_numpy(p.grad).copy() if p.grad is not None else np.zeros(p.shape) for p in model.parameters()]
    optimizer.groups[0].grad[-3:] = 5  # stale values where bias's gradient would be
    distributed.all_reduce_gradients(model)
    assert len(twin_world.reduced) == 1 and twin_world.reduced[0] is optimizer.groups[0].grad
    for p, old in zip(model.parameters(), before):
        assert p.grad.array is p._grad_buffer
        assert np.array_equal(backend.as_numpy(p.grad), old)


def test_gradients_are_packed_when_no_optimizer_buffer_holds_exactly_the_model(twin_world):
    model = small_model()
    distributed.broadcast_parameters(model)
    optimizer = optim.SGD(list(model.parameters())[::-1], lr=0.1)  # the buffer holds them, but in another order
    backward_once(model)
    before = [p.grad.array.copy() for p in model.parameters()]
    distributed.all_reduce_gradients(model)
    assert len(twin_world.reduced) == 1 and twin_world.reduced[0] is not optimizer.groups[0].grad
    assert twin_world.reduced[0].size == sum(p.numel() for p in model.parameters())
    for p, old in zip(model.parameters(), before):
        assert p.grad.array is p._grad_buffer and np.array_equal(p.grad, old)  # back in the optimizer's buffer


def test_one_collective_per_device_and_dtype(twin_world):
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2).to(dtype=np.float64), nn.Linear(2, 1))
    distributed.broadcast_parameters(model)
    for p in model.parameters():
        p.grad = Tensor(np.ones(p.shape, p.dtype))
    distributed.all_reduce_gradients(model)
    assert [(str(array.dtype), array.size) for array in twin_world.reduced] == [("float32", 11), ("float64", 6)]


def test_a_model_that_differs_across_ranks_is_named_at_broadcast(monkeypatch):
    class LopsidedWorld(TwinWorld):
        def all_gather_objects(self, value):  # rank 1's last layer has 2 outputs, not 3
            other = [(name, ((2,) + d[0][1:], *d[1:]) if name.startswith("3.") else d) for name, d in value]
            return [value, other]

    monkeypatch.setattr(world, "_world", LopsidedWorld())
    with pytest.raises(ValueError, match=r"'3.weight' has shape \(3, 16\) float64 on cpu on rank 0 but shape "
                                         r"\(2, 16\) float64 on cpu on rank 1; '3.bias' has shape \(3,\)"):
        distributed.broadcast_parameters(small_model())


# -- synchronised batch norm ----------------------------------------------------------------------------------------

def test_sync_batch_norm_in_a_world_of_one_is_batch_norm_exactly(fresh_world, device, rng):
    plain = nn.BatchNorm2d(3).to(device)
    plain.weight.array[...] = backend.to_device(rng.uniform(0.5, 2, 3).astype(np.float32), device)
    synchronised = nn.SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(plain))[0]
    twin = nn.BatchNorm2d(3).to(device)
    twin.load_state_dict(plain.state_dict())
    x = rng.standard_normal((4, 3, 5, 5)).astype(np.float32) * 3 + 2
    for training in (True, False):
        synchronised.train(training), twin.train(training)
        results = []
        for layer in (synchronised, twin):
            layer.zero_grad()
            inputs = tensor(x, device, requires_grad=True)
            y = layer(inputs)
            (y * y).sum().backward()
            results.append([y.array, inputs.grad, layer.weight.grad, layer.bias.grad, layer.running_var.array])
        for got, want in zip(*results):
            np.testing.assert_array_equal(backend.as_numpy(got), backend.as_numpy(want))


def sync_batch_norm(x, weight, bias, running_mean=None, running_var=None, momentum=0.1, eps=1e-5):
    """The synchronised Op itself (F.batch_norm uses it only with more than one process)."""
    inputs = [t for t in (x, weight, bias) if t is not None]
    return SyncBatchNormFunction(running_mean, running_var, momentum, eps)(*inputs)


def test_sync_batch_norm_function_alone_equals_batch_norm(fresh_world, device, rng):
    """Its arithmetic (sums, E[x^2] - E[x]^2, the backward from two sums) against plain batch norm, in float64."""
    x = tensor(rng.standard_normal((4, 3, 5, 2)) * 3 + 1, device, requires_grad=True)
    w, b = (tensor(rng.standard_normal(3), device, requires_grad=True) for _ in range(2))
    stats = [tensor(np.full(3, 0.5), device).array, tensor(np.full(3, 2.0), device).array]
    twin_stats = [array.copy() for array in stats]
    y_sync = sync_batch_norm(x, w, b, *stats, momentum=0.2)
    gy = rng.standard_normal(y_sync.shape)
    y_sync.backward(gy)
    grads = [backend.as_numpy(t.grad).copy() for t in (x, w, b)]
    x.grad = w.grad = b.grad = None
    y = F.batch_norm(x, *twin_stats, w, b, training=True, momentum=0.2)
    y.backward(gy)
    np.testing.assert_allclose(y_sync.numpy(), y.numpy(), rtol=1e-12, atol=1e-13)
    for got, want in zip(grads + [backend.as_numpy(s) for s in stats],
                         [backend.as_numpy(t.grad) for t in (x, w, b)] + [backend.as_numpy(s) for s in twin_stats]):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)


def test_sync_batch_norm_function_passes_gradcheck(fresh_world, rng):
    x = tensor(rng.standard_normal((3, 2, 4, 3)) * 2 + 1, requires_grad=True)
    w, b = (tensor(rng.standard_normal(2), requires_grad=True) for _ in range(2))
    gradcheck(sync_batch_norm, [x, w, b])


def test_sync_batch_norm_statistics_keep_float32_accurate_far_from_zero(fresh_world, rng):
    """Sums in float64: E[x^2] - E[x]^2 loses nothing even with a mean 100 standard deviations away from 0."""
    x = rng.standard_normal((8, 4, 6, 6)) + 100
    got = sync_batch_norm(tensor(x.astype(np.float32)), None, None).numpy()
    want = (x - x.mean(axis=(0, 2, 3), keepdims=True)) / np.sqrt(x.var(axis=(0, 2, 3), keepdims=True) + 1e-5)
    np.testing.assert_allclose(got, want, atol=2e-4)


def test_convert_sync_batchnorm_keeps_the_parameters_and_buffers():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Sequential(nn.BatchNorm2d(4, momentum=0.3), nn.ReLU()))
    model.eval()
    inner = model[1][0]
    assert nn.SyncBatchNorm.convert_sync_batchnorm(model) is model
    converted = model[1][0]
    assert type(converted) is nn.SyncBatchNorm and converted is not inner
    assert converted.weight is inner.weight and converted.running_var is inner.running_var
    assert (converted.momentum, converted.training) == (0.3, False)
    assert [name for name, _ in model.named_parameters()] == ["0.weight", "0.bias", "1.0.weight", "1.0.bias"]
    assert nn.SyncBatchNorm.convert_sync_batchnorm(model)[1][0] is converted  # already synchronised
    single = nn.BatchNorm2d(2)
    assert type(nn.SyncBatchNorm.convert_sync_batchnorm(single)) is nn.SyncBatchNorm
    with pytest.raises(ValueError, match=r"SyncBatchNorm: num_features must be a positive int, got 0"):
        nn.SyncBatchNorm(0)


# -- NCCL, on a GPU ---------------------------------------------------------------------------------------------------

class OneRankMpi:
    """Stands in for an mpi4py communicator of one rank; records what the NCCL bootstrap sends through it."""

    def __init__(self):
        self.sent = []

    def Get_rank(self):
        return 0

    def Get_size(self):
        return 1

    def bcast(self, value, root):
        self.sent.append((value, root))
        return value


@pytest.mark.gpu
def test_nccl_starts_from_rank_0s_unique_id_broadcast_over_mpi():
    from minicnn.distributed.nccl import NcclCommunicator
    mpi = OneRankMpi()
    communicator = NcclCommunicator(mpi, 0)
    (unique_id, root), = mpi.sent
    assert root == 0 and isinstance(unique_id, bytes) and len(unique_id) == 128  # NCCL_UNIQUE_ID_BYTES (CuPy 14)
    assert (communicator.comm.rank_id(), communicator.comm.size(), communicator.comm.device_id()) == (0, 1, 0)
    cp = backend.require_gpu()
    for dtype in ("float32", "float64", "int64"):
        array = cp.arange(6, dtype=dtype)
        communicator.all_reduce_sum(array)  # one rank: the sum is the array itself
        communicator.broadcast(array, 0)
        assert cp.asnumpy(array).tolist() == list(range(6))
