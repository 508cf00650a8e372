"""python -m train.cifar, called in-process through main(argv) on tiny data at tiny width:
the files a run leaves, resuming (bit for bit), Ctrl-C, and every error path.

Runs use 32 training and 32 test images in batches of 16 (2 steps per epoch) and
width 1/16, so an epoch takes about a second on a CPU.
"""
import json
import math
import os
import re
import shlex
import signal
import subprocess
import sys

import numpy as np
import pytest

from minicnn import backend
from train import cifar, data, metrics
from train.checkpoint import load_checkpoint
from train.metrics import METRIC_KEYS
from tiny_cifar import CLASS_NAMES, Server, closed_port_url, write_cifar
from helpers import on_cupy_standin

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_MODEL = ["--device", "cpu", "--no-download", "--width", "0.0625"]
TINY = [*TINY_MODEL, "--limit", "32", "--batch-size", "16"]
STEPS_PER_EPOCH = 2


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("cifar"))
    write_cifar(folder)
    return folder


def run_cli(capsys, *argv):
    """main(argv) -> (exit code, stdout, stderr)."""
    code = cifar.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def train(capsys, data_dir, out, *extra):
    return run_cli(capsys, *TINY, "--data-dir", data_dir, "--out", out, *extra)


def run_printed_command(line):
    """Run the command after "Continue with: " in ``line`` as a shell would, from the repository root."""
    argv = shlex.split(line.split("Continue with: ", 1)[1])
    assert argv[:3] == ["python", "-m", "train.cifar"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO_ROOT,
                                                       os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, *argv[1:]], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def model_arrays(path):
    """{name: array} of the parameters, buffers and optimizer state in a checkpoint."""
    with np.load(path) as archive_:
        return {key: archive_[key] for key in archive_.files if key.startswith(("model/", "optimizer/state/"))}


def assert_same_arrays(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)  # bitwise: exact equality


@pytest.fixture(scope="module")
def finished_run(data_dir, tmp_path_factory):
    """A 2-epoch run (the default onecycle schedule) that later tests compare with and read."""
    out = str(tmp_path_factory.mktemp("runs") / "straight")
    assert cifar.main([*TINY, "--data-dir", data_dir, "--out", out, "--epochs", "2"]) == 0
    return out


# -- a run and what it leaves -----------------------------------------------------------------

def test_run_leaves_metrics_checkpoint_and_plot(finished_run):
    lines = open(os.path.join(finished_run, "metrics.jsonl")).read().splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == 2 and [row["epoch"] for row in rows] == [1, 2]
    for row in rows:
        assert tuple(row) == METRIC_KEYS
        assert 0 <= row["train_acc"] <= 1 and 0 <= row["test_acc"] <= 1
        assert math.isfinite(row["train_loss"]) and row["seconds"] > 0 and row["lr"] > 0

    with np.load(os.path.join(finished_run, "checkpoint.npz")) as saved:
        keys = set(saved.files)
        assert int(saved["progress/epoch"]) == 2 and int(saved["progress/step"]) == 0
        assert int(saved["scheduler/last_epoch"]) == 2 * STEPS_PER_EPOCH
        assert int(saved["optimizer/step_count"]) == 2 * STEPS_PER_EPOCH
        args = json.loads(str(saved["args"]))
    assert {"model/fc.weight", "model/stem.0.bn.running_mean", "optimizer/state/0/momentum_buffer",
            "scheduler/base_lr", "history", "progress/partial"} <= keys
    assert args["width"] == 0.0625 and args["seed"] == 0 and args["norm"] == "bn" and args["epochs"] == 2
    if os.path.exists(os.path.join(finished_run, "curves.png")):
        assert open(os.path.join(finished_run, "curves.png"), "rb").read(4) == b"\x89PNG"
    else:
        pytest.importorskip("matplotlib")  # only matplotlib's absence excuses a missing plot
        pytest.fail("curves.png missing although matplotlib is installed")
    assert not [name for name in os.listdir(finished_run) if name.startswith(".")]  # no temp files left


def test_output_lines(capsys, data_dir, tmp_path):
    code, out, err = train(capsys, data_dir, tmp_path / "run", "--epochs", "1", "--no-aux", "--norm", "lrn")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "device: cpu (--device cpu)"
    assert any(line.startswith("epoch   1/1  train loss") and " test loss " in line and " lr " in line
               for line in lines)
    assert lines[-1].startswith("best test accuracy") and "wall time" in lines[-1]
    assert "no aux heads" in out and "norm lrn" in out and "note:" not in out  # the CPU was asked for
    assert "epoch 1/1" in err and "img_s=" in err  # the tqdm bar with its running figures


def test_a_run_on_the_cpu_for_want_of_a_gpu_says_so_with_an_estimate_from_its_first_batch(capsys, data_dir,
                                                                                          tmp_path, without_cupy):
    argv = [a for a in TINY if a not in ("--device", "cpu")]  # --device auto, the default, finds no GPU
    code, out, _ = run_cli(capsys, *argv, "--data-dir", data_dir, "--out", tmp_path / "run", "--epochs", "3")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("device: cpu (auto: CuPy is not installed")
    assert lines[1] == ("note: no GPU, so the CPU runs this recipe meant for a GPU (3 epochs of 32 images at width "
                        f"0.0625); the first batch times it. For a quick try instead: {cifar.QUICK_CPU_RUN}")
    [estimate] = [line for line in lines if line.startswith("note: the first batch took")]
    assert re.fullmatch(r"note: the first batch took \d+\.\d s on the CPU, so this run takes about \d+ (s|min|h \d+ min) "
                        r"more, likely less \(the first batch also warms up\); Ctrl-C saves and stops it", estimate), estimate
    assert lines.index(estimate) < min(i for i, line in enumerate(lines) if line.startswith("epoch "))


def test_the_estimate_counts_the_steps_and_evaluations_left():
    run = cifar.Run.__new__(cifar.Run)  # only what estimate() reads
    run.args = cifar.argparse.Namespace(epochs=15, batch_size=128)
    run.steps_per_epoch, run.epoch, run.test_labels = 391, 0, np.zeros(10000)
    # 15 * 391 - 1 steps left, and 15 evaluations of 40 batches of 256, each about 2/3 of a step:
    # 2 s * (5864 + 400) = 12528 s = 208.8 min
    assert run.estimate(2.0, 1) == ("note: the first batch took 2.0 s on the CPU, so this run takes about 3 h 29 min "
                                    "more, likely less (the first batch also warms up); Ctrl-C saves and stops it")
    assert [cifar.format_duration(s) for s in (20, 90, 3600, 3 * 3600 + 59 * 60 + 40)] == [
        "20 s", "2 min", "1 h 0 min", "4 h 0 min"]  # (90 s: 1.5 min rounds to the even 2)


def test_plot_skipped_without_matplotlib(capsys, data_dir, tmp_path, monkeypatch):
    for module in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg", "matplotlib.ticker"):
        monkeypatch.setitem(sys.modules, module, None)
    code, out, _ = train(capsys, data_dir, tmp_path / "run", "--epochs", "1")
    assert code == 0 and "curves.png skipped: matplotlib is not installed" in out
    assert not (tmp_path / "run" / "curves.png").exists()
    assert (tmp_path / "run" / "metrics.jsonl").exists()


def test_evaluate_rebuilds_the_model_from_the_checkpoint(capsys, data_dir, finished_run):
    last = json.loads(open(os.path.join(finished_run, "metrics.jsonl")).read().splitlines()[-1])
    code, out, _ = run_cli(capsys, "--evaluate", os.path.join(finished_run, "checkpoint.npz"),
                           "--data-dir", data_dir, "--device", "cpu", "--limit", "32")
    assert code == 0
    assert f"test accuracy {last['test_acc']:.2%} ({round(last['test_acc'] * 32)} of 32 images)" in out
    assert "width 0.0625" in out  # the width came from the checkpoint, not the default 1.0
    assert "per-class accuracy" in out and "confusion matrix" in out
    assert all(name in out for name in CLASS_NAMES)


def test_evaluate_plots_what_the_network_learned(capsys, data_dir, finished_run, tmp_path, device):
    pytest.importorskip("matplotlib")
    folder = tmp_path / "plots"
    code, out, _ = run_cli(capsys, "--evaluate", os.path.join(finished_run, "checkpoint.npz"), "--data-dir",
                           data_dir, "--device", device, "--limit", "32", "--plots", folder)
    assert code == 0
    names = ["filters.png", "feature-maps.png", "class-accuracy.png", "confusion.png"]
    assert sorted(os.listdir(folder)) == sorted(names)  # and no temporary files
    for name in names:
        assert (folder / name).read_bytes()[:4] == b"\x89PNG"
    assert "plots written: " + ", ".join(str(folder / name) for name in names) in out


def test_plots_go_with_evaluate_and_need_matplotlib(capsys, data_dir, finished_run, monkeypatch):
    with pytest.raises(SystemExit):
        cifar.main(["--plots"])
    assert "--plots goes with --evaluate CHECKPOINT" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, _, err = run_cli(capsys, "--evaluate", os.path.join(finished_run, "checkpoint.npz"), "--data-dir",
                           data_dir, "--device", "cpu", "--plots")
    assert code == 1 and "--plots needs matplotlib: python -m pip install -e '.[plot]'" in err


def test_first_run_downloads_the_data(capsys, tmp_path, monkeypatch, archive):  # noqa: F811
    body, md5, _ = archive
    data_dir = tmp_path / "fresh"
    with Server({"/cifar-10-python.tar.gz": body}) as server:
        monkeypatch.setattr(data, "CIFAR10_URL", server.url("/cifar-10-python.tar.gz"))
        monkeypatch.setattr(data, "CIFAR10_MD5", md5)
        argv = [a for a in TINY if a != "--no-download"]
        code, out, _ = run_cli(capsys, *argv, "--data-dir", data_dir, "--out", tmp_path / "run", "--epochs", "1")
    assert code == 0 and "data: 20 training and 8 test images" in out
    assert os.listdir(data_dir) == [data.FOLDER]


# -- resuming -------------------------------------------------------------------------------

def test_resume_after_an_epoch_matches_a_straight_run(capsys, data_dir, tmp_path):
    paper = ["--schedule", "paper"]  # a schedule that does not depend on --epochs
    assert train(capsys, data_dir, tmp_path / "straight", *paper, "--epochs", "2")[0] == 0
    assert train(capsys, data_dir, tmp_path / "split", *paper, "--epochs", "1")[0] == 0
    code, out, _ = run_cli(capsys, "--resume", "--out", tmp_path / "split", "--epochs", "2",
                           "--data-dir", data_dir, "--device", "cpu", "--no-download")
    assert code == 0 and "resuming" in out
    assert_same_arrays(model_arrays(tmp_path / "straight" / "checkpoint.npz"),
                       model_arrays(tmp_path / "split" / "checkpoint.npz"))
    assert len(open(tmp_path / "split" / "metrics.jsonl").read().splitlines()) == 2


@pytest.mark.parametrize("stop_after_step", [0, STEPS_PER_EPOCH - 1], ids=["mid-epoch", "before-evaluation"])
def test_ctrl_c_saves_and_resume_matches_a_straight_run(capsys, data_dir, tmp_path, monkeypatch, finished_run,
                                                        stop_after_step):
    real_step = cifar.Run.train_step

    def step_then_ctrl_c(self, plan, epoch, step, totals):
        real_step(self, plan, epoch, step, totals)
        if (epoch, step) == (0, stop_after_step):
            signal.raise_signal(signal.SIGINT)  # as if the user pressed Ctrl-C during this batch

    monkeypatch.setattr(cifar.Run, "train_step", step_then_ctrl_c)
    out_dir = tmp_path / "interrupted"
    handler_before = signal.getsignal(signal.SIGINT)  # Python's default; ignored in a background job
    code, _, err = train(capsys, data_dir, out_dir, "--epochs", "2")
    assert code == 130 and f"--resume --out {out_dir}" in err
    assert signal.getsignal(signal.SIGINT) is handler_before  # handler put back
    saved = load_checkpoint(str(out_dir / "checkpoint.npz"))
    assert (saved.epoch, saved.step) == (0, stop_after_step + 1) and saved.history == []

    monkeypatch.setattr(cifar.Run, "train_step", real_step)
    # exactly the printed command: the data folder and the device are the run's own
    resumed = run_printed_command(err.strip().splitlines()[-1])
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout and data_dir in resumed.stdout
    assert_same_arrays(model_arrays(os.path.join(finished_run, "checkpoint.npz")),
                       model_arrays(out_dir / "checkpoint.npz"))
    straight = [json.loads(line) for line in open(os.path.join(finished_run, "metrics.jsonl"))]
    resumed = [json.loads(line) for line in open(out_dir / "metrics.jsonl")]
    for a, b in zip(straight, resumed):  # the interrupted epoch's running totals were kept
        for key in ("train_loss", "train_acc", "test_loss", "test_acc", "lr"):
            assert b[key] == pytest.approx(a[key], rel=1e-5), key


def test_ctrl_c_while_an_epoch_is_written_stops_before_the_next_epoch(capsys, data_dir, tmp_path, monkeypatch):
    """The stop comes before the next epoch's first batch, where there is no loss yet to check (not a nan)."""
    real_write = cifar.write_metrics

    def write_then_ctrl_c(history, path):
        real_write(history, path)
        signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(cifar, "write_metrics", write_then_ctrl_c)
    code, _, err = train(capsys, data_dir, tmp_path / "run", "--epochs", "2")
    assert code == 130 and "stopped at epoch 2, batch 0 of 2; checkpoint saved" in err, err
    saved = load_checkpoint(str(tmp_path / "run" / "checkpoint.npz"))
    assert (saved.epoch, saved.step, len(saved.history)) == (1, 0, 1)


def test_evaluate_reads_the_data_of_its_run(capsys, data_dir, finished_run, monkeypatch, tmp_path):
    from test_train_data import closed_port_url
    monkeypatch.setattr(data, "CIFAR10_URL", closed_port_url())  # a download attempt fails at once
    monkeypatch.chdir(tmp_path)  # where ./data holds nothing
    code, out, err = run_cli(capsys, "--evaluate", os.path.join(finished_run, "checkpoint.npz"), "--device", "cpu")
    assert code == 0, err
    assert f"32 test images from {os.path.join(data_dir, data.FOLDER)}" in out
    code, _, err = run_cli(capsys, "--evaluate", os.path.join(finished_run, "checkpoint.npz"), "--device", "cpu",
                           "--data-dir", tmp_path / "elsewhere", "--no-download")
    assert code == 1 and "elsewhere" in err  # an explicit --data-dir wins


@pytest.mark.parametrize("extra", [["--lr", "0.5"], ["--width", "0.5"], ["--epochs", "3"], ["--norm", "lrn"],
                                   ["--out", "x"], ["--seed", "1", "--no-aux"]])
def test_evaluate_refuses_options_it_would_ignore(capsys, extra):
    with pytest.raises(SystemExit) as exit_:
        cifar.main(["--evaluate", "checkpoint.npz", "--device", "cpu", "--limit", "8", *extra])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "--evaluate takes the model and its options from the checkpoint" in err
    named = [word for word in extra if word.startswith("--")]
    assert all(name in err.splitlines()[-1] for name in named) and "--limit" not in err.splitlines()[-1]


def test_resume_refuses_changed_options_and_stops_when_done(capsys, data_dir, finished_run):
    before = open(os.path.join(finished_run, "checkpoint.npz"), "rb").read()
    code, _, err = run_cli(capsys, "--resume", "--out", finished_run, "--data-dir", data_dir,
                           "--device", "cpu", "--width", "0.125")
    assert code == 1 and "--width 0.0625 (not 0.125)" in err
    code, out, _ = run_cli(capsys, "--resume", "--out", finished_run, "--data-dir", data_dir, "--device", "cpu")
    assert code == 0 and "nothing to do" in out  # --epochs defaults to the stored 2
    assert open(os.path.join(finished_run, "checkpoint.npz"), "rb").read() == before


def test_fresh_run_refuses_a_folder_holding_a_run(capsys, data_dir, finished_run):
    before = open(os.path.join(finished_run, "checkpoint.npz"), "rb").read()
    code, _, err = train(capsys, data_dir, finished_run, "--epochs", "1")
    assert code == 1 and "already holds a run" in err and "--resume" in err
    assert open(os.path.join(finished_run, "checkpoint.npz"), "rb").read() == before


def test_resume_without_a_checkpoint(capsys, data_dir, tmp_path):
    code, _, err = run_cli(capsys, "--resume", "--out", tmp_path / "empty", "--data-dir", data_dir, "--device", "cpu")
    assert code == 1 and "nothing to resume" in err


# -- failures -------------------------------------------------------------------------------

def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(capsys, data_dir, tmp_path, monkeypatch):
    real_loss, calls = cifar.googlenet_loss, []

    def loss_going_nan(outputs, target, **options):
        calls.append(1)
        loss = real_loss(outputs, target, **options)
        return loss * float("nan") if len(calls) > STEPS_PER_EPOCH else loss  # from epoch 2 on

    monkeypatch.setattr(cifar, "googlenet_loss", loss_going_nan)
    out_dir = tmp_path / "run"
    code, _, err = train(capsys, data_dir, out_dir, "--epochs", "3")
    assert code == 1 and "the training loss in epoch 2" in err and "became nan" in err
    assert "last good checkpoint" in err and "Traceback" not in err
    saved = load_checkpoint(str(out_dir / "checkpoint.npz"))
    assert saved.epoch == 1 and saved.step == 0 and len(saved.history) == 1
    assert all(np.isfinite(value).all() for value in saved.model.values())
    assert len(open(out_dir / "metrics.jsonl").read().splitlines()) == 1


@pytest.mark.parametrize("how", ["nan", "double-ctrl-c", "error"])
def test_a_run_stopping_before_its_first_checkpoint_leaves_no_folder(capsys, data_dir, tmp_path, monkeypatch, how):
    real_step = cifar.Run.train_step

    def failing_step(self, plan, epoch, step, totals):
        if how == "nan":
            totals.add(np.array(np.nan), np.zeros((16, 10)), np.zeros(16, np.int64))
        elif how == "double-ctrl-c":
            raise KeyboardInterrupt  # what the second Ctrl-C raises
        else:
            raise RuntimeError("a bug")

    monkeypatch.setattr(cifar.Run, "train_step", failing_step)
    mine = tmp_path / "mine"  # a folder the user made, holding a file of theirs
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    for out in (tmp_path / "new" / "run", mine):
        if how == "error":
            with pytest.raises(RuntimeError, match="a bug"):
                train(capsys, data_dir, out, "--epochs", "1")
        else:
            code, _, err = train(capsys, data_dir, out, "--epochs", "1")
            assert code == (1 if how == "nan" else 130), err
    assert not (tmp_path / "new").exists()  # both folders the run made are gone
    assert os.listdir(mine) == ["notes.txt"] and (mine / "notes.txt").read_text() == "keep me"
    monkeypatch.setattr(cifar.Run, "train_step", real_step)
    assert train(capsys, data_dir, tmp_path / "new" / "run", "--epochs", "1")[0] == 0  # the same --out again


@pytest.mark.parametrize("make_out", [lambda tmp: tmp / "a-file", lambda tmp: tmp / "a-file" / "run"],
                         ids=["a file", "inside a file"])
def test_out_that_cannot_be_a_folder_is_refused_before_the_data_loads(capsys, data_dir, tmp_path, monkeypatch,
                                                                      make_out):
    (tmp_path / "a-file").write_text("not a folder")

    def no_data(*args, **kwargs):
        raise AssertionError("the data was read before --out was checked")

    monkeypatch.setattr(data, "find_cifar10", no_data)
    code, out, err = train(capsys, data_dir, make_out(tmp_path), "--epochs", "1")
    assert code == 1 and out == ""
    assert err.startswith("error: ") and "--out" in err and len(err.splitlines()) == 1
    assert (tmp_path / "a-file").read_text() == "not a folder" and os.listdir(tmp_path) == ["a-file"]


@pytest.fixture
def lock_holder():
    """start(folder): another process that holds the run lock of ``folder`` (like a run in progress)
    until killed; returns the Popen. Every process started is killed at the end."""
    started = []

    def start(folder):
        code = ("import sys, time\nfrom train.run_folder import RunFolder\n"
                "with RunFolder(sys.argv[1]):\n    print('locked', flush=True)\n    time.sleep(600)\n")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO_ROOT, os.environ.get("PYTHONPATH", "")]))
        process = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True,
                                   env=env)
        started.append(process)
        assert process.stdout.readline() == "locked\n"
        return process

    yield start
    for process in started:
        process.kill()
        process.wait()


def test_a_second_run_into_a_folder_in_use_is_refused(capsys, data_dir, tmp_path, lock_holder):
    out = tmp_path / "run"
    holder = lock_holder(out)
    code, _, err = train(capsys, data_dir, out, "--epochs", "1")
    assert code == 1 and len(err.splitlines()) == 1
    assert f"--out {out} is in use by another run (process {holder.pid})" in err
    assert os.listdir(out) == [".lock"]  # nothing written

    holder.kill()  # a crash: the operating system releases the lock, the file stays
    holder.wait()
    code, _, err = train(capsys, data_dir, out, "--epochs", "1")
    assert code == 0, err
    assert {"checkpoint.npz", "metrics.jsonl"} <= set(os.listdir(out)) and ".lock" not in os.listdir(out)


def test_resume_of_a_run_in_progress_is_refused(capsys, data_dir, tmp_path, lock_holder):
    out = tmp_path / "run"
    assert train(capsys, data_dir, out, "--epochs", "1")[0] == 0
    before = (out / "checkpoint.npz").read_bytes()
    holder = lock_holder(out)
    code, _, err = run_cli(capsys, "--resume", "--out", out, "--epochs", "2")
    assert code == 1 and f"is in use by another run (process {holder.pid})" in err
    assert (out / "checkpoint.npz").read_bytes() == before


def test_out_of_gpu_memory_suggests_a_smaller_batch(capsys, data_dir, tmp_path, monkeypatch):
    fake_oom = type("OutOfMemoryError", (MemoryError,), {"__module__": "cupy.cuda.memory"})

    def allocate_too_much(*args):
        raise fake_oom("out of memory allocating 1,073,741,824 bytes")

    monkeypatch.setattr(cifar.Run, "train_step", allocate_too_much)
    code, _, err = train(capsys, data_dir, tmp_path / "run", "--epochs", "1")
    assert code == 1 and "smaller --batch-size (e.g. 8)" in err and "Traceback" not in err


def test_missing_data_without_download(capsys, tmp_path):
    missing = tmp_path / "no-data"
    code, out, err = run_cli(capsys, "--device", "auto", "--no-download", "--data-dir", missing,
                             "--out", tmp_path / "run")
    assert code == 1
    assert out.splitlines()[0].startswith("device: ") and "(auto: " in out.splitlines()[0]
    assert err.startswith("error: ") and "--data-dir" in err and "--no-download" in err and data.CIFAR10_URL in err
    assert not missing.exists() and not (tmp_path / "run").exists()


def test_failed_download_in_the_cli(capsys, tmp_path, monkeypatch):
    url = closed_port_url()
    monkeypatch.setattr(data, "CIFAR10_URL", url)
    data_dir = tmp_path / "data"
    code, _, err = run_cli(capsys, "--device", "cpu", "--data-dir", data_dir, "--out", tmp_path / "run")
    assert code == 1 and url in err and "--data-dir" in err and "Traceback" not in err
    assert not data_dir.exists()


def test_corrupt_batch_in_the_cli(capsys, tmp_path):
    write_cifar(str(tmp_path))
    path = tmp_path / data.FOLDER / "test_batch"
    path.write_bytes(path.read_bytes()[:1000])
    code, _, err = run_cli(capsys, *TINY, "--data-dir", tmp_path, "--out", tmp_path / "run")
    assert code == 1 and "test_batch is corrupt or truncated" in err and len(err.splitlines()) == 1


def test_gpu_without_cupy_is_one_line_saying_what_to_install(capsys, tmp_path, without_cupy):
    code, out, err = run_cli(capsys, "--device", "gpu", "--data-dir", tmp_path, "--out", tmp_path / "run")
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and "pip install -e '.[cuda12]'" in err


def test_gpu_where_cupy_finds_none_is_one_line_saying_why(capsys, tmp_path, without_gpu):
    """CuPy installed on a machine without a GPU (or its driver): no install hint, CuPy's own reason."""
    code, out, err = run_cli(capsys, "--device", "gpu", "--data-dir", tmp_path, "--out", tmp_path / "run")
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert "CuPy finds none (cudaErrorNoDevice" in err and "nvidia-smi" in err and "pip install" not in err


@pytest.mark.parametrize("argv, complaint", [
    (["--batch-size", "0"], "--batch-size"),
    (["--epochs", "-1"], "--epochs"),
    (["--epochs", "0"], "--epochs"),
    (["--device", "tpu"], "--device"),
    (["--device", "gpu:x"], "--device"),
    (["--width", "0"], "--width"),
    (["--width", "-0.5"], "--width"),
    (["--lr", "nan"], "--lr: expected a finite number > 0, got nan"),
    (["--lr", "inf"], "--lr: expected a finite number > 0, got inf"),
    (["--lr=1e400"], "--lr: expected a finite number > 0, got 1e400"),
    (["--label-smoothing", "1"], "--label-smoothing"),
    (["--limit", "ten"], "--limit"),
    (["--norm", "gn"], "--norm"),
    (["--resume"], "--resume needs --out"),
    (["--resume", "--out", "x", "--evaluate", "y"], "--evaluate and --resume"),
])
def test_bad_options_are_usage_errors(capsys, argv, complaint):
    with pytest.raises(SystemExit) as exit_:
        cifar.main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "usage:" in err and complaint in err and "Traceback" not in err


def test_help_documents_the_defaults(capsys):
    with pytest.raises(SystemExit) as exit_:
        cifar.main(["--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    for default in ("(default: 128)", "(default: 15)", "(default: onecycle)", "(default: 0.1)", "(default: auto)",
                    "metrics.jsonl", "x0.96 every 8", "(default: 0)"):
        assert default in out, default
    flat = " ".join(out.split())
    for norm, defaults in cifar.NORM_DEFAULTS.items():
        assert f"{defaults['lr']:g} with --norm {norm}" in flat


def test_each_norm_trains_with_its_own_default_learning_rate(capsys, data_dir, tmp_path):
    assert cifar.NORM_DEFAULTS["lrn"]["lr"] != cifar.NORM_DEFAULTS["bn"]["lr"]
    for norm in ("lrn", "bn"):
        assert train(capsys, data_dir, tmp_path / norm, "--epochs", "1", "--norm", norm)[0] == 0
        assert load_checkpoint(str(tmp_path / norm / "checkpoint.npz")).args["lr"] == cifar.NORM_DEFAULTS[norm]["lr"]
    assert train(capsys, data_dir, tmp_path / "given", "--epochs", "1", "--norm", "lrn", "--lr", "0.3")[0] == 0
    assert load_checkpoint(str(tmp_path / "given" / "checkpoint.npz")).args["lr"] == 0.3


def test_the_progress_bar_reads_the_totals_early_then_every_twenty_batches(capsys, data_dir, tmp_path, monkeypatch):
    real_check, reads = cifar.Run.check_finite, []

    def recording_check(self, totals, epoch, step):
        reads.append(step + 1)  # batches done when the totals were read
        return real_check(self, totals, epoch, step)

    monkeypatch.setattr(cifar.Run, "check_finite", recording_check)
    code, _, err = run_cli(capsys, *TINY_MODEL, "--limit", "44", "--batch-size", "2", "--data-dir", data_dir,
                           "--out", tmp_path / "run", "--epochs", "1")
    assert code == 0
    assert reads == [1, 2, 5, 10, 20, 22]  # 22 batches of 2
    assert "loss=" in err and "img_s=" in err


def test_the_read_schedule_is_early_then_every_twenty_batches():
    assert [n for n in range(1, 101) if metrics.read_due(n, 100)] == [1, 2, 5, 10, 20, 40, 60, 80, 100]
    assert [n for n in range(1, 8) if metrics.read_due(n, 7)] == [1, 2, 5, 7]  # a short epoch: its figures at once
    steady = range(11, 5000)
    assert all(metrics.read_due(n, 10**6) == (n % 20 == 0) for n in steady)  # no more often than every 20 batches


def readme_quick_run():
    """The README's quick CPU run: (its command's arguments after `python -m train.cifar`, the lines it shows)."""
    readme = open(os.path.join(REPO_ROOT, "README.md")).read()
    match = re.search(r"```\n(python -m train\.cifar --device cpu [^\n]*)\n```\s*```text\n(.*?)```", readme, re.S)
    assert match, "README.md: no quick run (python -m train.cifar --device cpu ...) followed by its output"
    return shlex.split(match[1])[3:], match[2].splitlines()


def shape(line):
    """A printed line with every number (counts, losses, times, the run folder's timestamp) as '#'."""
    return " ".join(re.sub(r"\d[\d,.]*(e[-+]?\d+)?", "#", line).split())


def test_the_readmes_quick_run_prints_what_the_readme_shows(capsys, tmp_path, monkeypatch):
    argv, shown = readme_quick_run()
    write_cifar(str(tmp_path / "data"))  # tiny, so nothing is downloaded
    monkeypatch.chdir(tmp_path)  # as in a fresh clone: ./data and ./runs
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert [shape(line) for line in out.splitlines()] == [shape(line) for line in shown]


def test_command_line_error_has_no_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "train.cifar", "--device", "cpu", "--no-download",
                             "--data-dir", str(tmp_path / "none")], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1
    assert result.stdout.splitlines() == ["device: cpu (--device cpu)"]
    assert result.stderr.startswith("error: CIFAR-10 is not in --data-dir") and "Traceback" not in result.stderr


# -- the GPU path (real CuPy, or the CuPy stand-in) --------------------------------------------------

def on_gpu(device):
    """TINY with --device ``device``, and 16 images: one step per epoch (the stand-in's steps cost most)."""
    return [{"cpu": device, "32": "16"}.get(a, a) for a in TINY]


@pytest.fixture
def gpu_run(monkeypatch):
    """For in-process GPU runs: no curves.png (drawn on the host, tested above, and slow to draw), and
    gpu:0 made current again afterwards (train.cifar makes its GPU CuPy's current device for the rest
    of the process, as a command should; the tests after it expect gpu:0)."""
    monkeypatch.setattr(cifar, "plot_curves", lambda history, path: True)
    yield
    backend.require_gpu().cuda.Device(0).use()


@pytest.mark.gpu
def test_gpu_run_resumes_to_the_straight_runs_result_and_evaluates(capsys, data_dir, tmp_path, gpu_run):
    paper = ["--schedule", "paper"]
    code, out, _ = run_cli(capsys, *on_gpu("gpu"), "--data-dir", data_dir, "--out", tmp_path / "straight", *paper,
                           "--epochs", "2")
    assert code == 0, out
    assert out.splitlines()[0] == "device: gpu:0 (--device gpu:0; full float32 products)"  # the tests pin TF32 off
    code, _, _ = run_cli(capsys, *on_gpu("gpu"), "--data-dir", data_dir, "--out", tmp_path / "split", *paper,
                         "--epochs", "1")
    assert code == 0
    code, out, _ = run_cli(capsys, "--resume", "--out", tmp_path / "split", "--epochs", "2", "--data-dir", data_dir,
                           "--device", "gpu", "--no-download")
    assert code == 0 and "resuming" in out
    straight, resumed = (model_arrays(tmp_path / name / "checkpoint.npz") for name in ("straight", "split"))
    assert straight.keys() == resumed.keys()
    for key in straight:  # the same run (bit for bit on the stand-in; a GPU may sum in another order)
        np.testing.assert_allclose(resumed[key], straight[key], rtol=1e-5, atol=1e-7, err_msg=key)
    last = json.loads(open(tmp_path / "straight" / "metrics.jsonl").read().splitlines()[-1])
    code, out, _ = run_cli(capsys, "--evaluate", tmp_path / "straight" / "checkpoint.npz", "--data-dir", data_dir,
                           "--device", "gpu", "--limit", "16")
    assert code == 0 and f"test accuracy {last['test_acc']:.2%}" in out and "confusion matrix" in out


@pytest.mark.gpu
def test_gpu1_run_and_evaluation(capsys, data_dir, tmp_path, gpu_run):
    if backend.gpu_count() < 2:
        pytest.skip("needs two GPUs (the CuPy stand-in simulates two)")
    code, out, _ = run_cli(capsys, *on_gpu("gpu:1"), "--data-dir", data_dir, "--out", tmp_path / "run",
                           "--epochs", "1")
    assert code == 0 and out.startswith("device: gpu:1 (--device gpu:1")
    saved = load_checkpoint(str(tmp_path / "run" / "checkpoint.npz"))
    assert saved.epoch == 1 and all(np.isfinite(v).all() for v in saved.model.values())
    backend.require_gpu().cuda.Device(0).use()  # evaluation on gpu:1 while gpu:0 is current
    code, out, _ = run_cli(capsys, "--evaluate", tmp_path / "run" / "checkpoint.npz", "--data-dir", data_dir,
                           "--device", "gpu:1", "--limit", "16")
    assert code == 0 and "per-class accuracy" in out


@pytest.mark.gpu
def test_gpu_command_line_end_to_end(data_dir, tmp_path):
    """`python -m train.cifar --device gpu` in a fresh process, LRN variant: run by the stand-in's runner
    where the tests run on the stand-in. (CUPY_TF32=0 comes from the tests' environment.)"""
    runner = ["-m", "tests.standin.run"] if on_cupy_standin() else []
    result = subprocess.run([sys.executable, *runner, "-m", "train.cifar", *on_gpu("gpu"), "--norm", "lrn",
                             "--data-dir", data_dir, "--out", str(tmp_path / "run"), "--epochs", "1"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "device: gpu:0 (--device gpu:0; full float32 products)"
    assert "norm lrn" in result.stdout and lines[-1].startswith("best test accuracy")
    assert (tmp_path / "run" / "checkpoint.npz").exists() and (tmp_path / "run" / "metrics.jsonl").exists()
