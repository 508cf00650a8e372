"""The benchmark script runs end to end and writes its JSON (a smoke test: no timing is asserted)."""
import json

import pytest

from benchmarks import googlenet as bench
from minicnn import backend

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
    import pytest
    with pytest.raises(SystemExit):
        bench.main(["--device", "cpu", "--batch-size", "0"])
    assert "--batch-size must be at least 1" in capsys.readouterr().err


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
