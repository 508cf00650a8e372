"""The fast forms of the ops, grouped by op, and the one place that picks among them.

Each op in :mod:`minicnn.functional` has a plain form written once for NumPy
and CuPy. Where a device has a faster kernel for the same job, the op declares
it beside the plain one, and :mod:`.dispatch` picks the form from the arrays'
device::

    col2im_forms = Forms("col2im", plain=col2im_strided, cpu="conv:col2im_numba", gpu="conv:col2im_gather")

The fast forms live here, one module per op family, named as the op's module in
:mod:`minicnn.functional`: :mod:`.conv` (im2col, col2im, the matrix product),
:mod:`.pooling`, :mod:`.lrn`, :mod:`.normalization` (batch norm),
:mod:`.activation` (ReLU, SiLU), :mod:`.shape` (concatenation), :mod:`.arithmetic`,
:mod:`.dropout`, :mod:`.loss` and :mod:`.optim` (the optimizers' update rules).
CPU forms are numba kernels (``*_numba``) or NumPy split over threads
(``*_threads``); GPU forms are gathers (``*_gather``) or ``cupy.fuse`` kernels
(``*_fused``). What they share: :mod:`.chunks` (the CPU's), :mod:`.gather` and
:mod:`.fusion` (the GPU's).

Every fast form is tested against its plain twin. ``with
minicnn.kernels.dispatch.plain_forms():``, or the environment variable
``MINICNN_PLAIN_KERNELS=1``, runs only the plain forms (for teaching,
comparisons and debugging).

A module of fast forms is imported on first use, not with ``import minicnn``
(importing numba takes a while). The CPU forms run on minicnn's own thread
pool (:mod:`.threads`), whose threads start with the first kernel that needs
them.

Importing minicnn changes nothing in the process, and its ops leave nothing
changed behind them: BLAS runs on one thread only while minicnn's own products
run. :func:`configure_cpu` sets minicnn's thread count (the trainer gives each
MPI rank its share); nothing else needs configuring.
"""
from . import threads as _threads


def configure_cpu(threads=None):
    """Set how many threads minicnn's CPU work uses. Returns what was applied.

    minicnn is fast without it: its kernels and matrix products run on its own
    thread pool, one thread per core this process may use, and NumPy's BLAS
    (OpenBLAS) runs on one thread only while minicnn's products run, as blocks
    on that pool (BLAS's own threads cut each product into one equal share per
    thread and spin while they wait for the slowest: beside another busy
    program a training step got 16 times slower). NumPy's other products keep
    their threads, and the kernels' big arrays are reused from step to step
    (:mod:`.host_memory`), so nothing process-wide is left changed.

    Args:
        threads: how many threads minicnn's CPU work uses (default: every core
            this process may run on; the trainer gives each MPI rank its share).
    Returns:
        dict with "threads" (minicnn's thread count) and "split_matmuls" (True
        when minicnn runs its products on its threads; with another BLAS than
        OpenBLAS they are left to it).
    """
    _threads.set_thread_count(_threads.available_cores() if threads is None else threads)
    return {"threads": _threads.thread_count(), "split_matmuls": _threads.split_matmuls()}
