"""train/data.py: reading CIFAR-10's official Python layout, and downloading it safely.

Every test writes its own tiny data set in the official layout (pickled dicts
with byte keys, protocol 2 as the Python 2 originals) under tmp_path; downloads
come from a throwaway HTTP server on 127.0.0.1. Run from the repository root
(``python -m pytest``), which puts ``train`` and ``models`` on the path.
"""
import hashlib
import http.server
import io
import os
import pickle
import tarfile
import threading

import numpy as np
import pytest

from train import data
from train.files import UserError

CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_cifar(data_dir, train_per_batch=16, test_count=32, seed=0):
    """Write a small CIFAR-10 in the official layout into data_dir/cifar-10-batches-py.

    Returns {"train": (rows (N, 3072) uint8, labels (N,)), "test": (...)} as written.
    """
    rng = np.random.default_rng(seed)
    folder = os.path.join(data_dir, data.FOLDER)
    os.makedirs(folder, exist_ok=True)

    def batch(name, count):
        rows = rng.integers(0, 256, (count, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, count)
        content = {b"batch_label": name.encode(), b"labels": [int(v) for v in labels], b"data": rows,
                   b"filenames": [f"{i}.png".encode() for i in range(count)]}
        with open(os.path.join(folder, name), "wb") as file:
            pickle.dump(content, file, protocol=2)
        return rows, labels

    train = [batch(name, train_per_batch) for name in data.TRAIN_FILES]
    test = batch("test_batch", test_count)
    with open(os.path.join(folder, data.META_FILE), "wb") as file:
        pickle.dump({b"label_names": [name.encode() for name in CLASS_NAMES],
                     b"num_cases_per_batch": train_per_batch, b"num_vis": 3072}, file, protocol=2)
    return {"train": (np.concatenate([r for r, _ in train]), np.concatenate([l for _, l in train])),
            "test": test}


@pytest.fixture
def tiny_cifar(tmp_path):
    """(data_dir, what was written): 5 x 16 training and 32 test images in the official layout."""
    data_dir = tmp_path / "data"
    return str(data_dir), write_cifar(str(data_dir))


def make_archive(source_dir):
    """A .tar.gz (bytes) of source_dir's cifar-10-batches-py folder, as the official archive is laid out."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(os.path.join(source_dir, data.FOLDER), arcname=data.FOLDER)
    return buffer.getvalue()


class Server:
    """An HTTP server on 127.0.0.1 serving ``files`` {path: bytes}; ``truncate`` sends only part
    of each body while announcing its full length."""

    def __init__(self, files, truncate=False):
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = owner.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[:len(body) // 3] if owner.truncate else body)

            def log_message(self, *args):
                pass

        self.files, self.truncate = files, truncate
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    def url(self, path):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def archive(tmp_path):
    """(bytes of a tiny cifar-10-python.tar.gz, its MD5, what it holds)."""
    source = tmp_path / "source"
    written = write_cifar(str(source), train_per_batch=4, test_count=8, seed=3)
    body = make_archive(str(source))
    return body, hashlib.md5(body).hexdigest(), written


def closed_port_url():
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/cifar-10-python.tar.gz"


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
