"""Rank 1 raises while rank 0 waits in a collective: the job must end with rank 1's error, not hang."""
from minicnn import distributed

distributed.init()
if distributed.rank() == 1:
    raise ValueError("rank 1 fails on purpose")
distributed.barrier()  # rank 0 would wait here forever without the abort
print("rank 0 passed the barrier: the failing rank did not end the job", flush=True)
