"""Drive minicnn's GPU path through its public API on real CuPy over the fake device; print what it did.

    python -m tests.fakecuda.probe [--capability 9.0] [--width 0.25] [--json FILE] [--nvrtc-fails-for KERNEL]

from the repository root, in an environment with real CuPy (``cupy-cuda12x[ctk]``)
and no GPU needed. Each phase is code a GPU run executes, driven the way a user
or the trainer drives it: so a kernel added anywhere on those paths is compiled
here without this file knowing about it.

    train_bn     train.cifar's Run: one steady-state training step (GPU augmentation, GoogLeNet with batch
                 norm and the CIFAR stem, loss with the aux heads, backward, SGD Nesterov + weight decay,
                 schedule, running totals)
    step_bn, step_lrn   benchmarks.googlenet's step (batch 2): forward, backward, SGD, for each norm
    adam         the same model's backward and an Adam step
    evaluate     train.cifar.evaluate on one batch
    gradcheck    every case of minicnn.gradcheck in float64: forward and backward (not the check itself)
    all_reduce   minicnn.distributed: broadcast_parameters and all_reduce_gradients with no optimizer's
                 buffer (both pack the tensors into one flat array)

Each phase's events are summarized (``summary``); the first step of a phase
compiles (and allocates optimizer state), so the steps counted are the second.
Writes JSON with ``--json``; prints a report otherwise.
"""
import argparse
import collections
import json
import os
import struct
import sys
import tempfile


def summary(events):
    """Counts of one phase's events: what a GPU would launch, copy and wait for, and the kernels' names."""
    count = collections.Counter()
    kernels, library, copies = collections.Counter(), collections.Counter(), collections.Counter()
    for kind, detail in events:
        if kind == "launch":
            kernels[detail.kernel] += 1
        elif kind == "library":  # a matrix product by its dtype: "cublas.gemmEx float32"
            library[detail[0] + (f" {detail[1][3]}" if "gemm" in detail[0] else "")] += 1
            count[detail[0].split(".")[0]] += 1
        elif kind == "copy":
            count[detail[0]] += 1
            if detail[2] is not None:
                copies[f"{detail[0]} at {detail[2]}"] += 1
        else:
            count[kind] += 1
    count["launches"] = sum(kernels.values())
    count["total"] = count["launches"] + count["memset"] + count["cublas"] + count["curand"] + count["cub"]
    return {"counts": dict(count), "kernels": dict(kernels), "library": dict(library), "copies": dict(copies)}


def cubin_arch(image):
    """The SM architecture an ELF cubin was built for (EF_CUDA_SM, the low byte of e_flags), or None."""
    if image[:4] != b"\x7fELF":
        return None
    return struct.unpack_from("<I", image, 48)[0] & 0xFF


class Phases:
    def __init__(self, device):
        self.device, self.results = device, {}

    def run(self, name, action):
        """Run ``action`` and keep a summary of the device events it caused under ``name``."""
        mark = len(self.device.events)
        action()
        self.results[name] = summary(self.device.events[mark:])


def _train_run(device_name, width, folder):
    from tests.tiny_cifar import write_cifar
    from train import cifar
    write_cifar(os.path.join(folder, "data"), train_per_batch=4, test_count=8)
    args = cifar.build_parser().parse_args(
        ["--device", "gpu", "--no-download", "--width", str(width), "--limit", "8", "--batch-size", "2",
         "--data-dir", os.path.join(folder, "data"), "--out", os.path.join(folder, "run")])
    return cifar.Run(cifar.fill_norm_defaults(args), device_name)


def probe(width):
    """Run every phase; returns their summaries."""
    import contextlib
    import io

    import numpy as np

    import minicnn
    from benchmarks.googlenet import minicnn_steps
    from minicnn import distributed, optim
    from minicnn.gradcheck.cases import CASES, Inputs
    from train import cifar
    from train.augment import EpochPlan
    from train.metrics import RunningTotals

    phases = Phases(DEVICE)
    with tempfile.TemporaryDirectory() as folder, contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):  # the trainer's messages and progress bars
        run = _train_run("gpu:0", width, folder)
        plan = EpochPlan.draw(0, 0, len(run.train_labels)).to(run.device)
        totals = RunningTotals()
        run.train_step(plan, 0, 0, totals)
        phases.run("train_bn", lambda: run.train_step(plan, 0, 1, totals))
        cifar.evaluate(run.model, run.test_images[:2], run.test_labels[:2], 2)
        phases.run("evaluate", lambda: cifar.evaluate(run.model, run.test_images[:2], run.test_labels[:2], 2))
    for norm in ("bn", "lrn"):
        net = minicnn_steps(norm, "gpu", batch=2, width=width)
        net.train_step()
        phases.run(f"step_{norm}", net.train_step)
        phases.run(f"infer_{norm}", net.infer)
    net = minicnn_steps("bn", "gpu", batch=2, width=width)
    adam = optim.Adam(net.model.parameters(), lr=1e-3, weight_decay=5e-4)

    def adam_step():
        net.backward()
        adam.step()
    adam_step()
    phases.run("adam", adam_step)

    def other_optimizers():  # plain SGD, SGD with momentum, AdamW; batch norm without running statistics
        from minicnn import backend, nn
        from minicnn import functional as F
        x = minicnn.Tensor(backend.to_device(np.ones((2, 3, 8, 8), np.float32), "gpu"))
        for make in (lambda p: optim.SGD(p, lr=0.1), lambda p: optim.SGD(p, lr=0.1, momentum=0.9),
                     lambda p: optim.AdamW(p, lr=1e-3)):
            model = nn.Conv2d(3, 4, 3).to("gpu")
            optimizer = make(model.parameters())
            F.batch_norm(model(x), None, None, training=True).sum().backward()
            optimizer.step()
    phases.run("optimizers", other_optimizers)

    def gradient_cases():
        for case in CASES:
            fn, inputs = case.build(Inputs("gpu"))
            out = fn(*inputs)
            out.backward(minicnn.ones_like(out).array if out.ndim else None)
    phases.run("gradcheck", gradient_cases)

    def pack():
        model = minicnn_steps("bn", "gpu", batch=2, width=width)
        distributed.broadcast_parameters(model.model)
        model.backward()
        distributed.all_reduce_gradients(model.model)
    phases.run("all_reduce", pack)
    return phases.results


def fail_nvrtc_for(kernel_name):
    """Make NVRTC fail (NVRTC_ERROR_COMPILATION) on every program whose source defines ``kernel_name``,
    as it may on a user's CUDA; CuPy turns that into its CompileException."""
    from cupy_backends.cuda.libs import nvrtc
    sources, create, compile_program = {}, nvrtc.createProgram, nvrtc.compileProgram

    def create_recording(src, name, headers, include_names):
        program = create(src, name, headers, include_names)
        sources[program] = src
        return program

    def compile_failing(program, options):
        if f" {kernel_name}(" in sources.get(program, ""):
            raise nvrtc.NVRTCError(6)
        return compile_program(program, options)

    nvrtc.createProgram, nvrtc.compileProgram = create_recording, compile_failing


def probe_failing_compiler(width, kernel_name):
    """Two training steps (BN, SGD Nesterov) while NVRTC fails on ``kernel_name``: what they launched, and
    the warnings they gave."""
    import warnings

    from benchmarks.googlenet import minicnn_steps
    fail_nvrtc_for(kernel_name)
    phases = Phases(DEVICE)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net = minicnn_steps("bn", "gpu", batch=2, width=width)
        net.train_step()
        phases.run("step_bn", net.train_step)
    return phases.results, [f"{w.category.__name__}: {w.message}" for w in caught]


def fused_kernels():
    """Names of every ``cupy.fuse`` kernel minicnn.kernels defines: those made (called) and those not yet."""
    import importlib
    import pkgutil

    import cupy
    import minicnn.kernels
    names = set()
    for info in pkgutil.iter_modules(minicnn.kernels.__path__):
        module = importlib.import_module(f"minicnn.kernels.{info.name}")
        for name, value in vars(module).items():
            made = isinstance(value, cupy._core.fusion.Fusion)
            waiting = callable(value) and getattr(value, "__code__", None) is not None \
                and value.__code__.co_name == "first_call"  # kernels.fusion.fused's wrapper
            if made or waiting:
                names.add(name)
    return sorted(names)


def _parse(argv):
    parser = argparse.ArgumentParser(prog="python -m tests.fakecuda.probe", description=__doc__.split("\n")[0])
    parser.add_argument("--capability", default="9.0", help="compute capability of the fake device: 9.0 or 8.0")
    parser.add_argument("--width", type=float, default=0.25, help="GoogLeNet's width multiplier")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--nvrtc-fails-for", metavar="KERNEL",
                        help="only two training steps, with NVRTC failing to compile KERNEL (a fused kernel's name)")
    return parser.parse_args(argv)


DEVICE = None


def main(argv=None):
    global DEVICE
    args = _parse(argv)
    from tests import fakecuda
    DEVICE = fakecuda.install(tuple(int(p) for p in args.capability.split(".")))
    warned = None
    if args.nvrtc_fails_for:
        phases, warned = probe_failing_compiler(args.width, args.nvrtc_fails_for)
    else:
        phases = probe(args.width)
    result = {"capability": args.capability, "phases": phases, "warnings": warned, "errors": DEVICE.errors,
              "fused_kernels": fused_kernels(),
              "fusion_fallbacks": [d for k, d in DEVICE.events if k == "fusion_fallback"],
              "module_archs": sorted(collections.Counter(cubin_arch(m) for m in DEVICE.modules.values()).items(),
                                     key=str)}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1, default=str)
    else:
        for name, phase in phases.items():
            print(f"{name:12} {phase['counts']}")
        print({k: v for k, v in result.items() if k != "phases"})
    sys.stdout.flush()
    # CuPy frees its memory pool and modules at interpreter exit, through the fakes, after ctypes may be
    # gone: leave without that teardown.
    os._exit(0)


if __name__ == "__main__":
    main()
