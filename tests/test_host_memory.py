"""The CPU kernels' cache of big arrays (minicnn.kernels.host_memory): reuse only what no array uses."""
import numpy as np
import pytest

from minicnn.kernels import host_memory


@pytest.fixture(autouse=True)
def empty_cache(monkeypatch):
    """A fresh cache for each test (arrays that earlier tests keep alive hold buffers of the real one)."""
    monkeypatch.setattr(host_memory, "_buffers", {})
    monkeypatch.setattr(host_memory, "_sizes", [])
    monkeypatch.setattr(host_memory, "_peak_in_use", 0)


def _address(a):
    return a.__array_interface__["data"][0]


def test_a_freed_array_s_memory_is_reused_and_a_used_one_never_is():
    a = host_memory.empty((512, 1024), np.float32)  # 2 MiB: from the cache
    address = _address(a)
    view = a.T[::2]  # a view of a view still holds the buffer
    del a
    b = host_memory.empty((512, 1024), np.float32)
    assert _address(b) != address and not np.shares_memory(b, view)
    del view
    c = host_memory.empty((256, 2048), np.float32)  # the same bytes, another shape
    assert _address(c) == address and c.shape == (256, 2048) and c.flags.c_contiguous


def test_a_request_takes_a_free_buffer_up_to_twice_its_size_and_small_arrays_bypass_the_cache():
    a = host_memory.empty(3 << 20, np.uint8)
    address = _address(a)
    del a
    b = host_memory.empty(2 << 20, np.uint8)
    assert _address(b) == address
    c = host_memory.empty(2 << 20, np.uint8)  # b holds that buffer: c gets one of its own
    assert _address(c) != address
    before = host_memory.held_bytes()
    small = host_memory.empty(1000, np.float32)
    assert small.base is None and host_memory.held_bytes() == before


def test_empty_like_keeps_the_memory_order():
    x = np.zeros((4, 64, 32, 32), np.float32).transpose(0, 3, 1, 2)  # (N, C, H, W) stored channels-last
    y = host_memory.empty_like(x)
    assert y.shape == x.shape and y.strides == x.strides and y.dtype == x.dtype


def test_the_cache_holds_at_most_a_quarter_more_than_its_peak_in_use():
    arrays = [host_memory.empty(1 << 22, np.uint8) for _ in range(4)]  # 16 MiB in use at the peak
    del arrays
    assert host_memory.free_bytes() == 16 << 20
    for size in (5, 6, 7):  # new sizes: too big for the free 4 MiB buffers, which must make room
        kept = host_memory.empty(size << 21, np.uint8)
        assert host_memory.held_bytes() <= 1.25 * (16 << 20)
        del kept
    host_memory.release()
    assert host_memory.held_bytes() == 0 and host_memory.free_bytes() == 0
