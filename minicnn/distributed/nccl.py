"""NCCL for CuPy arrays: the GPUs reduce among themselves, and MPI only introduces them.

An NCCL communicator is made from a *unique id* (128 bytes that say where
rank 0 listens): rank 0 asks NCCL for one, MPI broadcasts it, and every rank
joins with (number of ranks, id, its own rank), on its own GPU. ChainerMN and
Horovod start NCCL the same way. From then on the arrays go from GPU to GPU
(NVLink, PCIe, or the network), never through host memory.

Written against CuPy's ``cupy.cuda.nccl`` (``NcclCommunicator``,
``get_unique_id``, ``allReduce``, ``bcast``).
"""
from .. import backend


def nccl_module():
    """``cupy.cuda.nccl``, or a clear error when CuPy was built without NCCL or cannot find it."""
    backend.require_gpu()
    from cupy.cuda import nccl
    if not getattr(nccl, "available", False):
        raise backend.DeviceUnavailableError(
            "minicnn.distributed needs NCCL for GPU arrays, but CuPy cannot load it; install the NCCL "
            "library for your CUDA version (pip install nvidia-nccl-cu12, or your system's libnccl2)")
    return nccl


class NcclCommunicator:
    """Every rank of an MPI communicator, one GPU each, joined in one NCCL communicator.

    Creating it is collective: every rank of ``mpi_comm`` must create it at the same time.

    Args:
        mpi_comm: an mpi4py communicator, used once, to hand rank 0's unique id to the others.
        device: the index of this rank's GPU.
    """

    def __init__(self, mpi_comm, device):
        self.nccl, self.cupy = nccl_module(), backend.require_gpu(device)
        rank, size = mpi_comm.Get_rank(), mpi_comm.Get_size()
        unique_id = self.nccl.get_unique_id() if rank == 0 else None
        unique_id = mpi_comm.bcast(unique_id, root=0)
        self.device = device
        with self.cupy.cuda.Device(device):
            self.comm = self.nccl.NcclCommunicator(size, unique_id, rank)

    def _arguments(self, array):
        """(pointer, count, NCCL data type, stream) for a collective on ``array``, in place."""
        data_type = getattr(self.nccl, "NCCL_" + array.dtype.name.upper())  # NCCL_FLOAT32, NCCL_INT64, ...
        stream = self.cupy.cuda.get_current_stream(self.device)  # this GPU's, after the kernels that wrote the array
        return array.data.ptr, array.size, data_type, stream.ptr

    def all_reduce_sum(self, array):
        """Sum ``array`` (a contiguous CuPy array on this GPU) over the ranks, in place."""
        pointer, count, data_type, stream = self._arguments(array)
        with self.cupy.cuda.Device(self.device):
            self.comm.allReduce(pointer, pointer, count, data_type, self.nccl.NCCL_SUM, stream)

    def broadcast(self, array, root):
        """Overwrite ``array`` on every rank with rank ``root``'s, in place."""
        pointer, count, data_type, stream = self._arguments(array)
        with self.cupy.cuda.Device(self.device):
            self.comm.bcast(pointer, count, data_type, root, stream)
