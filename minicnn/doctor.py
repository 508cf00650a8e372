"""python -m minicnn.doctor [--device gpu|gpu:N] [--model MODULE:FACTORY [--loss MODULE:FUNCTION]]: what a
user runs first on a new machine.

It prints the versions that matter (Python, NumPy, numba, CuPy, the CUDA
runtime and driver, NCCL) and the GPUs CuPy sees. With ``--device gpu`` it
then checks the GPU path on this machine, as a bug report needs it:

1. the gradient-check report of every layer on the GPU (``python -m minicnn.gradcheck``);
2. one float32 training step of a small network of every layer (SGD, then
   Adam), and each op's fast GPU form: active, or fallen back to its plain
   form because it failed on its first use here (see minicnn.kernels.dispatch);
3. with ``--model``: the network's forward and backward on the GPU against the
   CPU, in float64 (a small width: the same code as the full network, and exact
   to ~1e-10);
4. with ``--model``: 20 training steps of the network (batch 32, float32, no
   TF32): images/s and the memory pool's peak.

It exits non-zero when a check fails. Paste its output into a bug report.
The network is imported by name at run time; the repository's GoogLeNet (from
its root): ``--model models.googlenet:GoogLeNet --loss models.googlenet:googlenet_loss``.
"""
import argparse
import os
import platform
import sys
import time

import numpy as np

from . import Tensor, backend, configure_cpu, manual_seed, nn, optim
from . import functional as F
from .gradcheck.cases import CASES
from .gradcheck.report import print_report
from .kernels.dispatch import fast_gpu_forms
from .kernels.threads import blas_kernels
from .trace import factory_arguments, load_callable, training_loss


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
            f"{numba.get_num_threads()} threads), {os.cpu_count()} CPU cores", blas_line()]


def blas_line():
    """Which kernels NumPy's BLAS runs the CPU's matrix products with, and why."""
    kernels = blas_kernels()
    if kernels is None:
        return "BLAS: not OpenBLAS (its own threads run minicnn's products)"
    chosen = os.environ.get("OPENBLAS_CORETYPE")
    why = f"OPENBLAS_CORETYPE={chosen} is set" if chosen else "chosen by OpenBLAS for this CPU"
    return f"BLAS: OpenBLAS on its {kernels} kernels ({why})"


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


class EveryLayer(nn.Module):
    """A small network that runs every op with a fast GPU form: convolution, batch norm with its ReLU, LRN,
    max and average pooling, concatenation, dropout, a linear layer and, in training, the cross-entropy."""

    def __init__(self):
        super().__init__()
        self.conv, self.norm, self.lrn = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.LocalResponseNorm(5)
        self.max_pool, self.avg_pool = nn.MaxPool2d(3, 2, 1), nn.AvgPool2d(3, 2, 1)
        self.dropout, self.fc = nn.Dropout(0.5), nn.Linear(3 * 8 * 4 * 4, 10)

    def forward(self, x):
        y = self.norm(self.conv(x), relu=True)
        branches = [self.max_pool(y), self.avg_pool(y), self.max_pool(F.relu(self.lrn(y)))]
        return self.fc(self.dropout(F.concat(branches, dim=1).flatten(1)))


def run_every_fast_form(device):
    """One float32 training step of :class:`EveryLayer` with SGD (Nesterov, weight decay), one with Adam."""
    manual_seed(0)
    model = EveryLayer().to(device).train()
    rng = np.random.default_rng(0)
    x = Tensor(backend.to_device(rng.standard_normal((4, 3, 8, 8)).astype(np.float32), device))
    labels = backend.to_device(rng.integers(0, 10, 4), device)
    for make_optimizer in (lambda ps: optim.SGD(ps, lr=0.01, momentum=0.9, weight_decay=5e-4, nesterov=True),
                           optim.Adam):
        optimizer = make_optimizer(model.parameters())  # each takes the parameters over in turn
        loss = F.cross_entropy(model(x), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def fast_form_lines():
    """One line per op with a fast GPU form, and the names of those that fell back."""
    forms = fast_gpu_forms()
    width = max(len(name) for name, _, _ in forms)
    lines = [f"{name:<{width}}  {form:<40}  {status}" for name, form, status in forms]
    return lines, [name for name, _, status in forms if status.startswith("fell back")]


def compare_with_cpu(factory, loss, kwargs, device, batch):
    """The network's loss and every parameter's gradient on ``device`` against the CPU, in float64.

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
        value = training_loss(loss, outputs, backend.to_device(rng.integers(0, classes, batch), where))
        value.backward()
        results.append([backend.as_numpy(value.array)] + [p.grad.numpy() for p in model.parameters()])
    return max(float(np.abs(g - c).max() / max(np.abs(c).max(), 1e-30)) for c, g in zip(*results))


def time_training(factory, loss_function, kwargs, device, batch, steps):
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
        loss = training_loss(loss_function, outputs, labels)
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
    parser.add_argument("--model", metavar="MODULE:FACTORY",
                        help="also check this network (the repository's GoogLeNet: models.googlenet:GoogLeNet)")
    parser.add_argument("--loss", metavar="MODULE:FUNCTION",
                        help="the network's loss(outputs, labels) (default: cross-entropy; GoogLeNet's: "
                             "models.googlenet:googlenet_loss)")
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
    lines = versions() + gpu_lines()
    print("\n".join(lines), flush=True)
    if args.device is None:
        return 0
    try:
        device = backend.parse_device(args.device)
        if device.kind != "gpu":
            raise ValueError(f"--device must be gpu or gpu:N, got {args.device}")
        backend.require_gpu(device.index)
        factory = load_callable(args.model) if args.model else None
        loss = load_callable(args.loss, "--loss", "FUNCTION") if args.loss else None
        check_kwargs = factory_arguments(factory, {"width": args.check_width}) if factory else None
        timed_kwargs = factory_arguments(factory, {"width": args.width}) if factory else None
    except (ValueError, backend.DeviceUnavailableError) as error:
        said = any(str(error) in line for line in lines)  # the CuPy line above may have said why already
        print(f"error: --device {args.device} cannot be checked (see above)" if said else f"error: {error}",
              file=sys.stderr)
        return 2
    failed = []
    print(f"\n== 1. gradient checks on {device}")
    if print_report(CASES, device):
        failed.append("gradient checks")
    print(f"\n== 2. a training step of every layer on {device}; each op's fast GPU form")
    run_every_fast_form(device)
    lines, fell_back = fast_form_lines()
    print("\n".join(lines))
    if fell_back:
        failed.append("fast GPU forms (" + ", ".join(fell_back) + " fell back to their plain forms)")
    if factory is None:
        print("\n(with --model MODULE:FACTORY, the doctor also checks a network against the CPU and times it)")
        print("\n" + ("all checks passed" if not failed else "FAILED: " + ", ".join(failed)))
        return 1 if failed else 0
    print(f"\n== 3. {args.model} forward and backward on {device} against the CPU (float64, "
          f"width {args.check_width:g}, batch 2)")
    difference = compare_with_cpu(factory, loss, check_kwargs, device, batch=2)
    verdict = "pass" if difference < 1e-8 else "FAIL"
    print(f"largest relative difference over the loss and every gradient: {difference:.1e} ({verdict}: < 1e-8)")
    if verdict == "FAIL":
        failed.append("GPU against CPU")
    tf32 = "TF32 products" if os.environ.get("CUPY_TF32") == "1" else "no TF32"
    print(f"\n== 4. {args.steps} training steps on {device} (width {args.width:g}, batch {args.batch_size}, "
          f"float32, {tf32}, SGD)")
    rate, peak = time_training(factory, loss, timed_kwargs, device, args.batch_size, args.steps)
    print(f"{rate:.1f} images/s; memory pool peak {peak / 2**20:,.0f} MiB")
    print("\n" + ("all checks passed" if not failed else "FAILED: " + ", ".join(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
