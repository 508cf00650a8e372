"""Device addresses: ``ndarray.data`` (a ``cupy.cuda.MemoryPointer``) and the way back to an array's memory.

CuPy hands raw device pointers (``x.data.ptr``, an int) to the libraries that
take them, such as NCCL. The stand-in's device memory is NumPy's, so its
addresses are made up, but they behave as device addresses do:

* An allocation (an array that is no view, with the NumPy memory it holds) gets
  its own range of addresses the first time ``.data`` is read on it or on one of
  its views. Ranges are 512-byte aligned, as CuPy's allocations, and never
  reused: a pointer kept after its array died finds nothing here (on a GPU it
  would read whatever took the memory).
* A view's pointer is its allocation's plus its byte offset, so
  ``x[2:].data.ptr == x.data.ptr + 2 * x.itemsize``, and views that tile a
  buffer have pointers that tile its range.
* ``find(ptr)`` gives the live allocation holding an address, and
  ``Allocation.elements`` a NumPy view of elements there: how the stand-in's
  NCCL (nccl.py) reaches the memory behind the pointers it is given.

Reading ``.data`` costs nothing: no device work, no read.
"""
import bisect

import numpy as np
from numpy.lib.array_utils import byte_bounds

from . import api, cuda

_ALIGNMENT = 512
_FIRST_ADDRESS = 0x7F00_0000_0000  # where CUDA's unified address space tends to put device memory
_next_address = _FIRST_ADDRESS
_starts = []  # the start of each live allocation's range, in increasing order
_allocations = {}  # start -> Allocation


class Allocation:
    """The device memory of one array: addresses ``start`` to ``start + nbytes`` on ``device``.

    ``memory`` is the NumPy array whose bytes these are, ``dtype`` the element
    type of the array they belong to.
    """

    __slots__ = ("start", "nbytes", "device", "dtype", "memory", "_host_start")

    def __init__(self, start, memory, dtype, device):
        low, high = byte_bounds(memory)
        self.start, self.nbytes, self.device, self.dtype = start, high - low, device, dtype
        self.memory, self._host_start = memory, low

    def address_of(self, data):
        """The device address of NumPy array ``data``'s first element (``data`` shares this memory)."""
        return self.start + data.__array_interface__["data"][0] - self._host_start

    def elements(self, ptr, count, dtype):
        """A NumPy view of ``count`` elements of ``dtype`` from address ``ptr``, which must lie in this range."""
        if not (self.memory.flags.c_contiguous or self.memory.flags.f_contiguous):
            raise api.not_implemented("raw pointers into an array made by as_strided (the stand-in cannot reach it)")
        offset = ptr - self.start
        flat = self.memory.reshape(-1, order="A").view(np.uint8)  # the bytes in memory order (a view)
        return flat[offset:offset + count * dtype.itemsize].view(dtype)

    def __repr__(self):
        count = self.nbytes // self.dtype.itemsize
        return f"an array of {count:,} {self.dtype} element(s) at 0x{self.start:x} on device {self.device}"


def allocate(memory, dtype, device):
    """A new range of addresses for NumPy array ``memory``'s bytes; returns its start, 0 when there are none."""
    global _next_address
    allocation = Allocation(_next_address, memory, dtype, device)
    if allocation.nbytes == 0:
        return 0
    _next_address += -(-allocation.nbytes // _ALIGNMENT) * _ALIGNMENT
    _allocations[allocation.start] = allocation
    _starts.append(allocation.start)  # addresses only grow: the list stays sorted
    return allocation.start


def release(start):
    """Forget the allocation at ``start`` (its array died)."""
    del _allocations[start]
    _starts.remove(start)


def allocation_at(start):
    return _allocations[start]


def find(ptr):
    """The live Allocation whose range holds address ``ptr``, or None."""
    index = bisect.bisect_right(_starts, ptr) - 1
    if index < 0:
        return None
    allocation = _allocations[_starts[index]]
    return allocation if ptr < allocation.start + allocation.nbytes else None


class MemoryPointer:
    """cupy.cuda.MemoryPointer: a device address, ``ptr``, on device ``device_id`` (made up on the stand-in)."""

    __module__ = "cupy.cuda.memory"
    __slots__ = ("_ptr", "_device_id")

    def __init__(self, mem, offset):
        raise api.not_implemented("cupy.cuda.MemoryPointer(mem, offset) (only ndarray.data makes one)")

    @classmethod
    def _at(cls, ptr, device_id):
        pointer = cls.__new__(cls)
        pointer._ptr, pointer._device_id = ptr, device_id
        return pointer

    ptr = property(lambda self: self._ptr, doc="The address, an int (0 for an array of no bytes).")
    device_id = property(lambda self: self._device_id, doc="The number of the device the memory is on.")
    device = property(lambda self: cuda.Device(self._device_id), doc="The cupy.cuda.Device the memory is on.")

    def __getattr__(self, name):
        raise api.missing_member("cupy.cuda.MemoryPointer", "MemoryPointer", name)
