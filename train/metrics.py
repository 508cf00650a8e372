"""Counting loss and accuracy without waiting on the GPU, and writing them down.

``RunningTotals`` keeps its sums as device arrays: adding a batch queues a few
tiny GPU ops and returns at once. Only ``read()`` copies them to the host (and so
waits for the GPU), which the training loop does for the progress bar only after
the batches :func:`read_due` names: a few early ones, so that even a short run
shows its figures at once, then every ``READ_EVERY``-th.

Under mpiexec each rank counts its own images; a read sums the totals over the
ranks first (one small all-reduce on the host, at the same reads).

``metrics.jsonl`` holds one JSON object per finished epoch, with exactly the keys
``METRIC_KEYS`` (accuracies are fractions in 0..1, ``seconds`` the epoch's wall
time including evaluation, ``lr`` the rate of the epoch's last batch).
"""
import json
import math

import numpy as np

from minicnn.backend import as_numpy, get_array_module

from .files import atomic_write

METRIC_KEYS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds")
READ_EVERY = 20              # batches between reads of the running totals, once an epoch is under way
EARLY_READS = (1, 2, 5, 10)  # ... and after these batches of every epoch


def read_due(batches_done, batches_in_epoch):
    """True if the training loop reads the running totals (and so waits for the device) after
    ``batches_done`` batches of an epoch, counted from 1: after batches 1, 2, 5 and 10, every
    ``READ_EVERY``-th (20, 40, ...) and the epoch's last. Between reads a step never waits."""
    return batches_done in EARLY_READS or batches_done % READ_EVERY == 0 or batches_done == batches_in_epoch


class RunningTotals:
    """Sums of per-image loss and of correct predictions, kept on the device.

    ``objective_sum`` adds up the loss actually minimised (with the auxiliary
    heads), which is not reported but watched for nan and inf.
    """

    def __init__(self, loss_sum=0.0, correct=0, count=0, objective_sum=0.0):
        # device arrays once a batch is added; Python numbers before (or from a checkpoint)
        self.loss_sum, self.correct, self.count, self.objective_sum = loss_sum, correct, count, objective_sum

    def add(self, loss, logits, labels, objective=None):
        """Add a batch: ``loss`` its mean loss (0-d array), ``logits`` (B, C), ``labels`` (B,),
        ``objective`` the mean training objective (0-d array; defaults to ``loss``)."""
        batch = len(labels)
        self.loss_sum = self.loss_sum + loss * batch
        self.objective_sum = self.objective_sum + (loss if objective is None else objective) * batch
        self.correct = self.correct + (logits.argmax(axis=1) == labels).sum()
        self.count += batch

    def on_host(self, all_reduce=None):
        """These totals as Python numbers (waits for the device): a RunningTotals that reads nothing.

        ``all_reduce``: a function that sums a NumPy array over the ranks in place
        (``minicnn.distributed.all_reduce``), to get the totals of every rank together.
        """
        sums = np.array([float(self.loss_sum), float(self.objective_sum), int(self.correct), self.count], np.float64)
        if all_reduce is not None:
            all_reduce(sums)
        loss_sum, objective_sum, correct, count = sums.tolist()
        return RunningTotals(loss_sum, int(correct), int(count), objective_sum)

    def read(self, all_reduce=None):
        """(mean loss, accuracy) as Python floats, over every rank with ``all_reduce`` (see
        :meth:`on_host`); waits for the device. The mean loss is nan or inf when the objective
        is (even where the reported loss is finite)."""
        totals = self.on_host(all_reduce)
        if totals.count == 0:
            return float("nan"), float("nan")
        loss = totals.loss_sum / totals.count
        objective = totals.objective_sum
        return (loss if math.isfinite(objective) else objective), totals.correct / totals.count

    def to_dict(self, all_reduce=None):
        """The totals as plain numbers (for a mid-epoch checkpoint), over every rank with ``all_reduce``."""
        totals = self.on_host(all_reduce)
        return {"loss_sum": totals.loss_sum, "correct": totals.correct, "count": totals.count,
                "objective_sum": totals.objective_sum}


def confusion_matrix(labels, predictions, num_classes):
    """(C, C) int64 counts on the device of ``labels``: row = true class, column = predicted.

    A scatter-add of ones into a fixed C*C array, so nothing is read back:
    ``bincount`` would size its result on the host (CuPy reads max(x) and
    checks x >= 0 there, two waits per batch). int32 counts, because CuPy's
    scatter-add has no int64 (a batch is far below 2**31 images).
    """
    xp = get_array_module(labels)
    counts = xp.zeros(num_classes * num_classes, dtype=xp.int32)
    xp.add.at(counts, labels * num_classes + predictions, 1)
    return counts.reshape(num_classes, num_classes).astype(xp.int64)


def write_metrics(history, path):
    """Rewrite ``path`` (atomically) with one JSON line per entry of ``history``."""
    with atomic_write(path, "w") as file:
        for row in history:
            file.write(json.dumps({key: row[key] for key in METRIC_KEYS}) + "\n")


def format_report(confusion, class_names):
    """Overall accuracy, a per-class accuracy table and the confusion matrix, as text."""
    confusion = as_numpy(confusion)
    total = confusion.sum()
    lines = [f"test accuracy {confusion.trace() / max(total, 1):.2%} ({confusion.trace()} of {total} images)",
             "", "per-class accuracy:"]
    width = max(len(name) for name in class_names)
    for index, name in enumerate(class_names):
        count = confusion[index].sum()
        accuracy = confusion[index, index] / count if count else float("nan")
        lines.append(f"  {name:>{width}}  {accuracy:7.2%}  ({confusion[index, index]} of {count})")
    lines += ["", "confusion matrix (rows: true class, columns: predicted):"]
    cell = max(5, len(str(confusion.max())) + 1)
    short = [name[:cell - 1] for name in class_names]
    lines.append(" " * (width + 2) + "".join(f"{name:>{cell}}" for name in short))
    for name, row in zip(class_names, confusion):
        lines.append(f"  {name:>{width}}" + "".join(f"{value:>{cell}}" for value in row))
    return "\n".join(lines)

