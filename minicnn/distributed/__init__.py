"""minicnn.distributed: data-parallel training over processes, GPUs and machines.

N copies of the same script run at once, started by an MPI launcher
(``mpiexec -n N python train.py``); each trains the same model on its own
slice of every batch, and after each backward pass the gradients are averaged
over the copies, so all of them take the same step::

    from minicnn import distributed
    distributed.init()                          # a world of one without a launcher
    distributed.broadcast_parameters(model)     # every rank starts from rank 0's weights
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    ...
    loss.backward()
    distributed.all_reduce_gradients(model)     # the mean over ranks: the whole batch's gradient
    optimizer.step()

The transports are existing engines: MPI (mpi4py) between processes and
machines, for NumPy arrays and to start NCCL; NCCL (through
``cupy.cuda.nccl``) between GPUs, for CuPy arrays. Importing this module
imports neither; :func:`init` imports mpi4py when a launcher started the process.

Batch norm keeps per-rank statistics unless the model uses
:class:`minicnn.nn.SyncBatchNorm` (``F.batch_norm(..., sync=True)``).
"""
from .data_parallel import all_reduce_gradients, broadcast_parameters
from .world import (LAUNCHER_VARIABLES, abort, all_gather_object, all_reduce, barrier, broadcast, broadcast_object,
                    init, is_initialized, launcher_variable, local_gpu, local_rank, local_world_size, rank, world_size)

__all__ = ["LAUNCHER_VARIABLES", "abort", "all_gather_object", "all_reduce", "all_reduce_gradients", "barrier",
           "broadcast", "broadcast_object", "broadcast_parameters", "init", "is_initialized", "launcher_variable",
           "local_gpu", "local_rank", "local_world_size", "rank", "world_size"]
