"""Shared fixtures: the devices to test on, GPU tests that skip cleanly without a GPU, tiny CIFAR-10 data."""
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
    """Each test using this runs on the CPU and (where there is one) on the GPU."""
    return request.param


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
