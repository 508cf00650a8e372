"""train/run_folder.py: the --out folder is made and locked for one run at a time, and a run that
leaves nothing in it takes away exactly the folders it made."""
import os

import pytest

from train.files import UserError
from train.run_folder import LOCK_FILE, RunFolder


def test_makes_missing_folders_and_removes_them_when_left_empty(tmp_path):
    path = tmp_path / "a" / "b" / "run"
    with RunFolder(str(path)) as folder:
        assert path.is_dir() and os.listdir(path) == [LOCK_FILE]
        assert folder.created == [str(tmp_path / "a"), str(tmp_path / "a" / "b"), str(path)]
        assert (path / LOCK_FILE).read_text() == f"{os.getpid()}\n"
    assert os.listdir(tmp_path) == []


def test_keeps_a_folder_with_the_runs_files_and_folders_that_were_there(tmp_path):
    (tmp_path / "runs").mkdir()
    with RunFolder(str(tmp_path / "runs" / "x")):
        (tmp_path / "runs" / "x" / "checkpoint.npz").write_bytes(b"data")
    assert os.listdir(tmp_path / "runs" / "x") == ["checkpoint.npz"]  # the lock file is gone, the run's file kept
    with RunFolder(str(tmp_path / "runs" / "y")):
        pass
    assert os.listdir(tmp_path / "runs") == ["x"]  # y was made and removed; runs/ was there before


def test_one_run_at_a_time(tmp_path):
    path = str(tmp_path / "run")
    with RunFolder(path):
        with pytest.raises(UserError, match=f"--out {path} is in use by another run \\(process {os.getpid()}\\)"):
            RunFolder(path).__enter__()  # a second open file description of the lock file: refused like a process
        assert os.path.isdir(path)  # the refused one removed nothing
    with RunFolder(path):  # free again
        pass


def test_a_stale_lock_file_does_not_block(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / LOCK_FILE).write_text("999999\n")  # left by a run that was killed
    with RunFolder(str(tmp_path / "run")):
        assert (tmp_path / "run" / LOCK_FILE).read_text() == f"{os.getpid()}\n"
    assert os.listdir(tmp_path / "run") == []


@pytest.mark.parametrize("where, complaint", [("a-file", "is a file, not a folder"),
                                              ("a-file/run", "cannot be made: .*a-file is a file, not a folder")])
def test_a_file_in_the_way_is_a_user_error(tmp_path, where, complaint):
    (tmp_path / "a-file").write_text("mine")
    with pytest.raises(UserError, match=complaint):
        RunFolder(str(tmp_path / where)).__enter__()
    assert os.listdir(tmp_path) == ["a-file"] and (tmp_path / "a-file").read_text() == "mine"
