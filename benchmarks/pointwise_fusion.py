"""python -m benchmarks.pointwise_fusion [--batch-size 32] [--repeats 7] [--threads N]

Measures an idea before building it: the three 1x1 convolutions of an
inception block that read the block's input (branch 1, and the "reduce"
convolutions of branches 2 and 3) as ONE matrix product instead of three.
Forward, rows (N*H*W, C) @ the three filter banks side by side; backward,
one product for the input's gradient (instead of three, and two additions)
and one for the weights' gradients. Fused, the output must be cut into the
three branches and their gradients joined again (one split, one concat).

For the inception blocks of the CIFAR network (batch --batch-size), prints
the median time of the separate and the fused products over --repeats runs,
alternated, as CPU seconds of the process (user + system, all threads): on a
shared machine the wall clock swings too much to compare. No model uses the
fused form yet.
"""
import argparse
import statistics
import time

import numpy as np

from models.googlenet import INCEPTION_TABLE

# The side of each block's feature map with the CIFAR stem, and its input channels (width 1).
BLOCKS = {"3a": (32, 192), "3b": (32, 256), "4a": (16, 480), "4b": (16, 512), "4c": (16, 512), "4d": (16, 512),
          "4e": (16, 528), "5a": (8, 832), "5b": (8, 832)}


def cpu_seconds(fn):
    """CPU seconds (user + system) of this process, all threads, while ``fn`` runs."""
    before = time.process_time()
    fn()
    return time.process_time() - before


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pointwise_fusion", description=__doc__.split("\n\n")[1])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, help="minicnn's threads (default: every core)")
    args = parser.parse_args(argv)
    import minicnn
    from minicnn.kernels.arithmetic import add_threads
    from minicnn.kernels.conv import matrix_product_threads as product
    from minicnn.kernels.shape import concat_channels_numba, split_channels_numba

    minicnn.configure_cpu(args.threads)
    rng = np.random.default_rng(0)
    print(f"{'block':<6}{'rows':>7}{'C':>5}{'outputs':>15}{'separate ms':>13}{'fused ms':>10}{'fused/separate':>16}")
    totals = {"separate": 0.0, "fused": 0.0}
    for name, (side, channels) in BLOCKS.items():
        spec = INCEPTION_TABLE[name]
        outs = (spec.n1x1, spec.n3x3_reduce, spec.n5x5_reduce)
        rows = args.batch_size * side * side
        x = rng.standard_normal((rows, channels), dtype=np.float32)
        weights = [rng.standard_normal((o, channels), dtype=np.float32) for o in outs]
        fused_weight = np.concatenate(weights)
        grads = [rng.standard_normal((rows, o), dtype=np.float32) for o in outs]
        as_images = lambda a: a.reshape(args.batch_size, side, side, -1).transpose(0, 3, 1, 2)  # noqa: E731

        def separate():
            for w in weights:
                product(x, w.T)
            gx = None
            for g, w in zip(grads, weights):
                part = product(g, w)
                gx = part if gx is None else add_threads(gx, part)
            for g in grads:
                product(g.T, x)

        def fused():
            y = product(x, fused_weight.T)
            split_channels_numba(as_images(y), outs)  # the branches' inputs
            g = concat_channels_numba(*(as_images(g) for g in grads)).transpose(0, 2, 3, 1).reshape(rows, -1)
            product(g, fused_weight)
            product(g.T, x)

        times = {"separate": [], "fused": []}
        separate(), fused()  # warm-up (numba compiles, caches fill)
        for _ in range(args.repeats):
            for kind, fn in (("separate", separate), ("fused", fused)):
                times[kind].append(cpu_seconds(fn))
        medians = {kind: statistics.median(values) for kind, values in times.items()}
        for kind in totals:
            totals[kind] += medians[kind]
        print(f"{name:<6}{rows:>7}{channels:>5}{str(outs):>15}{medians['separate'] * 1e3:>13.1f}"
              f"{medians['fused'] * 1e3:>10.1f}{medians['fused'] / medians['separate']:>15.2f}x")
    print(f"{'all':<33}{totals['separate'] * 1e3:>13.1f}{totals['fused'] * 1e3:>10.1f}"
          f"{totals['fused'] / totals['separate']:>15.2f}x")


if __name__ == "__main__":
    main()
