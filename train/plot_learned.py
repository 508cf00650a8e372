"""Pictures of what a trained network learned (``python -m train.cifar --evaluate CKPT --plots``).

    filters.png         the first convolution's filters, one small image each
    feature-maps.png    one test image, and the most active channels of the outputs
                        of a few modules (the stem, an inception block) for it,
                        caught with forward hooks
    class-accuracy.png  accuracy per class, from the confusion matrix
    confusion.png       the confusion matrix: rows the true class, columns the predicted

Drawn with matplotlib's object API (no pyplot, no display) and written
atomically, like ``curves.png`` (:mod:`train.plot`). Device arrays are copied to
the host with ``minicnn.backend.as_numpy``.
"""
import math
import os

import numpy as np

import minicnn
from minicnn import Tensor, backend, nn

from .files import atomic_write

FILES = ("filters.png", "feature-maps.png", "class-accuracy.png", "confusion.png")
MAPS_PER_MODULE = 8


def matplotlib_available():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path):
    with atomic_write(path, "wb") as file:
        figure.savefig(file, format="png", dpi=100)
    return path


def _stretch(array):
    """Values scaled to 0..1 (a constant array becomes 0.5)."""
    low, high = array.min(), array.max()
    return np.full_like(array, 0.5) if high == low else (array - low) / (high - low)


def first_conv_weight(model):
    """The weight (O, C, kh, kw) of the first Conv2d of ``model``, on the host."""
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None:
        raise ValueError("the model has no Conv2d layer to show filters of")
    return backend.as_numpy(conv.weight.array).astype(np.float32)


def draw_filters(weight):
    """A grid of the filters of ``weight`` (O, C, kh, kw): RGB when C is 3, else the mean over C;
    each stretched to its own value range, so the pattern shows, not the size."""
    count = weight.shape[0]
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    figure = _figure(1.0 + 0.6 * columns, 0.8 + 0.6 * rows)
    figure.suptitle(f"first convolution: {count} filters {weight.shape[2]}×{weight.shape[3]} "
                    f"over {weight.shape[1]} channels", fontsize=10)
    for index, axes in enumerate(figure.subplots(rows, columns, squeeze=False).ravel()):
        axes.axis("off")
        if index < count:
            kernel = weight[index]
            picture = kernel.transpose(1, 2, 0) if kernel.shape[0] == 3 else kernel.mean(axis=0)
            axes.imshow(_stretch(picture), cmap=None if kernel.shape[0] == 3 else "gray", interpolation="nearest")
    return figure


def capture_outputs(model, image, modules):
    """Outputs of ``modules`` ((name, Module) pairs inside ``model``) for one ``image`` (C, H, W), in eval mode.

    Returns:
        dict name -> array (channels, H, W) on the host.
    """
    caught, handles = {}, []
    for name, module in modules:
        handles.append(module.register_forward_hook(
            lambda module, args, output, name=name: caught.__setitem__(name, backend.as_numpy(output.array[0]))))
    was_training = model.training
    model.eval()
    try:
        with minicnn.no_grad():
            model(Tensor(image[None]))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return caught


def draw_feature_maps(picture, maps, title, per_module=MAPS_PER_MODULE):
    """The input ``picture`` (H, W, 3) uint8, then per module the ``per_module`` channels with the
    highest mean activation (each stretched to its own range)."""
    figure = _figure(1.6 + 1.2 * per_module, 1.0 + 1.3 * len(maps))
    figure.suptitle(title, fontsize=10)
    grid = figure.subplots(len(maps), per_module + 1, squeeze=False)
    for row, (name, output) in zip(grid, maps.items()):
        row[0].imshow(picture, interpolation="nearest")
        row[0].set_title("input", fontsize=8)
        strongest = np.argsort(-output.reshape(len(output), -1).mean(axis=1))[:per_module]
        for axes, channel in zip(row[1:], strongest):
            axes.imshow(_stretch(output[channel]), cmap="viridis", interpolation="nearest")
            axes.set_title(f"{name} #{channel}", fontsize=8)
        for axes in row:
            axes.axis("off")
    return figure


def draw_class_accuracy(confusion, class_names):
    """Bars of each class's accuracy (the diagonal over the row sums), with the overall accuracy."""
    counts = confusion.sum(axis=1)
    accuracy = np.divide(np.diag(confusion), counts, out=np.zeros(len(counts)), where=counts > 0)
    figure = _figure(7, 3.5)
    axes = figure.subplots()
    axes.bar(range(len(class_names)), 100 * accuracy, color="#4c72b0")
    axes.axhline(100 * np.trace(confusion) / max(confusion.sum(), 1), color="#c44e52", linestyle="--",
                 label="all classes")
    axes.set_xticks(range(len(class_names)), class_names, rotation=30, ha="right")
    axes.set(ylabel="accuracy (%)", ylim=(0, 100), title="test accuracy per class")
    axes.legend()
    axes.grid(axis="y", alpha=0.3)
    return figure


def draw_confusion(confusion, class_names):
    """The confusion matrix as an image, each cell's count written in it."""
    figure = _figure(6.5, 5.5)
    axes = figure.subplots()
    image = axes.imshow(confusion, cmap="Blues")
    figure.colorbar(image, ax=axes, label="images")
    ticks = range(len(class_names))
    axes.set_xticks(ticks, class_names, rotation=45, ha="right")
    axes.set_yticks(ticks, class_names)
    axes.set(xlabel="predicted class", ylabel="true class", title="confusion matrix (test set)")
    threshold = confusion.max() / 2
    for (true, predicted), count in np.ndenumerate(confusion):
        axes.text(predicted, true, str(count), ha="center", va="center", fontsize=7,
                  color="white" if count > threshold else "black")
    return figure


def write_learned_plots(folder, model, modules, image, picture, confusion, class_names, image_label=""):
    """Write :data:`FILES` into ``folder``; returns their paths.

    Args:
        model: the trained network; ``modules``: (name, Module) pairs whose outputs to show.
        image: one normalised test image (3, H, W) on the model's device; ``picture`` the same
            image as (H, W, 3) uint8 on the host, for display.
        confusion: (C, C) counts (any device); ``class_names``: C names.
    """
    confusion = backend.as_numpy(confusion)
    paths = [os.path.join(folder, name) for name in FILES]
    _save(draw_filters(first_conv_weight(model)), paths[0])
    maps = capture_outputs(model, image, modules)
    _save(draw_feature_maps(picture, maps, f"one test image{image_label} and its strongest feature maps"), paths[1])
    _save(draw_class_accuracy(confusion, class_names), paths[2])
    _save(draw_confusion(confusion, class_names), paths[3])
    return paths
