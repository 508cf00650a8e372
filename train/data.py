"""CIFAR-10 in its official Python layout: find it, download it when missing, read it.

The layout (https://www.cs.toronto.edu/~kriz/cifar.html) is a folder
``cifar-10-batches-py/`` holding pickled dicts with byte-string keys:

    data_batch_1 .. data_batch_5, test_batch
        b"data"    uint8 (10000, 3072): one image per row, channel-major
                   (1024 red values, then 1024 green, then 1024 blue, each row by row)
        b"labels"  list of 10000 ints in 0..9
    batches.meta
        b"label_names"  list of 10 class names (bytes)

so a row reshaped to (3, 32, 32) is already an NCHW image.

The download never leaves half-written data behind: the archive goes to a
temporary file inside the data folder, its MD5 is checked against the published
one, it is unpacked into a temporary folder there, and only then is the finished
``cifar-10-batches-py`` renamed into place (one atomic step). Anything already in
the data folder is left alone.
"""
import contextlib
import hashlib
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.request
from typing import NamedTuple

import numpy as np
from tqdm import tqdm

from .files import UserError, check_path, error_text

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
FOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES = ("test_batch",)
META_FILE = "batches.meta"
ALL_FILES = TRAIN_FILES + TEST_FILES + (META_FILE,)
NUM_CLASSES = 10
IMAGE_SHAPE = (3, 32, 32)


class Split(NamedTuple):
    """One part of the data set, on the host."""

    images: np.ndarray  # (N, 3, 32, 32) uint8, RGB
    labels: np.ndarray  # (N,) int64 in 0..9


# -- finding (and if need be downloading) the data ------------------------------------------

def find_cifar10(data_dir, download=True, url=None, md5=None):
    """Return the path of ``data_dir/cifar-10-batches-py``, downloading it first if it is absent.

    ``url`` and ``md5`` default to CIFAR10_URL and CIFAR10_MD5 (read at call time).

    Raises UserError when ``data_dir`` is not a folder (or cannot be read, or written for
    a download), when the data is absent and may not (``download=False``) or cannot
    be downloaded, or when the folder exists but some of its files are missing.
    """
    url, md5 = url or CIFAR10_URL, md5 or CIFAR10_MD5
    root = os.path.join(data_dir, FOLDER)
    for folder in (data_dir, root):
        if os.path.exists(folder):
            check_path("--data-dir", folder, "folder")
    if os.path.isdir(root):
        missing = [name for name in ALL_FILES if not os.path.isfile(os.path.join(root, name))]
        if missing:
            raise UserError(
                f"{root} lacks {', '.join(missing)}. It is not downloaded again over your files: "
                f"move that folder away (or choose another --data-dir) to fetch a fresh copy.")
        return root
    if not download:
        raise UserError(
            f"CIFAR-10 is not in --data-dir {data_dir} (no {FOLDER}/ there), and --no-download "
            f"forbids fetching it from {url}. Drop --no-download to download it (163 MB), or point "
            f"--data-dir at the folder that holds {FOLDER}/.")
    check_path("--data-dir", data_dir, "folder", write=True)  # the download goes there
    try:
        download_cifar10(data_dir, url, md5)
    except UserError as error:
        raise UserError(
            f"CIFAR-10 is not in --data-dir {data_dir} and the download failed: {error}\n"
            f"Fetch {url} yourself and extract it into {data_dir}, or point --data-dir at the "
            f"folder that holds {FOLDER}/ (--no-download skips this download attempt).") from None
    return root


def download_cifar10(data_dir, url, md5):
    """Download the archive at ``url`` into ``data_dir``, check its MD5, unpack ``FOLDER`` there.

    On any failure everything this function created is removed again (including
    ``data_dir`` itself if it made it and it is empty) and UserError is raised.
    """
    made_data_dir = not os.path.isdir(data_dir)
    os.makedirs(data_dir, exist_ok=True)
    handle, archive = tempfile.mkstemp(dir=data_dir, prefix=".cifar-10-download-", suffix=".tar.gz")
    unpack_dir = None
    try:
        with os.fdopen(handle, "wb") as file:
            digest = _fetch(url, file)
        if digest != md5:
            raise UserError(f"the file from {url} has MD5 {digest}, not the published {md5} "
                            "(a damaged or incomplete download)")
        unpack_dir = tempfile.mkdtemp(dir=data_dir, prefix=".cifar-10-extract-")
        _unpack(archive, unpack_dir)
        unpacked = os.path.join(unpack_dir, FOLDER)
        missing = [name for name in ALL_FILES if not os.path.isfile(os.path.join(unpacked, name))]
        if missing:
            raise UserError(f"the archive from {url} has no {FOLDER}/{missing[0]}")
        os.rename(unpacked, os.path.join(data_dir, FOLDER))  # the one step that makes the data appear
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(archive)
        if unpack_dir is not None:
            shutil.rmtree(unpack_dir, ignore_errors=True)
        if made_data_dir and not os.path.isdir(os.path.join(data_dir, FOLDER)):
            with contextlib.suppress(OSError):
                os.rmdir(data_dir)  # only if still empty


def _fetch(url, file, chunk_bytes=1 << 20):
    """Stream ``url`` into the open binary ``file`` with a tqdm bar; return the MD5 hex digest."""
    md5 = hashlib.md5(usedforsecurity=False)
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            length = response.headers.get("Content-Length")
            size = int(length) if length and length.isdigit() else None
            with tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024,
                      desc="downloading CIFAR-10", leave=False) as bar:
                received = 0
                while chunk := response.read(chunk_bytes):
                    file.write(chunk)
                    md5.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except (OSError, ValueError) as error:  # URLError, HTTPError, timeouts, resets; a malformed URL
        raise UserError(f"could not fetch {url} ({getattr(error, 'reason', None) or error})") from None
    except Exception as error:  # http.client.IncompleteRead and other protocol errors
        raise UserError(f"could not fetch {url} ({type(error).__name__}: {error})") from None
    if size is not None and received < size:
        raise UserError(f"the download from {url} stopped after {received} of {size} bytes")
    return md5.hexdigest()


def _unpack(archive, destination):
    """Extract a .tar.gz into ``destination``, refusing members that would land outside it."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            if hasattr(tarfile, "data_filter"):  # Python 3.10.12+, 3.11.4+
                tar.extractall(destination, filter="data")
            else:
                root = os.path.realpath(destination)
                for member in tar.getmembers():
                    target = os.path.realpath(os.path.join(destination, member.name))
                    if not (member.isfile() or member.isdir()) or os.path.commonpath([root, target]) != root:
                        raise UserError(f"the archive holds an unsafe entry {member.name!r}")
                tar.extractall(destination)
    except (tarfile.TarError, EOFError, OSError) as error:
        raise UserError(f"the downloaded archive could not be unpacked ({error})") from None


# -- reading the batch files ---------------------------------------------------------------------

class _BatchUnpickler(pickle.Unpickler):
    """Unpickles only what CIFAR-10 batches hold (dicts, lists, bytes, NumPy arrays).

    A pickle may name any function to call; these files come from the network,
    so anything beyond rebuilding an array is refused.
    """

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in the pickle")


def _read_pickle(path):
    """The dict in one batch file, with byte-string keys (the files were written by Python 2)."""
    try:
        with open(path, "rb") as file:
            content = _BatchUnpickler(file, encoding="bytes").load()
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror or error}") from None
    except Exception as error:  # unpickling garbage can raise almost anything
        raise UserError(f"{path} is corrupt or truncated ({type(error).__name__}: {error_text(error)}); "
                        f"delete the {FOLDER} folder to download it again") from None
    if not isinstance(content, dict):
        raise UserError(f"{path} is not a CIFAR-10 batch (it holds a {type(content).__name__}, not a dict)")
    return content


def read_batch(path):
    """Read one batch file. Returns (images (N, 3, 32, 32) uint8, labels (N,) int64)."""
    content = _read_pickle(path)
    data, labels = content.get(b"data"), content.get(b"labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        shape = getattr(data, "shape", None)
        raise UserError(f"{path} is not a CIFAR-10 batch: b'data' should be a uint8 array (N, 3072), "
                        f"got {type(data).__name__} {shape or ''}")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError):
        labels = None
    if labels is None or labels.shape != (len(data),):
        raise UserError(f"{path} is not a CIFAR-10 batch: b'labels' should list {len(data)} integers")
    if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise UserError(f"{path} has labels outside 0..{NUM_CLASSES - 1}")
    return data.reshape(len(data), *IMAGE_SHAPE), labels


def read_split(root, files, limit=None):
    """Concatenate batch ``files`` (names in ``root``), reading only as many as the first
    ``limit`` images need. Returns a Split with (N, 3, 32, 32) uint8 images."""
    images, labels, count = [], [], 0
    for name in files:
        if limit is not None and count >= limit:
            break
        batch_images, batch_labels = read_batch(os.path.join(root, name))
        images.append(batch_images)
        labels.append(batch_labels)
        count += len(batch_labels)
    images, labels = np.concatenate(images), np.concatenate(labels)
    return Split(images[:limit], labels[:limit])


def read_class_names(root):
    """The 10 class names from batches.meta, in label order ("airplane", "automobile", ...)."""
    path = os.path.join(root, META_FILE)
    names = _read_pickle(path).get(b"label_names")
    if not isinstance(names, list) or len(names) != NUM_CLASSES:
        raise UserError(f"{path} should list {NUM_CLASSES} b'label_names'")
    return [name.decode() if isinstance(name, bytes) else str(name) for name in names]
