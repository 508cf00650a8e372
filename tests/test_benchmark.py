"""The benchmark script runs end to end and writes its JSON (a smoke test: no timing is asserted)."""
import json
import os

import pytest

from benchmarks import googlenet as bench
from minicnn import backend
from helpers import on_cupy_standin

SMALL = ["--width", "0.0625", "--batch-size", "2", "--steps", "1", "--repeats", "1", "--warmup", "1", "--norm", "lrn",
         "--no-torch", "--no-profile"]


def test_benchmark_runs_and_writes_every_figure(tmp_path, capsys):
    out = tmp_path / "result.json"
    bench.main(["--device", "cpu", "--width", "0.0625", "--batch-size", "2", "3", "--steps", "1", "--repeats", "1",
                "--warmup", "1", "--norm", "lrn", "--no-torch", "--json", str(out)])
    result = json.loads(out.read_text())
    assert [(run["engine"], run["batch"]) for run in result["runs"]] == [("minicnn", 2), ("minicnn", 3)]
    for run in result["runs"]:
        assert run["train_images_per_s"] > 0 and run["inference_images_per_s"] > 0 and run["train_gflops"] > 0
    profile = result["breakdowns"]["lrn"]
    assert profile["batch"] == 3  # batch 32 was not timed: the largest one is profiled
    assert {"conv forward", "conv backward", "pooling forward", "LRN forward", "concat forward",
            "optimizer step", "python overhead"} <= set(profile["ms"])
    assert result["meta"]["batch_sizes"] == [2, 3] and result["meta"]["torch"] is None
    printed = capsys.readouterr().out
    assert "train img/s" in printed and "train GFLOP/s" in printed and "python overhead" in printed


def test_benchmark_times_training_under_a_competing_load_and_stops_it(tmp_path, capsys):
    out = tmp_path / "result.json"
    bench.main(["--device", "cpu", "--width", "0.0625", "--batch-size", "2", "--steps", "1", "--repeats", "1",
                "--warmup", "0", "--norm", "lrn", "--no-torch", "--no-profile", "--load", "spin",
                "--json", str(out)])
    run = json.loads(out.read_text())["runs"][0]
    assert run["train_images_per_s_under_load"] > 0
    assert "slowdown" in capsys.readouterr().out
    assert not [cmdline for cmdline in _command_lines() if bench.LOADS["spin"].encode() in cmdline]  # it is gone


def _command_lines():
    """The command lines of the processes running now (Linux)."""
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                yield f.read()
        except OSError:  # not a process, or it ended meanwhile
            continue


def test_benchmark_rejects_bad_options(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--device", "cpu", "--batch-size", "0"])
    assert "--batch-size must be at least 1" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.parametrize("device", ["gpu", "gpu:1"])
def test_benchmark_runs_on_the_gpu_path(tmp_path, capsys, device):
    """One tiny step of each variant, on the first GPU and (with two) on the second while the first is current."""
    if device == "gpu:1" and backend.gpu_count() < 2:
        pytest.skip("needs two GPUs (the CuPy stand-in simulates two)")
    out = tmp_path / "result.json"
    bench.main(["--device", device, "--width", "0.0625", "--batch-size", "2", "--steps", "1", "--repeats", "1",
                "--warmup", "1", "--no-torch", "--no-profile", "--json", str(out)])
    result = json.loads(out.read_text())
    assert result["meta"]["device"] == ("gpu:0" if device == "gpu" else device)
    assert [(run["variant"], run["engine"]) for run in result["runs"]] == [("lrn", "minicnn"), ("bn", "minicnn")]
    for run in result["runs"]:
        assert run["train_images_per_s"] > 0 and run["peak_memory_bytes"] > 0
        counts = run["per_step"]
        if not on_cupy_standin():  # real CuPy counts nothing
            assert counts is None
        else:
            assert counts["device_ops"] > 0 and counts["syncs"] == 0
    printed = capsys.readouterr().out
    assert "train img/s" in printed
    assert ("device operations" in printed) == on_cupy_standin()


def test_without_device_it_picks_like_the_trainer(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(backend, "gpu_count", lambda: 0)  # as on a machine without a GPU
    out = tmp_path / "result.json"
    bench.main([*SMALL, "--json", str(out)])
    assert json.loads(out.read_text())["meta"]["device"] == "cpu"
    assert capsys.readouterr().out.startswith("device: cpu (auto: ")


def test_choose_device_auto_and_named(monkeypatch):
    monkeypatch.setattr(backend, "gpu_count", lambda: 0)
    device, why = backend.choose_device("auto")
    assert device == backend.CPU and why.startswith("auto: ")
    assert backend.choose_device("cpu") == (backend.CPU, "--device cpu")
    with pytest.raises(ValueError, match="'cpu', 'gpu' or 'gpu:N'"):
        backend.choose_device("tpu")
    with pytest.raises(backend.DeviceUnavailableError):
        backend.choose_device("gpu:1")


def test_openmp_threads_are_asked_to_wait_passively_unless_the_user_chose(monkeypatch):
    """PyTorch's OpenMP threads, spinning after each parallel region, would take the cores from minicnn's timed
    step in the same process; the benchmark asks for passive waits before torch is imported, never over a
    policy the user set."""
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert bench.passive_openmp_waits() == "PASSIVE" and os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert bench.passive_openmp_waits() == "ACTIVE" and os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
