"""``cupy.cuda.nccl`` on the stand-in: NCCL's collectives between simulated GPUs, carried by MPI.

On GPUs, NCCL moves arrays from GPU memory to GPU memory, and the host never
sees them. Here a GPU's memory is host memory, so the stand-in's communicator
finds the arrays behind the raw device pointers it is given (addresses.py) and
moves their bytes through MPI (mpi4py), between the processes ``mpiexec``
started, one rank per process, as minicnn runs NCCL. Each process simulates its
own devices (``python -m tests.standin.run --devices N``); the rank uses the
device that was current when it created its communicator.

Creating a communicator, ``NcclCommunicator(ndev, commId, rank)``:

* ndev 1: a communicator of this process alone; no MPI.
* ndev > 1: collective over ``MPI.COMM_WORLD``: every process of it creates one
  at the same time, and those that pass the same id (from ``get_unique_id()``
  on one of them) become one communicator, ordered by ``rank``. (NCCL lets a
  subset of processes do this; the stand-in needs them all.) The process must
  already be in MPI (mpi4py imported: ``minicnn.distributed.init()`` does it).
  A process that does not arrive within ``JOIN_TIMEOUT_S`` makes the others
  raise, where NCCL would wait forever.

Strict, as the rest of the stand-in:

* Arguments are taken as CuPy's Cython signatures take them: Python ints
  (``TypeError: an integer is required``), counts >= 0, a ``commId`` of 128
  bytes (CuPy 14 gives bytes; CuPy 13 and older gave a tuple of ints).
* Each buffer must be a pointer into a live device array (``x.data.ptr``) on
  the communicator's device, whose element type is ``datatype``, with ``count``
  elements from there; the stream must be 0 (the null stream) or a live
  stream's ``ptr`` on that device.
* Every rank must make the same call: the same collective, count, datatype, op
  and root. Each call first compares the ranks' calls and the outcome of their
  checks through MPI, so a mismatch, or a bad argument on one rank, raises
  NcclError on every rank instead of hanging or mixing data.

Counted (counters.py): each collective is one device operation (a kernel on a
GPU; none for a count of 0), charged to the caller's line, and no read or
upload: on GPUs the data never passes through the host.

Implemented: ``get_unique_id``, ``NcclCommunicator`` (``allReduce``,
``reduce``, ``bcast``, ``broadcast``, ``allGather``, ``reduceScatter``,
``rank_id``, ``size``, ``device_id``, ``destroy``, ``abort``), ``NcclError``
and the constants. The rest of CuPy's NCCL API (``send``/``recv``, groups,
``initAll``, ``commSplit``, ``NcclConfig``) raises NotImplementedError.
"""
import itertools
import os
import sys
import time

import numpy as np

from . import addresses, api, counters, cuda

MODULE = "cupy.cuda.nccl"
UNIQUE_ID_BYTES = 128
JOIN_TIMEOUT_S = 120.0  # how long a process waits for the others to create their communicators
_ID_MARK = b"CuPy stand-in NCCL id:"
_serial_numbers = itertools.count()


# NCCL's enums as cupy.cuda.nccl names them (aliases too: NCCL_FLOAT is NCCL_FLOAT32...)
CONSTANTS = {"NCCL_SUM": 0, "NCCL_PROD": 1, "NCCL_MAX": 2, "NCCL_MIN": 3, "NCCL_AVG": 4,
             "NCCL_INT8": 0, "NCCL_CHAR": 0, "NCCL_UINT8": 1, "NCCL_INT32": 2, "NCCL_INT": 2, "NCCL_UINT32": 3,
             "NCCL_INT64": 4, "NCCL_UINT64": 5, "NCCL_FLOAT16": 6, "NCCL_HALF": 6, "NCCL_FLOAT32": 7,
             "NCCL_FLOAT": 7, "NCCL_FLOAT64": 8, "NCCL_DOUBLE": 8, "NCCL_BFLOAT16": 9, "available": True}
_constant = CONSTANTS.__getitem__


_DTYPES = {_constant(f"NCCL_{name.upper()}"): np.dtype(name)
           for name in ("int8", "uint8", "int32", "uint32", "int64", "uint64", "float16", "float32", "float64")}
_DATATYPE_NAMES = {value: f"NCCL_{dtype.name.upper()}" for value, dtype in _DTYPES.items()}
_BFLOAT16 = _constant("NCCL_BFLOAT16")
_OPS = {_constant(f"NCCL_{name}"): name for name in ("SUM", "PROD", "MAX", "MIN", "AVG")}
_REDUCTIONS = {"SUM": np.add, "PROD": np.multiply, "MAX": np.maximum, "MIN": np.minimum}
INVALID_ARGUMENT, INVALID_USAGE = 4, 5  # ncclInvalidArgument, ncclInvalidUsage


class NcclError(RuntimeError):
    """cupy_backends.cuda.libs.nccl.NcclError(status), with NCCL's message for the status."""

    __module__ = "cupy_backends.cuda.libs.nccl"
    _MESSAGES = {0: "NCCL_ERROR_SUCCESS: no error",
                 1: "NCCL_ERROR_UNHANDLED_CUDA_ERROR: unhandled cuda error (run with NCCL_DEBUG=INFO for details)",
                 2: "NCCL_ERROR_SYSTEM_ERROR: unhandled system error (run with NCCL_DEBUG=INFO for details)",
                 3: "NCCL_ERROR_INTERNAL_ERROR: internal error - please report this issue to the NCCL developers",
                 4: "NCCL_ERROR_INVALID_ARGUMENT: invalid argument (run with NCCL_DEBUG=WARN for details)",
                 5: "NCCL_ERROR_INVALID_USAGE: invalid usage (run with NCCL_DEBUG=WARN for details)",
                 6: "NCCL_ERROR_REMOTE_ERROR: remote process exited or there was a network error"}

    def __init__(self, status):
        self.status = status
        super().__init__(self._MESSAGES[status])


def _error(status, why):
    """NcclError(status), its message followed by what the stand-in found wrong."""
    error = NcclError(status)
    error.args = (f"{error.args[0]}; CuPy stand-in: {why}",)
    return error


def _c_int(value, name, unsigned=False):
    """``value`` as Cython converts an ``int``/``size_t``/``intptr_t`` argument: a Python int, or an error."""
    if not isinstance(value, int):
        raise TypeError(f"an integer is required (argument {name!r}, got {type(value).__name__})")
    if unsigned and value < 0:
        raise OverflowError(f"can't convert negative value to size_t (argument {name!r})")
    return value


def get_unique_id():
    """The id of a communicator to be, as bytes (CuPy 14; a tuple of ints before): the stand-in's mark,
    this process and a serial number, then random bytes."""
    made_here = _ID_MARK + f"{os.getpid()}:{next(_serial_numbers)}:".encode()
    return made_here + os.urandom(UNIQUE_ID_BYTES - len(made_here))


# -- the transport: MPI between processes, nothing for a communicator of one ---------------------------------------
class _Alone:
    """What a communicator of one rank needs of an MPI communicator (the same mpi4py method names)."""

    def allgather(self, value):
        return [value]

    def Allgather(self, send, receive):  # noqa: N802 (mpi4py's names)
        receive[...] = send

    def Bcast(self, buffer, root):  # noqa: N802
        pass


def _join(ndev, comm_id, rank):
    """The MPI communicator of the processes that passed ``comm_id``, ordered by their NCCL rank."""
    MPI = sys.modules.get("mpi4py.MPI")  # noqa: N806 (mpi4py's name)
    if MPI is None or not MPI.Is_initialized():
        raise _error(INVALID_USAGE, f"NcclCommunicator(ndev={ndev}) joins {ndev} processes, and the stand-in joins "
                                    "them through MPI, but this process is not in MPI: start the processes with "
                                    "mpiexec and import mpi4py.MPI first (minicnn.distributed.init() does)")
    world = MPI.COMM_WORLD
    if world.Get_size() < ndev:
        raise _error(INVALID_ARGUMENT, f"ndev={ndev}, but MPI.COMM_WORLD has {world.Get_size()} process(es): the "
                                       "stand-in runs one NCCL rank per MPI process")
    _wait_for_every_process(world)
    joined = world.allgather((comm_id, ndev, rank))
    communicators = sorted({their_id for their_id, _, _ in joined})
    mine = world.Split(communicators.index(comm_id), key=rank)
    ranks = sorted(their_rank for their_id, _, their_rank in joined if their_id == comm_id)
    sizes = {their_ndev for their_id, their_ndev, _ in joined if their_id == comm_id}
    if sizes != {ndev} or ranks != list(range(ndev)):
        raise _error(INVALID_ARGUMENT, f"the processes that passed this id gave ndev {sorted(sizes)} and ranks "
                                       f"{ranks}: each of the ndev ranks 0 to ndev - 1 must join once, with the "
                                       "same ndev")
    return mine


def _wait_for_every_process(world):
    request = world.Ibarrier()
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    while not request.Test():
        if time.monotonic() > deadline:
            raise _error(INVALID_USAGE, f"not every one of the {world.Get_size()} MPI processes created a "
                                        f"NcclCommunicator within {JOIN_TIMEOUT_S:g} s: creating one is collective, "
                                        "every process must create its own at the same time (NCCL would wait "
                                        "forever)")
        time.sleep(0.001)


# -- the communicator ----------------------------------------------------------------------------------------------
class NcclCommunicator:
    """cupy.cuda.nccl.NcclCommunicator(ndev, commId, rank, config=None): rank ``rank`` of ``ndev``, on the
    current device. Collective: see the module's docstring."""

    __module__ = "cupy_backends.cuda.libs.nccl"

    def __init__(self, ndev, commId, rank, config=None):  # noqa: N803 (CuPy's names)
        ndev, rank = _c_int(ndev, "ndev"), _c_int(rank, "rank")
        if not isinstance(commId, bytes):
            raise TypeError(f"Argument 'commId' has incorrect type (expected bytes, got {type(commId).__name__})")
        if len(commId) != UNIQUE_ID_BYTES:
            raise ValueError(f"commId length {len(commId)} != {UNIQUE_ID_BYTES}.")
        if config is not None:
            raise api.not_implemented("cupy.cuda.nccl.NcclCommunicator(config=)")
        if not commId.startswith(_ID_MARK):
            raise _error(INVALID_ARGUMENT, "commId was not made by get_unique_id()")
        if not 0 <= rank < ndev:
            raise _error(INVALID_ARGUMENT, f"rank {rank} is not one of the ranks 0 to ndev - 1 = {ndev - 1}")
        if cuda.state.device_count == 0:
            raise _error(1, "there is no CUDA device")
        self._device, self._rank, self._size = cuda.state.current, rank, ndev
        self._mpi = _Alone() if ndev == 1 else _join(ndev, commId, rank)

    def __getattr__(self, name):
        raise api.missing_member(f"{MODULE}.NcclCommunicator", "NcclCommunicator", name)

    def _alive(self):
        if self._mpi is None:
            raise _error(INVALID_ARGUMENT, "this communicator was destroyed")
        return self

    def rank_id(self):
        """This process's rank in the communicator."""
        return self._alive()._rank

    def size(self):
        """How many ranks the communicator has."""
        return self._alive()._size

    def device_id(self):
        """The device this rank works on: the one that was current when it was created."""
        return self._alive()._device

    def destroy(self):
        """Free this rank of the communicator (a local act); later calls fail."""
        self._mpi = None

    abort = destroy

    # -- collectives -------------------------------------------------------------------------------------------
    def allReduce(self, sendbuf, recvbuf, count, datatype, op, stream):  # noqa: N802 (CuPy's names)
        """Every rank's ``recvbuf`` gets the ``op`` of all ranks' ``sendbuf`` (``count`` elements each)."""
        call = _Call(self, "allReduce", count, datatype, stream, op=op, pointers=(sendbuf, recvbuf))
        send, receive = call.agree(lambda: (call.elements("sendbuf", sendbuf), call.elements("recvbuf", recvbuf)))
        receive[...] = self._reduce(op, self._gather(send))

    def reduce(self, sendbuf, recvbuf, count, datatype, op, root, stream):
        """Rank ``root``'s ``recvbuf`` gets the ``op`` of all ranks' ``sendbuf`` (other ranks' is not used)."""
        call = _Call(self, "reduce", count, datatype, stream, op=op, root=root, pointers=(sendbuf, recvbuf))
        send, receive = call.agree(lambda: (call.elements("sendbuf", sendbuf),
                                            call.elements("recvbuf", recvbuf) if self._rank == root else None))
        result = self._reduce(op, self._gather(send))
        if receive is not None:
            receive[...] = result

    def bcast(self, buff, count, datatype, root, stream):
        """Every rank's ``buff`` gets rank ``root``'s, in place."""
        call = _Call(self, "bcast", count, datatype, stream, root=root, pointers=(buff,))
        buffer = call.agree(lambda: call.elements("buff", buff))
        self._mpi.Bcast(buffer.view(np.uint8), root)

    def broadcast(self, sendbuff, recvbuff, count, datatype, root, stream):
        """Every rank's ``recvbuff`` gets rank ``root``'s ``sendbuff`` (other ranks' is not used)."""
        call = _Call(self, "broadcast", count, datatype, stream, root=root, pointers=(sendbuff, recvbuff))
        send, receive = call.agree(lambda: (call.elements("sendbuff", sendbuff) if self._rank == root else None,
                                            call.elements("recvbuff", recvbuff)))
        if send is not None:
            receive[...] = send
        self._mpi.Bcast(receive.view(np.uint8), root)

    def allGather(self, sendbuf, recvbuf, count, datatype, stream):  # noqa: N802
        """Every rank's ``recvbuf`` (``count`` x ranks elements) gets all ranks' ``sendbuf``, in rank order."""
        call = _Call(self, "allGather", count, datatype, stream, pointers=(sendbuf, recvbuf))
        send, receive = call.agree(lambda: (call.elements("sendbuf", sendbuf),
                                            call.elements("recvbuf", recvbuf, count * self._size)))
        receive[...] = self._gather(send).reshape(-1)

    def reduceScatter(self, sendbuf, recvbuf, recvcount, datatype, op, stream):  # noqa: N802
        """Rank r's ``recvbuf`` gets part r (``recvcount`` elements) of the ``op`` of all ranks' ``sendbuf``."""
        call = _Call(self, "reduceScatter", recvcount, datatype, stream, op=op, pointers=(sendbuf, recvbuf))
        send, receive = call.agree(lambda: (call.elements("sendbuf", sendbuf, recvcount * self._size),
                                            call.elements("recvbuf", recvbuf)))
        mine = slice(self._rank * recvcount, (self._rank + 1) * recvcount)
        receive[...] = self._reduce(op, self._gather(send))[mine]

    def _gather(self, send):
        """Every rank's ``send`` (1-D, the same size on all), stacked in rank order: shape (ranks, size)."""
        gathered = np.empty((self._size, send.size), send.dtype)
        self._mpi.Allgather(send.view(np.uint8), gathered.reshape(-1).view(np.uint8))
        return gathered

    def _reduce(self, op, gathered):
        """``op`` over the ranks (axis 0), in rank order, so that every rank computes the same bits."""
        name = _OPS[op]
        if name == "AVG":
            return (np.add.reduce(gathered, axis=0, dtype=gathered.dtype) / self._size).astype(gathered.dtype)
        return _REDUCTIONS[name].reduce(gathered, axis=0, dtype=gathered.dtype)


class _Call:
    """One collective call on one rank: its arguments' types at once (as Cython's), the rest in ``agree``."""

    def __init__(self, comm, name, count, datatype, stream, op=None, root=None, pointers=()):
        self.comm = comm._alive()
        self.count = _c_int(count, "count", unsigned=True)
        self.datatype, self.stream = _c_int(datatype, "datatype"), _c_int(stream, "stream")
        self.op = None if op is None else _c_int(op, "op")
        if _OPS.get(op) == "AVG" and datatype in _DTYPES and _DTYPES[datatype].kind != "f":
            raise NotImplementedError("the CuPy stand-in's NCCL averages floating-point data only")
        self.root = None if root is None else _c_int(root, "root")
        for pointer in pointers:
            _c_int(pointer, "buffer")
        details = [f"count={count}", f"datatype={_DATATYPE_NAMES.get(datatype, datatype)}"]
        details += [] if op is None else [f"op=NCCL_{_OPS.get(op, op)}"]
        details += [] if root is None else [f"root={root}"]
        self.description = f"{name}({', '.join(details)})"

    def agree(self, buffers):
        """Check the call here and return ``buffers()`` (the arrays behind the pointers), once every rank's
        call is known to be the same and to have passed its checks; else NcclError on every rank."""
        try:
            self._check_arguments()
            result, problem = buffers(), None
        except NcclError as error:
            result, problem = error, str(error)
        calls = self.comm._mpi.allgather((self.description, problem))
        if problem is not None:
            raise result
        failed = [f"rank {rank}: {theirs}" for rank, (_, theirs) in enumerate(calls) if theirs is not None]
        if failed:
            raise _error(INVALID_USAGE, f"{self.description} failed on another rank: " + "; ".join(failed))
        if any(description != self.description for description, _ in calls):
            raise _error(INVALID_USAGE, "the ranks made different calls, where every rank must make the same "
                                        "collective with the same count, datatype, op and root: "
                                        + "; ".join(f"rank {rank}: {call}" for rank, (call, _) in enumerate(calls)))
        counters.record("device_ops", 1 if self.count else 0)
        return result

    def _check_arguments(self):
        if self.datatype == _BFLOAT16:
            raise _error(INVALID_ARGUMENT, "NCCL_BFLOAT16: NumPy, so the stand-in, has no bfloat16 arrays")
        if self.datatype not in _DTYPES:
            raise _error(INVALID_ARGUMENT, f"datatype {self.datatype} is none of NCCL's")
        if self.op is not None and self.op not in _OPS:
            raise _error(INVALID_ARGUMENT, f"op {self.op} is none of NCCL_SUM, NCCL_PROD, NCCL_MAX, NCCL_MIN, "
                                           "NCCL_AVG")
        if self.root is not None and not 0 <= self.root < self.comm._size:
            raise _error(INVALID_ARGUMENT, f"root {self.root} is not a rank of this communicator of "
                                           f"{self.comm._size}")
        stream = cuda.stream_at(self.stream)
        if stream is None or stream.device_id not in (-1, self.comm._device):
            where = "no live stream" if stream is None else f"a stream of device {stream.device_id}"
            raise _error(1, f"stream {self.stream:#x} is {where}; this communicator works on device "
                            f"{self.comm._device} (give get_current_stream().ptr, or 0 for the null stream)")

    def elements(self, name, pointer, count=None):
        """A NumPy view of the ``count`` elements (the call's count by default) at device address ``pointer``."""
        count = self.count if count is None else count
        dtype = _DTYPES[self.datatype]
        if count == 0:
            return np.empty(0, dtype)
        allocation = addresses.find(pointer)
        if allocation is None:
            raise _error(INVALID_ARGUMENT, f"{name} {pointer:#x} is no address in a live device array (give "
                                           "x.data.ptr of a cupy.ndarray x that is still alive)")
        device = self.comm._device
        if allocation.device != device:
            raise _error(1, f"{name} points into {allocation}, but this communicator works on device {device}: "
                            "each rank's communicator reduces on the GPU that was current when it was created, and "
                            "peer access is unavailable between the simulated devices")
        if allocation.dtype != dtype:
            raise _error(INVALID_ARGUMENT, f"{name} points into {allocation}, but datatype is "
                                           f"{_DATATYPE_NAMES[self.datatype]}: NCCL would read its bytes as {dtype}")
        offset = pointer - allocation.start
        if offset % dtype.itemsize:
            raise _error(INVALID_ARGUMENT, f"{name} is {offset} bytes into {allocation}: not at an element")
        left = (allocation.nbytes - offset) // dtype.itemsize
        if count > left:
            raise _error(INVALID_ARGUMENT, f"{name} points into {allocation}, with {left} element(s) from there "
                                           f"to its end, but the call has {count}")
        return allocation.elements(pointer, count, dtype)
