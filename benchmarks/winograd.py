"""python -m benchmarks.winograd [--batch-size 32] [--repeats 5] [--threads N] [--dtype float32]

Winograd F(4x4, 3x3) against im2col for the 3x3 convolutions of GoogLeNet's
CIFAR network (stride 1, padding 1): forward alone, and forward + backward
(input and weight gradients, bias), on the CPU.

For each layer, prints the median over --repeats runs, alternated, of the CPU
seconds of the process (user + system, all threads: on a shared machine the
wall clock swings too much to compare), the ratio im2col / Winograd (above 1:
Winograd is faster), and the peak of the memory that NumPy allocated during
one forward + backward (tracemalloc, minicnn's buffer cache emptied first),
and the bytes the forward keeps for backward (im2col's rows, Winograd's U and V).
"""
import argparse
import statistics
import time
import tracemalloc

import numpy as np

# (input channels, output channels, side) of each 3x3 convolution: the inception blocks' 3x3 branch at
# their CIFAR sides (3a...5b), and the stem's 64 -> 192.
LAYERS = [(64, 192, 32), (96, 128, 32), (128, 192, 32), (96, 208, 16), (112, 224, 16), (128, 256, 16),
          (144, 288, 16), (160, 320, 16), (160, 320, 8), (192, 384, 8)]
ALGORITHMS = ("im2col", "winograd")


def cpu_seconds(fn):
    """CPU seconds (user + system) of this process, all threads, while ``fn`` runs."""
    before = time.process_time()
    fn()
    return time.process_time() - before


def peak_bytes(fn):
    """The most bytes NumPy held while ``fn`` ran, above what it held before (minicnn's buffer cache emptied)."""
    from minicnn.kernels import host_memory
    host_memory.release()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    host_memory.release()
    return peak - before


def saved_bytes(op):
    """Bytes of the arrays a Conv2dFunction keeps from forward for backward, besides its input (im2col's weight
    rows, and its unfolded rows on a GPU only: the CPU unfolds again in backward; Winograd's U and V)."""
    if op.algorithm == "winograd":
        return op.winograd.u.nbytes + op.winograd.v.nbytes
    return (0 if op.cols is None else op.cols.nbytes) + op.weight2d.nbytes


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.winograd", description=__doc__.split("\n\n")[1])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, help="minicnn's threads (default: every core)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = parser.parse_args(argv)
    import minicnn
    from minicnn.functional.conv import Conv2dFunction

    minicnn.configure_cpu(args.threads)
    rng = np.random.default_rng(0)
    print(f"{'C->O':>9}{'side':>5}  {'forward ms':>21}{'ratio':>7}  {'fwd+bwd ms':>21}{'ratio':>7}"
          f"  {'peak MiB':>15}  {'kept MiB':>15}")
    print(f"{'':>16}{'im2col':>11}{'winograd':>10}{'':>9}{'im2col':>11}{'winograd':>10}{'':>9}"
          f"{'i2c':>7}{'wino':>8}  {'i2c':>7}{'wino':>8}")
    totals = {(kind, algorithm): 0.0 for kind in ("forward", "step") for algorithm in ALGORITHMS}
    for c, o, side in LAYERS:
        x = minicnn.Tensor(rng.standard_normal((args.batch_size, c, side, side)).astype(args.dtype),
                           requires_grad=True)
        w = minicnn.Tensor((rng.standard_normal((o, c, 3, 3)) * np.sqrt(2 / (9 * c))).astype(args.dtype),
                           requires_grad=True)
        b = minicnn.Tensor(np.zeros(o, args.dtype), requires_grad=True)
        gy = minicnn.Tensor(rng.standard_normal((args.batch_size, o, side, side)).astype(args.dtype))

        def forward(algorithm):
            with minicnn.no_grad():
                return Conv2dFunction((1, 1), (1, 1), (3, 3), algorithm)(x, w, b)

        def step(algorithm):
            x.grad = w.grad = b.grad = None
            y = Conv2dFunction((1, 1), (1, 1), (3, 3), algorithm)(x, w, b)
            y.backward(gy)

        def saved(algorithm):
            op = Conv2dFunction((1, 1), (1, 1), (3, 3), algorithm)
            op(x, w, b)
            return saved_bytes(op)

        times = {key: [] for key in totals}
        for algorithm in ALGORITHMS:  # warm-up (numba compiles, caches fill)
            forward(algorithm), step(algorithm)
        for _ in range(args.repeats):
            for algorithm in ALGORITHMS:
                times[("forward", algorithm)].append(cpu_seconds(lambda: forward(algorithm)))
                times[("step", algorithm)].append(cpu_seconds(lambda: step(algorithm)))
        medians = {key: statistics.median(values) * 1e3 for key, values in times.items()}
        for key in totals:
            totals[key] += medians[key]
        mib = 2 ** 20
        peaks = {algorithm: peak_bytes(lambda: step(algorithm)) / mib for algorithm in ALGORITHMS}
        kept = {algorithm: saved(algorithm) / mib for algorithm in ALGORITHMS}
        f_i, f_w = medians[("forward", "im2col")], medians[("forward", "winograd")]
        s_i, s_w = medians[("step", "im2col")], medians[("step", "winograd")]
        print(f"{f'{c}->{o}':>9}{side:>5}  {f_i:>11.1f}{f_w:>10.1f}{f_i / f_w:>7.2f}  {s_i:>11.1f}{s_w:>10.1f}"
              f"{s_i / s_w:>7.2f}  {peaks['im2col']:>7.0f}{peaks['winograd']:>8.0f}  {kept['im2col']:>7.0f}"
              f"{kept['winograd']:>8.0f}")
    f_i, f_w = totals[("forward", "im2col")], totals[("forward", "winograd")]
    s_i, s_w = totals[("step", "im2col")], totals[("step", "winograd")]
    print(f"{'all':>14}  {f_i:>11.1f}{f_w:>10.1f}{f_i / f_w:>7.2f}  {s_i:>11.1f}{s_w:>10.1f}{s_i / s_w:>7.2f}")


if __name__ == "__main__":
    main()
