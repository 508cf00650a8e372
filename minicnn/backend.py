"""Where arrays live: NumPy on the CPU, CuPy on an NVIDIA GPU.

Every op in minicnn is written once, against an *array module* ``xp`` that is
either ``numpy`` or ``cupy``; :func:`get_array_module` picks it from the op's
inputs. CuPy is imported only when a GPU is asked for, so minicnn runs (and its
tests pass) on machines without it.

Devices are named by strings, as in PyTorch: ``"cpu"``, ``"gpu"`` (= ``"gpu:0"``)
and ``"gpu:N"``, or by PyTorch's names ``"cuda"`` and ``"cuda:N"`` for the same GPUs (or a
:class:`device`). CuPy runs every kernel, and creates every array, on its
*current* device; minicnn runs each op on its inputs' device instead
(:func:`running_on`), so a model works on whichever GPU the user names.
"""
import contextlib
import sys
from typing import NamedTuple

import numpy as np

GPU_INSTALL_HINT = (
    "install CuPy with the CUDA libraries for your driver: pip install -e '.[cuda12]' (CUDA 12.x) "
    "or pip install -e '.[cuda13]' (CUDA 13.x); `nvidia-smi` prints the CUDA version, and the "
    "NVIDIA driver is all the machine needs besides"
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


class device:
    """PyTorch's ``torch.device``: a device's ``type`` ("cpu" or "cuda") and ``index`` (None if unnamed).

    ``minicnn.device("cuda:0")``, ``minicnn.device("cuda", 1)``, ``minicnn.device("cpu")``;
    minicnn's own names work too (``"gpu"``, ``"gpu:N"``, type "cuda"). Anything that takes a device
    (``.to(...)``, ``device=``) takes one of these. As in PyTorch, ``device("cuda")`` (the current
    GPU, which minicnn takes to be GPU 0) does not compare equal to ``device("cuda:0")``. A device
    also equals the names of itself (``device("cuda:0") == "gpu:0"``), since ``tensor.device`` is a
    name in minicnn: ``x.device == device`` asks what it asks in PyTorch.
    """

    __slots__ = ("type", "index")

    def __init__(self, type, index=None):  # noqa: A002 (PyTorch's argument name)
        if isinstance(type, device):
            type, index = type.type, type.index if index is None else index
        parsed = parse_device(type)
        given_index = isinstance(type, str) and ":" in type
        if index is not None:
            if given_index:
                raise ValueError(f"device: type {type!r} already names an index; got index={index!r} too")
            if isinstance(index, bool) or not isinstance(index, int) or index < 0:
                raise ValueError(f"device: index must be a non-negative int, got {index!r}")
            if parsed.kind == "cpu" and index != 0:
                raise ValueError(f"device: the CPU has index 0 or None, got index={index!r}")
        object.__setattr__(self, "type", "cpu" if parsed.kind == "cpu" else "cuda")
        if index is None and given_index:
            index = parsed.index
        object.__setattr__(self, "index", index)

    def __setattr__(self, name, value):
        raise AttributeError("a device cannot be changed; make another")

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        index = "" if self.index is None else f", index={self.index}"
        return f"device(type='{self.type}'{index})"

    def __eq__(self, other):
        # A device name compares as the device it names: minicnn's tensor.device is a string
        # ("gpu:0"), so `x.device == minicnn.device("cuda:0")` holds, as it does in PyTorch.
        if isinstance(other, str):
            try:
                other = device(other)
            except ValueError:
                return False
        if not isinstance(other, device):
            return NotImplemented
        return (self.type, self.index) == (other.type, other.index)

    def __hash__(self):
        return hash((self.type, self.index))


def parse_device(spec):
    """Turn "cpu", "gpu", "gpu:N", "cuda", "cuda:N", a :class:`device` (or a Device) into a :class:`Device`.

    "cuda" is PyTorch's name for minicnn's "gpu": they mean the same devices.
    """
    if isinstance(spec, Device):
        return spec
    if isinstance(spec, device):
        return CPU if spec.type == "cpu" else Device("gpu", spec.index or 0)
    if not isinstance(spec, str):
        raise TypeError(f"device must be a string such as 'cpu', 'cuda', 'gpu' or 'gpu:1' (or a minicnn.device), "
                        f"got {spec!r}")
    name = spec.strip().lower()
    if name == "cpu":
        return CPU
    for kind in ("gpu", "cuda"):
        if name == kind:
            return Device("gpu", 0)
        if name.startswith(kind + ":") and name[len(kind) + 1:].isdigit():
            return Device("gpu", int(name[len(kind) + 1:]))
    raise ValueError(f"device must be 'cpu', 'gpu' or 'gpu:N' with N a GPU number (or PyTorch's names for "
                     f"them, 'cuda' and 'cuda:N'), got {spec!r}")


def parse_dtype(dtype, op="dtype"):
    """A NumPy dtype from a dtype, a type (``numpy.float32``, ``float``) or a name ("float64")."""
    try:
        result = None if dtype is None else np.dtype(dtype)
    except (TypeError, ValueError):
        result = None
    if result is None or result.kind not in "biuf":
        raise TypeError(f"{op}: dtype must be a numeric NumPy dtype or its name ('float32', 'float64', "
                        f"'int64', 'bool'), got {dtype!r}")
    return result


def device_and_dtype(op, args, device=None, dtype=None):
    """Sort PyTorch-style ``to(...)`` arguments into (Device or None, NumPy dtype or None).

    ``args`` are the positional ones: a device ("cpu", "gpu", "cuda:N", a :class:`device`), a dtype
    (numpy.float64, "float64"), or both, as in ``t.to("gpu", numpy.float32)``;
    ``device`` and ``dtype`` are the keyword ones.
    """
    found = {"device": [] if device is None else [parse_device(device)],
             "dtype": [] if dtype is None else [parse_dtype(dtype, op)]}
    for arg in args:
        try:
            found["device"].append(parse_device(arg))
        except (TypeError, ValueError):
            try:
                found["dtype"].append(parse_dtype(arg, op))
            except TypeError:
                raise TypeError(f"{op}: {arg!r} is neither a device ('cpu', 'gpu', 'gpu:N', 'cuda:N') nor a numeric "
                                f"dtype (numpy.float32, 'float64', ...)") from None
    for kind, values in found.items():
        if len(values) > 1:
            raise TypeError(f"{op}: got more than one {kind}: {', '.join(str(v) for v in values)}")
    return (found["device"] or [None])[0], (found["dtype"] or [None])[0]


_cupy = None
_cupy_import_error = None
_gpu_count_error = None  # why CuPy last found no GPU (its CUDARuntimeError)


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
    global _gpu_count_error
    cp = cupy_module()
    if cp is None:
        return 0
    try:
        return cp.cuda.runtime.getDeviceCount()
    except Exception as error:  # no driver, or no device
        _gpu_count_error = error
        return 0


def gpu_available():
    """True when CuPy is installed and sees at least one GPU."""
    return gpu_count() > 0


def choose_device(spec="auto"):
    """The device a command line's ``--device`` names, and why: ``(Device, reason)``.

    ``spec`` is "auto" (GPU 0 when CuPy sees a GPU, else the CPU) or a name for
    :func:`parse_device`. A GPU is checked (DeviceUnavailableError says what is
    missing). Nothing global changes: a command runs its work inside
    ``running_on(device)``, so that arrays it creates without naming a device
    land beside its data.
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
        require_gpu(device.index)
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
            f"device 'gpu:{index}' needs an NVIDIA GPU, but CuPy finds none ({_gpu_count_error}); "
            "check `nvidia-smi` and the CUDA driver, or use device 'cpu'")
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


_ALREADY_THERE = contextlib.nullcontext()


def running_on(device):
    """Context manager that makes ``device`` CuPy's current device for the block, if it is not already.

    A no-op (one shared nullcontext) on the CPU and on the current GPU, so an
    op pays next to nothing for it.
    """
    if device.kind == "cpu":
        return _ALREADY_THERE
    cp = sys.modules["cupy"]
    if cp.cuda.runtime.getDevice() == device.index:
        return _ALREADY_THERE
    return cp.cuda.Device(device.index)


def on_device_of(array):
    """:func:`running_on` the device that holds ``array``."""
    return running_on(device_of(array))


def to_device(array, device, dtype=None):
    """Return ``array`` on ``device`` (and as ``dtype``): the array itself if nothing changes, else a copy."""
    device = parse_device(device)
    if device.kind == "cpu":
        array = array.get() if is_gpu_array(array) else np.asarray(array)
        return array if dtype is None else array.astype(dtype, copy=False)
    cp = require_gpu(device.index)
    if is_gpu_array(array) and array.device.id != device.index:
        with on_device_of(array):  # CuPy copies between GPUs only from a contiguous array
            array = cp.ascontiguousarray(array)
    with running_on(device):
        array = cp.asarray(array)
        return array if dtype is None else array.astype(dtype, copy=False)


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


# -- counting device work ----------------------------------------------------------------------
# Real CuPy counts nothing; a stand-in for tests can (tests/standin registers its counters when it
# is installed). Readers such as minicnn.autograd.trace() and the benchmark then show what each op
# or step cost on the device.
_device_counter = None


def set_device_counter(counter):
    """Register ``counter()`` -> {"device_ops": n, "syncs": n, "uploads": n}, the cumulative device
    operations (kernel launches, copies...), device -> host reads and host -> device copies so far.

    None forgets it. Returns the counter registered before, so that a caller can put it back.
    """
    global _device_counter
    if counter is not None and not callable(counter):
        raise TypeError(f"set_device_counter: counter must be callable or None, got {type(counter).__name__}")
    previous, _device_counter = _device_counter, counter
    return previous


def device_counts():
    """{"device_ops", "syncs", "uploads"} so far, or None when nothing counts (real CuPy counts nothing)."""
    return None if _device_counter is None else dict(_device_counter())


def device_operation_count():
    """The number of device operations so far, or None when nothing counts."""
    counts = device_counts()
    return None if counts is None else int(counts["device_ops"])
