"""A model's layer table, measured on the real modules (as Keras' ``summary`` or torchinfo print it).

    python -m models.summary [googlenet] [--stem cifar] [--norm bn] [--num-classes 10] [--width W]

With no arguments: the paper's GoogLeNet (224x224 inputs, LRN, 1000 classes).

One forward pass of a batch of 1 runs through the model while every sub-module
records its output; each row shows a module that ran, in the order it was
called, indented by depth: dotted name (type), output shape, parameters and
multiply-adds. A container's row (a Sequential, an inception block) gives the
totals of the layers inside it, so its numbers read like a row of the paper's
Table 1; the totals under the table count every layer once.

Multiply-adds count what the paper's Table 1 counts as "ops": the products of
a weight with an input in convolutions and linear layers (per image); biases,
pooling, normalisation and ReLU are not counted.

:func:`record_outputs` sees the calls through forward hooks (PyTorch's
``register_forward_pre_hook`` and ``register_forward_hook``, see minicnn.hooks):
a pre-hook opens a record when a module starts, a hook closes it with the
output when it returns, and the handles are removed afterwards.
"""
import argparse
import contextlib
import sys
from dataclasses import dataclass, field

import numpy as np

import minicnn
from minicnn import backend, nn

from .googlenet import NORMS, STEMS, GoogLeNet


# -- Recording what each module returns -----------------------------------------------------
@dataclass
class Record:
    """One call of one module: its dotted name, the module, and what it returned."""

    name: str
    module: nn.Module
    output: object = None
    inner: list = field(default_factory=list)  # the records of calls made inside this one


@contextlib.contextmanager
def record_outputs(model):
    """Within the ``with`` block, every call of a sub-module of ``model`` is recorded.

    Yields:
        a list of :class:`Record`, filled as the model runs: the outermost calls,
        in call order, each holding the calls made inside it in ``inner``.
    On exit the hooks are removed.
    """
    records, open_calls, handles = [], [], []

    def opened(name):
        def pre_hook(module, args):
            record = Record(name, module)
            (open_calls[-1].inner if open_calls else records).append(record)
            open_calls.append(record)
        return pre_hook

    def closed(module, args, output):
        open_calls.pop().output = output

    try:
        for name, module in model.named_modules():
            if module is not model:
                handles.append(module.register_forward_pre_hook(opened(name)))
                handles.append(module.register_forward_hook(closed))
        yield records
    finally:
        for handle in handles:
            handle.remove()


def flatten_records(records, depth=0):
    """(depth, Record) for every record, outer calls before the calls inside them."""
    for record in records:
        yield depth, record
        yield from flatten_records(record.inner, depth + 1)


# -- The table ------------------------------------------------------------------------------
@dataclass
class Row:
    name: str
    type_name: str
    depth: int
    output_shape: tuple
    params: int
    mult_adds: int


def layer_mult_adds(module, output):
    """Weight-times-input products of one layer call (0 for layers without weights)."""
    if isinstance(module, nn.Conv2d):  # each output value: in_channels * kh * kw products
        return output.numel() * module.in_channels * module.kernel_size[0] * module.kernel_size[1]
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    return 0


def _row(depth, record):
    leaves = [r for _, r in flatten_records([record]) if next(r.module.children(), None) is None]
    shape = tuple(record.output.shape) if hasattr(record.output, "shape") else ()
    return Row(record.name, type(record.module).__name__, depth, shape,
               nn.count_parameters(record.module), sum(layer_mult_adds(r.module, r.output) for r in leaves))


@contextlib.contextmanager
def _every_path_deterministic(model):
    """Containers in training mode (so training-only paths such as aux heads run), layers in eval.

    Training mode decides *which* modules run in a container's forward, but *how*
    a layer computes in dropout and batch norm; in eval mode those layers are
    deterministic and leave the running statistics alone.
    """
    modes = [(module, module.training) for module in model.modules()]
    for module in model.modules():
        module.training = next(module.children(), None) is not None
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def summarize(model, input_shape):
    """Run one forward pass of zeros of ``input_shape`` and return a :class:`Row` per module call.

    The pass runs without gradients, with every path the model takes in
    training (its auxiliary heads, say) but deterministic layers, and leaves
    the model as it was.
    """
    first = next(model.parameters())
    x = minicnn.Tensor(backend.to_device(np.zeros(input_shape, first.dtype), backend.device_of(first.array)))
    with minicnn.no_grad(), _every_path_deterministic(model), record_outputs(model) as records:
        model(x)
    return [_row(depth, record) for depth, record in flatten_records(records)]


def format_summary(model, rows, title):
    """The table and its totals as text; containers' rows give the totals of their layers."""
    names = ["  " * row.depth + f"{row.name} ({row.type_name})" for row in rows]
    shapes = [str(row.output_shape) for row in rows]
    name_width = max(len("Layer (type)"), *map(len, names)) + 2
    shape_width = max(len("Output shape"), *map(len, shapes)) + 2
    header = f"{'Layer (type)':<{name_width}}{'Output shape':<{shape_width}}{'Param #':>12}{'Mult-adds':>17}"
    rule = "=" * len(header)
    lines = [title, rule, header, rule]
    for name, shape, row in zip(names, shapes, rows):
        lines.append(f"{name:<{name_width}}{shape:<{shape_width}}{row.params:>12,}{row.mult_adds:>17,}")
    top = [row for row in rows if row.depth == 0]  # every layer call lies inside exactly one of these
    aux_params = sum(p.numel() for name, p in model.named_parameters() if "aux" in name)
    aux_mult_adds = sum(row.mult_adds for row in top if "aux" in row.name)
    total_params = nn.count_parameters(model)
    total_mult_adds = sum(row.mult_adds for row in top)
    buffers = sum(b.numel() for b in model.buffers())
    lines += [rule,
              f"Total params: {total_params:,}"
              + (f" ({total_params - aux_params:,} without the auxiliary heads)" if aux_params else ""),
              f"Buffers (saved, not trained): {buffers:,}",
              f"Mult-adds per image: {total_mult_adds - aux_mult_adds:,} in evaluation"
              + (f", {total_mult_adds:,} in training with the auxiliary heads" if aux_mult_adds else ""),
              rule]
    return "\n".join(lines)


# -- Command line ---------------------------------------------------------------------------
def _number(kind, test, wanted):
    """An argparse ``type``: converts with ``kind``, rejects values failing ``test``."""
    def convert(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not test(value):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}")
        return value
    return convert


_positive_int = _number(int, lambda v: v >= 1, "an integer >= 1")
_non_negative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
_positive_float = _number(float, lambda v: 0 < v < float("inf"), "a finite number > 0")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m models.summary",
        description="Print a model's layers with output shapes, parameters and multiply-adds, "
                    "measured by one forward pass of a batch of 1.")
    parser.add_argument("model", nargs="?", choices=["googlenet"], default="googlenet",
                        help="the network to summarise (default: googlenet)")
    parser.add_argument("--stem", choices=STEMS, default="imagenet",
                        help="imagenet: 224x224 inputs (the paper); cifar: 32x32 inputs (default: imagenet)")
    parser.add_argument("--norm", choices=NORMS, default="lrn",
                        help="lrn: the paper's; bn: batch norm after every convolution (default: lrn)")
    parser.add_argument("--num-classes", type=_positive_int, default=None,
                        help="classifier outputs (default: 1000 for the imagenet stem, 10 for cifar)")
    parser.add_argument("--width", type=_positive_float, default=1.0,
                        help="multiplier of every channel count (default: 1.0)")
    parser.add_argument("--no-aux", action="store_true", help="build without the auxiliary heads")
    parser.add_argument("--depth", type=_non_negative_int, default=None,
                        help="show rows nested at most this deep (0: top-level modules only; default: all)")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    num_classes = args.num_classes or (1000 if args.stem == "imagenet" else 10)
    model = GoogLeNet(num_classes=num_classes, stem=args.stem, aux=not args.no_aux, norm=args.norm,
                      width=args.width)
    rows = summarize(model, (1, 3, model.input_size, model.input_size))
    if args.depth is not None:
        shown = [row for row in rows if row.depth <= args.depth]
    else:
        shown = rows
    title = (f"GoogLeNet(num_classes={num_classes}, stem={args.stem!r}, aux={not args.no_aux}, "
             f"norm={args.norm!r}, width={args.width:g}), input (1, 3, {model.input_size}, {model.input_size})")
    print(format_summary(model, shown, title))
    return 0


if __name__ == "__main__":
    sys.exit(main())
