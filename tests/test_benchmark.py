"""The benchmark script runs end to end and writes its JSON (a smoke test: no timing is asserted)."""
import json
import os

from benchmarks import googlenet as bench


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
    import pytest
    with pytest.raises(SystemExit):
        bench.main(["--device", "cpu", "--batch-size", "0"])
    assert "--batch-size must be at least 1" in capsys.readouterr().err
