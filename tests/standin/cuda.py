"""``cupy.cuda``: simulated devices, the current device, streams and the memory pool.

Devices. ``install(device_count=N)`` simulates N devices without peer access.
Every array records the device it was made on. As in CuPy, a kernel runs on the
*current* device (``Device(i).use()``, or a ``with Device(i):`` block), and an
array on another device fed to it fails with CuPy's own message; views and
``.get()`` work from any device. With 0 devices, ``getDeviceCount()`` raises
CUDARuntimeError as CuPy does on a machine without a GPU.

Memory. Each device has a pool that accounts for the bytes of live arrays:
an allocation is rounded up to 512 bytes (CuPy's unit); a freed block is kept
by the pool (``total_bytes``) until ``free_all_blocks``, and reused by the next
allocation of the same rounded size. (CuPy also splits larger free blocks, so
its ``total_bytes`` can be smaller than the stand-in's.)

``Device.synchronize``, ``Stream.synchronize`` and ``deviceSynchronize`` wait,
but read no value: they are not counted as device -> host reads.
"""
import collections
import itertools
import weakref

from . import api

DEVICE_NAME = b"CuPy stand-in (NumPy)"
TOTAL_MEMORY = 16 * 2**30  # what getDeviceProperties reports; nothing enforces it


class CUDARuntimeError(RuntimeError):
    """cupy_backends.cuda.api.runtime.CUDARuntimeError(status)."""

    __module__ = "cupy_backends.cuda.api.runtime"
    _NAMES = {100: "cudaErrorNoDevice: no CUDA-capable device is detected",
              101: "cudaErrorInvalidDevice: invalid device ordinal"}

    def __init__(self, status):
        self.status = status
        super().__init__(self._NAMES.get(status, f"CUDA error {status}"))


class _State:
    device_count = 2
    current = 0


state = _State()


def configure(device_count):
    """Simulate ``device_count`` devices (0 = a machine with CuPy but no GPU); device 0 becomes current."""
    state.device_count, state.current = int(device_count), 0


def _check_device(device_id):
    if state.device_count == 0:
        raise CUDARuntimeError(100)
    if not 0 <= device_id < state.device_count:
        raise CUDARuntimeError(101)


def current_device():
    return state.current


def check_current(array_device):
    """CuPy's check before a kernel: the array must live on the current device (no peer access here)."""
    if array_device != state.current:
        raise ValueError(f"The device where the array resides ({array_device}) is different from the current "
                         f"device ({state.current}). Peer access is unavailable between these devices.")


# -- cupy.cuda.runtime -----------------------------------------------------------------------------
def getDeviceCount():  # noqa: N802 (CuPy's names)
    _check_device(0)
    return state.device_count


def getDevice():  # noqa: N802
    _check_device(state.current)
    return state.current


def setDevice(device):  # noqa: N802
    _check_device(int(device))
    state.current = int(device)


def getDeviceProperties(device):  # noqa: N802
    _check_device(int(device))
    return {"name": DEVICE_NAME, "totalGlobalMem": TOTAL_MEMORY, "multiProcessorCount": 1, "major": 0,
            "minor": 0, "warpSize": 32, "pciBusID": int(device), "pciDeviceID": 0, "pciDomainID": 0}


def deviceSynchronize():  # noqa: N802
    _check_device(state.current)


def runtimeGetVersion():  # noqa: N802
    return 12080


def driverGetVersion():  # noqa: N802
    return 12080


def memGetInfo():  # noqa: N802
    used = _pool.device_pool(state.current).total
    return TOTAL_MEMORY - used, TOTAL_MEMORY


RUNTIME_FUNCTIONS = (getDeviceCount, getDevice, setDevice, getDeviceProperties, deviceSynchronize,
                     runtimeGetVersion, driverGetVersion, memGetInfo)


# -- Device ----------------------------------------------------------------------------------------
class Device:
    """cupy.cuda.Device(device=None): a device id, a context manager that makes it current."""

    def __init__(self, device=None):
        if device is None:
            device = state.current
        self._id = device.id if isinstance(device, Device) else int(device)
        self._previous = []

    id = property(lambda self: self._id, doc="The device number.")

    def use(self):
        """Make this device the current one."""
        setDevice(self._id)

    def synchronize(self):
        """Wait for the device (nothing is queued on the stand-in)."""
        _check_device(self._id)

    def __enter__(self):
        self._previous.append(state.current)
        setDevice(self._id)
        return self

    def __exit__(self, *exc):
        state.current = self._previous.pop()

    def __eq__(self, other):
        return isinstance(other, Device) and other.id == self._id

    def __hash__(self):
        return hash(self._id)

    def __repr__(self):
        return f"<CUDA Device {self._id}>"

    def __getattr__(self, name):
        raise api.missing_member("cupy.cuda.Device", "Device", name)


# -- Streams ---------------------------------------------------------------------------------------
_stream_addresses = itertools.count(0x7E00_0000_0000, 0x200)  # made-up handles, never reused
_live_streams = weakref.WeakValueDictionary()  # ptr -> Stream, for the libraries that take a raw handle


class Stream:
    """cupy.cuda.Stream: work runs at once on the stand-in, so a stream only orders nothing.

    ``ptr`` is its handle (0 for the null stream, made up for others) and
    ``device_id`` the device that was current when it was made (-1 for the
    null stream), as in CuPy; ``stream_at(ptr)`` finds a live stream by handle.
    """

    null = None  # set below: Stream.null, the default stream

    def __init__(self, null=False, non_blocking=False, ptds=False, priority=None):
        self.ptr, self.device_id = (0, -1) if null else (next(_stream_addresses), state.current)
        if not null:
            _live_streams[self.ptr] = self

    def synchronize(self):
        """Wait for the stream's work (there is none left on the stand-in)."""

    def use(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def __getattr__(self, name):
        raise api.missing_member("cupy.cuda.Stream", "Stream", name)


Stream.null = Stream(null=True)


def get_current_stream(device_id=None):
    return Stream.null


def stream_at(ptr):
    """The live Stream whose ``ptr`` is ``ptr``, or None."""
    return Stream.null if ptr == 0 else _live_streams.get(ptr)


# -- Memory pool -----------------------------------------------------------------------------------
_BLOCK = 512  # CuPy rounds every allocation up to a multiple of 512 bytes


class _DevicePool:
    def __init__(self):
        self.used = 0
        self.total = 0
        self.free_blocks = collections.Counter()  # rounded size -> free blocks kept for reuse

    def allocate(self, nbytes):
        size = -(-nbytes // _BLOCK) * _BLOCK
        if self.free_blocks[size]:
            self.free_blocks[size] -= 1
        else:
            self.total += size
        self.used += size
        return size

    def release(self, size):
        self.used -= size
        self.free_blocks[size] += 1

    def free_all(self):
        self.total -= sum(size * count for size, count in self.free_blocks.items())
        self.free_blocks.clear()


class MemoryPool:
    """cupy.cuda.MemoryPool: byte counts of the current device's pool (as CuPy's methods report them)."""

    def __init__(self, allocator=None):
        self._pools = collections.defaultdict(_DevicePool)

    def device_pool(self, device_id):
        return self._pools[device_id]

    def used_bytes(self):
        """Bytes held by live arrays on the current device."""
        return self._pools[state.current].used

    def total_bytes(self):
        """Bytes the pool holds on the current device: live arrays plus freed blocks kept for reuse."""
        return self._pools[state.current].total

    def free_bytes(self):
        """Bytes in freed blocks kept for reuse on the current device."""
        pool = self._pools[state.current]
        return pool.total - pool.used

    def n_free_blocks(self):
        return sum(self._pools[state.current].free_blocks.values())

    def free_all_blocks(self, stream=None):
        """Return every freed block of the current device (live arrays keep theirs)."""
        self._pools[state.current].free_all()

    def __getattr__(self, name):
        raise api.missing_member("cupy.cuda.MemoryPool", "MemoryPool", name)


_pool = MemoryPool()


def get_default_memory_pool():
    """cupy.get_default_memory_pool()."""
    return _pool


def allocate(nbytes, device_id):
    """Charge ``nbytes`` to ``device_id``'s pool; returns the rounded size to ``release`` later."""
    return _pool.device_pool(device_id).allocate(nbytes) if nbytes else 0


def release(size, device_id):
    if size:
        _pool.device_pool(device_id).release(size)

