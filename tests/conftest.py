"""Shared fixtures: the devices to test on, and GPU tests that skip cleanly without a GPU."""
import numpy as np
import pytest

from minicnn import backend

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

