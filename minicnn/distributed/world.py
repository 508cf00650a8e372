"""The world of processes: who this process is, how many there are, and how they talk.

Data-parallel training runs the same script in N processes ("ranks"), started
by an MPI launcher: ``mpiexec -n 2 python script.py``. :func:`init` finds out
whether this process was started that way and, if so, joins the others through
MPI (mpi4py). Otherwise the world is this one process, and every collective
is the identity, so the same script runs unchanged without a launcher.

A launcher announces itself in each process's environment. These variables
are looked for (the first one found names the launcher in messages):

* ``PMI_RANK``: MPICH's Hydra ``mpiexec`` (the ``mpich`` wheel), Intel MPI,
  MVAPICH, and Slurm's ``srun --mpi=pmi2``;
* ``OMPI_COMM_WORLD_RANK``: Open MPI's ``mpirun`` / ``mpiexec``;
* ``PMIX_RANK``: PMIx launchers (Open MPI 5's ``prterun``, ``srun --mpi=pmix``).

mpi4py is imported only by :func:`init`, and only under a launcher: importing
``mpi4py.MPI`` initialises MPI, a process-wide act that minicnn's import never
does.
"""
import os
import sys
import time

import numpy as np

from .. import backend

LAUNCHER_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK")

# The element types a collective takes: the same on both transports (MPI for NumPy, NCCL for CuPy).
SUPPORTED_DTYPES = ("int8", "uint8", "int32", "uint32", "int64", "uint64", "float16", "float32", "float64")


def launcher_variable():
    """The name of the MPI launcher's variable found in the environment, or None (no launcher)."""
    for name in LAUNCHER_VARIABLES:
        if name in os.environ:
            return name
    return None


class SingleProcess:
    """The world of one process: there is no one to talk to, so every collective is the identity."""

    rank, size, local_rank, local_size = 0, 1, 0, 1

    def all_reduce_sum(self, array):
        return array

    def broadcast(self, array, root):
        return array

    def all_gather_objects(self, value):
        return [value]

    def broadcast_object(self, value, root):
        return value

    def barrier(self):
        pass

    def abort(self, exit_code):
        raise SystemExit(exit_code)


class MpiWorld:
    """Every process that the launcher started: MPI for NumPy arrays, NCCL for CuPy arrays.

    Attributes:
        comm: this world's own MPI communicator (a duplicate of COMM_WORLD, so that
            minicnn's messages never mix with a user's own MPI traffic).
        rank, size: this process's number, and how many there are.
        local_rank, local_size: the same among the processes on this machine
            (those that share its memory): ``local_rank`` picks this process's GPU.
    """

    def __init__(self, MPI):
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD.Dup()
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        machine = self.comm.Split_type(MPI.COMM_TYPE_SHARED)
        self.local_rank, self.local_size = machine.Get_rank(), machine.Get_size()
        machine.Free()
        self.nccl = None  # made by the first collective on a CuPy array (see _nccl_for)

    def all_reduce_sum(self, array):
        if backend.is_gpu_array(array):
            self._nccl_for(array).all_reduce_sum(array)
        else:
            self.comm.Allreduce(self.MPI.IN_PLACE, array, op=self.MPI.SUM)
        return array

    def broadcast(self, array, root):
        if backend.is_gpu_array(array):
            self._nccl_for(array).broadcast(array, root)
        else:
            self.comm.Bcast(array, root=root)
        return array

    def all_gather_objects(self, value):
        return self.comm.allgather(value)

    def broadcast_object(self, value, root):
        return self.comm.bcast(value, root=root)

    def barrier(self):
        self.comm.Barrier()

    def abort(self, exit_code):
        _end_job(self.MPI, exit_code)

    def _nccl_for(self, array):
        """The NCCL communicator of this process's GPU, made (by every rank together) on first use."""
        from .nccl import NcclCommunicator
        device = array.device.id
        if self.nccl is None:
            self.nccl = NcclCommunicator(self.comm, device)
        elif self.nccl.device != device:
            raise ValueError(f"minicnn.distributed: this process already communicates from gpu:{self.nccl.device}, "
                             f"but got an array on gpu:{device}; use one GPU per process "
                             "(minicnn.distributed.local_gpu() names this process's)")
        return self.nccl


_world = None  # set by init()
_ALONE = SingleProcess()  # the world before init(), where no launcher started this process


def init():
    """Join the other processes if an MPI launcher started this one; else make a world of one.

    Under a launcher this imports mpi4py (which initialises MPI) and installs a
    ``sys.excepthook`` that prints an uncaught exception's traceback and then
    calls ``MPI.COMM_WORLD.Abort(1)``: one rank that fails ends the whole job
    with its error, instead of leaving the others waiting forever in their next
    collective. The hook is process-wide (the previous one still prints the
    traceback first). Calling ``init`` again does nothing.
    """
    global _world
    if _world is not None:
        return
    variable = launcher_variable()
    if variable is None:
        _world = SingleProcess()
        return
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise RuntimeError(f"minicnn.distributed.init: an MPI launcher started this process ({variable} is set), "
                           f"but mpi4py cannot be imported ({error}); install it with "
                           "`python -m pip install -e '.[mpi]'`") from error
    _world = MpiWorld(MPI)
    _abort_on_uncaught_exception(MPI, _world.rank, _world.size)


def _abort_on_uncaught_exception(MPI, rank, size):
    previous_hook = sys.excepthook

    def print_and_abort(kind, value, traceback):
        previous_hook(kind, value, traceback)
        sys.stderr.write(f"minicnn.distributed: rank {rank} of {size} raised {kind.__name__}; "
                         f"aborting all {size} processes (MPI_Abort)\n")
        _end_job(MPI, 1)

    sys.excepthook = print_and_abort


# The launcher carries each process's output through a pipe; MPI_Abort makes it kill every process, and
# what it has not read from the pipe by then is lost (a traceback cut short, about 1 abort in 30 on a busy
# machine). A moment's wait after flushing lets it read the last lines.
OUTPUT_GRACE_SECONDS = 0.2


def _end_job(MPI, exit_code):
    """Flush this process's output, give the launcher a moment to carry it, then MPI_Abort the whole job."""
    sys.stdout.flush()
    sys.stderr.flush()
    time.sleep(OUTPUT_GRACE_SECONDS)
    MPI.COMM_WORLD.Abort(exit_code)


def current_world():
    """The world collectives use: the one :func:`init` made, or a world of one without a launcher.

    Raises RuntimeError when a launcher started this process and ``init()`` has
    not run: each rank would otherwise quietly train on its own.
    """
    if _world is not None:
        return _world
    variable = launcher_variable()
    if variable is not None:
        raise RuntimeError(f"minicnn.distributed.init() has not been called, but an MPI launcher started this "
                           f"process ({variable}={os.environ[variable]}): call init() in every process first")
    return _ALONE


def is_initialized():
    """True once :func:`init` has run in this process."""
    return _world is not None


def rank():
    """This process's number, 0 to ``world_size() - 1`` (0 without a launcher)."""
    return current_world().rank


def world_size():
    """How many processes train together (1 without a launcher)."""
    return current_world().size


def local_rank():
    """This process's number among those on the same machine: the GPU it should use."""
    return current_world().local_rank


def local_world_size():
    """How many processes run on this machine (1 without a launcher): they share its cores and GPUs."""
    return current_world().local_size


def local_gpu():
    """The GPU of this process, "gpu:<local_rank>", for ``model.to(...)``; one GPU per process.

    Makes it CuPy's current device too, so that arrays created without a device
    land there. Raises DeviceUnavailableError if this machine has fewer GPUs
    than processes.
    """
    world = current_world()
    cp = backend.require_gpu()
    count = backend.gpu_count()
    if world.local_size > count:
        raise backend.DeviceUnavailableError(
            f"minicnn.distributed: {world.local_size} processes run on this machine but it has {count} GPU(s); "
            "start at most one process per GPU (mpiexec -n <GPUs>, or -ppn <GPUs per machine>)")
    cp.cuda.Device(world.local_rank).use()
    return f"gpu:{world.local_rank}"


def barrier():
    """Wait until every process has reached this call."""
    current_world().barrier()


def abort(exit_code=1):
    """End every process of the job now, with ``exit_code`` (MPI_Abort); in a world of one, SystemExit.

    For a process that must stop while the others may be waiting for it in a
    collective (which would otherwise wait forever); flushes stdout and stderr first.
    """
    current_world().abort(exit_code)


def all_gather_object(value):
    """The list of every process's ``value`` (any picklable object), in rank order, on every process."""
    return current_world().all_gather_objects(value)


def broadcast_object(value, root=0):
    """``value`` of process ``root`` (any picklable object), returned on every process."""
    world = current_world()
    _check_root("broadcast_object", root, world)
    return world.broadcast_object(value, root) if world.size > 1 else value


def all_reduce(array):
    """Sum ``array`` over every process, in place (each ends with the same sum); returns it.

    Args:
        array: a C-contiguous NumPy array (reduced through MPI) or CuPy array
            (through NCCL, on the GPU), of the same shape and dtype on every rank.
    """
    world = current_world()
    _check_array("all_reduce", array)  # also in a world of one, where it would pass silently
    return world.all_reduce_sum(array) if world.size > 1 else array


def broadcast(array, root=0):
    """Overwrite ``array`` on every process with its values on process ``root``, in place; returns it."""
    world = current_world()
    _check_root("broadcast", root, world)
    _check_array("broadcast", array)
    return world.broadcast(array, root) if world.size > 1 else array


def _check_root(op, root, world):
    if not isinstance(root, int) or isinstance(root, bool) or not 0 <= root < world.size:
        raise ValueError(f"{op}: root must be a rank from 0 to {world.size - 1}, got {root!r}")


def _check_array(op, array):
    """A clear error unless a collective can work on ``array`` in place."""
    if not (isinstance(array, np.ndarray) or backend.is_gpu_array(array)):
        raise TypeError(f"{op}: expected a NumPy or CuPy array, got {type(array).__name__}")
    if not array.flags.c_contiguous:
        raise ValueError(f"{op}: the array must be C-contiguous (one block of memory), got strides {array.strides}")
    if array.dtype.name not in SUPPORTED_DTYPES:
        raise TypeError(f"{op}: dtype {array.dtype} is not supported; use one of {', '.join(SUPPORTED_DTYPES)}")
