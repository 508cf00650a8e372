"""Draw the tour's figures into docs/figures/ (needs matplotlib: pip install -e ".[plot]").

    python docs/figures.py                      # every figure it can draw here
    python docs/figures.py --run runs/DIR       # ... with the training curves of that run
    python docs/figures.py --only im2col pooling
    python docs/figures.py --only learned --checkpoint runs/DIR/checkpoint.npz --data-dir DATA

Every figure is drawn from the code it illustrates, not by hand:

    im2col.png     minicnn.functional.conv.im2col_strided on a 4x4 input
    pooling.png    minicnn.functional.pooling's output-size rule and windows,
                   6x6 input, 3x3 windows, stride 2, padding 1, ceil mode
    googlenet.png  the CIFAR GoogLeNet of models/googlenet.py, walked as a
                   model object: one forward pass records which modules run,
                   in which order, and their output shapes
    training.png   loss, accuracy and learning rate per epoch from a run's
                   metrics.jsonl (python -m train.cifar writes it)
    graph-*.png    autograd graphs drawn by minicnn.graph and Graphviz's `dot`
                   (chapter 8): the TinyNet of chapter 8's first code block, run
                   from the page itself; inception block 3a; the whole CIFAR
                   GoogLeNet collapsed to its top-level modules
    learned/       what a trained network learned: the PNGs of
                   python -m train.cifar --evaluate CHECKPOINT --plots, and the
                   evaluation it printed (evaluation.txt)

Figures that need what is missing here (Graphviz's `dot`; a checkpoint) are
skipped with a note, unless named with --only.

``--run DIR`` also copies DIR/metrics.jsonl to docs/figures/training-run.jsonl,
so the figure can be redrawn, and the numbers quoted in chapter 6 checked,
without the run folder (runs/ is not in git). Each PNG is written to a
temporary file and renamed, so a failed run never leaves half a figure.
"""
import argparse
import contextlib
import io
import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
OUT = DOCS / "figures"
RUN_COPY = OUT / "training-run.jsonl"
LEARNED = OUT / "learned"
CHAPTER_8 = DOCS / "08-watching-the-engine.md"
sys.path.insert(0, str(ROOT))  # models/ is not installed: run from the repository, like python -m

PALETTE = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c"]


def _new_figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def save(figure, name, dpi=90):
    """Write ``figure`` to docs/figures/NAME atomically (temporary file, then rename)."""
    from train.files import atomic_write
    OUT.mkdir(exist_ok=True)
    with atomic_write(OUT / name, "wb") as file:
        figure.savefig(file, format="png", dpi=dpi)
    print(f"wrote {OUT / name} ({(OUT / name).stat().st_size // 1024} KB)")


# -- im2col ------------------------------------------------------------------------------------
def draw_im2col():
    from matplotlib.patches import Rectangle

    from minicnn.functional.conv import conv_output_size, im2col_strided

    h, k = 4, 3
    x = np.arange(1, h * h + 1, dtype=np.float64).reshape(1, 1, h, h)
    cols = im2col_strided(x, (k, k), (1, 1), (0, 0))           # (N*OH*OW, kh*kw*C) = (4, 9)
    out = conv_output_size(h, k, 1, 0)
    figure = _new_figure(9.0, 4.0)
    left, right = figure.add_axes([0.03, 0.12, 0.33, 0.76]), figure.add_axes([0.47, 0.10, 0.52, 0.80])

    left.set_title("input x (1, 1, 4, 4) and its four 3×3 patches", fontsize=10)
    for r in range(h):
        for c in range(h):
            left.add_patch(Rectangle((c, r), 1, 1, facecolor="white", edgecolor="#999999"))
            left.text(c + 0.5, r + 0.5, f"{x[0, 0, r, c]:.0f}", ha="center", va="center", fontsize=11)
    for index in range(out * out):
        r, c = divmod(index, out)
        inset = 0.06 + 0.07 * index
        left.add_patch(Rectangle((c + inset, r + inset), k - 2 * inset, k - 2 * inset, fill=False,
                                 edgecolor=PALETTE[index], linewidth=2.5))
    left.set_xlim(-0.1, h + 0.1)
    left.set_ylim(h + 0.1, -0.1)
    left.set_aspect("equal")
    left.axis("off")

    rows, columns = cols.shape
    right.set_title(f"cols = im2col(x): ({rows}, {columns}) = (N·OH·OW, kh·kw·C)", fontsize=10)
    for r in range(rows):
        for c in range(columns):
            right.add_patch(Rectangle((c, r), 1, 1, facecolor=PALETTE[r], alpha=0.25, edgecolor="#999999"))
            right.text(c + 0.5, r + 0.5, f"{cols[r, c]:.0f}", ha="center", va="center", fontsize=10)
        right.text(-0.2, r + 0.5, "{},{}".format(*divmod(r, out)), ha="right", va="center", fontsize=9,
                   color=PALETTE[r], fontweight="bold")
    right.text(-1.3, rows / 2, "output position\n(row, col)", ha="center", va="center", fontsize=8, rotation=90)
    for c in range(columns):
        right.text(c + 0.5, rows + 0.45, "{},{}".format(*divmod(c, k)), ha="center", va="center", fontsize=8)
    right.text(columns / 2, rows + 1.1, "kernel tap (i, j)", ha="center", va="center", fontsize=8)
    right.set_xlim(-1.8, columns + 0.1)
    right.set_ylim(rows + 1.4, -0.1)
    right.set_aspect("equal")
    right.axis("off")
    figure.text(0.40, 0.5, "→", fontsize=30, ha="center", va="center")
    figure.text(0.19, 0.05, "each patch, read row by row, becomes one row", ha="center", fontsize=9)
    return figure


# -- pooling -----------------------------------------------------------------------------------
def draw_pooling():
    from matplotlib.patches import Rectangle

    from minicnn.geometry import pool_geometry, pool_output_size

    h, k, s, p = 6, 3, 2, 1
    floor, ceil = pool_output_size(h, k, s, p, False), pool_output_size(h, k, s, p, True)
    (out, _), (padded, _) = pool_geometry((1, 1, h, h), (k, k), (s, s), (p, p), True)
    assert out == ceil
    figure = _new_figure(10.0, 4.9)
    grid, line = figure.add_axes([0.02, 0.04, 0.45, 0.84]), figure.add_axes([0.53, 0.2, 0.45, 0.62])

    grid.set_title(f"{h}×{h} input, {k}×{k} windows, stride {s}, padding {p}, ceil mode: "
                   f"{out}×{out} out", fontsize=10)
    for r in range(padded):
        for c in range(padded):
            row, col = r - p, c - p  # input coordinates
            inside = 0 <= row < h and 0 <= col < h
            padding = not inside and -p <= row < h + p and -p <= col < h + p
            face = "white" if inside else "#d9d9d9" if padding else "#fbe3c9"
            grid.add_patch(Rectangle((c, r), 1, 1, facecolor=face, edgecolor="#999999",
                                     hatch=None if inside or padding else "//"))
            if padding:
                grid.text(c + 0.5, r + 0.5, "−∞", ha="center", va="center", fontsize=7, color="#777777")
    for (i, j), color in [((0, 0), PALETTE[0]), ((1, 2), PALETTE[2]), ((out - 1, out - 1), PALETTE[3])]:
        inset = 0.08
        grid.add_patch(Rectangle((j * s + inset, i * s + inset), k - 2 * inset, k - 2 * inset, fill=False,
                                 edgecolor=color, linewidth=2.5))
        grid.text(j * s + k / 2, i * s + k - 0.25, f"out ({i}, {j})", ha="center", va="bottom", fontsize=8,
                  color=color, fontweight="bold")
    grid.set_xlim(-0.1, padded + 0.1)
    grid.set_ylim(padded + 0.1, -0.1)
    grid.set_aspect("equal")
    grid.axis("off")
    legend = [("white", "input"), ("#d9d9d9", "padding (−∞ for max, 0 for average)"),
              ("#fbe3c9", "cells only ceil mode adds")]
    for index, (face, label) in enumerate(legend):
        line.add_patch(Rectangle((0, -4.0 + 0.7 * index), 0.45, 0.45, facecolor=face, edgecolor="#999999",
                                 hatch="//" if index == 2 else None))
        line.text(0.7, -3.78 + 0.7 * index, label, va="center", fontsize=9)

    line.set_title("along one axis: where the windows start", fontsize=10)
    for cell in range(-p, padded - p):
        inside = 0 <= cell < h
        face = "white" if inside else "#d9d9d9" if -p <= cell < h + p else "#fbe3c9"
        line.add_patch(Rectangle((cell + p, 0), 1, 0.8, facecolor=face, edgecolor="#999999",
                                 hatch=None if face != "#fbe3c9" else "//"))
        line.text(cell + p + 0.5, 0.4, str(cell), ha="center", va="center", fontsize=9)
    for index in range(out):
        start = index * s
        y = 1.2 + 0.55 * index
        color = PALETTE[3] if index >= floor else PALETTE[0]
        line.plot([start + 0.1, start + k - 0.1], [y, y], color=color, linewidth=4, solid_capstyle="butt")
        line.text(start + k + 0.1, y, f"window {index}" + (" (ceil only)" if index >= floor else ""),
                  va="center", fontsize=8, color=color)
    line.text(0, 3.5, f"floor: ({h} + 2·{p} − {k}) // {s} + 1 = {floor}      "
                      f"ceil: ⌈({h} + 2·{p} − {k}) / {s}⌉ + 1 = {ceil}", fontsize=9)
    line.text(0, 4.0, f"window {ceil - 1} starts at cell {(ceil - 1) * s - p} < H = {h}, inside the input: kept", fontsize=9)
    line.set_xlim(-0.2, padded + 3.2)
    line.set_ylim(4.4, -4.2)
    line.axis("off")
    return figure


# -- GoogLeNet ---------------------------------------------------------------------------------
def _layer_label(module):
    """A short label for one leaf layer, read from its attributes."""
    from minicnn import nn
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        stride = f"/{module.stride[0]}" if module.stride != (1, 1) else ""
        return f"{kh}×{kw}{stride} conv {module.out_channels}"
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        kind = "max" if isinstance(module, nn.MaxPool2d) else "avg"
        stride = module.stride if isinstance(module.stride, int) else module.stride[0]
        size = module.kernel_size if isinstance(module.kernel_size, int) else module.kernel_size[0]
        return f"{size}×{size}/{stride} {kind} pool"
    if isinstance(module, nn.AdaptiveAvgPool2d):
        return "global avg pool"
    if isinstance(module, nn.LocalResponseNorm):
        return "LRN"
    if isinstance(module, nn.Linear):
        return f"linear {module.out_features}"
    if isinstance(module, nn.Dropout):
        return f"dropout {module.p:g}"
    return None  # ReLU, batch norm, flatten: implied


def _chain_label(module):
    labels = [_layer_label(m) for m in module.modules() if not m.children()]
    return " → ".join(label for label in labels if label)


def googlenet_layout(model, input_size=32):
    """The model as the diagram shows it: main-path stages in call order, and the aux heads.

    Returns:
        (stages, heads): stages is a list of dicts (name, shape, params, label or
        branches); heads maps an aux head's name to the stage it reads from.
    """
    from models.summary import summarize
    from minicnn import nn

    rows = summarize(model, (1, 3, input_size, input_size))
    modules = dict(model.named_modules())
    stages, heads = [], {}
    for row in rows:
        if row.depth != 0:
            continue
        module = modules[row.name]
        entry = {"name": row.name, "shape": row.output_shape[1:], "params": row.params}
        children = module.named_children()
        branches = [child for name, child in children if name.startswith("branch")]
        if branches:
            entry["branches"] = [_chain_label(branch) for branch in branches]
        elif isinstance(module, nn.Sequential) or children:
            entry["label"] = _chain_label(module)
        else:
            entry["label"] = _layer_label(module) or type(module).__name__.lower()
        if row.name.startswith("aux"):
            heads[row.name] = (entry, stages[-1]["name"])  # an aux head reads the block that ran just before it
        elif _layer_label(module) is not None or children or branches:
            stages.append(entry)
    return stages, heads


def draw_googlenet():
    from matplotlib.patches import FancyBboxPatch

    from models.googlenet import GoogLeNet

    model = GoogLeNet(num_classes=10, stem="cifar")
    stages, heads = googlenet_layout(model)
    height = 1.0 + sum(1.5 if "branches" in stage else 0.75 for stage in stages)
    figure = _new_figure(10.5, height * 0.62)
    axes = figure.add_axes([0.0, 0.0, 1.0, 1.0])
    axes.set_xlim(0, 15)
    axes.set_ylim(height, 0)
    axes.axis("off")
    axes.text(0.2, 0.45, "GoogLeNet, CIFAR stem (models/googlenet.py), drawn from the model object; "
                         "shapes (C, H, W) for a 32×32 input", fontsize=10, va="center")

    def box(x, y, w, h, text, face, size=8.5, bold=False):
        axes.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                      facecolor=face, edgecolor="#555555", linewidth=0.8))
        axes.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size,
                  fontweight="bold" if bold else "normal")

    y, centres = 1.0, {}
    for stage in stages:
        shape = "×".join(str(v) for v in stage["shape"])
        if "branches" in stage:
            box(0.2, y, 10.3, 1.3, "", "#eef3fb")
            axes.text(0.35, y + 0.18, f"{stage['name']}: 4 branches, concatenated  →  {shape}   "
                                      f"({stage['params']:,} params)",
                      fontsize=8.5, va="center", fontweight="bold")
            for index, label in enumerate(stage["branches"]):
                box(0.35 + index * 2.55, y + 0.42, 2.4, 0.72, label.replace(" → ", "\n→ ", 1),
                    PALETTE[index] + "40", size=7.5)
            centres[stage["name"]] = y + 0.65
            y += 1.5
        else:
            box(0.2, y, 10.3, 0.58, f"{stage['name']}: {stage['label']}  →  {shape}", "#f4f4f4")
            centres[stage["name"]] = y + 0.29
            y += 0.75
    for name, (entry, source) in heads.items():
        top = centres[source] - 0.45
        box(11.0, top, 3.8, 0.9, f"{name} (training only)\n{entry['label'].replace(' → ', ' → ')}",
            "#fdecea", size=7)
        axes.annotate("", xy=(11.0, top + 0.45), xytext=(10.5, centres[source]),
                      arrowprops=dict(arrowstyle="->", color=PALETTE[3], linewidth=1.5))
        axes.text(12.9, top + 1.05, "loss weight 0.3", fontsize=7.5, ha="center", va="center", color=PALETTE[3])
    _wrap_long_labels(axes)
    return figure


def _wrap_long_labels(axes):
    """Break the aux heads' long chains of layers over a few lines."""
    for text in axes.texts:
        content = text.get_text()
        if content.count(" → ") > 2 and "\n" in content:
            head, chain = content.split("\n", 1)
            parts = chain.split(" → ")
            lines = [" → ".join(parts[i:i + 3]) for i in range(0, len(parts), 3)]
            text.set_text(head + "\n" + "\n→ ".join(lines))


# -- training curves ---------------------------------------------------------------------------
def read_metrics(path):
    """The rows of a metrics.jsonl file (one JSON object per epoch)."""
    with open(path, encoding="utf-8") as file:
        return [json.loads(line) for line in file if line.strip()]


def draw_training(rows):
    epochs = [row["epoch"] for row in rows]
    figure = _new_figure(11.0, 3.4)
    loss, accuracy, lr = figure.subplots(1, 3)
    for split, style in (("train", "o-"), ("test", "s-")):
        loss.plot(epochs, [row[f"{split}_loss"] for row in rows], style, label=split)
        accuracy.plot(epochs, [100 * row[f"{split}_acc"] for row in rows], style, label=split)
    lr.plot(epochs, [row["lr"] for row in rows], "d-", color=PALETTE[4])
    losses = [row[f"{split}_loss"] for row in rows for split in ("train", "test")]
    if max(losses) > 10 * min(losses):  # an early spike would flatten the rest of the curve
        loss.set_yscale("log")
    loss.axhline(np.log(10), color="#888888", linestyle="--", linewidth=1, label="chance (ln 10)")
    accuracy.axhline(10, color="#888888", linestyle="--", linewidth=1, label="chance (10%)")
    accuracy.set_ylim(bottom=0)
    loss.set(xlabel="epoch", ylabel="cross-entropy (main head)", title="loss")
    accuracy.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    lr.set(xlabel="epoch", ylabel="learning rate", title="learning rate (end of epoch)")
    for axes in (loss, accuracy, lr):
        axes.grid(alpha=0.3)
        axes.set_xticks(epochs)
    loss.legend()
    accuracy.legend()
    figure.tight_layout()
    return figure


# -- autograd graphs (chapter 8) ---------------------------------------------------------------------
def chapter_namespace(page=CHAPTER_8):
    """The names defined by the first python block of ``page`` (its TinyNet, net, x, labels)."""
    block = re.search(r"^```python\n(.*?)^```", page.read_text(encoding="utf-8"), re.S | re.M).group(1)
    namespace = {"__name__": "__chapter__"}
    exec(compile(block, str(page), "exec"), namespace)  # noqa: S102 (the tour's own code)
    return namespace


def traced_loss(model, x, labels):
    """(loss, trace) of one training-mode forward pass of ``model``, with the loss GoogLeNet trains on."""
    import minicnn.functional as F
    from minicnn import autograd

    with autograd.trace(model) as ops:
        outputs = model(x)
        if isinstance(outputs, tuple):
            from models.googlenet import googlenet_loss
            loss = googlenet_loss(outputs, labels)
        else:
            loss = F.cross_entropy(outputs, labels)
    return loss, ops


def graph_dots():
    """(file name, DOT text) of each graph figure."""
    import minicnn
    from minicnn import Tensor, graph
    from models.googlenet import INCEPTION_TABLE, GoogLeNet, Inception

    tiny = chapter_namespace()
    loss, ops = traced_loss(tiny["net"], tiny["x"], tiny["labels"])
    yield "graph-tinynet.png", graph.to_dot(loss, params=tiny["net"], trace=ops,
                                            title="TinyNet of chapter 8: forward pass and loss")
    minicnn.manual_seed(0)
    block = Inception(192, INCEPTION_TABLE["3a"])
    x = Tensor(np.random.default_rng(0).standard_normal((1, 192, 8, 8)).astype(np.float32),
               requires_grad=True)  # as inside a network: else the pool branch, on a constant, is not recorded
    with minicnn.autograd.trace(block) as ops:
        y = block(x)
        loss = (y * y).mean()
    yield "graph-inception.png", graph.to_dot(loss, params=block, trace=ops,
                                              title="inception block 3a (models/googlenet.py), loss = mean(y²)")
    model = GoogLeNet(num_classes=10, stem="cifar", norm="bn")
    x = Tensor(np.zeros((1, 3, 32, 32), np.float32))
    loss, ops = traced_loss(model, x, np.array([3]))
    yield "graph-googlenet.png", graph.to_dot(loss, params=model, trace=ops, collapse_depth=1,
                                              title="GoogLeNet, CIFAR stem, training: collapse_depth=1")


def draw_graphs():
    from minicnn import graph
    OUT.mkdir(exist_ok=True)
    for name, dot in graph_dots():
        graph.render(dot, OUT / name)
        print(f"wrote {OUT / name} ({(OUT / name).stat().st_size // 1024} KB)")


# -- what a trained network learned (chapter 8) ------------------------------------------------------
def draw_learned(checkpoint, data_dir):
    """Run python -m train.cifar --evaluate CHECKPOINT --plots into docs/figures/learned/, keeping what it printed."""
    from train import cifar
    LEARNED.mkdir(parents=True, exist_ok=True)
    printed = io.StringIO()
    argv = ["--evaluate", str(checkpoint), "--data-dir", str(data_dir), "--no-download", "--device", "cpu",
            "--plots", str(LEARNED)]
    with contextlib.redirect_stdout(printed):
        code = cifar.main(argv)
    if code != 0:
        raise SystemExit(f"error: python -m train.cifar {' '.join(argv)} failed (exit {code})")
    from train.files import atomic_write
    command = "$ python -m train.cifar " + " ".join(argv) + "\n"
    with atomic_write(LEARNED / "evaluation.txt", "w") as file:
        file.write((command + printed.getvalue()).replace(str(LEARNED), "docs/figures/learned"))
    print(f"wrote {LEARNED}: " + ", ".join(sorted(path.name for path in LEARNED.iterdir())))


FIGURES = ("im2col", "pooling", "googlenet", "training", "graphs", "learned")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python docs/figures.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, metavar="DIR",
                        help="a training run folder (with metrics.jsonl) for training.png; without it the "
                             f"copy in {RUN_COPY.relative_to(ROOT)} is used, if there is one")
    parser.add_argument("--checkpoint", type=Path, help="a trained checkpoint, for the learned/ figures")
    parser.add_argument("--data-dir", type=Path, default=Path("data"),
                        help="the folder holding cifar-10-batches-py/, for the learned/ figures (default: data)")
    parser.add_argument("--only", nargs="+", choices=FIGURES, help="draw only these figures")
    args = parser.parse_args(argv)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        parser.exit(2, 'error: the figures need matplotlib: python -m pip install -e ".[plot]"\n')
    wanted = args.only or list(FIGURES)
    missing = {"graphs": None if shutil.which("dot") else "Graphviz's `dot` is not installed (apt-get install "
                                                             "graphviz, brew install graphviz, conda install graphviz)",
               "learned": None if args.checkpoint else "it needs --checkpoint runs/DIR/checkpoint.npz"}
    for name in wanted:
        if missing.get(name):
            if args.only:
                parser.exit(2, f"error: {name}: {missing[name]}\n")
            print(f"skipped {name}: {missing[name]}")
    wanted = [name for name in wanted if not missing.get(name)]
    if "im2col" in wanted:
        save(draw_im2col(), "im2col.png")
    if "pooling" in wanted:
        save(draw_pooling(), "pooling.png")
    if "googlenet" in wanted:
        save(draw_googlenet(), "googlenet.png", dpi=80)
    if "training" in wanted:
        source = args.run / "metrics.jsonl" if args.run else RUN_COPY
        if not source.is_file():
            parser.exit(2, f"error: no {source}; train first (python -m train.cifar ... --out runs/DIR) "
                           "and pass --run runs/DIR\n")
        rows = read_metrics(source)
        save(draw_training(rows), "training.png")
        if args.run:
            from train.files import atomic_write
            with atomic_write(RUN_COPY, "wb") as file:
                file.write(source.read_bytes())
            print(f"wrote {RUN_COPY} (a copy of {source})")
    if "graphs" in wanted:
        draw_graphs()
    if "learned" in wanted:
        draw_learned(args.checkpoint, args.data_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
