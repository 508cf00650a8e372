"""python -m minicnn.doctor [--device gpu|gpu:N]: what a user runs first on a new machine.

It prints the versions that matter (Python, NumPy, numba, CuPy, the CUDA
runtime and driver, NCCL) and the GPUs CuPy sees. With ``--device gpu`` it
then checks the GPU path on this machine, as a bug report needs it:

1. the gradient-check report of every layer on the GPU (``python -m minicnn.gradcheck``);
2. GoogLeNet's forward and backward on the GPU against the CPU, in float64
   (a small width: the same code as the full network, and exact to ~1e-10);
3. 20 training steps of the full network (batch 32, float32, no TF32): images/s
   and the memory pool's peak.

It exits non-zero when a check fails. Paste its output into a bug report.
The network is imported by name at run time (``--model``, default GoogLeNet
from the repository's ``models/``): run it from the repository root.
"""
import argparse
import os
import platform
import sys
import time

import numpy as np

from . import Tensor, backend, configure_cpu, manual_seed, optim
from .gradcheck import __main__ as gradcheck_report
from .trace import DEFAULT_MODEL, factory_arguments, load_factory, training_loss


def versions():
    """Lines naming this machine's Python, NumPy, numba and CPU."""
    import numba
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        layer = f"{numba.config.THREADING_LAYER} (not started)"
    from . import __version__
    return [f"minicnn {__version__}, Python {platform.python_version()} on {platform.system()} {platform.machine()}",
            f"NumPy {np.__version__}, numba {numba.__version__} (threading layer {layer}, "
            f"{numba.get_num_threads()} threads), {os.cpu_count()} CPU cores"]


def gpu_lines():
    """Lines on CuPy, CUDA, NCCL and the GPUs; never raises."""
    cp = backend.cupy_module()
    if cp is None:
        try:
            backend.require_gpu()
        except backend.DeviceUnavailableError as error:  # says why CuPy could not be imported
            return [f"CuPy: {error}"]
    lines = [f"CuPy {getattr(cp, '__version__', '?')}"]
    try:
        runtime, driver = cp.cuda.runtime.runtimeGetVersion(), cp.cuda.runtime.driverGetVersion()
        lines[0] += f", CUDA runtime {_cuda_version(runtime)}, driver supports CUDA {_cuda_version(driver)}"
    except Exception as error:  # no driver: CuPy imports, but CUDA cannot start
        lines[0] += f"; CUDA cannot start: {error}"
        return lines
    lines.append(f"NCCL: {_nccl_version()}")
    count = backend.gpu_count()
    if count == 0:
        lines.append("GPUs: none found (check `nvidia-smi` and the driver)")
    for index in range(count):
        properties = cp.cuda.runtime.getDeviceProperties(index)
        name = properties["name"].decode() if isinstance(properties["name"], bytes) else properties["name"]
        lines.append(f"gpu:{index}: {name}, {properties['totalGlobalMem'] / 2**30:.1f} GiB, "
                     f"compute capability {properties['major']}.{properties['minor']}")
    return lines


def _cuda_version(number):
    return f"{number // 1000}.{number % 1000 // 10}"


def _nccl_version():
    try:
        from cupy.cuda import nccl
        return f"{nccl.get_version()}" if getattr(nccl, "available", False) else "not available"
    except Exception as error:  # CuPy without NCCL, or its library missing
        return f"not available ({type(error).__name__}: {error})"


def compare_with_cpu(factory, kwargs, device, batch):
    """GoogLeNet's loss and every parameter's gradient on ``device`` against the CPU, in float64.

    Returns the largest relative difference: |gpu - cpu| / max(|cpu|) over the loss and each gradient.
    """
    results = []
    for where in ("cpu", device):
        manual_seed(0)
        model = factory(**kwargs).to(where, np.float64).train()
        for module in model.modules():  # deterministic layers: no dropout masks to match
            if type(module).__name__ == "Dropout":
                module.eval()
        rng = np.random.default_rng(0)
        size = getattr(model, "input_size", 32)
        x = Tensor(backend.to_device(rng.standard_normal((batch, 3, size, size)), where))
        outputs = model(x)
        classes = (outputs[0] if isinstance(outputs, tuple) else outputs).shape[-1]
        loss = training_loss(outputs, backend.to_device(rng.integers(0, classes, batch), where))
        loss.backward()
        results.append([backend.as_numpy(loss.array)] + [p.grad.numpy() for p in model.parameters()])
    return max(float(np.abs(g - c).max() / max(np.abs(c).max(), 1e-30)) for c, g in zip(*results))


def time_training(factory, kwargs, device, batch, steps):
    """(images/s over ``steps`` SGD steps after 2 warm-up steps, the memory pool's peak bytes)."""
    manual_seed(0)
    model = factory(**kwargs).to(device).train()
    optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4, nesterov=True)
    rng = np.random.default_rng(0)
    size = getattr(model, "input_size", 32)
    x = Tensor(backend.to_device(rng.standard_normal((batch, 3, size, size)).astype(np.float32), device))
    labels = None

    def step():
        nonlocal labels
        outputs = model(x)
        if labels is None:
            classes = (outputs[0] if isinstance(outputs, tuple) else outputs).shape[-1]
            labels = backend.to_device(rng.integers(0, classes, batch), device)
        loss = training_loss(outputs, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(2):
        step()
    backend.synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    backend.synchronize(device)
    seconds = time.perf_counter() - start
    pool = backend.require_gpu(device.index).get_default_memory_pool()
    return batch * steps / seconds, pool.total_bytes()


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m minicnn.doctor", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--device", help="also check this GPU: gpu or gpu:N (default: only print versions)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"MODULE:FACTORY of the network (default {DEFAULT_MODEL})")
    parser.add_argument("--width", type=float, default=1.0, help="channel multiplier of the timed network (default 1)")
    parser.add_argument("--check-width", type=float, default=0.125,
                        help="channel multiplier of the float64 CPU comparison (default 0.125)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per timed step (default 32)")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps (default 20)")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_cpu()  # as the trainer does, so the versions show what training uses
    print("\n".join(versions() + gpu_lines()), flush=True)
    if args.device is None:
        return 0
    try:
        device = backend.parse_device(args.device)
        if device.kind != "gpu":
            raise ValueError(f"--device must be gpu or gpu:N, got {args.device!r}")
        backend.require_gpu(device.index)
        factory = load_factory(args.model)
        check_kwargs = factory_arguments(factory, {"width": args.check_width})
        timed_kwargs = factory_arguments(factory, {"width": args.width})
    except (ValueError, backend.DeviceUnavailableError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    failed = []
    print(f"\n== 1. gradient checks on {device}")
    if gradcheck_report.main(["--device", str(device)]) != 0:
        failed.append("gradient checks")
    print(f"\n== 2. {args.model} forward and backward on {device} against the CPU (float64, "
          f"width {args.check_width:g}, batch 2)")
    difference = compare_with_cpu(factory, check_kwargs, device, batch=2)
    verdict = "pass" if difference < 1e-8 else "FAIL"
    print(f"largest relative difference over the loss and every gradient: {difference:.1e} ({verdict}: < 1e-8)")
    if verdict == "FAIL":
        failed.append("GPU against CPU")
    tf32 = "TF32 products" if os.environ.get("CUPY_TF32") == "1" else "no TF32"
    print(f"\n== 3. {args.steps} training steps on {device} (width {args.width:g}, batch {args.batch_size}, "
          f"float32, {tf32}, SGD)")
    rate, peak = time_training(factory, timed_kwargs, device, args.batch_size, args.steps)
    print(f"{rate:.1f} images/s; memory pool peak {peak / 2**20:,.0f} MiB")
    print("\n" + ("all checks passed" if not failed else "FAILED: " + ", ".join(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
