"""mpiexec -n 2 python -m benchmarks.all_reduce [--device cpu|gpu] [--batch-size 32] [--repeats 20]

Times the gradient all-reduce of data-parallel training for GoogLeNet (CIFAR
stem, batch norm, aux heads: 10.3 M parameters, a 41 MB float32 gradient):

- one ``minicnn.distributed.all_reduce_gradients(model)``: the optimizer's
  flat gradient buffer, reduced in place in one collective (MPI on the CPU,
  NCCL on GPUs);
- the same buffer reduced in one call and in buckets of --bucket-mb (PyTorch's
  DistributedDataParallel uses 25 MB), to see whether splitting pays;
- a data-parallel training step at global batch --batch-size (each rank its
  slice): forward, loss, backward, all_reduce_gradients, SGD step; and the
  all-reduce's share of it.

Each all-reduce is timed on rank 0 after a barrier (so waiting for a slower
rank is not counted); figures are medians over --repeats (steps: --steps).
Only rank 0 prints.
"""
import argparse
import statistics
import time



def parse_args(argv):
    parser = argparse.ArgumentParser(prog="mpiexec -n N python -m benchmarks.all_reduce",
                                     description=__doc__.split("\n\n")[1])
    parser.add_argument("--device", default="cpu", choices=["cpu", "gpu"], help="gpu: one GPU per rank")
    parser.add_argument("--batch-size", type=int, default=32, help="the global batch of the timed step (default 32)")
    parser.add_argument("--width", type=float, default=1.0, help="channel multiplier (1.0: the real network)")
    parser.add_argument("--repeats", type=int, default=20, help="timed all-reduces of each kind")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps (after one untimed)")
    parser.add_argument("--bucket-mb", type=float, default=25.0, help="bucket size to compare with one call")
    return parser.parse_args(argv)


def timed(fn, synchronize, barrier, repeats):
    """Seconds per call of ``fn`` (a list of ``repeats``), each started together on every rank."""
    seconds = []
    for _ in range(repeats):
        barrier()
        start = time.perf_counter()
        fn()
        synchronize()
        seconds.append(time.perf_counter() - start)
    return seconds


def main(argv=None):
    args = parse_args(argv)
    import minicnn
    from minicnn import backend, distributed, nn
    from minicnn.distributed.world import current_world
    from benchmarks.googlenet import minicnn_steps

    distributed.init()
    minicnn.configure_cpu()
    rank, size = distributed.rank(), distributed.world_size()
    if args.batch_size % size:
        raise SystemExit(f"--batch-size {args.batch_size} must divide by the {size} ranks")
    device = distributed.local_gpu() if args.device == "gpu" else "cpu"
    synchronize = lambda: backend.synchronize(device)  # noqa: E731

    per_rank = args.batch_size // size
    net = minicnn_steps("bn", device, per_rank, args.width)  # the benchmark's GoogLeNet, SGD and fixed batch
    model, optimizer = net.model, net.optimizer
    distributed.broadcast_parameters(model)  # in place: the optimizer's views of the parameters stay valid

    def train_step():
        net.backward()
        distributed.all_reduce_gradients(model)
        net.update()

    train_step()  # warm-up: kernels compiled, memory pools filled, gradients in the optimizer's buffer
    world, flat = current_world(), optimizer.groups[0].grad
    bucket = max(1, int(args.bucket_mb * 2**20) // flat.itemsize)

    def in_buckets():
        for start in range(0, flat.size, bucket):
            world.all_reduce_sum(flat[start:start + bucket])

    barrier = distributed.barrier
    results = {
        "all_reduce_gradients": timed(lambda: distributed.all_reduce_gradients(model), synchronize, barrier,
                                      args.repeats),
        "one call, whole buffer": timed(lambda: world.all_reduce_sum(flat), synchronize, barrier, args.repeats),
        f"buckets of {args.bucket_mb:g} MB": timed(in_buckets, synchronize, barrier, args.repeats),
    }
    steps = timed(train_step, synchronize, barrier, args.steps)
    if rank != 0:
        return
    parameters = nn.count_parameters(model)
    print(f"{size} ranks on {device}; GoogLeNet (cifar stem, bn) width {args.width:g}: {parameters / 1e6:.1f} M "
          f"parameters, gradient {flat.nbytes / 2**20:.1f} MiB {flat.dtype} in {len(optimizer.groups)} buffer(s)")
    print(f"{'what':<28}{'median ms':>11}{'min ms':>9}{'max ms':>9}")
    for name, seconds in results.items():
        print(f"{name:<28}{statistics.median(seconds) * 1e3:>11.1f}{min(seconds) * 1e3:>9.1f}"
              f"{max(seconds) * 1e3:>9.1f}")
    step = statistics.median(steps)
    print(f"{'training step':<28}{step * 1e3:>11.1f}{min(steps) * 1e3:>9.1f}{max(steps) * 1e3:>9.1f}"
          f"   (global batch {args.batch_size}, {per_rank} per rank)")
    print(f"all_reduce_gradients: {statistics.median(results['all_reduce_gradients']) / step:.1%} of a training step")


if __name__ == "__main__":
    main()
