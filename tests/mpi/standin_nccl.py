"""The CuPy stand-in's cupy.cuda.nccl on 2 ranks, each on its own simulated GPU (tests/test_standin.py launches it):

    mpiexec -n 2 python -m tests.standin.run --devices 2 tests/mpi/standin_nccl.py [collectives|one-rank-never-joins]

collectives: every implemented collective gives NCCL's result, costs one device operation and no read, and each
strict rule fails on both ranks (the rank with the bad argument names it) while the communicator stays usable.
one-rank-never-joins: rank 0 creates a communicator that rank 1 never joins; it must fail, not wait forever.
"""
import sys

import numpy as np
from mpi4py import MPI

import cupy
from cupy.cuda import nccl
from tests import standin
from tests.standin import nccl as standin_nccl

rank = MPI.COMM_WORLD.Get_rank()
assert MPI.COMM_WORLD.Get_size() == 2, "run this with mpiexec -n 2"
cupy.cuda.Device(rank).use()  # one GPU per rank: rank r on device r


def raises(words, call):
    """``call()`` raises NcclError whose message holds every one of ``words``."""
    try:
        call()
    except nccl.NcclError as error:
        assert all(word in str(error) for word in words), f"rank {rank}: {words} not all in: {error}"
        return
    raise AssertionError(f"rank {rank}: expected NcclError mentioning {words}")


def f32(values):
    return cupy.asarray(np.asarray(values, np.float32))


if sys.argv[1:] == ["one-rank-never-joins"]:
    standin_nccl.JOIN_TIMEOUT_S = 2.0
    if rank == 0:
        raises(["not every one of the 2 MPI processes created a NcclCommunicator within 2 s"],
               lambda: nccl.NcclCommunicator(2, nccl.get_unique_id(), 0))
        print("rank 0: the communicator rank 1 never joined failed", flush=True)
        MPI.COMM_WORLD.Abort(1)  # rank 1 waits below: end the job (and the join left pending)
    MPI.COMM_WORLD.recv(source=0)  # never comes
    raise AssertionError("unreachable")

# -- creating: collective, the ranks from one id; a bad join fails on both ranks ----------------------------------
unique_id = MPI.COMM_WORLD.bcast(nccl.get_unique_id() if rank == 0 else None, root=0)
raises(["ndev [2] and ranks [0, 0]", "each of the ndev ranks 0 to ndev - 1 must join once"],
       lambda: nccl.NcclCommunicator(2, unique_id, 0))  # both ranks claim rank 0
comm = nccl.NcclCommunicator(2, unique_id, rank)
assert (comm.rank_id(), comm.size(), comm.device_id()) == (rank, 2, rank)
stream = cupy.cuda.get_current_stream().ptr
F32, I64, F64 = nccl.NCCL_FLOAT32, nccl.NCCL_INT64, nccl.NCCL_FLOAT64

# -- results, as NCCL gives them; one device operation each, no read, no upload ----------------------------------
mine, theirs = np.arange(6.0) + 10 * rank, np.arange(6.0) + 10 * (1 - rank)
x = f32(mine)
with standin.counting() as cost:
    comm.allReduce(x.data.ptr, x.data.ptr, 6, F32, nccl.NCCL_SUM, stream)  # in place
assert (cost.device_ops, cost.syncs, cost.uploads) == (1, 0, 0), cost.report()
np.testing.assert_array_equal(x.get(), mine + theirs)

whole = f32(mine)
part = whole[2:5]  # a view: its pointer is 2 elements into whole's memory
comm.allReduce(part.data.ptr, part.data.ptr, 3, F32, nccl.NCCL_MAX, stream)
np.testing.assert_array_equal(whole.get(), np.concatenate([mine[:2], np.maximum(mine, theirs)[2:5], mine[5:]]))

integers, total = cupy.asarray(np.array([rank + 1, 7], np.int64)), cupy.zeros(2, np.int64)
comm.allReduce(integers.data.ptr, total.data.ptr, 2, I64, nccl.NCCL_PROD, stream)
assert total.get().tolist() == [2, 49] and integers.get().tolist() == [rank + 1, 7]

doubles = cupy.asarray(np.array([rank, 3.0]))
comm.allReduce(doubles.data.ptr, doubles.data.ptr, 2, F64, nccl.NCCL_AVG, stream)
assert doubles.get().tolist() == [0.5, 3.0]

sent, received = f32([rank, 2]), f32([-1, -1])  # (a temporary's pointer would outlive it: keep the arrays)
comm.reduce(sent.data.ptr, received.data.ptr, 2, F32, nccl.NCCL_MIN, 1, stream)  # to rank 1 only
assert received.get().tolist() == ([0, 2] if rank == 1 else [-1, -1])

y = f32(mine)
comm.bcast(y.data.ptr, 6, F32, 1, stream)
np.testing.assert_array_equal(y.get(), np.arange(6.0) + 10)

sent, target = f32(mine), cupy.zeros(6, np.float32)
comm.broadcast(sent.data.ptr, target.data.ptr, 6, F32, 0, stream)
np.testing.assert_array_equal(target.get(), np.arange(6.0))

sent, gathered = f32([rank, rank + 0.5]), cupy.zeros(4, np.float32)
comm.allGather(sent.data.ptr, gathered.data.ptr, 2, F32, stream)
assert gathered.get().tolist() == [0, 0.5, 1, 1.5]

sent, scattered = f32(mine[:4]), cupy.zeros(2, np.float32)
comm.reduceScatter(sent.data.ptr, scattered.data.ptr, 2, F32, nccl.NCCL_SUM, stream)
np.testing.assert_array_equal(scattered.get(), (mine + theirs)[2 * rank:2 * rank + 2])

# -- strict rules: every rank raises, the one at fault names its argument; the communicator stays in step --------
z = f32(mine)
raises(["the ranks made different calls", "rank 0: allReduce(count=6, datatype=NCCL_FLOAT32, op=NCCL_SUM)",
        "rank 1: allReduce(count=5"], lambda: comm.allReduce(z.data.ptr, z.data.ptr, 6 - rank, F32, nccl.NCCL_SUM, 0))


def another_collective_on_rank_1():
    if rank == 0:
        comm.allReduce(z.data.ptr, z.data.ptr, 6, F32, nccl.NCCL_SUM, 0)
    else:
        comm.bcast(z.data.ptr, 6, F32, 0, 0)


raises(["the ranks made different calls", "rank 1: bcast(count=6, datatype=NCCL_FLOAT32, root=0)"],
       another_collective_on_rank_1)
raises(["sendbuf points into an array of 6 float32 element(s)", "but datatype is NCCL_FLOAT64"] if rank == 1 else
       ["failed on another rank: rank 1: ", "but datatype is NCCL_FLOAT64"],
       lambda: comm.allReduce(z.data.ptr, z.data.ptr, 6, F64 if rank == 1 else F32, nccl.NCCL_SUM, 0))
with cupy.cuda.Device(1 - rank):
    elsewhere = f32(mine)  # on the other rank's GPU
raises(["buff points into an array of 6 float32 element(s)", f"on device {1 - rank}",
        f"this communicator works on device {rank}"], lambda: comm.bcast(elsewhere.data.ptr, 6, F32, 0, 0))
raises(["with 4 element(s) from there to its end, but the call has 5"],
       lambda: comm.bcast(z[2:].data.ptr, 5, F32, 0, stream))
comm.allReduce(z.data.ptr, z.data.ptr, 6, F32, nccl.NCCL_SUM, stream)  # still in step after all that
np.testing.assert_array_equal(z.get(), mine + theirs)
print(f"rank {rank}: passed", flush=True)
