"""python -m benchmarks.googlenet [--device auto|cpu|gpu] [--batch-size N ...] [--norm lrn bn] [--load matmul|spin]

Times GoogLeNet (CIFAR stem, aux heads on) in minicnn, and in PyTorch when it
happens to be installed (the same network and batches), PyTorch at its best:
both in its default NCHW layout and in channels-last (model and input
``.to(memory_format=torch.channels_last)``, PyTorch's own advice for CNNs on
the CPU), inference under ``torch.inference_mode()``. minicnn runs in this
process (configured as the trainer configures it), each PyTorch layout in a
process of its own (a worker: ``--engine ... --serve``), started with this
process's environment untouched, so PyTorch runs with its own defaults.

The engines take turns, round by round, so that a machine whose speed drifts
from one minute to the next slows each of them alike: each round every engine
in turn runs --steps steps (the order changes from round to round, see
:func:`round_order`), one engine at a time, with a short pause between them. A
worker computes only when told to: it waits for the next command on its stdin.
Per variant and batch the report gives each engine's median over --repeats
rounds, and minicnn's ratio to PyTorch's best as the median over the rounds of
(minicnn's images/s in that round / the faster PyTorch layout's), with the
lowest and highest of those ratios to show the noise; and minicnn's peak
memory to PyTorch's smaller peak.

- training images/s: forward, loss with the aux heads, backward, SGD step;
- inference images/s: eval mode, no graph;
- training GFLOP/s: the multiply-adds of a training step (``models.summary``'s
  count per image, aux heads included, x 2 flops x 3 products: forward, input
  gradient, weight gradient) per second, to set beside the machine's limit;
- peak memory, each engine measured alone: on a GPU the memory pool's
  high-water mark (CuPy's pool or PyTorch's allocator); on the CPU the
  process's peak resident memory during a training step (Linux), after
  handing freed memory back to the system so that memory kept from an earlier
  variant does not count;
- with --load, rounds of training again while another busy process runs on
  the same cores (NumPy matrix products, or a pure-Python loop), and the slowdown;
- where minicnn's training step goes at one batch size: per layer type,
  forward and backward, the optimizer, and the rest (Python overhead: graph
  bookkeeping, argument checks, allocation);
- on the CuPy stand-in only, the device operations (~kernel launches), device ->
  host reads and host -> device copies of one training step (real CuPy counts
  nothing): ``python -m tests.standin.run -m benchmarks.googlenet --device gpu ...``
  runs it there (see ``device_ops_per_step``).

The device is chosen as the trainer chooses it (``minicnn.backend.choose_device``):
``auto``, the default, is the GPU when CuPy sees one, else the CPU.

--warmup untimed steps run before the first round of each phase, and the
device is synchronised before every clock read. ``--engine NAME`` times one
engine alone in this process, by the same rounds. Results also go to a JSON
file (default benchmarks/results/), with every round's figures.
"""
import argparse
import contextlib
import ctypes
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from datetime import datetime
from typing import Callable, NamedTuple

import numpy as np

DEFAULT_BATCHES = {"cpu": [8, 32, 64], "gpu": [128]}
# The engines raced: minicnn, and PyTorch in each of its two memory formats.
TORCH_LAYOUTS = {"pytorch-nchw": "contiguous_format", "pytorch-channels-last": "channels_last"}
ENGINES = ("minicnn", *TORCH_LAYOUTS)
ENGINE_NAMES = {"minicnn": "minicnn", "pytorch-nchw": "PyTorch NCHW", "pytorch-channels-last": "PyTorch channels-last"}
PROFILED_BATCH = {"cpu": 32, "gpu": 128}  # the breakdown runs at this batch if it is timed, else at the largest
# After an engine's turn, the next one waits this long: OpenMP's threads (PyTorch's) and OpenBLAS's spin
# on the cores for a while after their work before they sleep, and the next engine must have the cores alone.
PAUSE_S = 0.3
# The competing processes of --load: what a laptop also runs.
LOADS = {
    "matmul": "import numpy as np\n"
              "a = np.random.default_rng(0).standard_normal((2048, 2048), dtype=np.float32)\n"
              "while True:\n    a @ a\n",
    "spin": "while True:\n    pass\n",
}
LOAD_NAMES = {"matmul": "NumPy matrix products on all cores", "spin": "a pure-Python loop"}


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.googlenet", description=__doc__.split("\n\n")[1])
    parser.add_argument("--device", default="auto",
                        help="auto (the GPU when CuPy sees one, else the CPU), cpu, gpu or gpu:N (default auto)")
    parser.add_argument("--batch-size", type=int, nargs="+", help="batch sizes to time (default: 128 on a GPU, "
                        "8 32 64 on the CPU)")
    parser.add_argument("--norm", nargs="+", default=["lrn", "bn"], choices=["lrn", "bn"], help="variants to time")
    parser.add_argument("--width", type=float, default=1.0, help="channel multiplier (1.0: the real network)")
    parser.add_argument("--steps", type=int, default=None, help="steps per engine and round (default 10 GPU, 2 CPU)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; the medians over them are reported")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before the first round of each phase")
    parser.add_argument("--no-tf32", action="store_true", help="GPU: full float32 matrix products (TF32 is on by default)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    parser.add_argument("--engine", choices=ENGINES, help="time only this engine, alone in this process")
    parser.add_argument("--serve", action="store_true", help="with --engine pytorch-..., one --norm and one "
                        "--batch-size: build it, then obey the benchmark's commands on stdin (how the benchmark "
                        "runs each PyTorch layout in a process of its own)")
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
    if args.serve and (args.engine not in TORCH_LAYOUTS or len(args.norm) != 1 or len(args.batch_size or []) != 1):
        parser.error("--serve needs --engine pytorch-nchw or pytorch-channels-last, one --norm and one --batch-size")
    return args


# -- one engine: its steps, and the commands it obeys ------------------------------------------
class LocalEngine(NamedTuple):
    """One engine in this process, on a fixed batch: what it runs, and how it obeys the race's commands.

    A command is a dict: ``{"do": "steps", "phase": "train" | "inference", "steps": n}`` runs n steps
    (warm-up or timed) and answers ``{"seconds": s}``; ``{"do": "peak_memory"}`` answers ``{"bytes": b}``.
    A worker process (:class:`TorchWorker`) obeys the same commands.
    """

    train_step: Callable    # forward, loss, backward, optimizer step
    infer_step: Callable    # a forward pass without a graph
    set_training: Callable  # set_training(mode): training or evaluation mode
    synchronize: Callable   # waits for the device
    peak_memory: Callable   # peak_memory(train_step): the bytes at the high-water mark of a training step

    def obey(self, command):
        if command["do"] == "peak_memory":
            self.set_training(True)
            return {"bytes": self.peak_memory(self.train_step)}
        training = command["phase"] == "train"
        step = self.train_step if training else self.infer_step
        self.set_training(training)
        self.synchronize()
        start = time.perf_counter()
        for _ in range(command["steps"]):
            step()
        self.synchronize()
        return {"seconds": time.perf_counter() - start}


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


# -- the race: engines take turns, round by round -----------------------------------------------
def round_order(names, round_index):
    """The engines' order in round ``round_index``: rotated by that many places, and backwards in every
    other block of len(names) rounds. So each engine goes first once in every len(names) rounds, and over
    twice as many each one comes right after each other one equally often (A B C, B C A, C A B, C B A, ...)."""
    n = len(names)
    shift = round_index % n
    order = list(names[shift:]) + list(names[:shift])
    return order[::-1] if (round_index // n) % 2 else order


def take_turn(engine, command):
    """``engine`` obeys ``command``; then a pause (:data:`PAUSE_S`) before any other engine starts."""
    answer = engine.obey(command)
    time.sleep(PAUSE_S)
    return answer


def time_rounds(engines, phase, batch, steps, repeats, warmup):
    """{name: [images/s in round 0, round 1, ...]} for ``phase`` ("train" or "inference").

    Each engine first runs ``warmup`` untimed steps; then in each round every engine, in
    :func:`round_order`, runs ``steps`` timed steps.
    """
    if warmup:
        for engine in engines.values():
            take_turn(engine, {"do": "steps", "phase": phase, "steps": warmup})
    rates = {name: [] for name in engines}
    for round_index in range(repeats):
        for name in round_order(list(engines), round_index):
            seconds = take_turn(engines[name], {"do": "steps", "phase": phase, "steps": steps})["seconds"]
            rates[name].append(batch * steps / seconds)
    return rates


@contextlib.contextmanager
def competing_load(kind):
    """Within the block, a separate busy process runs on the same cores (``kind`` in LOADS)."""
    process = subprocess.Popen([sys.executable, "-c", LOADS[kind]], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)  # let it start (import NumPy) and reach full speed
        yield
    finally:
        process.kill()
        process.wait()


def race(engines, batch, steps, repeats, warmup, load=None):
    """Time ``engines`` ({name: engine with ``obey``}) against each other, one at a time, round by round.

    Returns:
        {name: {"train_rates", "inference_rates": images/s per round; "peak_memory_bytes"; and with
        ``load`` (a key of LOADS), "train_rates_under_load": training rounds while that load runs}}.
    """
    results = {name: {} for name in engines}

    def rounds(key, phase):
        for name, rates in time_rounds(engines, phase, batch, steps, repeats, warmup).items():
            results[name][key] = rates

    rounds("train_rates", "train")
    rounds("inference_rates", "inference")
    for name, engine in engines.items():
        results[name]["peak_memory_bytes"] = take_turn(engine, {"do": "peak_memory"})["bytes"]
    if load:
        with competing_load(load):
            rounds("train_rates_under_load", "train")
    return results


def per_round_ratios(mine, rivals):
    """mine[r] / max(rival[r] for rival in rivals), per round r: a ratio to the fastest rival of each round."""
    return [rate / max(rates) for rate, *rates in zip(mine, *rivals)]


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


def minicnn_engine(norm, device, batch, width):
    """(:class:`LocalEngine`, :class:`MinicnnSteps`) of minicnn for one variant and batch, in this process.

    Memory kept from an earlier variant or batch (the CPU kernels' reused
    arrays, the GPU pool's free blocks) is released first, so it does not count.
    """
    from minicnn import backend
    from minicnn.kernels import host_memory

    host_memory.release()
    if device.kind == "gpu":
        pool = backend.require_gpu(device.index).get_default_memory_pool()
        with backend.running_on(device):
            pool.free_all_blocks()

        def peak_memory(step):  # the pool keeps blocks up to its high-water mark; it reports per device
            with backend.running_on(device):
                return pool.total_bytes()
    else:
        peak_memory = cpu_peak_rss_during
    net = minicnn_steps(norm, device, batch, width)
    sync = lambda: backend.synchronize(device)  # noqa: E731
    return LocalEngine(net.train_step, net.infer, net.model.train, sync, peak_memory), net


def profile_minicnn(net, synchronize, steps):
    """Where ``steps`` training steps of ``net`` go: {"step_ms", "ms": {"<layer type> forward|backward",
    "optimizer step", "python overhead": milliseconds per step, largest first}}."""
    from benchmarks.op_timer import time_ops

    net.model.train()
    with time_ops(synchronize) as op_seconds:
        start = time.perf_counter()
        for _ in range(steps):
            net.backward()
            synchronize()
            optimizer_start = time.perf_counter()
            net.update()
            synchronize()
            op_seconds[("optimizer", "step")] += time.perf_counter() - optimizer_start
        step_ms = (time.perf_counter() - start) / steps * 1e3
    breakdown = {f"{kind} {phase}": seconds / steps * 1e3 for (kind, phase), seconds in op_seconds.items()}
    breakdown["python overhead"] = step_ms - sum(breakdown.values())
    return {"step_ms": step_ms, "ms": dict(sorted(breakdown.items(), key=lambda kv: -kv[1]))}


# -- PyTorch (optional) ----------------------------------------------------------------------
def environment_digest():
    """A fingerprint of this process's environment variables (to show a worker got them untouched)."""
    lines = "\n".join(f"{key}={value}" for key, value in sorted(os.environ.items()))
    return hashlib.sha256(lines.encode()).hexdigest()[:16]


def import_torch(device, tf32):
    """Import PyTorch into this process (TF32 products on a GPU when ``tf32``); returns what the report
    says of it: version, threads, pid, OpenMP's wait policy, and the environment's fingerprint."""
    environment = environment_digest()  # as this process was started, before PyTorch loads
    import torch
    if device.kind == "gpu" and not torch.cuda.is_available():
        sys.exit("error: this PyTorch sees no GPU")
    if device.kind == "gpu" and tf32:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    return {"torch": torch.__version__, "torch_threads": torch.get_num_threads(), "pid": os.getpid(),
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"), "environment": environment}


def torch_engine(engine, norm, device, batch, width):
    """:class:`LocalEngine` of PyTorch in ``engine``'s memory format (see TORCH_LAYOUTS), in this process."""
    import torch
    import torch.nn.functional as TF
    from benchmarks.torch_googlenet import TorchGoogLeNet

    torch.manual_seed(0)
    target = torch.device("cpu" if device.kind == "cpu" else f"cuda:{device.index}")
    memory_format = getattr(torch, TORCH_LAYOUTS[engine])
    model = TorchGoogLeNet(10, norm, width).to(target).to(memory_format=memory_format)
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

    return LocalEngine(train_step, infer_step, model.train, sync, peak_memory)


def serve(engine, info):
    """A worker's life: answer ``info`` (it is ready), then obey one JSON command per line of stdin with
    one JSON answer per line of stdout (``{"error": traceback}`` if it fails), until "quit" or the end of
    stdin. Between commands it computes nothing: it waits on stdin."""
    answers, sys.stdout = sys.stdout, sys.stderr  # a stray print must not garble the answers

    def answer(reply):
        answers.write(json.dumps(reply) + "\n")
        answers.flush()

    answer(info)
    for line in sys.stdin:
        command = json.loads(line)
        if command["do"] == "quit":
            return
        try:
            answer(engine.obey(command))
        except Exception:  # the benchmark reports it and stops
            answer({"error": traceback.format_exc()})


class WorkerError(RuntimeError):
    """A PyTorch worker failed or ended before answering."""


class TorchWorker:
    """One PyTorch layout in a process of its own (``--engine ... --serve``), obeying the race's commands.

    The process gets this one's environment as it is (PyTorch's own defaults:
    nothing here changes its threads or its OpenMP waits) and shares nothing
    with minicnn: no libraries loaded, no memory kept, no idle threads. Its
    errors go to this process's stderr. Use it as a context manager: it quits
    (or is killed) on leaving the block, whatever happened inside.
    """

    def __init__(self, args, engine, norm, batch):
        self.engine = engine
        command = [sys.executable, "-m", "benchmarks.googlenet", "--engine", engine, "--serve",
                   "--device", args.device, "--norm", norm, "--batch-size", str(batch), "--width", str(args.width),
                   *(["--no-tf32"] if args.no_tf32 else [])]
        self.process = subprocess.Popen(command, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ready(self):
        """Wait until the worker has built its model; returns what it says of its PyTorch (see import_torch)."""
        return self._answer()

    def obey(self, command):
        try:
            self.process.stdin.write(json.dumps(command) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            raise self._ended() from None
        return self._answer()

    def _answer(self):
        line = self.process.stdout.readline()
        if not line:
            raise self._ended()
        reply = json.loads(line)
        if "error" in reply:
            raise WorkerError(f"the {ENGINE_NAMES[self.engine]} worker failed:\n{reply['error']}")
        return reply

    def _ended(self):
        return WorkerError(f"the {ENGINE_NAMES[self.engine]} worker ended (exit status {self.process.wait()}); "
                           "its error, if it printed one, is above")

    def close(self):
        """Tell the worker to quit; kill it if it does not within a few seconds."""
        try:
            self.process.stdin.write(json.dumps({"do": "quit"}) + "\n")
            self.process.stdin.flush()
            self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):  # it is gone already, or stuck
            self.process.kill()
            self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):  # a dead worker's stdin may still hold a line it never read
                pipe.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def torch_installed():
    """True when PyTorch can be imported (checked without importing it into this process)."""
    import importlib.util
    return importlib.util.find_spec("torch") is not None


# -- one variant and batch -------------------------------------------------------------------
MEDIAN_OF = {"train_rates": "train_images_per_s", "inference_rates": "inference_images_per_s",
             "train_rates_under_load": "train_images_per_s_under_load"}  # per-round figures -> their median's name


def open_engines(args, norm, device, batch, engines, workers):
    """({name: engine}, minicnn's :class:`MinicnnSteps` or None, the workers' infos) for one variant and batch.

    minicnn, and PyTorch when --engine names it, run in this process; the other PyTorch layouts each in a
    :class:`TorchWorker`, entered into ``workers`` (a contextlib.ExitStack) so that they are shut down
    whatever happens. Returns once every worker has built its model.
    """
    racers, net = {}, None
    for name in engines:
        if name == "minicnn":
            racers[name], net = minicnn_engine(norm, device, batch, args.width)
        elif name == args.engine:
            racers[name] = torch_engine(name, norm, device, batch, args.width)
        else:
            racers[name] = workers.enter_context(TorchWorker(args, name, norm, batch))
    infos = [{"engine": name, **racer.ready()} for name, racer in racers.items() if isinstance(racer, TorchWorker)]
    return racers, net, infos


def time_variant(args, norm, device, batch, steps, engines, profile):
    """Race ``engines`` on one variant and batch. Returns (runs, minicnn's breakdown or None, the workers' infos).

    Each run: {"variant", "engine", "batch", "train_images_per_s", "inference_images_per_s" (medians over the
    rounds), the per-round "train_rates" and "inference_rates", "peak_memory_bytes", "per_step" (minicnn:
    device operations), and with --load "train_images_per_s_under_load" and "train_rates_under_load"}.
    """
    with contextlib.ExitStack() as workers:
        racers, net, infos = open_engines(args, norm, device, batch, engines, workers)
        results = race(racers, batch, steps, args.repeats, args.warmup, args.load)
    breakdown = None
    if net is not None:  # alone now: the workers have quit
        net.model.train()
        results["minicnn"]["per_step"] = device_ops_per_step(net.train_step)  # a steady-state step
        if profile:
            breakdown = {"batch": batch, **profile_minicnn(net, racers["minicnn"].synchronize, steps)}
    runs = [{"variant": norm, "engine": name, "batch": batch,
             **{MEDIAN_OF[key]: statistics.median(rates) for key, rates in result.items() if key in MEDIAN_OF},
             **result} for name, result in results.items()]
    return runs, breakdown, infos


# -- report --------------------------------------------------------------------------------
def _mib(value):
    return "n/a" if value is None else f"{value / 2**20:,.0f} MiB"


def _spread(ratios):
    return f"{min(ratios):.2f}-{max(ratios):.2f}x"


def versus_pytorch(runs):
    """minicnn's ratio to PyTorch's best layout, per variant and batch. Empty where PyTorch did not run.

    For training and inference each ("train", "inference"): the median over the rounds of minicnn's
    images/s over the faster layout's in the same round, and those per-round ratios ("train_rounds",
    "inference_rounds"). "peak_memory": minicnn's peak over the smaller PyTorch peak.
    """
    ratios = []
    for r in runs:
        if r["engine"] != "minicnn":
            continue
        rivals = [t for t in runs if t["engine"] in TORCH_LAYOUTS and (t["variant"], t["batch"]) == (r["variant"], r["batch"])]
        if not rivals:
            continue
        ratio = {"variant": r["variant"], "batch": r["batch"]}
        for phase in ("train", "inference"):
            rounds = per_round_ratios(r[f"{phase}_rates"], [t[f"{phase}_rates"] for t in rivals])
            ratio[phase], ratio[f"{phase}_rounds"] = statistics.median(rounds), rounds
        peaks = [t["peak_memory_bytes"] for t in rivals if t["peak_memory_bytes"]]
        ratio["peak_memory"] = r["peak_memory_bytes"] / min(peaks) if peaks and r["peak_memory_bytes"] else None
        ratios.append(ratio)
    return ratios


def print_report(meta, runs, breakdowns):
    print(f"\nGoogLeNet, CIFAR stem, aux heads, float32{' (TF32 products)' if meta['tf32'] else ''} "
          f"on {meta['device_name']}")
    ratios = {(q["variant"], q["batch"]): q for q in versus_pytorch(runs)}
    print(f"images/s: the median over {meta['repeats']} round(s) of {meta['steps']} step(s) each"
          + ("; the engines take turns, and minicnn / PyTorch best is the median of the rounds' ratios to the "
             "faster layout" if ratios else ""))
    header = (f"{'variant':<8}{'batch':>6}  {'engine':<25}{'train img/s':>12}{'infer img/s':>13}{'train GFLOP/s':>15}"
              f"{'peak memory':>13}")
    print(header)
    print("-" * len(header))
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
            print(f"{'':14}  {'  rounds: lowest-highest':<25}{_spread(q['train_rounds']):>12}"
                  f"{_spread(q['inference_rounds']):>13}")
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


def write_json(path, payload):
    from train.files import atomic_write  # readers never see half a file
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_write(path, "w") as f:
        json.dump(payload, f, indent=2)


# -- main ----------------------------------------------------------------------------------
def engines_to_time(args):
    """The engines this run times: --engine's one, or minicnn and (unless --no-torch, or PyTorch is
    missing) both PyTorch layouts."""
    if args.engine:
        return [args.engine]
    return ["minicnn"] + ([] if args.no_torch or not torch_installed() else list(TORCH_LAYOUTS))


def open_device(args):
    """(device, why it was chosen, CuPy or None) as --device asks; exits with the error if it cannot be had."""
    from minicnn import backend
    try:
        device, why = backend.choose_device(args.device)
        if device.kind == "cpu":
            return device, why, None
        if not args.no_tf32:
            os.environ.setdefault("CUPY_TF32", "1")  # read by CuPy at its first float32 product
        return device, why, backend.require_gpu(device.index)
    except (ValueError, backend.DeviceUnavailableError) as error:
        sys.exit(f"error: {error}")


def main(argv=None):
    args = parse_args(argv)
    from minicnn import backend
    device, why, cp = open_device(args)
    if args.serve:  # a worker of another run of this benchmark
        info = import_torch(device, not args.no_tf32)
        serve(torch_engine(args.engine, args.norm[0], device, args.batch_size[0], args.width), info)
        return
    engines = engines_to_time(args)
    cpu_settings = None
    if "minicnn" in engines:
        import minicnn
        cpu_settings = minicnn.configure_cpu()  # as the trainer does (a user's script runs the same without it)
    torch_meta = import_torch(device, not args.no_tf32) if args.engine in TORCH_LAYOUTS else {}
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
    if args.engine:
        note = f"{ENGINE_NAMES[args.engine]} alone in this process"
    elif len(engines) > 1:
        note = "PyTorch NCHW and channels-last, each in a process of its own; the engines take turns, round by round"
    else:
        note = "PyTorch comparison skipped"
    print(f"device: {device} ({why}): {name}; {note}")
    runs, breakdowns, torch_processes = [], {}, []
    try:
        for norm in args.norm:
            flop_per_image = training_flop_per_image(norm, args.width)
            for batch in batches:
                print(f"timing {norm}, batch {batch}: {', '.join(ENGINE_NAMES[e] for e in engines)} ...", flush=True)
                with backend.running_on(device):  # what is made without naming a device lands beside the model
                    timed, breakdown, infos = time_variant(args, norm, device, batch, steps, engines,
                                                           profile=not args.no_profile and batch == profiled)
                for run in timed:
                    run["train_gflops"] = run["train_images_per_s"] * flop_per_image / 1e9
                runs += timed
                torch_processes += infos
                if breakdown:
                    breakdowns[norm] = breakdown
    except WorkerError as error:
        sys.exit(f"error: {error}")
    if torch_processes:
        first = torch_processes[0]
        name += (f"; PyTorch {first['torch']}, {first['torch_threads']} threads, OMP_WAIT_POLICY "
                 f"{first['OMP_WAIT_POLICY'] or 'unset'}")
    meta = {"device": str(device), "device_name": name, "batch_sizes": batches, "steps": steps,
            "repeats": args.repeats, "warmup": args.warmup, "pause_s": PAUSE_S, "width": args.width,
            "load": args.load, "tf32": device.kind == "gpu" and not args.no_tf32, "cpu_settings": cpu_settings,
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
