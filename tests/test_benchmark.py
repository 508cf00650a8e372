"""The benchmark script runs end to end and writes its JSON (a smoke test: no timing is asserted)."""
import json
import os
import subprocess
import sys

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


def test_pytorch_runs_in_both_layouts_each_in_its_own_process_with_its_own_defaults(tmp_path, capsys, monkeypatch):
    """Each PyTorch layout is timed in a fresh process that inherits the environment untouched (no OpenMP
    wait policy set for it), and minicnn is compared with the faster layout and the smaller peak memory."""
    pytest.importorskip("torch")
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    out = tmp_path / "result.json"
    bench.main(["--device", "cpu", "--width", "0.0625", "--batch-size", "2", "--steps", "1", "--repeats", "1",
                "--warmup", "1", "--norm", "bn", "--no-profile", "--json", str(out)])
    result = json.loads(out.read_text())
    runs = {run["engine"]: run for run in result["runs"]}
    assert list(runs) == ["minicnn", "pytorch-nchw", "pytorch-channels-last"]
    processes = result["meta"]["pytorch_processes"]
    assert [p["engine"] for p in processes] == ["pytorch-nchw", "pytorch-channels-last"]
    pids = {p["pid"] for p in processes}
    assert len(pids) == 2 and os.getpid() not in pids
    assert all(p["OMP_WAIT_POLICY"] is None for p in processes) and "OMP_WAIT_POLICY" not in os.environ
    [ratio] = result["versus_pytorch"]
    torch_runs = [runs["pytorch-nchw"], runs["pytorch-channels-last"]]
    for key, name in (("train_images_per_s", "train"), ("inference_images_per_s", "inference")):
        assert ratio[name] == pytest.approx(runs["minicnn"][key] / max(run[key] for run in torch_runs))
    assert ratio["peak_memory"] == pytest.approx(runs["minicnn"]["peak_memory_bytes"]
                                                 / min(run["peak_memory_bytes"] for run in torch_runs))
    printed = capsys.readouterr().out
    assert "PyTorch channels-last" in printed and "minicnn / PyTorch best" in printed


def test_one_engine_alone_leaves_minicnn_unconfigured(tmp_path):
    """--engine pytorch-... (what the benchmark's PyTorch processes run) times PyTorch only and never calls
    minicnn.configure_cpu: glibc's memory settings and BLAS's threads stay PyTorch's."""
    pytest.importorskip("torch")
    out = tmp_path / "result.json"
    done = subprocess.run([sys.executable, "-m", "benchmarks.googlenet", "--engine", "pytorch-channels-last", "--device", "cpu",
                           "--width", "0.0625", "--batch-size", "2", "--steps", "1", "--repeats", "1", "--warmup",
                           "0", "--norm", "lrn", "--no-profile", "--json", str(out)],
                          capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert [run["engine"] for run in result["runs"]] == ["pytorch-channels-last"]
    assert result["meta"]["cpu_settings"] is None and result["meta"]["pytorch"]["pid"] != os.getpid()
