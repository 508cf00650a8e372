"""Nothing lost, whatever fails: a full disk while a checkpoint is saved (simulated at each disk call of the
save, and on a real tmpfs where this machine lets us mount one), SIGKILL at any point of a save, SIGKILL of one
rank under mpiexec, a damaged data batch, and Ctrl-C during the first batch, the evaluation and the save.

Every test checks what a user would: the checkpoint on disk is the old one or the new one and loads, no
temporary file stays, the state that could not be saved is somewhere (and the message says where), and the
printed command continues the run. The runs are those of tests/test_train_cli.py: 32 images, width 1/16.
"""
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

from train import cifar, data, files
from train.checkpoint import load_checkpoint
from train.run_folder import RunFolder
from fault_injection import SAVE_CALLS, FaultyOS, job_processes, no_space, tmpfs
from helpers import ROOT, start_mpi
from tiny_cifar import write_cifar

# --schedule paper does not depend on --epochs, so a 1-epoch run resumed to 2 is the 2-epoch run
TINY = ["--device", "cpu", "--no-download", "--width", "0.0625", "--limit", "32", "--batch-size", "16",
        "--schedule", "paper", "--no-aux"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("cifar"))
    write_cifar(folder)
    return folder


@pytest.fixture(scope="module")
def runs(data_dir, tmp_path_factory):
    """A run stopped after epoch 1 of 2 (copy it before changing it), and the same run finished."""
    folder = tmp_path_factory.mktemp("runs")
    assert cifar.main([*TINY, "--data-dir", data_dir, "--out", str(folder / "one"), "--epochs", "1"]) == 0
    assert cifar.main([*TINY, "--data-dir", data_dir, "--out", str(folder / "two"), "--epochs", "2"]) == 0
    return folder


@pytest.fixture
def system_temp(tmp_path, monkeypatch):
    """The system's temporary folder, for this test: where a checkpoint that cannot be saved goes."""
    folder = tmp_path / "system-temp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def copy_of_epoch_1(runs, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(runs / "one", out)
    return out


def resume(capsys, out, *extra):
    """--resume the run in ``out`` to epoch 2; returns (exit code, stdout, stderr)."""
    code = cifar.main(["--resume", "--out", str(out), "--epochs", "2", *extra])
    return (code, *capsys.readouterr())


def state(path):
    """The parameters, buffers and optimizer state in a checkpoint file."""
    with np.load(path) as archive:
        return {key: archive[key] for key in archive.files if key.startswith(("model/", "optimizer/state/"))}


def assert_same_state(a, b):
    a, b = state(a), state(b)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def temporaries(folder):
    return [name for name in os.listdir(folder) if files.is_temporary(name)]


def one_error_line(err):
    """The message in stderr (after the progress bars, which tqdm cleared): one line, no traceback."""
    assert err.count("error: ") == 1 and "Traceback" not in err, err
    message = err[err.index("error: "):]
    assert message.count("\n") == 1 and message.endswith("\n"), err
    return message


# -- a full disk -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("at", range(1, 5), ids=SAVE_CALLS[:4])
def test_no_space_at_each_disk_call_of_a_save_keeps_the_old_checkpoint_and_saves_the_state_elsewhere(
        capsys, runs, tmp_path, monkeypatch, system_temp, at):
    out = copy_of_epoch_1(runs, tmp_path)
    before = (out / "checkpoint.npz").read_bytes()
    faulty = FaultyOS(at, no_space)
    monkeypatch.setattr(files, "os", faulty)
    code, _, err = resume(capsys, out)
    assert faulty.names[:at] == SAVE_CALLS[:at]  # it failed at that call of the checkpoint's save (then rescued)
    assert code == 1 and one_error_line(err).startswith(f"error: could not write {out / 'checkpoint.npz'}: "
                                                        "No space left on device (it needs ")
    assert "The checkpoint there, of epoch 1, batch 0, is unchanged" in err
    assert (out / "checkpoint.npz").read_bytes() == before and not temporaries(out)
    [rescue] = os.listdir(system_temp)
    assert f"is saved in {system_temp / rescue} instead" in err
    assert load_checkpoint(str(system_temp / rescue / "checkpoint.npz")).epoch == 2
    assert_same_state(system_temp / rescue / "checkpoint.npz", runs / "two" / "checkpoint.npz")

    monkeypatch.setattr(files, "os", os)  # space again: the run continues from the old checkpoint
    code, out_text, _ = resume(capsys, out)
    assert code == 0 and "resuming" in out_text
    assert_same_state(out / "checkpoint.npz", runs / "two" / "checkpoint.npz")


def test_a_failed_fsync_of_the_folder_is_no_error(capsys, runs, tmp_path, monkeypatch, system_temp):
    """The new checkpoint is in place when the folder is flushed; only its rename's durability is at stake."""
    out = copy_of_epoch_1(runs, tmp_path)
    faulty = FaultyOS(len(SAVE_CALLS), no_space)
    monkeypatch.setattr(files, "os", faulty)
    code, _, err = resume(capsys, out)
    assert code == 0, err
    assert_same_state(out / "checkpoint.npz", runs / "two" / "checkpoint.npz")


def test_no_space_for_the_metrics_after_the_checkpoint_says_the_checkpoint_is_saved(capsys, runs, tmp_path,
                                                                                      monkeypatch, system_temp):
    out = copy_of_epoch_1(runs, tmp_path)
    faulty = FaultyOS(len(SAVE_CALLS) + 1, no_space)  # the open of metrics.jsonl's temporary file
    monkeypatch.setattr(files, "os", faulty)
    code, _, err = resume(capsys, out)
    assert code == 1 and one_error_line(err).startswith(f"error: could not write {out / 'metrics.jsonl'}")
    assert "The checkpoint of epoch 2 is saved" in err and f"--resume --out {out}" in err
    assert load_checkpoint(str(out / "checkpoint.npz")).epoch == 2 and not temporaries(out)
    assert os.listdir(system_temp) == []


def test_a_full_tmpfs_at_the_second_checkpoint(capsys, runs, tmp_path, system_temp):
    size = (runs / "one" / "checkpoint.npz").stat().st_size
    with tmpfs(tmp_path / "disk", size=3 * size // 2):  # room for one checkpoint and its files, not two
        out = tmp_path / "disk" / "run"
        shutil.copytree(runs / "one", out)
        before = (out / "checkpoint.npz").read_bytes()
        code, _, err = resume(capsys, out)
        assert code == 1 and "No space left on device (it needs " in one_error_line(err)
        assert f"free in {out}" in err and (out / "checkpoint.npz").read_bytes() == before
        assert not temporaries(out) and os.listdir(system_temp)


def test_a_full_tmpfs_at_the_first_checkpoint_leaves_the_state_elsewhere(capsys, data_dir, tmp_path, system_temp):
    with tmpfs(tmp_path / "disk", size=64 * 1024):  # less than one checkpoint
        out = tmp_path / "disk" / "run"
        code = cifar.main([*TINY, "--data-dir", data_dir, "--out", str(out), "--epochs", "2"])
        err = capsys.readouterr().err
        assert code == 1 and "No checkpoint was written before" in one_error_line(err)
        assert os.listdir(tmp_path / "disk") == []  # the folder the run made held nothing: removed
    [rescue] = os.listdir(system_temp)
    command = err.split("continue with: ")[1].strip().split()
    assert command[:5] == ["python", "-m", "train.cifar", "--resume", "--out"]
    assert cifar.main(command[3:] + ["--epochs", "2"]) == 0  # the epoch was not lost
    assert load_checkpoint(str(system_temp / rescue / "checkpoint.npz")).epoch == 2


# -- SIGKILL while saving ----------------------------------------------------------------------------------------------

def run_child(*argv, **options):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, str(ROOT / "tests" / "fault_injection.py"), *argv], env=env,
                            stdout=subprocess.PIPE, text=True, **options)


def assert_whole(path):
    """The checkpoint at ``path`` loads, and every value of it belongs to its epoch; returns the epoch."""
    saved = load_checkpoint(str(path))
    assert all((value == saved.epoch).all() for value in saved.model.values())
    return saved.epoch


@pytest.mark.parametrize("at", range(1, len(SAVE_CALLS) + 1), ids=SAVE_CALLS)
def test_sigkill_at_each_disk_call_of_a_save_leaves_the_old_or_the_new_checkpoint(tmp_path, at):
    path = tmp_path / "checkpoint.npz"
    child = run_child("kill-at", str(at), str(path))
    child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL
    replaced = "replace" in SAVE_CALLS[:at - 1]  # the calls before the kill
    assert assert_whole(path) == (2 if replaced else 1)
    with RunFolder(str(tmp_path)):  # the next run in this folder removes what the killed one left
        pass
    assert os.listdir(tmp_path) == ["checkpoint.npz"]


def test_sigkill_at_random_moments_of_saves_leaves_a_whole_checkpoint(tmp_path):
    path, chance = tmp_path / "checkpoint.npz", random.Random(18)
    for _ in range(4):
        child = run_child("save-loop", str(path))
        assert child.stdout.readline() == "1\n"  # an old checkpoint exists
        time.sleep(chance.uniform(0, 0.3))
        child.kill()
        saved = [int(line) for line in [1, *child.communicate(timeout=60)[0].split()]]
        assert assert_whole(path) in (saved[-1], saved[-1] + 1)  # the last one saved, or the one being saved


# -- SIGKILL of one rank -------------------------------------------------------------------------------------------------

def test_sigkill_of_one_rank_ends_every_rank_and_the_run_resumes(capsys, data_dir, tmp_path):
    out = tmp_path / "run"
    job = start_mpi(["-m", "train.cifar", *TINY, "--epochs", "100", "--data-dir", data_dir, "--out", str(out)])
    try:
        deadline = time.monotonic() + 120
        while not (out / "metrics.jsonl").exists():  # epoch 1 is saved: both ranks are training
            assert job.poll() is None and time.monotonic() < deadline, job.communicate()[0]
            time.sleep(0.05)
        ranks = job_processes(str(out))
        assert sorted(ranks.values()) == [0, 1]
        os.kill(next(pid for pid, rank in ranks.items() if rank == 1), signal.SIGKILL)
        killed = time.monotonic()
        job.communicate(timeout=30)
        assert time.monotonic() - killed < 30 and job.returncode != 0
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    assert job_processes(str(out)) == {}  # no rank left behind
    saved = load_checkpoint(str(out / "checkpoint.npz"))
    assert saved.epoch >= 1 and not temporaries(out)
    code = cifar.main(["--resume", "--out", str(out), "--epochs", str(saved.epoch + 1)])
    assert code == 0 and load_checkpoint(str(out / "checkpoint.npz")).epoch == saved.epoch + 1


# -- damaged data ----------------------------------------------------------------------------------------------------

DAMAGE = {
    "truncated to nothing": lambda content: b"",
    "truncated to 1000 bytes": lambda content: content[:1000],
    "cut short by one byte": lambda content: content[:-1],
    "garbage": lambda content: bytes(random.Random(0).randrange(256) for _ in range(5000)),
    "a flipped byte in the header": lambda content: content[:1] + bytes([content[1] ^ 0xFF]) + content[2:],
}


@pytest.mark.parametrize("damage", DAMAGE)
@pytest.mark.parametrize("name", ["data_batch_1", "test_batch"])
def test_a_damaged_batch_is_one_line_naming_it(capsys, tmp_path, damage, name):
    write_cifar(str(tmp_path / "data"))
    path = tmp_path / "data" / data.FOLDER / name
    path.write_bytes(DAMAGE[damage](path.read_bytes()))
    code = cifar.main([*TINY, "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 1 and str(path) in one_error_line(err) and "delete the" in err
    assert not (tmp_path / "run").exists()


# -- Ctrl-C ------------------------------------------------------------------------------------------------------------

def ctrl_c():
    signal.raise_signal(signal.SIGINT)  # as if the user pressed Ctrl-C


def test_ctrl_c_during_the_first_batch(capsys, data_dir, runs, tmp_path, monkeypatch):
    real, calls = cifar.training_batch, []

    def batch_with_ctrl_c(*args):
        calls.append(1)
        if len(calls) == 1:
            ctrl_c()
        return real(*args)

    monkeypatch.setattr(cifar, "training_batch", batch_with_ctrl_c)
    out = tmp_path / "run"
    code = cifar.main([*TINY, "--data-dir", data_dir, "--out", str(out), "--epochs", "2"])
    assert code == 130 and "stopped at epoch 1, batch 1 of 2; checkpoint saved" in capsys.readouterr().err
    assert (load_checkpoint(str(out / "checkpoint.npz")).step, len(calls)) == (1, 1)
    assert resume(capsys, out)[0] == 0
    assert_same_state(out / "checkpoint.npz", runs / "two" / "checkpoint.npz")


def test_ctrl_c_during_the_evaluation(capsys, data_dir, tmp_path, monkeypatch):
    """Batches of 8: the evaluation takes 2 batches of 16, and Ctrl-C in the first stops it before the second."""
    small = [*TINY, "--batch-size", "8", "--data-dir", data_dir]
    assert cifar.main([*small, "--out", str(tmp_path / "straight"), "--epochs", "2"]) == 0
    real, calls = cifar.normalize, []  # (the trainer's normalize: only the evaluation calls it)

    def normalize_with_ctrl_c(images):
        calls.append(1)
        if len(calls) == 1:
            ctrl_c()
        return real(images)

    monkeypatch.setattr(cifar, "normalize", normalize_with_ctrl_c)
    out = tmp_path / "run"
    code = cifar.main([*small, "--out", str(out), "--epochs", "2"])
    assert code == 130 and "stopped while evaluating epoch 1; checkpoint saved" in capsys.readouterr().err
    assert len(calls) == 1 and load_checkpoint(str(out / "checkpoint.npz")).step == 4
    monkeypatch.setattr(cifar, "normalize", real)
    assert resume(capsys, out)[0] == 0  # the evaluation again, then epoch 2
    assert_same_state(out / "checkpoint.npz", tmp_path / "straight" / "checkpoint.npz")


def test_ctrl_c_during_the_save_saves_then_stops(capsys, runs, tmp_path, monkeypatch):
    out = copy_of_epoch_1(runs, tmp_path)
    monkeypatch.setattr(files, "os", FaultyOS(SAVE_CALLS.index("write") + 1, ctrl_c))
    code, _, err = resume(capsys, out, "--epochs", "3")
    assert code == 130 and "stopped at epoch 3, batch 0 of 2; checkpoint saved" in err
    assert_same_state(out / "checkpoint.npz", runs / "two" / "checkpoint.npz")  # the save went through
    assert not temporaries(out)


def test_a_second_ctrl_c_during_the_save_quits_and_keeps_the_old_checkpoint(capsys, runs, tmp_path, monkeypatch):
    out = copy_of_epoch_1(runs, tmp_path)
    before = (out / "checkpoint.npz").read_bytes()

    def second_ctrl_c():
        raise KeyboardInterrupt  # what the handler raises for a second Ctrl-C

    monkeypatch.setattr(files, "os", FaultyOS(SAVE_CALLS.index("write") + 1, second_ctrl_c))
    code, _, err = resume(capsys, out)
    assert code == 130 and "the last checkpoint (if any) is unchanged" in err
    assert (out / "checkpoint.npz").read_bytes() == before and not temporaries(out)
    monkeypatch.setattr(files, "os", os)
    assert resume(capsys, out)[0] == 0
    assert_same_state(out / "checkpoint.npz", runs / "two" / "checkpoint.npz")
