"""train/metrics.py, train/schedule.py and train/plot.py: totals, the metrics.jsonl format,
the accuracy report, the learning-rate schedules and the optional plot."""
import json
import math
import sys

import numpy as np
import pytest

from minicnn import optim, Tensor
from train.metrics import METRIC_KEYS, RunningTotals, confusion_matrix, format_report, write_metrics
from train.plot import plot_curves
from train.schedule import make_scheduler

NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def test_running_totals():
    totals = RunningTotals()
    logits = np.array([[2.0, 1.0], [0.0, 3.0], [5.0, 1.0]], np.float32)
    totals.add(np.float32(1.5), logits, np.array([0, 1, 1]))  # 2 of 3 right
    totals.add(np.float32(0.5), logits[:1], np.array([1]))      # 0 of 1 right
    loss, accuracy = totals.read()
    assert loss == pytest.approx((1.5 * 3 + 0.5) / 4) and accuracy == 0.5
    resumed = RunningTotals(**totals.to_dict())
    assert resumed.read() == (loss, accuracy)
    totals.add(np.float32(0.1), logits[:1], np.array([0]), objective=np.float32("nan"))
    assert math.isnan(totals.read()[0])  # a non-finite objective shows even when the reported loss is finite


def test_confusion_matrix_and_report():
    labels = np.array([0, 0, 1, 2, 2, 2])
    predictions = np.array([0, 1, 1, 2, 0, 2])
    confusion = confusion_matrix(labels, predictions, 10)
    assert confusion.shape == (10, 10) and confusion.sum() == 6
    assert confusion[0, 0] == 1 and confusion[0, 1] == 1 and confusion[2, 0] == 1 and confusion[2, 2] == 2
    report = format_report(confusion, NAMES)
    assert "test accuracy 66.67% (4 of 6 images)" in report
    assert "airplane   50.00%  (1 of 2)" in report and "bird   66.67%  (2 of 3)" in report
    assert "confusion matrix" in report and all(name in report for name in NAMES)


def test_metrics_jsonl_has_exactly_the_agreed_keys(tmp_path):
    row = {"epoch": 1, "train_loss": 2.0, "train_acc": 0.25, "test_loss": 2.1, "test_acc": 0.2,
           "lr": 0.05, "seconds": 1.5, "extra": "dropped"}
    path = tmp_path / "metrics.jsonl"
    write_metrics([row, dict(row, epoch=2)], str(path))
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [tuple(line) for line in lines] == [METRIC_KEYS] * 2
    assert METRIC_KEYS == ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds")
    assert lines[1]["epoch"] == 2


def rates(name, epochs, steps_per_epoch, lr=0.1):
    optimizer = optim.SGD([Tensor(np.zeros(1, np.float32), requires_grad=True)], lr=lr)
    scheduler = make_scheduler(name, optimizer, epochs, steps_per_epoch)
    result = []
    for _ in range(epochs * steps_per_epoch):
        result.append(optimizer.lr)
        scheduler.step()
    return np.array(result).reshape(epochs, steps_per_epoch)


def test_paper_schedule_falls_4_percent_every_8_epochs():
    lr = rates("paper", 20, 3)
    np.testing.assert_allclose(lr[:8], 0.1)
    np.testing.assert_allclose(lr[8:16], 0.096)
    np.testing.assert_allclose(lr[16:], 0.1 * 0.96 ** 2)


def test_step_schedule_drops_tenfold_at_half_and_three_quarters():
    lr = rates("step", 8, 2)[:, 0]
    np.testing.assert_allclose(lr, [0.1] * 4 + [0.01] * 2 + [0.001] * 2)


def test_onecycle_and_cosine():
    onecycle = rates("onecycle", 10, 5).ravel()
    assert onecycle[0] == pytest.approx(0.1 / 25) and onecycle.max() == pytest.approx(0.1)
    assert np.argmax(onecycle) == pytest.approx(0.3 * 50, abs=1) and onecycle[-1] < 1e-4
    cosine = rates("cosine", 4, 5).ravel()
    assert cosine[0] == 0.1 and np.all(np.diff(cosine) < 0) and cosine[-1] < 0.002


def test_plot_is_written_or_skipped(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    history = [{"epoch": e, "train_loss": 2.0 / e, "train_acc": 0.1 * e, "test_loss": 2.2 / e,
                "test_acc": 0.09 * e, "lr": 0.1, "seconds": 1.0} for e in (1, 2)]
    path = tmp_path / "curves.png"
    assert plot_curves(history, str(path)) is True
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for module in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg", "matplotlib.ticker"):
        monkeypatch.setitem(sys.modules, module, None)  # as if matplotlib were not installed
    assert plot_curves(history, str(tmp_path / "other.png")) is False
    assert not (tmp_path / "other.png").exists()
