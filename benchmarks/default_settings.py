"""python -m benchmarks.default_settings [--rounds 5] [--steps 3] [--width 0.5] [--batch-size 16] [--norm bn]

Is minicnn fast in a user's own script, one that never calls
``minicnn.configure_cpu()``? Times a GoogLeNet training step (CIFAR stem, aux
heads, SGD with momentum) in fresh processes, alternating between settings so
that a busy machine slows each of them alike:

- ``default``: nothing configured, as in a user's script;
- ``configured``: ``minicnn.configure_cpu()`` first, as the trainer and the
  benchmark do;
- ``glibc-keeps-memory``: also glibc asked to keep freed memory for reuse
  (``mallopt``, a process-wide change for good: what ``configure_cpu`` did
  before minicnn's kernels reused their own arrays), to show it no longer pays.

Each process runs one warm-up step and then --steps timed ones, and reports
its median step. The table gives, per setting, the median over --rounds
processes, the lowest and the highest, and its ratio to ``configured``. It
also checks what a user would notice afterwards: NumPy's BLAS thread count
after the steps (minicnn must leave it as it found it).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

SETTINGS = {
    "default": "",
    "configured": "minicnn.configure_cpu()",
    "glibc-keeps-memory": "minicnn.configure_cpu(); import ctypes; mallopt = ctypes.CDLL('libc.so.6').mallopt; "
                          "mallopt(-3, 2**31 - 1); mallopt(-1, 2**31 - 1)",  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD
}

# One process: build, warm up, time --steps steps; print the median step and BLAS's threads before and after.
_CHILD = """
import json, os, statistics, sys, time
import minicnn
from minicnn.kernels import threads
{setting}
from benchmarks.googlenet import minicnn_steps
blas_before = threads.blas_thread_count()
net = minicnn_steps({norm!r}, minicnn.backend.CPU, {batch}, {width})
net.train_step()
seconds, cpu, system = [], [], []
for _ in range({steps}):
    start, times = time.perf_counter(), os.times()
    net.train_step()
    seconds.append(time.perf_counter() - start)
    cpu.append(os.times().user - times.user + os.times().system - times.system)
    system.append(os.times().system - times.system)
print(json.dumps({{"step_s": statistics.median(seconds), "cpu_s": statistics.median(cpu),
                  "system_s": statistics.median(system), "blas_before": blas_before,
                  "blas_after": threads.blas_thread_count()}}))
"""


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.default_settings",
                                     description=__doc__.split("\n\n")[1])
    parser.add_argument("--rounds", type=int, default=5, help="processes per setting, alternated")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per process")
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--norm", default="bn", choices=["lrn", "bn"])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    return parser.parse_args(argv)


def run_once(setting, args):
    """One fresh process with ``setting``; returns its JSON line as a dict."""
    code = _CHILD.format(setting=SETTINGS[setting], norm=args.norm, batch=args.batch_size, width=args.width,
                         steps=args.steps)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"error: the {setting} process failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    args = parse_args(argv)
    results = {setting: [] for setting in args.settings}
    for round_ in range(args.rounds):
        for setting in args.settings:
            results[setting].append(run_once(setting, args))
            r = results[setting][-1]
            print(f"round {round_ + 1}: {setting:<19}{r['step_s']:.3f} s/step, CPU {r['cpu_s']:.3f} s "
                  f"(system {r['system_s']:.3f} s)", flush=True)
    medians = {s: statistics.median(r["step_s"] for r in runs) for s, runs in results.items()}
    reference = medians.get("configured")
    print(f"\nGoogLeNet {args.norm}, width {args.width}, batch {args.batch_size}: one training step, median of "
          f"{args.rounds} processes (lowest-highest); CPU: user + system seconds of all threads")
    for setting, runs in results.items():
        steps, cpu = [r["step_s"] for r in runs], [r["cpu_s"] for r in runs]
        ratio = f"{medians[setting] / reference:.3f}x configured" if reference else ""
        blas = sorted({(r["blas_before"], r["blas_after"]) for r in runs})
        print(f"  {setting:<19}{medians[setting]:.3f} s ({min(steps):.3f}-{max(steps):.3f}) {ratio:<20} CPU "
              f"{statistics.median(cpu):.3f} s (system {statistics.median(r['system_s'] for r in runs):.3f} s)  "
              f"BLAS threads before -> after: {', '.join(f'{a} -> {b}' for a, b in blas)}")
    return results


if __name__ == "__main__":
    main()
