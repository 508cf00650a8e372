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

What the cache holds is bounded: free buffers past :data:`FREE_LIMIT_BYTES` in
all are dropped, oldest first (glibc then returns them to the system).
:func:`release` drops every free buffer.
"""
import sys
import threading

import numpy as np

SMALLEST = 1 << 20            # smaller arrays come from NumPy directly (malloc reuses small blocks anyway)
GRAIN = 1 << 16               # requests are rounded up to this many bytes, so near sizes share buffers
FREE_LIMIT_BYTES = 1 << 30    # free buffers kept at most (a batch-32 GoogLeNet step's biggest arrays fit)

_lock = threading.Lock()
_buffers = {}                 # rounded byte count -> list of uint8 buffers of that size, oldest first


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
            _trim(FREE_LIMIT_BYTES)
            buffer = np.empty(size, np.uint8)
            _buffers.setdefault(size, []).append(buffer)
    return buffer[:nbytes].view(dtype).reshape(shape)


def empty_like(a):
    """np.empty_like(a): a's shape, dtype and memory order (channels-last stays channels-last); see :func:`empty`."""
    order = sorted(range(a.ndim), key=lambda axis: -a.strides[axis])  # axes from the farthest apart in memory
    dense = empty([a.shape[axis] for axis in order], a.dtype)
    return dense.transpose(np.argsort(order))


def _take_free(size):
    """A buffer of ``size`` bytes that no array uses, moved to the end of its list; None if there is none."""
    candidates = _buffers.get(size, [])
    for i in range(len(candidates)):
        if _is_free(candidates, i):
            candidates.append(candidates.pop(i))  # the last used is the last dropped by _trim
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


def release():
    """Drop every free buffer (their memory goes back to the allocator, and from there to the system)."""
    with _lock:
        _trim(0)
