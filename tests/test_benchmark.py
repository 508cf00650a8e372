"""The benchmark script runs end to end and writes its JSON (a smoke test: no timing is asserted)."""
import json

import pytest

from benchmarks import googlenet as bench
from minicnn import backend
from helpers import on_cupy_standin

SMALL = ["--width", "0.0625", "--batch-size", "2", "--steps", "1", "--repeats", "1", "--warmup", "1", "--norm", "lrn",
         "--no-torch", "--no-profile"]


def test_benchmark_runs_and_writes_every_figure(tmp_path, capsys):
    out = tmp_path / "result.json"
    bench.main(["--device", "cpu", "--width", "0.0625", "--batch-size", "2", "--steps", "1", "--repeats", "1",
                "--warmup", "1", "--norm", "lrn", "--no-torch", "--json", str(out)])
    result = json.loads(out.read_text())
    minicnn = result["results"]["lrn"]["minicnn"]
    assert minicnn["train_images_per_s"] > 0 and minicnn["inference_images_per_s"] > 0
    assert {"conv forward", "conv backward", "pooling forward", "LRN forward", "concat forward",
            "optimizer step", "python overhead"} <= set(minicnn["breakdown_ms"])
    assert result["meta"]["batch_size"] == 2 and result["meta"]["torch"] is None
    printed = capsys.readouterr().out
    assert "train img/s" in printed and "python overhead" in printed


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
    for norm in ("lrn", "bn"):
        minicnn = result["results"][norm]["minicnn"]
        assert minicnn["train_images_per_s"] > 0 and minicnn["peak_memory_bytes"] > 0
        counts = minicnn["per_step"]
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
