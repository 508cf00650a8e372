"""train/checkpoint.py and train/files.py: a run's state round-trips through checkpoint.npz,
and files are replaced atomically (a failed write leaves the old file and no debris)."""
import os

import numpy as np
import pytest

import minicnn
from minicnn import Tensor, nn, optim
import minicnn.functional as F
from train import checkpoint as ckpt
from train.files import UserError, atomic_write


def small_run(seed):
    """A model with a buffer (batch norm), SGD with momentum and a schedule, after two steps."""
    minicnn.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    scheduler = optim.OneCycleLR(optimizer, max_lr=0.1, total_steps=10)
    rng = np.random.default_rng(seed)
    for _ in range(2):
        loss = F.cross_entropy(model(Tensor(rng.standard_normal((5, 3, 6, 6)).astype(np.float32))),
                               rng.integers(0, 3, 5))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    return model, optimizer, scheduler


def test_round_trip(tmp_path):
    model, optimizer, scheduler = small_run(seed=1)
    path = str(tmp_path / "checkpoint.npz")
    args = {"width": 0.25, "norm": "bn", "limit": None, "no_aux": False}
    history = [{"epoch": 1, "train_loss": 2.0, "train_acc": 0.25, "test_loss": 2.1, "test_acc": 0.2,
                "lr": 0.05, "seconds": 1.5}]
    partial = {"totals": {"loss_sum": 3.0, "correct": 2, "count": 10, "objective_sum": 4.0}, "lr": 0.01}
    ckpt.save_checkpoint(path, model, optimizer, scheduler, epoch=1, step=3, args=args, history=history,
                         partial=partial)
    loaded = ckpt.load_checkpoint(path)
    assert (loaded.epoch, loaded.step, loaded.args, loaded.history, loaded.partial) == (1, 3, args, history, partial)

    other_model, other_optimizer, other_scheduler = small_run(seed=2)  # different values everywhere
    ckpt.restore(loaded, other_model, other_optimizer, other_scheduler)
    for (name, a), (_, b) in zip(model.state_dict().items(), other_model.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert "model/1.running_mean" in np.load(path).files  # buffers are saved too
    for a, b in zip(optimizer.state, other_optimizer.state):
        np.testing.assert_array_equal(a["momentum_buffer"], b["momentum_buffer"])
    assert other_optimizer.step_count == 2 and other_scheduler.last_epoch == 2
    assert other_optimizer.lr == optimizer.lr


def test_checkpoint_of_another_model_is_a_user_error(tmp_path):
    model, optimizer, scheduler = small_run(seed=1)
    path = str(tmp_path / "checkpoint.npz")
    ckpt.save_checkpoint(path, model, optimizer, scheduler, epoch=1, step=0, args={}, history=[])
    wider = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Flatten(), nn.Linear(8 * 4 * 4, 3))
    with pytest.raises(UserError, match="does not fit"):
        ckpt.restore(ckpt.load_checkpoint(path), wider)


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 not really a zip", b"garbage" * 100])
def test_unreadable_checkpoint_is_named(tmp_path, content):
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(content)
    with pytest.raises(UserError, match="checkpoint.npz is not a readable checkpoint"):
        ckpt.load_checkpoint(str(path))
    with pytest.raises(UserError, match="no checkpoint at"):
        ckpt.load_checkpoint(str(tmp_path / "missing.npz"))


def test_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model, optimizer, scheduler = small_run(seed=1)
    path = str(tmp_path / "checkpoint.npz")
    ckpt.save_checkpoint(path, model, optimizer, scheduler, epoch=1, step=0, args={}, history=[])
    before = open(path, "rb").read()

    def savez_then_fail(file, **arrays):
        file.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.np, "savez", savez_then_fail)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_checkpoint(path, model, optimizer, scheduler, epoch=2, step=0, args={}, history=[])
    assert open(path, "rb").read() == before
    assert os.listdir(tmp_path) == ["checkpoint.npz"]


def test_atomic_write_replaces_whole_files_with_normal_permissions(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("old\n")
    with atomic_write(str(path), "w") as file:
        file.write("new\n")
        assert path.read_text() == "old\n"  # not visible until the block ends
    assert path.read_text() == "new\n"
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~mask
