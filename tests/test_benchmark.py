"""The benchmark script runs end to end and writes its JSON (a smoke test: no timing is asserted), races its
engines round by round, and runs PyTorch in worker processes of its own that it always shuts down."""
import itertools
import json
import os
import statistics
import subprocess
import sys

import pytest

from benchmarks import googlenet as bench
from minicnn import backend
from helpers import on_cupy_standin



@pytest.fixture(autouse=True)
def no_pause(monkeypatch):
    """No pause between the engines' turns: it keeps timings clean, and no test asserts a timing."""
    monkeypatch.setattr(bench, "PAUSE_S", 0.0)


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
    """Each PyTorch layout is timed in a worker process of its own that inherits the environment untouched (no
    OpenMP wait policy set for it), every engine runs every round, and minicnn's ratio is the median of its
    per-round ratios to the faster layout; its peak memory is compared with the smaller one."""
    pytest.importorskip("torch")
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    out = tmp_path / "result.json"
    bench.main(["--device", "cpu", "--width", "0.0625", "--batch-size", "2", "--steps", "1", "--repeats", "3",
                "--warmup", "1", "--norm", "bn", "--no-profile", "--json", str(out)])
    result = json.loads(out.read_text())
    runs = {run["engine"]: run for run in result["runs"]}
    assert list(runs) == ["minicnn", "pytorch-nchw", "pytorch-channels-last"]
    processes = result["meta"]["pytorch_processes"]
    assert [p["engine"] for p in processes] == ["pytorch-nchw", "pytorch-channels-last"]
    pids = {p["pid"] for p in processes}
    assert len(pids) == 2 and os.getpid() not in pids
    assert all(p["environment"] == _inherited_environment() for p in processes)
    assert all(p["OMP_WAIT_POLICY"] is None for p in processes) and "OMP_WAIT_POLICY" not in os.environ
    for run in runs.values():
        assert len(run["train_rates"]) == len(run["inference_rates"]) == 3
        assert run["train_images_per_s"] == statistics.median(run["train_rates"])
    [ratio] = result["versus_pytorch"]
    torch_runs = [runs["pytorch-nchw"], runs["pytorch-channels-last"]]
    for phase in ("train", "inference"):
        rounds = [mine / max(rivals) for mine, *rivals in zip(*(run[f"{phase}_rates"] for run in runs.values()))]
        assert ratio[f"{phase}_rounds"] == pytest.approx(rounds)
        assert ratio[phase] == pytest.approx(statistics.median(rounds))
    assert ratio["peak_memory"] == pytest.approx(runs["minicnn"]["peak_memory_bytes"]
                                                 / min(run["peak_memory_bytes"] for run in torch_runs))
    printed = capsys.readouterr().out
    assert "PyTorch channels-last" in printed and "minicnn / PyTorch best" in printed
    assert "rounds: lowest-highest" in printed


def _inherited_environment():
    """The fingerprint of the environment a plain child of this process gets (a library may have set variables
    in the C environment behind os.environ's back: under pytest, COLUMNS and LINES)."""
    return subprocess.run([sys.executable, "-c", "from benchmarks.googlenet import environment_digest; "
                           "print(environment_digest())"], capture_output=True, text=True, check=True,
                          cwd=os.path.dirname(os.path.dirname(__file__))).stdout.strip()


def test_the_ratio_is_the_median_of_the_per_round_ratios():
    """Each round's ratio is to the faster layout of that round; the median of those differs from the ratio of
    the medians (10 / max(10, 8) = 1.0 here) when a slow round of one engine meets a fast round of another."""
    minicnn, nchw, channels_last = [10, 20, 9], [5, 10, 10], [8, 16, 6]
    rounds = bench.per_round_ratios(minicnn, [nchw, channels_last])
    assert rounds == pytest.approx([10 / 8, 20 / 16, 9 / 10])
    assert statistics.median(rounds) == pytest.approx(1.25)
    runs = [{"variant": "bn", "batch": 2, "engine": engine, "train_rates": rates, "inference_rates": rates,
             "peak_memory_bytes": peak}
            for engine, rates, peak in (("minicnn", minicnn, 300), ("pytorch-nchw", nchw, 200),
                                        ("pytorch-channels-last", channels_last, 400))]
    [ratio] = bench.versus_pytorch(runs)
    assert ratio["train"] == ratio["inference"] == pytest.approx(1.25)
    assert ratio["train_rounds"] == pytest.approx(rounds) and ratio["peak_memory"] == pytest.approx(1.5)


def test_each_engine_goes_first_and_follows_each_other_equally_often():
    names = ["a", "b", "c"]
    orders = ["".join(bench.round_order(names, r)) for r in range(6)]
    assert orders == ["abc", "bca", "cab", "cba", "acb", "bac"]
    assert sorted(orders) == sorted("".join(p) for p in itertools.permutations(names))
    assert bench.round_order(["minicnn"], 5) == ["minicnn"]


class _Recorder:
    """A stand-in engine: writes each command it obeys into a shared log and takes 0.5 s for any number of steps."""

    def __init__(self, name, log):
        self.name, self.log = name, log

    def obey(self, command):
        self.log.append((self.name, command["do"], command.get("phase"), command.get("steps")))
        return {"seconds": 0.5, "bytes": 100}


def test_the_race_interleaves_the_engines_round_by_round():
    """Warm-up first, then each round runs every engine once, one at a time, in round_order; training, then
    inference, then each engine's peak memory."""
    log = []
    engines = {name: _Recorder(name, log) for name in ("a", "b", "c")}
    results = bench.race(engines, batch=4, steps=3, repeats=3, warmup=2)

    def phase(name):
        warm_up = [(engine, "steps", name, 2) for engine in "abc"]
        return warm_up + [(engine, "steps", name, 3) for engine in "abc" + "bca" + "cab"]

    assert log == phase("train") + phase("inference") + [(engine, "peak_memory", None, None) for engine in "abc"]
    assert results["b"] == {"train_rates": [24.0] * 3, "inference_rates": [24.0] * 3, "peak_memory_bytes": 100}


def test_workers_are_shut_down_when_the_race_fails(tmp_path, monkeypatch):
    """A worker that dies mid-race stops the benchmark with a clear error, and the other worker is shut down."""
    pytest.importorskip("torch")
    workers, turns = [], []

    class RecordedWorker(bench.TorchWorker):
        def __init__(self, *args):
            super().__init__(*args)
            workers.append(self)

    original = bench.take_turn

    def take_turn(engine, command):
        turns.append(command)
        if len(turns) == 4:  # after every engine's warm-up: the NCHW worker dies
            workers[0].process.kill()
        return original(engine, command)

    monkeypatch.setattr(bench, "TorchWorker", RecordedWorker)
    monkeypatch.setattr(bench, "take_turn", take_turn)
    with pytest.raises(SystemExit, match="PyTorch NCHW worker ended"):
        bench.main(["--device", "cpu", "--width", "0.0625", "--batch-size", "2", "--steps", "1", "--repeats", "1",
                    "--warmup", "1", "--norm", "lrn", "--no-profile", "--json", str(tmp_path / "result.json")])
    assert len(workers) == 2 and all(worker.process.poll() is not None for worker in workers)


def test_a_worker_obeys_commands_reports_its_errors_and_quits():
    pytest.importorskip("torch")
    args = bench.parse_args(["--device", "cpu", "--width", "0.0625"])
    with bench.TorchWorker(args, "pytorch-nchw", "lrn", 2) as worker:
        assert worker.ready()["pid"] == worker.process.pid
        assert worker.obey({"do": "steps", "phase": "inference", "steps": 1})["seconds"] > 0
        with pytest.raises(bench.WorkerError, match="PyTorch NCHW worker failed:(.|\n)*KeyError: 'phase'"):
            worker.obey({"do": "steps"})
        assert worker.obey({"do": "peak_memory"})["bytes"] > 0  # it goes on serving
    assert worker.process.returncode == 0  # it quit when told


def test_serve_needs_one_pytorch_engine_variant_and_batch(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--engine", "minicnn", "--serve", "--norm", "bn", "--batch-size", "2"])
    assert "--serve needs --engine pytorch-nchw or pytorch-channels-last" in capsys.readouterr().err


def test_one_engine_alone_leaves_minicnn_unconfigured(tmp_path):
    """--engine pytorch-... (what the benchmark's PyTorch workers run, with --serve) times PyTorch only and never
    calls minicnn.configure_cpu: glibc's memory settings and BLAS's threads stay PyTorch's."""
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
