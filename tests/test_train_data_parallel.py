"""python -m train.cifar on 2 ranks (mpiexec -n 2): the same run as on one, shards that cover each epoch, rank 0 alone
writing, resuming on another number of ranks, Ctrl-C, --sync-bn, and the GPU path (on the CuPy stand-in); and the
pieces of train/data_parallel.py in one process, in pretended worlds of several ranks.

The 2-rank runs need the `mpi` extra (mpi4py and an MPI library); without mpi4py they skip, and with it they always run.
Each one trains the tiny network of tests/test_train_cli.py on generated data: a few seconds.
"""
import functools
import json
import os
import signal
import time

import numpy as np
import pytest

from minicnn import backend, distributed
from minicnn.distributed import world
from train import cifar, data_parallel
from train.augment import EpochPlan
from train.checkpoint import load_checkpoint
from train.files import UserError
from tiny_cifar import write_cifar
from helpers import launch_mpi, on_cupy_standin, start_mpi

TINY = ["--device", "cpu", "--no-download", "--width", "0.0625", "--batch-size", "16"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("cifar"))
    write_cifar(folder)  # 80 training and 32 test images
    return folder


def rows(out):
    return [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]


def model_arrays(out):
    with np.load(os.path.join(out, "checkpoint.npz")) as saved:
        return {key: saved[key] for key in saved.files if key.startswith("model/")}


def resume_here(out, epochs, *extra):
    """Resume the run in ``out`` in this process (a world of one) to ``epochs``; returns the exit code."""
    return cifar.main(["--resume", "--out", str(out), "--epochs", str(epochs), *extra])


# -- two ranks train as one process would, and only rank 0 writes ------------------------------------------------------

# LRN (no batch norm) and no dropout: nothing in the arithmetic depends on how the batch is split, so 2 ranks must
# take the steps of 1 up to float32 rounding. 37 images in batches of 16: the last batch, of 5, splits 2 + 3.
# --lr pinned: the float32 differences of summing in another order grow with the step size (the tolerances below)
EQUAL_RUN = [*TINY, "--norm", "lrn", "--lr", "0.01", "--limit", "37", "--epochs", "2"]
IMAGES, BATCH, STEPS = 37, 16, 3


@pytest.fixture(scope="module")
def two_rank_run(data_dir, tmp_path_factory):
    """(run folder, what each rank did, the job's output) of EQUAL_RUN on 2 ranks, recorded by tests/mpi/record_training.py."""
    folder = tmp_path_factory.mktemp("two")
    out, record = folder / "run", folder / "record.json"
    code, output, _ = launch_mpi(["-m", "tests.mpi.record_training", str(record), "--no-dropout", *EQUAL_RUN,
                                  "--data-dir", data_dir, "--out", str(out)])
    assert code == 0, output
    recorded = json.loads(record.read_text())
    assert recorded["exit_code"] == 0
    return out, recorded["ranks"], output


@pytest.fixture(scope="module")
def one_rank_run(data_dir, tmp_path_factory):
    """EQUAL_RUN in this process: a world of one."""
    out = tmp_path_factory.mktemp("one") / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cifar, "GoogLeNet", functools.partial(cifar.GoogLeNet, dropout=0.0, aux_dropout=0.0))
        assert cifar.main([*EQUAL_RUN, "--data-dir", data_dir, "--out", str(out)]) == 0
    return out


def test_two_ranks_take_the_steps_of_one_process(two_rank_run, one_rank_run):
    out, _, output = two_rank_run
    for two, one in zip(rows(out), rows(one_rank_run), strict=True):
        for key in ("train_loss", "train_acc", "test_loss", "test_acc", "lr"):
            assert two[key] == pytest.approx(one[key], rel=1e-5), key
    two, one = model_arrays(out), model_arrays(one_rank_run)
    assert two.keys() == one.keys()
    for key in one:  # float32 sums in another order (each rank's half, then the two halves): differences of
        # ~1e-7 absolute, relatively large in a bias near 0 (a wrong shard or average would differ by ~1e-3)
        np.testing.assert_allclose(two[key], one[key], rtol=1e-4, atol=1e-6, err_msg=key)
    assert "data parallel: 2 ranks, global batch 16 = 2 x 8 images; devices cpu, cpu; 1 CPU thread per rank" in output


def test_the_ranks_shards_are_disjoint_and_cover_every_epoch(two_rank_run):
    _, ranks, _ = two_rank_run
    for rank, done in enumerate(ranks):
        assert [seed[:3] for seed in done["seeds"]] == [[0, epoch, step] for epoch in range(2) for step in range(STEPS)]
        assert all(seed[3:] == ([rank] if rank else []) for seed in done["seeds"])  # dropout masks: rank 1's own
    for number, (zero, one) in enumerate(zip(ranks[0]["batches"], ranks[1]["batches"], strict=True)):
        epoch, step = divmod(number, STEPS)
        order = EpochPlan.draw(0, epoch, IMAGES).order
        start, stop = step * BATCH, min((step + 1) * BATCH, IMAGES)
        assert zero[1] == one[0] and abs((zero[1] - zero[0]) - (one[1] - one[0])) <= 1  # halves, one after the other
        assert (zero[0], one[1]) == (start, stop)
        assert zero[2] + one[2] == order[start:stop].tolist()  # together the global batch, in the epoch's order
    for epoch in range(2):
        seen = [i for rank in ranks for batch in rank["batches"][epoch * STEPS:(epoch + 1) * STEPS] for i in batch[2]]
        assert sorted(seen) == list(range(IMAGES))  # every image once


def test_only_rank_0_locks_the_folder_and_writes_each_file_once_per_epoch(two_rank_run):
    out, ranks, output = two_rank_run
    names = ["checkpoint.npz", "metrics.jsonl", "curves.png"]
    written, made = ([[path for path in done[what] if path.startswith(str(out.parent))] for done in ranks]
                     for what in ("written", "made"))  # (numba may write its cache elsewhere)
    assert written == [[str(out / name) for name in names * 2], []]  # after each of the 2 epochs, by rank 0
    assert made == [[str(out)], []] and [done["locked"] for done in ranks] == [1, 0]
    assert sorted(os.listdir(out)) == sorted(names)  # no lock file, no temporary file left
    for line in ("epoch   1/2  train loss", "epoch   2/2  train loss", "best test accuracy", "device: cpu"):
        assert output.count(line) == 1, (line, output)  # rank 0 alone prints


def test_a_two_rank_checkpoint_resumes_on_one_rank(two_rank_run, tmp_path):
    out = tmp_path / "run"
    os.makedirs(out)
    for name in ("checkpoint.npz", "metrics.jsonl"):
        (out / name).write_bytes((two_rank_run[0] / name).read_bytes())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cifar, "GoogLeNet", functools.partial(cifar.GoogLeNet, dropout=0.0, aux_dropout=0.0))
        assert resume_here(out, 3) == 0
    saved = load_checkpoint(str(out / "checkpoint.npz"))
    assert (saved.epoch, saved.step, saved.scheduler["last_epoch"]) == (3, 0, 3 * STEPS)
    assert rows(out)[:2] == rows(two_rank_run[0]) and len(rows(out)) == 3


def test_two_ranks_evaluate_a_checkpoint_on_the_whole_test_set(two_rank_run):
    out = two_rank_run[0]
    code, output, _ = launch_mpi(["-m", "train.cifar", "--evaluate", str(out / "checkpoint.npz"), "--device", "cpu",
                                  "--limit", "37", "--batch-size", "7"])  # shards of 7 and 7, then 2 and 2
    assert code == 0, output
    last = rows(out)[-1]
    assert output.count(f"test accuracy {last['test_acc']:.2%} ({round(last['test_acc'] * 32)} of 32 images)") == 1
    loss = float(output.split("test loss ")[1].split()[0])
    assert loss == pytest.approx(last["test_loss"], abs=1e-4)


def test_two_ranks_refuse_a_folder_holding_a_run_together(two_rank_run, data_dir):
    out = two_rank_run[0]
    before = (out / "checkpoint.npz").read_bytes()
    code, output, _ = launch_mpi(["-m", "train.cifar", *EQUAL_RUN, "--data-dir", data_dir, "--out", str(out)])
    assert code == 1 and output.strip().splitlines() == [
        f"error: {out} already holds a run (checkpoint.npz, metrics.jsonl); add --resume to continue it, or choose "
        "another --out (nothing there was changed)"], output
    assert (out / "checkpoint.npz").read_bytes() == before


def test_a_batch_that_does_not_divide_by_the_ranks_is_refused_before_the_data_loads(tmp_path):
    code, output, _ = launch_mpi(["-m", "train.cifar", *TINY, "--batch-size", "15", "--data-dir",
                                  str(tmp_path / "no-data"), "--out", str(tmp_path / "run")])
    assert code == 1
    assert output.strip().splitlines() == ["error: --batch-size 15 is the global batch, split evenly over the 2 "
                                           "ranks, so it must divide by 2: try 14 or 16"]
    assert os.listdir(tmp_path) == []


def test_a_one_rank_checkpoint_resumes_on_two_ranks_with_synchronised_batch_norm(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert cifar.main([*TINY, "--limit", "32", "--sync-bn", "--epochs", "1", "--data-dir", data_dir,
                       "--out", str(out)]) == 0  # one process: SyncBatchNorm is BatchNorm2d
    assert "norm bn synchronised over the ranks" in capsys.readouterr().out
    code, output, _ = launch_mpi(["-m", "train.cifar", "--resume", "--out", str(out), "--epochs", "2"])
    assert code == 0, output
    assert "resuming" in output and "at epoch 2, batch 0" in output and "synchronised over the ranks" in output
    saved = load_checkpoint(str(out / "checkpoint.npz"))
    assert saved.epoch == 2 and saved.args["sync_bn"] is True and len(rows(out)) == 2
    assert all(np.isfinite(value).all() for value in saved.model.values())


def test_ctrl_c_on_mpiexec_stops_every_rank_at_one_batch_and_leaves_a_checkpoint_that_resumes(data_dir, tmp_path):
    out = tmp_path / "run"  # 10 batches of 8 per epoch, many epochs: Ctrl-C comes long before the end
    job = start_mpi(["-m", "train.cifar", *TINY, "--batch-size", "8", "--limit", "80", "--epochs", "100",
                     "--data-dir", data_dir, "--out", str(out)])
    try:
        deadline = time.monotonic() + 120
        while not (out / "curves.png").exists():  # the first epoch is done: every rank is in its training loop
            assert job.poll() is None and time.monotonic() < deadline, job.communicate()[0]
            time.sleep(0.05)
        time.sleep(0.2)  # most often within epoch 2 (at its start, or in its evaluation, are fine too)
        job.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal does: mpiexec hands it to every rank
        output = job.communicate(timeout=120)[0]
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    assert job.returncode == 130, output
    saved = load_checkpoint(str(out / "checkpoint.npz"))
    assert saved.epoch >= 1 and 0 <= saved.step <= 10
    if saved.partial:  # stopped within an epoch: the totals of both ranks, for the batches done
        assert saved.partial["totals"]["count"] == 8 * saved.step
    stopped = [line for line in output.splitlines() if "checkpoint saved" in line]
    assert len(stopped) == 1, output  # said once, by rank 0
    assert stopped[0].endswith(f"Continue with: mpiexec -n 2 python -m train.cifar --resume --out {out}")
    assert resume_here(out, saved.epoch + 1) == 0
    assert len(rows(out)) == saved.epoch + 1
    print(f"stopped at epoch {saved.epoch + 1}, batch {saved.step}")


def gpu_runner():
    """The command prefix that runs a module on this session's GPU path (the stand-in's runner where it runs)."""
    return ["-m", "tests.standin.run", "--devices", str(backend.gpu_count())] if on_cupy_standin() else []


@pytest.mark.gpu
def test_each_rank_trains_on_its_own_gpu_through_nccl(data_dir, tmp_path):
    if backend.gpu_count() < 2:
        pytest.skip(f"needs 2 GPUs (one per rank), found {backend.gpu_count()}")
    code, output, _ = launch_mpi([*gpu_runner(), "-m", "train.cifar", *TINY, "--device", "gpu", "--limit", "16",
                                  "--epochs", "1", "--data-dir", data_dir, "--out", str(tmp_path / "run")], timeout=300)
    assert code == 0, output
    assert "devices gpu:0, gpu:1" in output and "each rank its own GPU" in output
    assert len(rows(tmp_path / "run")) == 1 and load_checkpoint(str(tmp_path / "run" / "checkpoint.npz")).epoch == 1


@pytest.mark.gpu
def test_a_gpu_named_by_number_is_refused_on_several_ranks(data_dir, tmp_path):
    code, output, _ = launch_mpi([*gpu_runner(), "-m", "train.cifar", *TINY, "--device", "gpu:1", "--data-dir",
                                  data_dir, "--out", str(tmp_path / "run")])
    assert code == 1 and output.strip().splitlines() == [
        "error: --device gpu:1 names one GPU, but each of the 2 ranks needs its own: use --device gpu (each rank "
        "takes the GPU numbered by its rank on its machine)"], output
    assert os.listdir(tmp_path) == []


# -- the pieces, in pretended worlds -----------------------------------------------------------------------------------

class Pretend:
    """Rank ``rank`` of a world of ``size`` on one machine; gathering returns ``gathered`` (or this rank's value
    ``size`` times)."""

    def __init__(self, rank, size, gathered=None):
        self.rank, self.size, self.local_rank, self.local_size, self.gathered = rank, size, rank, size, gathered

    def all_gather_objects(self, value):
        return self.gathered if self.gathered is not None else [value] * self.size


@pytest.fixture
def pretend(monkeypatch):
    def be(rank, size, gathered=None):
        monkeypatch.setattr(world, "_world", Pretend(rank, size, gathered))
    return be


@pytest.mark.parametrize("size", [1, 2, 3, 4])
@pytest.mark.parametrize("start,stop", [(0, 16), (32, 37), (16, 19), (0, 1000)])
def test_shards_cover_a_batch_and_their_weights_make_its_mean(pretend, size, start, stop):
    shards = []
    for rank in range(size):
        pretend(rank, size)
        shards.append(data_parallel.shard(start, stop))
    assert [s.start for s in shards] == [start] + [s.stop for s in shards[:-1]] and shards[-1].stop == stop
    sizes = [s.stop - s.start for s in shards]
    assert max(sizes) - min(sizes) <= 1
    losses = np.random.default_rng(0).standard_normal(stop - start)  # per image
    means = [losses[s.start - start:s.stop - start].mean() if s.stop > s.start else 0.0 for s in shards]
    # all_reduce_gradients takes the mean over ranks of each rank's weighted mean: the batch's mean
    assert np.mean([s.weight * mean for s, mean in zip(shards, means)]) == pytest.approx(losses.mean(), rel=1e-12)
    if len(set(sizes)) == 1:
        assert all(s.weight == 1.0 for s in shards)  # so that the loss is used as it is


def test_the_global_batch_must_divide_by_the_ranks(pretend):
    pretend(0, 4)
    data_parallel.check_global_batch(128)
    for batch, hint in [(30, "try 28 or 32"), (2, "try 4")]:
        with pytest.raises(UserError, match=rf"--batch-size {batch} is the global batch, split evenly over the 4 ranks, "
                                            rf"so it must divide by 4: {hint}$"):
            data_parallel.check_global_batch(batch)
    data_parallel.check_last_batch(50_000, 128)  # a last batch of 80
    with pytest.raises(UserError, match=r"the last batch of each epoch would hold 3 of the 35 training images, fewer "
                                        r"than the 4 ranks"):
        data_parallel.check_last_batch(35, 16)


def test_threads_per_rank_share_out_the_cores_of_the_machine(pretend, monkeypatch):
    machine = "this-machine"
    monkeypatch.setattr(data_parallel.platform, "node", lambda: machine)
    monkeypatch.setattr(data_parallel, "_usable_cores", lambda: set(range(8)))
    for ranks, threads in [(1, 8), (2, 4), (3, 2), (8, 1), (16, 1)]:
        pretend(0, ranks, [(machine, list(range(8)))] * ranks + [("elsewhere", list(range(64)))])
        assert data_parallel.cpu_threads_per_rank() == threads, ranks
    # a launcher that binds each rank to its own 4 cores: 4 each, not 8 cores // 2 ranks of what each may use
    monkeypatch.setattr(data_parallel, "_usable_cores", lambda: set(range(4)))
    pretend(0, 2, [(machine, [0, 1, 2, 3]), (machine, [4, 5, 6, 7])])
    assert data_parallel.cpu_threads_per_rank() == 4


def test_rank_0_alone_carries_the_totals_of_a_resumed_epoch(pretend):
    saved = {"loss_sum": 12.5, "correct": 3, "count": 8, "objective_sum": 13.0}
    pretend(0, 2)
    assert data_parallel.carried_totals(saved).to_dict() == saved
    pretend(1, 2)
    assert data_parallel.carried_totals(saved).to_dict() == {"loss_sum": 0.0, "correct": 0, "count": 0,
                                                             "objective_sum": 0.0}


def test_alone_nothing_is_shared(monkeypatch):
    monkeypatch.setattr(world, "_world", None)
    for name in distributed.LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert data_parallel.shard(5, 9) == (5, 9, 1.0) and data_parallel.rank_counters() == ()
    assert data_parallel.any_rank(True) and not data_parallel.any_rank(False)

    def fails():
        raise UserError("mine")

    for share in (data_parallel.together, data_parallel.decided_by_rank_0):
        with pytest.raises(UserError, match="^mine$") as raised:
            share(fails)
        assert type(raised.value) is UserError  # the error itself, not an AgreedError about it
