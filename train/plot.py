"""``curves.png``: loss and accuracy per epoch, train and test. matplotlib is optional.

The figure is drawn with matplotlib's object API (``Figure`` + the Agg canvas),
not pyplot, so it needs no display and changes no global matplotlib state.
"""
from .files import atomic_write


def plot_curves(history, path):
    """Draw ``history`` (the rows of metrics.jsonl) to ``path`` as PNG, atomically.

    Returns False, drawing nothing, when matplotlib is not installed.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        return False
    epochs = [row["epoch"] for row in history]
    figure = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(figure)
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    for split, style in (("train", "o-"), ("test", "s-")):
        loss_axes.plot(epochs, [row[f"{split}_loss"] for row in history], style, label=split)
        accuracy_axes.plot(epochs, [100 * row[f"{split}_acc"] for row in history], style, label=split)
    loss_axes.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    accuracy_axes.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for axes in (loss_axes, accuracy_axes):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        axes.grid(alpha=0.3)
        axes.legend()
    with atomic_write(path, "wb") as file:
        figure.savefig(file, format="png", dpi=100)
    return True
