"""The trainer on N ranks: which images each rank trains on, who speaks and writes, and where the ranks agree.

``mpiexec -n N python -m train.cifar ...`` starts N copies of the trainer, and
``minicnn.distributed.init()`` joins them. Alone, a process is a world of one,
where every function here is the identity and nothing is communicated, so one
process trains exactly as it always has.

The global batch. ``--batch-size`` is the batch of one optimizer step, on any
N (it must divide by N). Global batch k of an epoch is positions k*B..(k+1)*B
of the epoch's shuffled order (``EpochPlan``: a function of (seed, epoch), the
same on every rank), and rank r trains on the r-th of N consecutive equal
slices of it (:func:`shard`). Together the ranks cover every batch, so every
epoch, exactly once. A crop and a flip belong to a position of the order, so
each image keeps its own draw; the dropout masks come from a seed that
includes the rank (:func:`rank_counters`). The last batch of an epoch may be
shorter than B and split unevenly: each rank then weights its loss by its
share, so that the mean over ranks (``all_reduce_gradients``) is still the
gradient of the global batch's mean loss.

Who speaks and writes. Rank 0 alone prints (the other ranks' stdout and
stderr go nowhere: :func:`only_rank_0_speaks`), locks the run folder and
writes its files. The running totals of each rank are summed over the ranks
when they are read, so every rank sees the same figures.

Resuming. A checkpoint counts global batches, and where batch k lies in the
epoch's order does not depend on N: a run stopped after batch k (rank 0 saves
the totals of all ranks) continues at batch k on any number of ranks, and each
image of that epoch is still seen once.

Threads. Ranks on one machine share its cores: :func:`cpu_threads_per_rank`.

Agreement. A rank that stops on its own leaves the others waiting forever in
their next collective. So whatever may fail before training (the run folder,
the data, the device) runs in a block that every rank leaves the same way
(:func:`together`, :func:`decided_by_rank_0`); a Ctrl-C becomes a stop at the
same batch on every rank (:func:`any_rank`); a NaN is seen by all in the summed
totals. A rank that must stop alone ends the whole job (:func:`finish`).
"""
import contextlib
import os
import platform
import sys
from typing import NamedTuple

import numpy as np

from minicnn import backend, distributed

from .files import UserError
from .metrics import RunningTotals

FAILURES = (UserError, backend.DeviceUnavailableError)  # what the command prints as one line


class AgreedError(UserError):
    """A UserError raised on every rank at once (by :func:`together` or :func:`decided_by_rank_0`)."""


def is_writer():
    """True on the rank that prints and writes the run's files: rank 0."""
    return distributed.rank() == 0


# -- the global batch, in shards --------------------------------------------------------------------------

class Shard(NamedTuple):
    """This rank's part of positions start..stop of an epoch's order: ``start``..``stop``, and the
    ``weight`` of its mean loss (its share of the batch times the number of ranks; 1 for equal shares)."""

    start: int
    stop: int
    weight: float


def shard(start, stop):
    """Rank r's part of positions start..stop: the r-th of N consecutive slices, whose sizes differ by at most 1."""
    rank, size, count = distributed.rank(), distributed.world_size(), stop - start
    first, last = start + count * rank // size, start + count * (rank + 1) // size
    return Shard(first, last, (last - first) * size / count)


def check_global_batch(batch_size):
    """UserError unless ``batch_size`` (the global batch) splits evenly over the ranks."""
    size = distributed.world_size()
    if batch_size % size:
        below, above = batch_size // size * size, (batch_size // size + 1) * size
        raise UserError(f"--batch-size {batch_size} is the global batch, split evenly over the {size} ranks, so it "
                        f"must divide by {size}: try {below or above}" + (f" or {above}" if below else ""))


def check_last_batch(images, batch_size):
    """UserError if an epoch's last, shorter batch would leave some rank without an image."""
    size, last = distributed.world_size(), images % batch_size
    if 0 < last < size:
        raise UserError(f"the last batch of each epoch would hold {last} of the {images} training images, fewer "
                        f"than the {size} ranks (each needs one at least): change --limit or --batch-size")


def rank_counters():
    """What a rank adds to the counters that seed its dropout masks: nothing on rank 0 (it draws what
    one process draws), its number on the others (so that each rank draws its own masks)."""
    rank = distributed.rank()
    return (rank,) if rank else ()


def carried_totals(saved):
    """The running totals of an epoch resumed midway: rank 0 carries the saved (global) sums, the
    other ranks start from zero, so that the sum over the ranks counts them once."""
    return RunningTotals(**saved) if is_writer() else RunningTotals()


# -- threads -------------------------------------------------------------------------------------------------

def _usable_cores():
    try:
        return os.sched_getaffinity(0)
    except AttributeError:  # macOS, Windows
        return set(range(os.cpu_count() or 1))


def cpu_threads_per_rank():
    """max(1, cores // ranks) on this machine: the cores its ranks may run on together, shared out
    among them (and no more than this rank may run on). Two ranks that each ran one thread per core
    of a 2-core machine took 68 s for a training step that takes 5.8 s with one thread each."""
    mine, machine = _usable_cores(), platform.node()
    here = [set(cores) for name, cores in distributed.all_gather_object((machine, sorted(mine))) if name == machine]
    return max(1, min(len(mine), len(set().union(*here)) // len(here)))


# -- speaking, failing and stopping together ----------------------------------------------------------------

@contextlib.contextmanager
def only_rank_0_speaks():
    """On ranks other than 0, send stdout and stderr nowhere for the block (their progress bars,
    lines and the errors every rank meets alike). A traceback still shows: the exception hook of
    ``distributed.init()`` prints it after the block, on the real stderr."""
    if is_writer():
        yield
        return
    with open(os.devnull, "w") as nowhere, contextlib.redirect_stdout(nowhere), contextlib.redirect_stderr(nowhere):
        yield


def _raise_first(failures):
    for rank, message in enumerate(failures):
        if message is not None:
            raise AgreedError(message if rank == 0 else f"on rank {rank}: {message}")


def together(work):
    """``work()`` on every rank; if it fails (UserError, DeviceUnavailableError) on any rank, every
    rank raises AgreedError with the first failure's message. ``work`` must call no collective."""
    if distributed.world_size() == 1:
        return work()
    result, failure = None, None
    try:
        result = work()
    except FAILURES as error:
        failure = str(error)
    _raise_first(distributed.all_gather_object(failure))
    return result


def decided_by_rank_0(work):
    """``work()`` on rank 0 only; every rank returns its result (pickled and sent), or raises
    AgreedError with its failure. ``work`` must call no collective."""
    if distributed.world_size() == 1:
        return work()
    result, failure = None, None
    if is_writer():
        try:
            result = work()
        except FAILURES as error:
            failure = str(error)
    result, failure = distributed.broadcast_object((result, failure))
    _raise_first([failure])
    return result


def first_on_each_machine(work):
    """:func:`together`, but the first rank of each machine runs ``work`` before the others do (it
    downloads the data, which the others then find)."""
    first = distributed.local_rank() == 0
    result = together(work if first else lambda: None)
    later = together(work if not first else lambda: None)
    return result if first else later


def any_rank(flag):
    """True on every rank if ``flag`` is true on any (one small all-reduce on the host, no device wait)."""
    if distributed.world_size() == 1:
        return bool(flag)
    return bool(distributed.all_reduce(np.array([int(bool(flag))], np.int32))[0])


def finish(message, exit_code, agreed=True):
    """End the command with ``message`` on stderr: returns ``exit_code``, which every rank exits with.

    ``agreed``: every rank stops here at once, and rank 0 alone prints. Otherwise this rank stops
    alone while the others may wait for it in a collective: under mpiexec it prints ``message``
    (naming itself) and ends the whole job with ``exit_code`` (MPI_Abort).
    """
    if agreed or distributed.world_size() == 1:
        print(message, file=sys.stderr)  # nowhere on ranks other than 0 (only_rank_0_speaks)
        return exit_code
    print(f"rank {distributed.rank()}: {message}" if distributed.rank() else message, file=sys.__stderr__)
    return distributed.abort(exit_code)


def quit_at_once(message, exit_code):
    """End the command now, with ``message`` from rank 0: for a second Ctrl-C, which mpiexec hands to every
    rank. Under mpiexec the job ends at once (MPI_Abort): some rank may be inside a collective that its
    partners will never join."""
    print(message, file=sys.stderr)
    if distributed.world_size() > 1:
        distributed.abort(exit_code)
    return exit_code


def describe(batch_size, device, threads):
    """The line that starts a run on several ranks: the split of the global batch, each rank's device
    and threads. A collective (every rank's device is gathered)."""
    size, devices = distributed.world_size(), distributed.all_gather_object(str(device))
    return (f"data parallel: {size} ranks, global batch {batch_size} = {size} x {batch_size // size} images; "
            f"devices {', '.join(devices)}; {threads} CPU thread{'s' if threads > 1 else ''} per rank")
