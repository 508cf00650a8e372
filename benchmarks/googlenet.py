"""python -m benchmarks.googlenet [--device auto|cpu|gpu] [--batch-size N ...] [--norm lrn bn] [--load matmul|spin]

Times GoogLeNet (CIFAR stem, aux heads on) in minicnn, and in PyTorch when it
happens to be installed (the same network and batches), PyTorch at its best:
both in its default NCHW layout and in channels-last (model and input
``.to(memory_format=torch.channels_last)``, PyTorch's own advice for CNNs on
the CPU), inference under ``torch.inference_mode()``. Each engine runs alone:
minicnn in this process (configured as the trainer configures it), each
PyTorch layout in a fresh process of its own (``--engine``), started with this
process's environment untouched, so PyTorch runs with its own defaults. The
report gives minicnn's ratio to the faster PyTorch layout, and its peak memory
to PyTorch's smaller peak.

- training images/s: forward, loss with the aux heads, backward, SGD step;
- inference images/s: eval mode, no graph;
- training GFLOP/s: the multiply-adds of a training step (``models.summary``'s
  count per image, aux heads included, x 2 flops x 3 products: forward, input
  gradient, weight gradient) per second, to set beside the machine's limit;
- peak memory: on a GPU the memory pool's high-water mark (CuPy's pool or
  PyTorch's allocator); on the CPU the process's peak resident memory during
  a training step (Linux), after handing freed memory back to the system so
  that memory kept from an earlier variant does not count;
- with --load, training images/s again while another busy process runs on the
  same cores (NumPy matrix products, or a pure-Python loop), and the slowdown;
- where minicnn's training step goes at one batch size: per layer type,
  forward and backward, the optimizer, and the rest (Python overhead: graph
  bookkeeping, argument checks, allocation);
- on the CuPy stand-in only, the device operations (~kernel launches), device ->
  host reads and host -> device copies of one training step (real CuPy counts
  nothing): ``python -m tests.standin.run -m benchmarks.googlenet --device gpu ...``
  runs it there (see ``device_ops_per_step``).

The device is chosen as the trainer chooses it (``minicnn.backend.choose_device``):
``auto``, the default, is the GPU when CuPy sees one, else the CPU.

Warm-up steps are excluded, the device is synchronised before every clock
read, and each figure is the median of --repeats runs of --steps steps.
Results also go to a JSON file (default benchmarks/results/).
"""
import argparse
import contextlib
import ctypes
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime
from typing import Callable, NamedTuple

import numpy as np

DEFAULT_BATCHES = {"cpu": [8, 32, 64], "gpu": [128]}
# The engines raced: minicnn, and PyTorch in each of its two memory formats.
TORCH_LAYOUTS = {"pytorch-nchw": "contiguous_format", "pytorch-channels-last": "channels_last"}
ENGINES = ("minicnn", *TORCH_LAYOUTS)
ENGINE_NAMES = {"minicnn": "minicnn", "pytorch-nchw": "PyTorch NCHW", "pytorch-channels-last": "PyTorch channels-last"}
PROFILED_BATCH = {"cpu": 32, "gpu": 128}  # the breakdown runs at this batch if it is timed, else at the largest
# The competing processes of --load: what a laptop also runs.
LOADS = {
    "matmul": "import numpy as np\n"
              "a = np.random.default_rng(0).standard_normal((2048, 2048), dtype=np.float32)\n"
              "while True:\n    a @ a\n",
    "spin": "while True:\n    pass\n",
}


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.googlenet", description=__doc__.split("\n\n")[1])
    parser.add_argument("--device", default="auto",
                        help="auto (the GPU when CuPy sees one, else the CPU), cpu, gpu or gpu:N (default auto)")
    parser.add_argument("--batch-size", type=int, nargs="+", help="batch sizes to time (default: 128 on a GPU, "
                        "8 32 64 on the CPU)")
    parser.add_argument("--norm", nargs="+", default=["lrn", "bn"], choices=["lrn", "bn"], help="variants to time")
    parser.add_argument("--width", type=float, default=1.0, help="channel multiplier (1.0: the real network)")
    parser.add_argument("--steps", type=int, default=None, help="steps per timed run (default 10 GPU, 2 CPU)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the median is reported")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--no-tf32", action="store_true", help="GPU: full float32 matrix products (TF32 is on by default)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    parser.add_argument("--engine", choices=ENGINES, help="time only this engine, in this process (the benchmark "
                        "runs each PyTorch layout this way, in a process of its own)")
    parser.add_argument("--no-profile", action="store_true", help="skip the per-layer-type breakdown")
    parser.add_argument("--load", choices=sorted(LOADS), help="also time training while a competing busy process "
                        "runs: matmul (NumPy matrix products) or spin (a pure-Python loop)")
    parser.add_argument("--json", help="where to write the results (default benchmarks/results/googlenet-DEVICE-TIME.json)")
    args = parser.parse_args(argv)
    for name in ("batch_size", "steps", "repeats"):
        value = getattr(args, name)
        for number in value if isinstance(value, list) else [value]:
            if number is not None and number < 1:
                parser.error(f"--{name.replace('_', '-')} must be at least 1, got {number}")
    if args.warmup < 0 or args.width <= 0:
        parser.error("--warmup must be >= 0 and --width > 0")
    return args


# -- timing --------------------------------------------------------------------------------
def median_rate(run_steps, synchronize, batch, steps, repeats):
    """Median images/s over ``repeats`` runs of ``steps`` calls of ``run_steps``."""
    rates = []
    for _ in range(repeats):
        synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            run_steps()
        synchronize()
        rates.append(batch * steps / (time.perf_counter() - start))
    return statistics.median(rates)


def release_freed_memory():
    """Hand memory that glibc keeps for reuse back to the system (malloc_trim); a no-op elsewhere."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def cpu_peak_rss_during(fn):
    """Peak resident memory (bytes) of this process while ``fn`` runs; None where Linux's counters are missing.

    Freed memory that the allocator kept (another engine's, or this one's from
    before) is handed back first, so the peak counts what ``fn`` itself holds
    at its high-water mark, plus what is alive anyway.
    """
    release_freed_memory()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets the peak (VmHWM) to the current resident size
    except OSError:
        return None
    fn()
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


@contextlib.contextmanager
def competing_load(kind):
    """Within the block, a separate busy process runs on the same cores (``kind`` in LOADS; None: nothing)."""
    if kind is None:
        yield
        return
    process = subprocess.Popen([sys.executable, "-c", LOADS[kind]], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)  # let it start (import NumPy) and reach full speed
        yield
    finally:
        process.kill()
        process.wait()


def measure(train_step, infer_step, set_training, synchronize, peak_memory, args, batch, steps):
    """Warm up, then time training and inference; the same procedure for both engines.

    Args:
        train_step, infer_step: run one training step / one forward pass without a graph.
        set_training: ``set_training(mode)`` puts the model in training or evaluation mode.
        peak_memory: ``peak_memory(train_step)`` returns the bytes at the high-water mark.
    Returns:
        dict of train_images_per_s, inference_images_per_s, peak_memory_bytes, and with
        --load train_images_per_s_under_load.
    """
    set_training(True)
    for _ in range(args.warmup):
        train_step()
    result = {"train_images_per_s": median_rate(train_step, synchronize, batch, steps, args.repeats),
              "peak_memory_bytes": peak_memory(train_step)}
    if args.load:
        with competing_load(args.load):
            result["train_images_per_s_under_load"] = median_rate(train_step, synchronize, batch, steps,
                                                                  args.repeats)
    set_training(False)
    for _ in range(args.warmup):
        infer_step()
    result["inference_images_per_s"] = median_rate(infer_step, synchronize, batch, steps, args.repeats)
    set_training(True)
    return result


def training_flop_per_image(norm, width):
    """Flops of one training step per image: multiply-adds (aux heads included) x 2 x 3 products."""
    from models.googlenet import GoogLeNet
    from models.summary import summarize
    model = GoogLeNet(10, stem="cifar", norm=norm, width=width)
    mult_adds = sum(row.mult_adds for row in summarize(model, (1, 3, 32, 32)) if row.depth == 0)
    return mult_adds * 2 * 3


# -- device operations (CuPy stand-in only) ------------------------------------------------
def device_ops_per_step(train_step):
    """{"device_ops", "syncs", "uploads"} of one call of ``train_step``, or None without a counter."""
    from minicnn import backend
    before = backend.device_counts()
    if before is None:  # real CuPy counts nothing; the CuPy stand-in of the tests does
        return None
    train_step()
    return {kind: count - before[kind] for kind, count in backend.device_counts().items()}


# -- minicnn -------------------------------------------------------------------------------
class MinicnnSteps(NamedTuple):
    """GoogLeNet on a device with the trainer's SGD, and what one step of it does, on a fixed batch."""

    model: object
    optimizer: object   # SGD, Nesterov momentum 0.9, weight decay 5e-4
    backward: Callable  # forward, loss with the aux heads, zero_grad, backward
    infer: Callable     # a forward pass without a graph

    def update(self):
        """The SGD step."""
        self.optimizer.step()

    def train_step(self):
        self.backward()
        self.update()


def minicnn_steps(norm, device, batch, width):
    """:class:`MinicnnSteps` for GoogLeNet (CIFAR stem, aux heads, ``norm``, ``width``) on ``device``."""
    import minicnn
    from minicnn import backend, optim
    from models.googlenet import GoogLeNet, googlenet_loss

    minicnn.manual_seed(0)
    model = GoogLeNet(10, stem="cifar", norm=norm, width=width).to(device)
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4, nesterov=True)
    rng = np.random.default_rng(0)
    x = minicnn.Tensor(backend.to_device(rng.standard_normal((batch, 3, 32, 32)).astype(np.float32), device))
    y = backend.to_device(rng.integers(0, 10, batch), device)

    def backward():
        loss = googlenet_loss(model(x), y)
        opt.zero_grad()
        loss.backward()

    def infer():
        with minicnn.no_grad():
            model(x)

    return MinicnnSteps(model, opt, backward, infer)


def bench_minicnn(args, norm, device, batch, steps, profile):
    from minicnn import backend
    from minicnn.kernels import host_memory
    from benchmarks.op_timer import time_ops

    host_memory.release()  # the CPU kernels' arrays kept from an earlier variant or batch do not count

    net = minicnn_steps(norm, device, batch, args.width)
    sync = lambda: backend.synchronize(device)  # noqa: E731
    if device.kind == "gpu":
        pool = backend.require_gpu(device.index).get_default_memory_pool()

        def peak_memory(step):  # the pool keeps blocks up to its high-water mark; it reports per device
            with backend.running_on(device):
                return pool.total_bytes()
    else:
        peak_memory = cpu_peak_rss_during
    result = measure(net.train_step, net.infer, net.model.train, sync, peak_memory, args, batch, steps)
    result["per_step"] = device_ops_per_step(net.train_step)  # after the warm-up: a steady-state step

    if profile:
        with time_ops(sync) as op_seconds:
            start = time.perf_counter()
            for _ in range(steps):
                net.backward()
                sync()
                optimizer_start = time.perf_counter()
                net.update()
                sync()
                op_seconds[("optimizer", "step")] += time.perf_counter() - optimizer_start
            profiled_step = (time.perf_counter() - start) / steps
        breakdown = {f"{kind} {phase}": seconds / steps * 1e3 for (kind, phase), seconds in op_seconds.items()}
        breakdown["python overhead"] = profiled_step * 1e3 - sum(breakdown.values())
        result["breakdown_ms"] = dict(sorted(breakdown.items(), key=lambda kv: -kv[1]))
        result["profiled_step_ms"] = profiled_step * 1e3

    del net
    if device.kind == "gpu":
        with backend.running_on(device):
            pool.free_all_blocks()
    return result


# -- PyTorch (optional) ----------------------------------------------------------------------
def bench_torch(args, norm, device, batch, steps, engine):
    """PyTorch's numbers for one variant and batch, in ``engine``'s memory format (see TORCH_LAYOUTS)."""
    import torch
    import torch.nn.functional as TF
    from benchmarks.torch_googlenet import TorchGoogLeNet

    torch.manual_seed(0)
    target = torch.device("cpu" if device.kind == "cpu" else f"cuda:{device.index}")
    memory_format = getattr(torch, TORCH_LAYOUTS[engine])
    model = TorchGoogLeNet(10, norm, args.width).to(target).to(memory_format=memory_format)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4, nesterov=True)
    x = torch.randn(batch, 3, 32, 32, device=target).to(memory_format=memory_format)
    y = torch.randint(0, 10, (batch,), device=target)
    sync = (lambda: torch.cuda.synchronize(target)) if device.kind == "gpu" else (lambda: None)

    def train_step():
        logits, aux1, aux2 = model(x)
        loss = TF.cross_entropy(logits, y) + 0.3 * (TF.cross_entropy(aux1, y) + TF.cross_entropy(aux2, y))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def infer_step():
        with torch.inference_mode():
            model(x)

    def peak_memory(step):
        if device.kind == "cpu":
            return cpu_peak_rss_during(step)
        torch.cuda.reset_peak_memory_stats(target)
        step()
        return torch.cuda.max_memory_reserved(target)

    return measure(train_step, infer_step, model.train, sync, peak_memory, args, batch, steps)


def torch_in_own_process(args, engine, norm, batch, steps):
    """Run this benchmark for one PyTorch layout, variant and batch in a fresh process; returns its run.

    The process gets this one's environment as it is (PyTorch's own defaults:
    nothing here changes its threads or its OpenMP waits) and shares nothing
    with minicnn: no libraries loaded, no memory kept, no idle threads.
    """
    import tempfile
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "run.json")
        command = [sys.executable, "-m", "benchmarks.googlenet", "--engine", engine, "--device", args.device,
                   "--norm", norm, "--batch-size", str(batch), "--width", str(args.width), "--steps", str(steps),
                   "--repeats", str(args.repeats), "--warmup", str(args.warmup), "--no-profile", "--json", path,
                   *(["--no-tf32"] if args.no_tf32 else []), *(["--load", args.load] if args.load else [])]
        done = subprocess.run(command, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                              capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"error: PyTorch ({engine}) failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        with open(path) as f:
            payload = json.load(f)
    runs = payload["runs"]
    return (runs[0] if runs else None), payload["meta"]


def torch_installed():
    """True when PyTorch can be imported (checked without importing it into this process)."""
    import importlib.util
    return importlib.util.find_spec("torch") is not None


# -- report --------------------------------------------------------------------------------
def _mib(value):
    return "n/a" if value is None else f"{value / 2**20:,.0f} MiB"


def _ratio(value, reference):
    return f"{value / reference:.2f}x" if value and reference else ""


def versus_pytorch(runs):
    """minicnn's ratio to PyTorch's best layout, per variant and batch: the faster layout's images/s
    (train and inference each), and the smaller peak memory. Empty where PyTorch did not run."""
    ratios = []
    for r in runs:
        if r["engine"] != "minicnn":
            continue
        rivals = [t for t in runs if t["engine"] in TORCH_LAYOUTS and (t["variant"], t["batch"]) == (r["variant"], r["batch"])]
        if not rivals:
            continue
        best = lambda key: max(t[key] for t in rivals)  # noqa: E731
        peaks = [t["peak_memory_bytes"] for t in rivals if t["peak_memory_bytes"]]
        ratios.append({"variant": r["variant"], "batch": r["batch"],
                       "train": r["train_images_per_s"] / best("train_images_per_s"),
                       "inference": r["inference_images_per_s"] / best("inference_images_per_s"),
                       "peak_memory": r["peak_memory_bytes"] / min(peaks) if peaks and r["peak_memory_bytes"] else None})
    return ratios


def print_report(meta, runs, breakdowns):
    print(f"\nGoogLeNet, CIFAR stem, aux heads, float32{' (TF32 products)' if meta['tf32'] else ''} "
          f"on {meta['device_name']}")
    header = (f"{'variant':<8}{'batch':>6}  {'engine':<25}{'train img/s':>12}{'infer img/s':>13}{'train GFLOP/s':>15}"
              f"{'peak memory':>13}")
    print(header)
    print("-" * len(header))
    ratios = {(q["variant"], q["batch"]): q for q in versus_pytorch(runs)}
    keys = [(r["variant"], r["batch"]) for r in runs]
    for i, (r, key) in enumerate(zip(runs, keys)):
        label = f"{r['variant']:<8}{r['batch']:>6}" if key not in keys[:i] else " " * 14
        print(f"{label}  {ENGINE_NAMES[r['engine']]:<25}{r['train_images_per_s']:>12.1f}"
              f"{r['inference_images_per_s']:>13.1f}{r['train_gflops']:>15.0f}{_mib(r['peak_memory_bytes']):>13}")
        if key not in keys[i + 1:] and key in ratios:  # after the last engine of this variant and batch
            q = ratios[key]
            memory = "" if q["peak_memory"] is None else f"{q['peak_memory']:.2f}x"
            print(f"{'':14}  {'minicnn / PyTorch best':<25}{q['train']:>11.2f}x{q['inference']:>12.2f}x{'':>15}"
                  f"{memory:>13}")
    if meta["load"]:
        print(f"\ntraining while a competing process runs ({meta['load']}: {LOAD_NAMES[meta['load']]})")
        header = f"{'variant':<8}{'batch':>6}  {'engine':<25}{'alone img/s':>12}{'loaded img/s':>14}{'slowdown':>10}"
        print(header)
        print("-" * len(header))
        for r in runs:
            alone, loaded = r["train_images_per_s"], r["train_images_per_s_under_load"]
            print(f"{r['variant']:<8}{r['batch']:>6}  {ENGINE_NAMES[r['engine']]:<25}{alone:>12.1f}{loaded:>14.1f}"
                  f"{alone / loaded:>9.1f}x")
    for norm, profile in breakdowns.items():
        total = profile["step_ms"]
        print(f"\nminicnn {norm}, batch {profile['batch']}: one training step, profiled ({total:.0f} ms; "
              "each op timed alone)")
        for name, ms in profile["ms"].items():
            print(f"  {name:<24}{ms:>9.1f} ms {100 * ms / total:>5.1f}%")
    counted = [r for r in runs if r.get("per_step")]
    if counted:
        print("\nminicnn: one training step on the CuPy stand-in (its counts; real CuPy counts nothing)")
        for r in counted:
            counts = r["per_step"]
            print(f"  {r['variant']:<6}{counts['device_ops']:>8,} device operations {counts['syncs']:>5,} device -> "
                  f"host reads {counts['uploads']:>5,} host -> device copies")


LOAD_NAMES = {"matmul": "NumPy matrix products on all cores", "spin": "a pure-Python loop"}


def write_json(path, payload):
    from train.files import atomic_write  # readers never see half a file
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_write(path, "w") as f:
        json.dump(payload, f, indent=2)


def engines_to_time(args, device):
    """The engines this run times: --engine's one, or minicnn and (unless --no-torch, or PyTorch is
    missing) both PyTorch layouts."""
    if args.engine:
        return [args.engine]
    return ["minicnn"] + ([] if args.no_torch or not torch_installed() else list(TORCH_LAYOUTS))


def main(argv=None):
    args = parse_args(argv)
    from minicnn import backend
    try:
        device, why = backend.choose_device(args.device)
        if device.kind == "gpu":
            if not args.no_tf32:
                os.environ.setdefault("CUPY_TF32", "1")  # read by CuPy at its first float32 product
            cp = backend.require_gpu(device.index)
    except (ValueError, backend.DeviceUnavailableError) as error:
        sys.exit(f"error: {error}")
    engines = engines_to_time(args, device)
    here = [e for e in engines if e == "minicnn" or e == args.engine]  # timed in this process
    cpu_settings = None
    if "minicnn" in here:
        import minicnn
        cpu_settings = minicnn.configure_cpu()  # as the trainer does (a user's script runs the same without it)
    torch_meta = {}
    if args.engine in TORCH_LAYOUTS:
        import torch
        torch_meta = {"torch": torch.__version__, "torch_threads": torch.get_num_threads(), "pid": os.getpid(),
                      "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY")}
        if device.kind == "gpu" and not torch.cuda.is_available():
            sys.exit("error: this PyTorch sees no GPU")
        if device.kind == "gpu" and not args.no_tf32:
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    batches = args.batch_size or DEFAULT_BATCHES[device.kind]
    profiled = PROFILED_BATCH[device.kind] if PROFILED_BATCH[device.kind] in batches else max(batches)
    steps = args.steps or (10 if device.kind == "gpu" else 2)
    if device.kind == "gpu":
        name = cp.cuda.runtime.getDeviceProperties(device.index)["name"].decode()
    else:
        name = f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores"
        if cpu_settings:
            from minicnn.doctor import blas_line
            name += f", {cpu_settings['threads']} minicnn threads; {blas_line()}"
    compared = [e for e in engines if e in TORCH_LAYOUTS]
    if args.engine in TORCH_LAYOUTS:
        note = f"{ENGINE_NAMES[args.engine]} alone in this process"
    elif compared:
        note = "PyTorch NCHW and channels-last, each in a process of its own"
    else:
        note = "PyTorch comparison skipped"
    print(f"device: {device} ({why}): {name}; {note}")
    runs, breakdowns, torch_processes = [], {}, []
    for norm in args.norm:
        flop_per_image = training_flop_per_image(norm, args.width)
        for batch in batches:
            for engine in engines:
                print(f"timing {norm}, batch {batch}: {ENGINE_NAMES[engine]} ...", flush=True)
                if engine == "minicnn":
                    with backend.running_on(device):  # what is made without naming a device lands beside the model
                        result = bench_minicnn(args, norm, device, batch, steps,
                                               profile=not args.no_profile and batch == profiled)
                elif engine == args.engine:
                    result = bench_torch(args, norm, device, batch, steps, engine)
                else:
                    result, child = torch_in_own_process(args, engine, norm, batch, steps)
                    torch_processes.append({"engine": engine, **child["pytorch"]})
                if "breakdown_ms" in result:
                    breakdowns[norm] = {"batch": batch, "step_ms": result.pop("profiled_step_ms"),
                                        "ms": result.pop("breakdown_ms")}
                result["train_gflops"] = result["train_images_per_s"] * flop_per_image / 1e9
                runs.append({"variant": norm, "engine": engine, "batch": batch, **result})
    if torch_processes:
        first = torch_processes[0]
        name += (f"; PyTorch {first['torch']}, {first['torch_threads']} threads, OMP_WAIT_POLICY "
                 f"{first['OMP_WAIT_POLICY'] or 'unset'}")
    meta = {"device": str(device), "device_name": name, "batch_sizes": batches, "steps": steps,
            "repeats": args.repeats, "warmup": args.warmup, "width": args.width, "load": args.load,
            "tf32": device.kind == "gpu" and not args.no_tf32, "cpu_settings": cpu_settings,
            "torch": torch_processes[0]["torch"] if torch_processes else torch_meta.get("torch"),
            "pytorch": torch_meta, "pytorch_processes": torch_processes,
            "time": datetime.now().isoformat(timespec="seconds"),
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "python": platform.python_version(), "numpy": np.__version__}
    print_report(meta, runs, breakdowns)
    path = args.json or os.path.join(os.path.dirname(__file__), "results",
                                     f"googlenet-{device.kind}-{datetime.now():%Y%m%d-%H%M%S}.json")
    write_json(path, {"meta": meta, "runs": runs, "breakdowns": breakdowns, "versus_pytorch": versus_pytorch(runs)})
    print(f"\nresults written to {path}")


if __name__ == "__main__":
    main()
