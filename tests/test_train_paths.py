"""Every path option of python -m train.cifar (--data-dir, --out, --plots, --resume, --evaluate) that cannot
serve is one line, naming the option, before any work: a file where a folder is expected or the reverse, a
path under a file, a missing file, a folder that cannot be read or written.

The tests run as root, where permissions do not bite: an unreadable or unwritable path is made so by os.access
(which train/files.py asks) saying no, and by a read-only tmpfs where this machine lets us mount one.
"""
import os

import pytest

from train import cifar, data
from fault_injection import tmpfs
from tiny_cifar import write_cifar

TINY = ["--device", "cpu", "--width", "0.0625", "--limit", "32", "--batch-size", "16", "--epochs", "1"]


@pytest.fixture
def place(tmp_path, monkeypatch):
    """tmp_path holding: data/ (a tiny CIFAR-10), a-file, empty/, and checkpoint.npz (any bytes: it is
    checked as a path before it is read). Reading the data or a checkpoint fails the test."""
    write_cifar(str(tmp_path / "data"))
    (tmp_path / "a-file").write_text("mine")
    (tmp_path / "empty").mkdir()
    (tmp_path / "checkpoint.npz").write_bytes(b"not read")

    def no_work(*args, **kwargs):
        raise AssertionError("work was done before the paths were checked")

    monkeypatch.setattr(data, "read_split", no_work)
    monkeypatch.setattr(cifar, "load_checkpoint", no_work)
    return tmp_path


def deny(monkeypatch, path, permission):
    """os.access answers no for ``permission`` (os.R_OK or os.W_OK) on ``path``."""
    real = os.access

    def access(where, mode, **kwargs):
        if os.path.abspath(where) == os.path.abspath(path) and mode & permission:
            return False
        return real(where, mode, **kwargs)

    monkeypatch.setattr(os, "access", access)


def refused(capsys, place, argv):
    """Run the command; it must fail with one line and change nothing. Returns that line."""
    before = sorted(os.listdir(place))
    code = cifar.main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: ") and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert sorted(os.listdir(place)) == before
    return err.strip()


CASES = {
    "--out is a file": (["--out", "a-file"], "--out {p}/a-file is a file, not a folder"),
    "--out under a file": (["--out", "a-file/run"], "--out {p}/a-file/run cannot be made: {p}/a-file is a file, "
                                                            "not a folder"),
    "--out unwritable": (["--out", "empty"], "--out {p}/empty is not writable (permission denied)", "empty", "W"),
    "--out in an unwritable folder": (["--out", "empty/run"], "--out {p}/empty/run cannot be made: {p}/empty is "
                                      "not writable (permission denied)", "empty", "W"),
    "--data-dir is a file": (["--data-dir", "a-file", "--out", "run"], "--data-dir {p}/a-file is a file, not a folder"),
    "--data-dir under a file": (["--data-dir", "a-file/data", "--out", "run"],
                                "--data-dir {p}/a-file/data cannot be made: {p}/a-file is a file, not a folder"),
    "--data-dir unreadable": (["--data-dir", "data", "--out", "run"], "--data-dir {p}/data is not readable "
                              "(permission denied)", "data", "R"),
    "--data-dir unwritable for a download": (["--data-dir", "empty", "--out", "run"], "--data-dir {p}/empty is not "
                                             "writable (permission denied)", "empty", "W"),
    "--resume of a file": (["--resume", "--out", "a-file"], "--out {p}/a-file is a file, not a folder"),
    "--resume of a folder as checkpoint": (["--resume", "--out", "."], "--resume: the checkpoint {p}/checkpoint.npz "
                                           "is a folder, not a file"),
    "--evaluate missing": (["--evaluate", "missing.npz"], "--evaluate {p}/missing.npz does not exist"),
    "--evaluate a folder": (["--evaluate", "empty"], "--evaluate {p}/empty is a folder, not a file"),
    "--evaluate unreadable": (["--evaluate", "checkpoint.npz"], "--evaluate {p}/checkpoint.npz is not readable "
                              "(permission denied)", "checkpoint.npz", "R"),
    "--plots is a file": (["--evaluate", "checkpoint.npz", "--plots", "a-file"],
                          "--plots {p}/a-file is a file, not a folder"),
    "--plots under a file": (["--evaluate", "checkpoint.npz", "--plots", "a-file/plots"],
                             "--plots {p}/a-file/plots cannot be made: {p}/a-file is a file, not a folder"),
    "--plots unwritable": (["--evaluate", "checkpoint.npz", "--plots", "empty"],
                           "--plots {p}/empty is not writable (permission denied)", "empty", "W"),
    "--plots in the checkpoint's unwritable folder": (["--evaluate", "empty/../checkpoint.npz", "--plots"],
                                                      "--plots {p} is not writable (permission denied)", ".", "W"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_path_that_cannot_serve_is_one_line_before_any_work(capsys, place, monkeypatch, case):
    argv, message, *denied = CASES[case]
    if case == "--resume of a folder as checkpoint":
        (place / "checkpoint.npz").unlink()
        (place / "checkpoint.npz").mkdir()
    if denied:
        deny(monkeypatch, place / denied[0], {"R": os.R_OK, "W": os.W_OK}[denied[1]])
    argv = [str(place / a) if i and argv[i - 1] in ("--out", "--data-dir", "--evaluate", "--plots") else a
            for i, a in enumerate(argv)]
    if "--evaluate" not in argv:
        argv = [*TINY, "--data-dir", str(place / "data"), *argv] if "--data-dir" not in argv else [*TINY, *argv]
    assert refused(capsys, place, argv) == "error: " + message.format(p=place)
    assert (place / "a-file").read_text() == "mine"


def test_a_read_only_file_system(capsys, place, tmp_path):
    with tmpfs(tmp_path / "read-only", size=64 * 1024, read_only=True):
        place = tmp_path / "read-only"
        message = refused(capsys, place, [*TINY, "--data-dir", tmp_path / "data", "--out", place / "run"])
        assert message == f"error: --out {place}/run cannot be made: {place} is not writable (a read-only file system)"
        message = refused(capsys, place, ["--evaluate", tmp_path / "checkpoint.npz", "--plots", place])
        assert message == f"error: --plots {place} is not writable (a read-only file system)"
