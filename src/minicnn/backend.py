"""Where arrays live: NumPy on the CPU, CuPy on an NVIDIA GPU.

Every op in minicnn is written once, against an *array module* ``xp`` that is
either ``numpy`` or ``cupy``; :func:`get_array_module` picks it from the op's
inputs. CuPy is imported only when a GPU is asked for, so minicnn runs (and its
tests pass) on machines without it.

Devices are named by strings, as in PyTorch: ``"cpu"``, ``"gpu"`` (= ``"gpu:0"``)
and ``"gpu:N"``.
"""
import ctypes
import os
import sys
from typing import NamedTuple

import numpy as np

GPU_INSTALL_HINT = (
    "install CuPy for your CUDA version: pip install -e '.[cuda12]' (CUDA 12.x) "
    "or pip install -e '.[cuda13]' (CUDA 13.x); `nvidia-smi` prints the CUDA version"
)


class DeviceUnavailableError(RuntimeError):
    """A GPU was asked for, but CuPy or a GPU is missing."""


class Device(NamedTuple):
    """A parsed device name: ``kind`` is "cpu" or "gpu"; ``index`` numbers GPUs."""

    kind: str
    index: int = 0

    def __str__(self):
        return "cpu" if self.kind == "cpu" else f"gpu:{self.index}"


CPU = Device("cpu")


def parse_device(spec):
    """Turn "cpu", "gpu" or "gpu:N" (or a Device) into a :class:`Device`."""
    if isinstance(spec, Device):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"device must be a string such as 'cpu', 'gpu' or 'gpu:1', got {spec!r}")
    name = spec.strip().lower()
    if name == "cpu":
        return CPU
    if name == "gpu":
        return Device("gpu", 0)
    if name.startswith("gpu:") and name[4:].isdigit():
        return Device("gpu", int(name[4:]))
    raise ValueError(f"device must be 'cpu', 'gpu' or 'gpu:N' with N a GPU number, got {spec!r}")


_cupy = None
_cupy_import_error = None


def cupy_module():
    """Import CuPy on first use; return the module, or None if it cannot be imported."""
    global _cupy, _cupy_import_error
    if _cupy is None and _cupy_import_error is None:
        try:
            import cupy
            _cupy = cupy
        except Exception as error:  # ImportError, or a broken CUDA install
            _cupy_import_error = error
    return _cupy


def gpu_count():
    """How many GPUs CuPy can use (0 without CuPy, a driver or a GPU)."""
    cp = cupy_module()
    if cp is None:
        return 0
    try:
        return cp.cuda.runtime.getDeviceCount()
    except Exception:  # no driver, or no device
        return 0


def gpu_available():
    """True when CuPy is installed and sees at least one GPU."""
    return gpu_count() > 0


def choose_device(spec="auto"):
    """The device a command line's ``--device`` names, and why: ``(Device, reason)``.

    ``spec`` is "auto" (GPU 0 when CuPy sees a GPU, else the CPU) or a name for
    :func:`parse_device`. A GPU is checked (DeviceUnavailableError says what is
    missing) and made CuPy's current device, so arrays created without naming a
    device land beside the data.
    """
    if isinstance(spec, str) and spec.strip().lower() == "auto":
        count = gpu_count()
        if count == 0:
            if cupy_module() is None:
                return CPU, "auto: CuPy is not installed, so no GPU; pip install -e '.[cuda12]' adds it"
            return CPU, "auto: CuPy finds no GPU"
        device, reason = Device("gpu", 0), f"auto: CuPy sees {count} GPU(s)"
    else:
        device, reason = parse_device(spec), f"--device {spec}"
    if device.kind == "gpu":
        require_gpu(device.index).cuda.Device(device.index).use()
    return device, reason


def require_gpu(index=0):
    """Return the cupy module, or raise one clear error saying what is missing."""
    cp = cupy_module()
    if cp is None:
        raise DeviceUnavailableError(
            f"device 'gpu:{index}' needs CuPy, which could not be imported "
            f"({_cupy_import_error}); {GPU_INSTALL_HINT}")
    count = gpu_count()
    if count == 0:
        raise DeviceUnavailableError(
            f"device 'gpu:{index}' needs an NVIDIA GPU, but CuPy finds none "
            "(check `nvidia-smi` and the CUDA driver); use device 'cpu' instead")
    if index >= count:
        raise DeviceUnavailableError(
            f"device 'gpu:{index}' does not exist: CuPy sees {count} GPU(s), "
            f"numbered 0 to {count - 1}")
    return cp


def is_gpu_array(array):
    """True for a CuPy array. Never imports CuPy: a CuPy array implies it is loaded."""
    cp = sys.modules.get("cupy")
    return cp is not None and isinstance(array, cp.ndarray)


def get_array_module(*arrays):
    """``cupy`` if any of ``arrays`` is a CuPy array, else ``numpy``."""
    for array in arrays:
        if is_gpu_array(array):
            return sys.modules["cupy"]
    return np


def device_of(array):
    """The :class:`Device` that holds ``array``."""
    if is_gpu_array(array):
        return Device("gpu", array.device.id)
    return CPU


def to_device(array, device):
    """Return ``array`` on ``device``: the array itself if it is already there, else a copy."""
    device = parse_device(device)
    if device.kind == "cpu":
        return array.get() if is_gpu_array(array) else np.asarray(array)
    cp = require_gpu(device.index)
    if is_gpu_array(array) and array.device.id == device.index:
        return array
    with cp.cuda.Device(device.index):
        return cp.asarray(array)


def as_numpy(array):
    """A NumPy array with the values of ``array`` (copied from the GPU if needed)."""
    return array.get() if is_gpu_array(array) else np.asarray(array)


def synchronize(device=None):
    """Wait for all queued GPU work (a no-op on the CPU): call before reading a clock."""
    device = parse_device(device) if device is not None else None
    if device is not None and device.kind == "cpu":
        return
    cp = sys.modules.get("cupy")
    if cp is not None and gpu_count() > 0:
        cp.cuda.Device(device.index if device else cp.cuda.runtime.getDevice()).synchronize()


def keep_freed_host_memory():
    """Ask glibc to keep freed memory for reuse instead of returning big blocks to the OS.

    By default glibc unmaps every freed block over 32 MB, so the next array of
    that size page-faults and is zero-filled by the kernel all over again; a
    training step allocates and frees many such arrays (im2col columns are
    ~100 MB at batch 32), and this cost 15% of a CPU training step. With this,
    the process keeps up to its peak memory for reuse, as CuPy's memory pool
    does on a GPU. Linux with glibc only; left alone when MALLOC_MMAP_THRESHOLD_
    is set (the user's own malloc tuning). Returns True if applied.
    """
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    largest = 2**31 - 1  # mallopt takes an int
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, largest)) and bool(mallopt(m_trim_threshold, largest))
