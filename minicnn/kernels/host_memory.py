"""Big CPU arrays that minicnn's kernels reuse from one training step to the next.

A training step allocates and frees the same big arrays every time (im2col
columns, products, gradients: tens of MB each at batch 32). glibc hands every
freed block over 32 MB back to the system and maps it again for the next one,
so each step page-faults and zero-fills all of them anew: ~15% of a CPU step's
time went there. :func:`minicnn.configure_cpu` can ask glibc to keep freed
memory instead, but that changes the whole process for good. This cache does
the same for minicnn's own arrays only, as CuPy's memory pool does on a GPU.

How it knows a buffer is free: each array handed out is a view of one of the
cache's buffers, and NumPy makes every view of a view point at that buffer
(``array.base``). When nothing but the cache refers to a buffer any more, no
array uses its memory, and the next request for that size gets it. Steps ask
for the same sizes in the same order, so nearly every request after the first
step is a hit.

A request takes the smallest free buffer of its size to twice its size.
What the cache holds is bounded by 1.25 times the most its arrays ever used
at once (glibc, asked to keep freed memory, keeps the process's peak): when a new
buffer would take it past that, free buffers are dropped first, the longest
unused first (glibc then returns them to the system). :func:`release` drops
every free buffer.
"""
import bisect
import sys
import threading

import numpy as np

SMALLEST = 1 << 20            # smaller arrays come from NumPy directly (malloc reuses small blocks anyway)
GRAIN = 1 << 16               # requests are rounded up to this many bytes, so near sizes share buffers

_lock = threading.Lock()
_buffers = {}                 # rounded byte count -> list of uint8 buffers of that size, oldest first
_sizes = []                   # the keys of _buffers, sorted
_peak_in_use = 0              # the most bytes the cache's arrays ever held at once
SLACK = 0.25                  # the cache may hold this much more than its peak in use (sizes never match exactly)
FIT = 2.0                     # a request may take a free buffer up to this many times its size


def _is_free(buffers, i):
    """True when nothing but the list ``buffers`` refers to ``buffers[i]`` (no array uses its memory)."""
    return sys.getrefcount(buffers[i]) == 2  # the list's reference and getrefcount's own argument


def empty(shape, dtype=float):
    """np.empty(shape, dtype), C-ordered, from a reused buffer when the array is big."""
    dtype = np.dtype(dtype)
    shape = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes < SMALLEST:
        return np.empty(shape, dtype)
    size = -(-nbytes // GRAIN) * GRAIN
    with _lock:
        buffer = _take_free(size)
        if buffer is None:
            _make_room(size)
            buffer = np.empty(size, np.uint8)
            _add(buffer)
    return buffer[:nbytes].view(dtype).reshape(shape)


def _add(buffer):
    if buffer.size not in _buffers:
        bisect.insort(_sizes, buffer.size)
        _buffers[buffer.size] = []
    _buffers[buffer.size].append(buffer)


def empty_like(a):
    """np.empty_like(a): a's shape, dtype and memory order (channels-last stays channels-last); see :func:`empty`."""
    order = sorted(range(a.ndim), key=lambda axis: -a.strides[axis])  # axes from the farthest apart in memory
    dense = empty([a.shape[axis] for axis in order], a.dtype)
    return dense.transpose(np.argsort(order))


def _take_free(size):
    """The smallest buffer of ``size`` to 2 x ``size`` bytes that no array uses, moved to the end of its
    list (the last used is the last dropped); None if there is none."""
    for held in _sizes[bisect.bisect_left(_sizes, size):bisect.bisect_right(_sizes, int(FIT * size))]:
        candidates = _buffers[held]
        for i in range(len(candidates)):
            if _is_free(candidates, i):
                candidates.append(candidates.pop(i))
                return candidates[-1]
    return None


def _free_buffers():
    """(size, list, index) of every buffer that no array uses, oldest first within each size."""
    return [(size, buffers, i) for size, buffers in _buffers.items() for i in range(len(buffers))
            if _is_free(buffers, i)]


def free_bytes():
    """Bytes held in buffers that no array uses now."""
    with _lock:
        return sum(size for size, _, _ in _free_buffers())


def held_bytes():
    """Bytes of every buffer the cache holds, in use or free."""
    with _lock:
        return sum(size * len(buffers) for size, buffers in _buffers.items())


def _make_room(size):
    """Before a new buffer of ``size`` bytes: drop free buffers while the cache would hold more than
    1 + SLACK times the most it ever had in use at once (a steady training loop then drops none; a
    change of shapes does)."""
    global _peak_in_use
    free = sum(size for size, _, _ in _free_buffers())
    held = sum(size * len(buffers) for size, buffers in _buffers.items())
    _peak_in_use = max(_peak_in_use, held - free + size)
    _trim(max(0, free - (held + size - int(_peak_in_use * (1 + SLACK)))))


def _trim(limit):
    """Drop free buffers, the longest unused of each size first, until at most ``limit`` free bytes remain."""
    free = _free_buffers()
    total = sum(size for size, _, _ in free)
    dropped = set()
    for size, buffers, i in free:
        if total <= limit:
            break
        dropped.add((size, i))
        total -= size
    for size in {size for size, _ in dropped}:
        kept = [b for i, b in enumerate(_buffers[size]) if (size, i) not in dropped]
        if kept:
            _buffers[size] = kept
        else:
            del _buffers[size]
            _sizes.remove(size)


def release():
    """Drop every free buffer (their memory goes back to the allocator, and from there to the system),
    and count the peak in use from what is in use now."""
    global _peak_in_use
    with _lock:
        _trim(0)
        _peak_in_use = sum(size * len(buffers) for size, buffers in _buffers.items())
