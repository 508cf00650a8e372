"""python -m minicnn.trace: every op of one training step, in order, forward then backward.

    python -m minicnn.trace --model mynets:small_net         # your network, batch 2, CPU
    python -m minicnn.trace --model models.googlenet:GoogLeNet --loss models.googlenet:googlenet_loss \
        --width 0.25 --batch-size 8 --norm bn --device gpu   # the repository's GoogLeNet (from its root)
    python -m minicnn.trace --model mynets:small_net --summary-only        # only the totals by op type
    python -m minicnn.trace --model mynets:small_net --graph step.svg --collapse-depth 1

It builds the network, runs one step untraced (the first call of each kernel
compiles it, which is not what a step costs), then one step of forward, loss
and backward under :func:`minicnn.autograd.trace`, and an SGD step. What each
column counts is in :data:`COLUMNS` (``--help`` prints it).

The network comes from --model MODULE:FACTORY, imported by name when the command
runs: the engine knows no model of its own (the repository's GoogLeNet lives in
models/, which is not installed with the package: run from the repository
root). The factory is called with those of num_classes (10), stem (cifar), norm
and width that it accepts; the images are (N, 3, S, S) with S the model's
``input_size`` (else 32). The loss is the cross-entropy of the output, or
--loss MODULE:FUNCTION, called as ``loss(outputs, labels)``: a model that
returns a tuple (GoogLeNet in training: main and auxiliary logits) needs the
one that weighs them (GoogLeNet's ``googlenet_loss``).
"""
import argparse
import importlib
import inspect
import sys
import time

import numpy as np

from . import Tensor, autograd, backend, graph, manual_seed, optim
from . import functional as F

COLUMNS = """columns:
    #          the op's place in the step
    module     the module that made the op (dotted name; blank: the model's own
               forward, or the loss)
    in, out    shapes of the arrays in and out; in backward, "in" is the gradient
               arriving at the op's output and "out" the gradients it returns, one
               per input of its forward ("-" where none is needed)
    out bytes  bytes of the arrays the op returned: the new memory for its results
    saved      forward: bytes of the new arrays it keeps for backward (im2col
               columns, masks, normalized values); scratch freed on return, and
               arrays it keeps that are its inputs or output, are not counted
    mult-adds  products of a weight and an input (conv, linear, matmul)
    ms         the call's wall time; on a GPU the device is synchronised before
               and after each op, so this includes the device's work
    dev ops    device operations the call caused, shown on a GPU where something
               counts them (minicnn.backend.set_device_counter: the CuPy stand-in of
               the tests; real CuPy counts nothing)
"""
FACTORY_DEFAULTS = {"num_classes": 10, "stem": "cifar", "norm": None, "width": None}


# -- the network ----------------------------------------------------------------------------------
def load_callable(spec, option="--model", kind="FACTORY"):
    """The callable named by "MODULE:NAME"; ValueError with what to do when it cannot be found."""
    module_name, colon, name = spec.partition(":")
    if not colon or not module_name or not name:
        raise ValueError(f"{option} must be MODULE:{kind}, such as models.googlenet:GoogLeNet, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"{option} {spec}: cannot import {module_name} ({error}). The repository's models/ is "
                         "not installed with minicnn: run this from the repository root, or name a module "
                         "on your PYTHONPATH") from None
    function = getattr(module, name, None)
    if not callable(function):
        raise ValueError(f"{option} {spec}: {module_name} has no callable {name}")
    return function


def factory_arguments(factory, given):
    """The keyword arguments for ``factory``: each of FACTORY_DEFAULTS that it accepts, from
    ``given`` (the command line's, None where not given) or the default; ValueError when an
    option given explicitly has no parameter to go to."""
    parameters = inspect.signature(factory).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    arguments = {}
    for name, default in FACTORY_DEFAULTS.items():
        value = given.get(name)
        if takes_any or name in parameters:
            if value is not None or default is not None:
                arguments[name] = default if value is None else value
        elif value is not None:
            raise ValueError(f"--{name.replace('_', '-')}: the model factory {factory.__qualname__} "
                             f"takes no {name} argument")
    return arguments


def training_loss(loss, outputs, labels):
    """``loss(outputs, labels)`` (the caller's, from --loss), or without one the cross-entropy of the logits."""
    if loss is not None:
        return loss(outputs, labels)
    if isinstance(outputs, tuple):
        raise ValueError(f"the model returns {len(outputs)} outputs: name the loss that combines them with "
                         "--loss MODULE:FUNCTION")
    return F.cross_entropy(outputs, labels)


# -- formatting -------------------------------------------------------------------------------------
def shape_text(spec):
    """(2, 3, 32, 32) -> "2x3x32x32"; a 0-d array "()"; no array "-"."""
    if spec is None:
        return "-"
    return "x".join(map(str, spec.shape)) if spec.shape else "()"


def byte_text(count):
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} B"


def _table(header, rows, left):
    """Rows of strings as aligned columns: the first ``left`` columns left-aligned, the rest right."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]

    def line(cells):
        return "  ".join(f"{cell:<{w}}" if i < left else f"{cell:>{w}}"
                         for i, (cell, w) in enumerate(zip(cells, widths))).rstrip()
    return [line(header), "-" * len(line(header))] + [line(row) for row in rows]


def format_ops(ops, device_ops):
    """One line per op, in the order they ran."""
    header = ["#", "phase", "op", "module", "in", "out", "out bytes", "saved", "mult-adds", "ms"]
    rows = []
    for index, op in enumerate(ops, start=1):
        row = [str(index), op.phase, op.name, op.module or "", " ".join(map(shape_text, op.inputs)),
               " ".join(map(shape_text, op.outputs)), byte_text(op.output_bytes),
               byte_text(op.saved_bytes) if op.phase == "forward" else "", f"{op.multiply_adds:,}",
               f"{op.seconds * 1e3:.3f}"]
        rows.append(row + ([str(op.device_ops)] if device_ops else []))
    return _table(header + (["dev ops"] if device_ops else []), rows, left=6)


def summarize_by_op(ops):
    """{op name: dict of calls, forward/backward seconds, mult-adds, output and saved bytes, device ops},
    the ops in order of first appearance."""
    totals = {}
    for op in ops:
        entry = totals.setdefault(op.name, dict(calls=0, forward=0.0, backward=0.0, multiply_adds=0,
                                                output_bytes=0, saved_bytes=0, device_ops=0))
        entry["calls"] += op.phase == "forward"
        entry[op.phase] += op.seconds
        entry["multiply_adds"] += op.multiply_adds
        entry["output_bytes"] += op.output_bytes
        entry["saved_bytes"] += op.saved_bytes
        entry["device_ops"] += op.device_ops or 0
    return totals


def format_summary(ops, device_ops):
    """The totals by op type, the most time-consuming first, and a line for all ops."""
    totals = summarize_by_op(ops)
    everything = sum(entry["forward"] + entry["backward"] for entry in totals.values()) or 1.0
    header = ["op", "calls", "forward ms", "backward ms", "share", "mult-adds", "out bytes", "saved"]
    order = sorted(totals.items(), key=lambda item: -(item[1]["forward"] + item[1]["backward"]))
    all_ops = {key: sum(entry[key] for entry in totals.values()) for key in next(iter(totals.values()))}
    rows = []
    for name, entry in order + [("all ops", all_ops)]:
        row = [name, str(entry["calls"]), f"{entry['forward'] * 1e3:.2f}", f"{entry['backward'] * 1e3:.2f}",
               f"{(entry['forward'] + entry['backward']) / everything:.1%}", f"{entry['multiply_adds']:,}",
               byte_text(entry["output_bytes"]), byte_text(entry["saved_bytes"])]
        rows.append(row + ([str(entry["device_ops"])] if device_ops else []))
    return _table(header + (["dev ops"] if device_ops else []), rows, left=1)


# -- the command --------------------------------------------------------------------------------------
def _positive(kind, wanted):
    def convert(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not 0 < value < float("inf"):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value
    return convert


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m minicnn.trace",
        description="Print every op of one training step (forward, loss, backward) in order, with shapes, "
                    "bytes, multiply-adds and time, then totals by op type.",
        epilog=COLUMNS, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, metavar="MODULE:FACTORY",
                        help="the network's factory, imported by name (the repository's GoogLeNet: "
                             "models.googlenet:GoogLeNet)")
    parser.add_argument("--loss", metavar="MODULE:FUNCTION",
                        help="loss(outputs, labels), imported by name (default: the cross-entropy of the output; "
                             "GoogLeNet's, with its auxiliary heads: models.googlenet:googlenet_loss)")
    parser.add_argument("--width", type=_positive(float, "a number > 0"),
                        help="channel multiplier, passed to the factory (GoogLeNet's default: 1.0)")
    parser.add_argument("--norm", choices=("lrn", "bn"), help="passed to the factory (GoogLeNet's default: lrn)")
    parser.add_argument("--stem", choices=("cifar", "imagenet"),
                        help="passed to the factory if it takes one (default: cifar)")
    parser.add_argument("--num-classes", type=_positive(int, "a whole number > 0"),
                        help="passed to the factory if it takes it (default: 10)")
    parser.add_argument("--batch-size", type=_positive(int, "a whole number > 0"), default=2,
                        help="images in the step (default: 2)")
    parser.add_argument("--device", default="cpu", help="cpu, gpu or gpu:N (default: cpu)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the weights and the random images")
    parser.add_argument("--summary-only", action="store_true", help="print only the totals by op type")
    parser.add_argument("--graph", metavar="PATH",
                        help="also write the step's autograd graph: .dot (text), or .svg/.png/.pdf (needs Graphviz)")
    parser.add_argument("--collapse-depth", type=_positive(int, "a whole number > 0"),
                        help="with --graph: draw each module this many names deep as one node (1: top level)")
    return parser


def _draw(args, loss, model, ops):
    """Write --graph; returns an error message, or None."""
    dot = graph.to_dot(loss, params=model, trace=ops, collapse_depth=args.collapse_depth,
                       title=f"one training step of {args.model}")
    try:
        graph.render(dot, args.graph)
    except graph.GraphvizNotFoundError as error:
        fallback = args.graph.rsplit(".", 1)[0] + ".dot"
        graph.render(dot, fallback)
        return f"{error}\nwrote the DOT text to {fallback} instead"
    print(f"graph written to {args.graph}")
    return None


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.collapse_depth is not None and args.graph is None:
        parser.error("--collapse-depth goes with --graph")
    try:
        factory = load_callable(args.model)
        loss_function = load_callable(args.loss, "--loss", "FUNCTION") if args.loss else None
        kwargs = factory_arguments(factory, {"num_classes": args.num_classes, "stem": args.stem,
                                             "norm": args.norm, "width": args.width})
        device = backend.parse_device(args.device)
    except ValueError as error:
        parser.error(str(error))
    try:
        if device.kind == "gpu":
            backend.require_gpu(device.index)
        manual_seed(args.seed)
        model = factory(**kwargs).to(device).train()
    except (ValueError, TypeError, backend.DeviceUnavailableError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    rng = np.random.default_rng(args.seed)
    size = getattr(model, "input_size", 32)
    images = rng.standard_normal((args.batch_size, 3, size, size)).astype(np.float32)
    x = Tensor(backend.to_device(images, device))
    optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    synchronize = (lambda: backend.synchronize(device)) if device.kind == "gpu" else None
    labels = None

    def step(ops=None):
        """Forward, loss, backward; returns (a problem drawing --graph or None, seconds spent drawing)."""
        nonlocal labels
        outputs = model(x)
        if labels is None:
            classes = (outputs[0] if isinstance(outputs, tuple) else outputs).shape[-1]
            labels = backend.to_device(rng.integers(0, classes, args.batch_size), device)
        loss = training_loss(loss_function, outputs, labels)
        problem, drawing = None, time.perf_counter()
        if ops is not None and args.graph:  # before backward(), which frees the graph
            problem = _draw(args, loss, model, ops)
        drawing = time.perf_counter() - drawing
        optimizer.zero_grad()
        loss.backward()
        return problem, drawing

    try:
        step()  # untraced: compiles the kernels
    except ValueError as error:  # a model with several outputs and no --loss
        print(f"error: {error}", file=sys.stderr)
        return 1
    optimizer.step()
    arguments = ", ".join(f"{key}={value!r}" for key, value in kwargs.items())
    print(f"{args.model}({arguments}): one training step on a batch of {args.batch_size} images "
          f"(3, {size}, {size}), {device}")
    counted = device.kind == "gpu" and backend.device_operation_count() is not None  # CPU ops launch nothing
    count_before = backend.device_operation_count()
    if synchronize:
        synchronize()
    started = time.perf_counter()
    with autograd.trace(model, synchronize) as ops:
        problem, drawing_seconds = step(ops)
    if synchronize:
        synchronize()
    step_seconds = time.perf_counter() - started - drawing_seconds
    step_device_ops = backend.device_operation_count() - count_before if counted else None
    optimizer_started, optimizer_count = time.perf_counter(), backend.device_operation_count()
    optimizer.step()
    if synchronize:
        synchronize()
    optimizer_seconds = time.perf_counter() - optimizer_started
    if not args.summary_only:
        print("\n".join(format_ops(ops, counted)))
        print()
    print("\n".join(format_summary(ops, counted)))
    op_seconds = sum(op.seconds for op in ops)
    rest = step_seconds - op_seconds - ops.bookkeeping_seconds
    print(f"\nforward, loss and backward: {step_seconds * 1e3:.1f} ms traced: {op_seconds * 1e3:.1f} ms in the "
          f"{len(ops)} op calls, {rest * 1e3:.1f} ms around them (recording the graph, summing gradients, "
          f"Python), {ops.bookkeeping_seconds * 1e3:.1f} ms the trace's own bookkeeping")
    if counted:
        outside = step_device_ops - sum(op.device_ops for op in ops)
        print(f"device operations: {step_device_ops} in the step, {outside} of them outside the ops "
              f"(gradient sums, ...); the SGD step: {backend.device_operation_count() - optimizer_count}")
    print(f"SGD step (not an op of the graph): {optimizer_seconds * 1e3:.1f} ms")
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
