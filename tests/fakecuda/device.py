"""A fake device 0 behind CuPy's CUDA runtime and driver calls.

Memory is host memory (anonymous mappings, so untouched pages cost nothing),
copies and memsets really copy and fill it, and a kernel launch is recorded
(its function's name, grid and block), never run: the values in device arrays
are whatever was there. The compiled modules CuPy loads are kept, so a test can
check they are cubins for the device's architecture.
"""
import bisect
import collections
import ctypes
import itertools
import os
import sys

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long)
_libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
_PROT_READ_WRITE, _MAP_PRIVATE_ANONYMOUS, _MAP_FAILED = 0x3, 0x22, ctypes.c_void_p(-1).value

HOST_TO_DEVICE, DEVICE_TO_HOST, DEVICE_TO_DEVICE = "host_to_device", "device_to_host", "device_to_device"


_OUTSIDE = tuple(os.path.join(os.sep, p, "") for p in ("cupy", "cupy_backends", "tests" + os.sep + "fakecuda"))


def caller():
    """'file:line' of the innermost frame outside CuPy and this package: the line that asked for a copy."""
    frame = sys._getframe(1)
    while frame is not None and any(part in frame.f_code.co_filename for part in _OUTSIDE):
        frame = frame.f_back
    return "?" if frame is None else f"{os.path.relpath(frame.f_code.co_filename)}:{frame.f_lineno}"


def _map(size):
    size = max(int(size), 1)
    address = _libc.mmap(None, size, _PROT_READ_WRITE, _MAP_PRIVATE_ANONYMOUS, -1, 0)
    if address in (None, _MAP_FAILED):
        raise MemoryError(f"fake device: mmap of {size} bytes failed (errno {ctypes.get_errno()})")
    return address


class Launch(collections.namedtuple("Launch", "kernel grid block shared_memory")):
    """One kernel launch: the kernel's name, grid and block (3-tuples), dynamic shared memory in bytes."""


class FakeDevice:
    """What CuPy did on the device: every event in order, as (kind, detail) pairs.

    kinds: "launch" (a Launch), "memset" (bytes), "copy" ((direction, bytes, the line asking, for a
    copy to or from the host)),
    "library" ((name, detail): a cuBLAS, cuRAND or CUB call, stubbed), "synchronize".
    """

    def __init__(self, compute_capability):
        self.compute_capability = compute_capability
        self.events = []
        self.modules = {}      # handle -> the image CuPy loaded (a cubin)
        self.functions = {}    # handle -> kernel name
        self.errors = []       # (C function, exception) raised inside a fake
        self._allocations = {}  # address -> size
        self._starts = []       # sorted addresses, for finding the allocation holding a pointer
        self._pinned = {}       # address -> size of pinned host memory
        self._handles = itertools.count(0x1000)

    # -- bookkeeping ----------------------------------------------------------------------------
    def record(self, kind, detail):
        self.events.append((kind, detail))

    def error(self, where, exception):
        self.errors.append((where, repr(exception)))

    def handle(self):
        return next(self._handles)

    def on_device(self, pointer):
        """Whether ``pointer`` lies in an allocation of this device."""
        i = bisect.bisect_right(self._starts, pointer) - 1
        return i >= 0 and pointer < self._starts[i] + self._allocations[self._starts[i]]

    def pinned(self, pointer):
        """Whether ``pointer`` is the start of pinned host memory (CuPy asks about its own buffers)."""
        return pointer in self._pinned

    # -- memory ---------------------------------------------------------------------------------
    def malloc(self, size):
        address = _map(size)
        self._allocations[address] = max(int(size), 1)
        bisect.insort(self._starts, address)
        return address

    def free(self, address):
        size = self._allocations.pop(address)
        self._starts.remove(address)
        _libc.munmap(address, size)

    def host_alloc(self, size):
        """Pinned host memory (CuPy stages uploads through it): host memory, not the device's."""
        address = _map(size)
        self._pinned[address] = max(int(size), 1)
        return address

    def free_host(self, address):
        _libc.munmap(address, self._pinned.pop(address))

    def copy(self, destination, source, size):
        direction = {(True, False): HOST_TO_DEVICE, (False, True): DEVICE_TO_HOST}.get(
            (self.on_device(destination), self.on_device(source)), DEVICE_TO_DEVICE)
        if size:
            ctypes.memmove(destination, source, size)
        self.record("copy", (direction, int(size), caller() if direction != DEVICE_TO_DEVICE else None))

    def memset(self, pointer, value, size):
        if size:
            ctypes.memset(pointer, value, size)
        self.record("memset", int(size))

    # -- modules and launches ------------------------------------------------------------------
    def load_module(self, image):
        handle = self.handle()
        self.modules[handle] = bytes(image)
        return handle

    def get_function(self, module, name):
        handle = self.handle()
        self.functions[handle] = name.decode() if isinstance(name, bytes) else str(name)
        return handle

    def launch(self, function, grid, block, shared_memory):
        self.record("launch", Launch(self.functions.get(function, f"<unknown {function:#x}>"),
                                     tuple(grid), tuple(block), shared_memory))
