"""train/checkpoint.py and train/files.py: a run's state round-trips through checkpoint.npz,
and files are replaced atomically (a failed write leaves the old file and no debris)."""
import io
import os
import zipfile

import numpy as np
import pytest

import minicnn
from minicnn import Tensor, nn, optim
import minicnn.functional as F
from train import checkpoint as ckpt
from train.files import UserError


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


def test_a_checkpoint_missing_a_key_is_named_without_quotes(tmp_path):
    model, optimizer, scheduler = small_run(seed=1)
    path = str(tmp_path / "checkpoint.npz")
    ckpt.save_checkpoint(path, model, optimizer, scheduler, epoch=1, step=0, args={}, history=[])
    saved = ckpt.load_checkpoint(path)
    del saved.model["0.weight"]
    with pytest.raises(UserError) as error:
        ckpt.restore(saved, model)
    assert str(error.value) == ("the checkpoint does not fit the model built from its arguments: load_state_dict: "
                                "missing keys: 0.weight; unexpected keys: none")


def a_checkpoint(path):
    """Write a real checkpoint to ``path``; returns its bytes."""
    model, optimizer, scheduler = small_run(seed=1)
    ckpt.save_checkpoint(str(path), model, optimizer, scheduler, epoch=1, step=0, args={}, history=[])
    return path.read_bytes()


def a_zip(path, **members):
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)


NOT_CHECKPOINTS = {
    "empty": lambda path: path.write_bytes(b""),
    "text": lambda path: path.write_text("epoch,loss\n1,2.3\n"),
    "garbage": lambda path: path.write_bytes(b"garbage" * 100),
    "pickle": lambda path: np.save(path.open("wb"), np.array([{"a": 1}], dtype=object), allow_pickle=True),
    "npy": lambda path: np.save(path.open("wb"), np.zeros(3)),
    "other npz": lambda path: np.savez(path.open("wb"), weights=np.zeros(3)),
    "zip": lambda path: a_zip(path, **{"notes.txt": "hello"}),
    "bad zip": lambda path: path.write_bytes(b"PK\x03\x04 not really a zip"),
    "truncated": lambda path: path.write_bytes(a_checkpoint(path)[:2000]),
    "without a key": lambda path: a_zip(path, **{"format_version.npy": open_npy(np.array(ckpt.FORMAT_VERSION))}),
}


def open_npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.mark.parametrize("kind", NOT_CHECKPOINTS)
def test_a_file_that_is_not_a_checkpoint_is_named(tmp_path, kind):
    path = tmp_path / "checkpoint.npz"
    NOT_CHECKPOINTS[kind](path)
    with pytest.raises(UserError) as error:
        ckpt.load_checkpoint(str(path))
    message = str(error.value)
    assert message.startswith(f"{path} is not a minicnn checkpoint") and "\n" not in message
    assert "pickle" not in message  # NumPy's advice to unpickle an untrusted file is not ours to give


def test_a_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(UserError, match="no checkpoint at"):
        ckpt.load_checkpoint(str(tmp_path / "missing.npz"))


@pytest.mark.parametrize("version, says", [
    (ckpt.FORMAT_VERSION + 1, f"written by a newer minicnn; this one reads version {ckpt.FORMAT_VERSION}"),
    (ckpt.FORMAT_VERSION - 1, f"written by an older minicnn; this one reads only version {ckpt.FORMAT_VERSION}"),
], ids=["newer", "older"])
def test_a_checkpoint_of_another_format_version_is_refused(tmp_path, version, says):
    path = tmp_path / "checkpoint.npz"
    a_checkpoint(path)
    with np.load(path) as archive:
        arrays = {key: archive[key] for key in archive.files}
    arrays["format_version"] = np.array(version)
    np.savez(path.open("wb"), **arrays)
    with pytest.raises(UserError) as error:
        ckpt.load_checkpoint(str(path))
    assert f"{path} is a checkpoint of format version {version}, {says}" in str(error.value)


def test_an_atomic_write_gives_the_usual_permissions_and_replaces_the_old_file(tmp_path):
    from train.files import write_atomically
    path = tmp_path / "file"
    path.write_bytes(b"old")
    mask = os.umask(0o022)
    try:
        write_atomically(str(path), b"new")
    finally:
        os.umask(mask)
    assert path.read_bytes() == b"new" and path.stat().st_mode & 0o777 == 0o644 and os.listdir(tmp_path) == ["file"]
