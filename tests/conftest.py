"""Shared fixtures: the devices to test on, tiny CIFAR-10 data.

GPU tests run on real CuPy where it sees a GPU, and on the CuPy stand-in
(tests/standin, installed by the repository's conftest.py) everywhere else;
they skip only where neither is available (a copy of the tests without it).
"""
import hashlib

import numpy as np
import pytest

from minicnn import backend
from tiny_cifar import make_archive, write_cifar

DEVICES = ["cpu", pytest.param("gpu", marks=pytest.mark.gpu)]


def pytest_collection_modifyitems(config, items):
    if backend.gpu_available():
        return
    reason = "needs CuPy and an NVIDIA GPU (" + ("no GPU found" if backend.cupy_module() else "CuPy not installed") + ")"
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(params=DEVICES)
def device(request):
    """Each test using this runs on the CPU and on the GPU code path."""
    return request.param


@pytest.fixture
def without_cupy(monkeypatch):
    """As on a machine where CuPy is not installed."""
    monkeypatch.setattr(backend, "_cupy", None)
    monkeypatch.setattr(backend, "_cupy_import_error", ImportError("No module named 'cupy'"))


@pytest.fixture
def without_gpu(monkeypatch):
    """As on a machine with CuPy installed but no GPU: CuPy's getDeviceCount raises cudaErrorNoDevice."""
    runtime = backend.require_gpu().cuda.runtime

    def no_device():
        raise runtime.CUDARuntimeError(100)  # cudaErrorNoDevice

    monkeypatch.setattr(runtime, "getDeviceCount", no_device)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def tiny_cifar(tmp_path):
    """(data_dir, what was written): 5 x 16 training and 32 test images in the official layout."""
    data_dir = tmp_path / "data"
    return str(data_dir), write_cifar(str(data_dir))


@pytest.fixture
def archive(tmp_path):
    """(bytes of a tiny cifar-10-python.tar.gz, its MD5, what it holds)."""
    source = tmp_path / "source"
    written = write_cifar(str(source), train_per_batch=4, test_count=8, seed=3)
    body = make_archive(str(source))
    return body, hashlib.md5(body).hexdigest(), written
