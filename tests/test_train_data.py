"""train/data.py: reading CIFAR-10's official Python layout, and downloading it safely.

Every test writes its own tiny data set in the official layout (pickled dicts
with byte keys, protocol 2 as the Python 2 originals) under tmp_path; downloads
come from a throwaway HTTP server on 127.0.0.1. Run from the repository root
(``python -m pytest``), which puts ``train`` and ``models`` on the path.
"""
import hashlib
import io
import os
import pickle
import tarfile

import numpy as np
import pytest

from train import data
from train.files import UserError
from tiny_cifar import CLASS_NAMES, Server, closed_port_url


# -- reading ------------------------------------------------------------------------------------

def test_reads_the_official_layout_exactly(tiny_cifar):
    data_dir, written = tiny_cifar
    root = data.find_cifar10(data_dir, download=False)
    train = data.read_split(root, data.TRAIN_FILES)
    test = data.read_split(root, data.TEST_FILES)
    rows, labels = written["train"]
    assert train.images.shape == (80, 3, 32, 32) and train.images.dtype == np.uint8
    assert train.labels.dtype == np.int64
    np.testing.assert_array_equal(train.labels, labels)  # batches 1..5 in order, labels in file order
    # Channel-major rows: the first 1024 values are the red plane, row by row, then green, then blue.
    np.testing.assert_array_equal(train.images[5, 0], rows[5, :1024].reshape(32, 32))
    np.testing.assert_array_equal(train.images[5, 1, 2, 3], rows[5, 1024 + 2 * 32 + 3])
    np.testing.assert_array_equal(train.images[79, 2], rows[79, 2048:].reshape(32, 32))
    assert test.images.shape == (32, 3, 32, 32)
    np.testing.assert_array_equal(test.labels, written["test"][1])
    assert data.read_class_names(root) == CLASS_NAMES


def test_limit_reads_only_the_batches_it_needs(tiny_cifar):
    data_dir, written = tiny_cifar
    root = os.path.join(data_dir, data.FOLDER)
    with open(os.path.join(root, "data_batch_3"), "wb") as file:
        file.write(b"not a pickle")  # must not be opened for the first 20 images
    split = data.read_split(root, data.TRAIN_FILES, limit=20)
    assert split.images.shape == (20, 3, 32, 32)
    np.testing.assert_array_equal(split.labels, written["train"][1][:20])


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupt_batch_file_is_named(tiny_cifar, damage):
    data_dir, _ = tiny_cifar
    path = os.path.join(data_dir, data.FOLDER, "data_batch_2")
    content = open(path, "rb").read()
    with open(path, "wb") as file:
        file.write({"garbage": b"\x00\x01garbage" * 10, "truncated": content[:len(content) // 2],
                    "empty": b""}[damage])
    with pytest.raises(UserError, match="data_batch_2.*corrupt or truncated"):
        data.read_split(os.path.join(data_dir, data.FOLDER), data.TRAIN_FILES)


def test_batch_with_wrong_contents_is_named(tiny_cifar):
    data_dir, _ = tiny_cifar
    path = os.path.join(data_dir, data.FOLDER, "test_batch")
    with open(path, "wb") as file:
        pickle.dump({b"data": np.zeros((4, 100), np.uint8), b"labels": [0, 1, 2, 3]}, file, protocol=2)
    with pytest.raises(UserError, match=r"test_batch is not a CIFAR-10 batch.*\(N, 3072\)"):
        data.read_batch(path)
    with open(path, "wb") as file:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 12]}, file, protocol=2)
    with pytest.raises(UserError, match="test_batch has labels outside"):
        data.read_batch(path)


def test_pickles_that_call_functions_are_refused(tiny_cifar):
    data_dir, _ = tiny_cifar
    path = os.path.join(data_dir, data.FOLDER, "data_batch_1")
    with open(path, "wb") as file:
        pickle.dump({b"data": os.system, b"labels": []}, file, protocol=2)
    with pytest.raises(UserError, match="data_batch_1.*unexpected object"):
        data.read_batch(path)


def test_incomplete_folder_is_reported_not_redownloaded(tiny_cifar):
    data_dir, _ = tiny_cifar
    os.remove(os.path.join(data_dir, data.FOLDER, "data_batch_3"))
    with pytest.raises(UserError, match="lacks data_batch_3") as error:
        data.find_cifar10(data_dir, download=True, url=closed_port_url())
    assert "download failed" not in str(error.value)
    assert sorted(os.listdir(os.path.join(data_dir, data.FOLDER))) == sorted(set(data.ALL_FILES) - {"data_batch_3"})


# -- downloading --------------------------------------------------------------------------------

def test_missing_data_with_no_download_names_the_options(tmp_path):
    data_dir = str(tmp_path / "nothing")
    with pytest.raises(UserError) as error:
        data.find_cifar10(data_dir, download=False)
    message = str(error.value)
    assert "--data-dir" in message and "--no-download" in message and data.CIFAR10_URL in message
    assert not os.path.exists(data_dir)


def test_download_verifies_and_unpacks(tmp_path, archive):
    body, md5, written = archive
    data_dir = str(tmp_path / "data")
    with Server({"/cifar.tar.gz": body}) as server:
        root = data.find_cifar10(data_dir, download=True, url=server.url("/cifar.tar.gz"), md5=md5)
    assert os.listdir(data_dir) == [data.FOLDER]  # no temporary file or folder left behind
    split = data.read_split(root, data.TRAIN_FILES)
    np.testing.assert_array_equal(split.images.reshape(20, 3072), written["train"][0])
    assert data.read_class_names(root) == CLASS_NAMES


def test_bad_md5_leaves_nothing_and_keeps_user_files(tmp_path, archive):
    body, _, _ = archive
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "notes.txt").write_text("mine")
    with Server({"/cifar.tar.gz": body}) as server:
        with pytest.raises(UserError, match="MD5") as error:
            data.find_cifar10(str(data_dir), url=server.url("/cifar.tar.gz"), md5="0" * 32)
    assert "--data-dir" in str(error.value)
    assert os.listdir(data_dir) == ["notes.txt"] and (data_dir / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("failure", ["refused", "404", "truncated"])
def test_failed_download_leaves_nothing_behind(tmp_path, archive, failure):
    body, md5, _ = archive
    data_dir = str(tmp_path / "new" / "data")
    with Server({"/cifar.tar.gz": body}, truncate=failure == "truncated") as server:
        url = closed_port_url() if failure == "refused" else server.url(
            "/missing.tar.gz" if failure == "404" else "/cifar.tar.gz")
        with pytest.raises(UserError) as error:
            data.find_cifar10(data_dir, url=url, md5=md5)
    message = str(error.value)
    assert url in message and "--data-dir" in message and "--no-download" in message
    assert not os.path.exists(data_dir)  # the folder it had to create is gone again
    assert os.listdir(tmp_path / "new") == []


def test_archive_escaping_its_folder_is_refused(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        payload = b"owned"
        member = tarfile.TarInfo("../escaped.txt")
        member.size = len(payload)
        tar.addfile(member, io.BytesIO(payload))
    body = buffer.getvalue()
    data_dir = tmp_path / "data"
    with Server({"/evil.tar.gz": body}) as server:
        with pytest.raises(UserError):
            data.find_cifar10(str(data_dir), url=server.url("/evil.tar.gz"), md5=hashlib.md5(body).hexdigest())
    assert not (tmp_path / "escaped.txt").exists()
    assert not data_dir.exists()
