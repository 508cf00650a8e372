"""The benchmark script runs end to end and writes its JSON (a smoke test: no timing is asserted)."""
import json

from benchmarks import googlenet as bench


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
