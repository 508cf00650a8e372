"""minicnn's CPU threads: one small pool that runs each job as chunks, taken as threads come free.

numba's parallel loops and the BLAS library's threads both cut a job into one
equal share per thread and then wait for the slowest share. On a machine where
another program holds a core for a while (a laptop runs other things), the
share whose thread lost its core holds everyone up, and OpenBLAS's threads spin
while they wait: one competing process made a training step 16 times slower.

Here the calling thread and the workers take chunk numbers from one counter:
a thread that lost its core simply takes fewer chunks, the caller never waits
for a worker that has not started, and idle workers sleep on a queue (they
never spin). The chunks run compiled code that releases the GIL (numba kernels
with ``nogil=True``, BLAS calls), so the threads really run side by side.

The pool starts its threads the first time a job has more than one chunk, not
on import. Its size is the number of cores this process may use;
:func:`minicnn.configure_cpu` changes it.
"""
import contextlib
import ctypes
import itertools
import os
import queue
import threading


def available_cores():
    """How many cores this process may run on (its CPU affinity where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


class _Job:
    """One call of :func:`parallel_for`: the task, a shared chunk counter, and who has finished."""

    def __init__(self, task, count):
        self.task, self.count = task, count
        self.next_chunk = itertools.count()  # next() on it is atomic under the GIL
        self.lock = threading.Lock()
        self.finished = 0
        self.all_finished = threading.Event()
        self.error = None

    def run_chunks(self):
        """Run chunks until none is left (on whichever thread calls this)."""
        while (chunk := next(self.next_chunk)) < self.count:
            try:
                self.task(chunk)
            except BaseException as error:  # handed to the caller of parallel_for
                self.error = self.error or error
            with self.lock:
                self.finished += 1
                if self.finished == self.count:
                    self.all_finished.set()


class _Pool:
    def __init__(self, threads):
        self.threads = threads
        self.inboxes = []  # one queue per worker; the calling thread is the pool's first thread
        self.pid = os.getpid()
        self.local = threading.local()

    def _worker(self, inbox):
        self.local.inside = True
        while True:
            inbox.get().run_chunks()

    def _start_workers(self):
        if self.pid != os.getpid():  # a forked child inherits the list but none of the threads
            self.inboxes, self.pid = [], os.getpid()
        while len(self.inboxes) < self.threads - 1:
            inbox = queue.SimpleQueue()
            threading.Thread(target=self._worker, args=(inbox,), daemon=True,
                             name=f"minicnn-{len(self.inboxes) + 1}").start()
            self.inboxes.append(inbox)

    def run(self, task, count):
        if count == 1 or self.threads == 1 or getattr(self.local, "inside", False):
            for chunk in range(count):  # serially (a task that itself calls parallel_for lands here)
                task(chunk)
            return
        self._start_workers()
        job = _Job(task, count)
        for inbox in self.inboxes[:count - 1]:
            inbox.put(job)
        job.run_chunks()
        job.all_finished.wait()
        if job.error is not None:
            raise job.error


_pool = _Pool(available_cores())


def parallel_for(count, task):
    """Call ``task(i)`` for every i in range(count), spread over the pool's threads; return when all are done.

    The tasks must write disjoint outputs (the order they run in is not fixed).
    An exception raised by a task is raised here once every chunk has finished.
    """
    _pool.run(task, count)


def thread_count():
    """How many threads :func:`parallel_for` uses, the calling thread included."""
    return _pool.threads


def set_thread_count(threads):
    """Use ``threads`` threads (the calling thread included) from now on."""
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"threads must be an int >= 1, got {threads!r}")
    _pool.threads = threads


def chunk_bounds(total, min_size):
    """Split range(total) into about 4 chunks per thread, none smaller than ``min_size``.

    Returns a list of (start, stop). Several chunks per thread let a thread that
    lost its core to another program hand its remaining work to the others.
    """
    threads = _pool.threads
    count = max(1, min(4 * threads if threads > 1 else 1, total // max(1, min_size)))
    if count > threads:  # a multiple of the thread count: 3 chunks on 2 threads leave one thread idle a third of the time
        count -= count % threads
    edges = [total * i // count for i in range(count + 1)]
    return list(zip(edges[:-1], edges[1:]))


# -- the BLAS library's own threads ----------------------------------------------------------
# minicnn runs its matrix products itself, as blocks on its pool, each block a BLAS call on one
# thread. OpenBLAS's thread count is process-wide, so it is set to one only while minicnn's
# products run, and put back after: NumPy's own products elsewhere in the program keep their
# threads. Setting it costs ~0.15 microseconds (one store in OpenBLAS), against milliseconds per product.
_BLAS_THREAD_FUNCTIONS = (("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
                          ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
                          ("openblas_set_num_threads", "openblas_get_num_threads"))
_blas = None          # (set, get) of the loaded OpenBLAS, () when there is none; found on first use
_blas_lock = threading.Lock()
_blas_holders = 0     # how many callers are inside blas_on_one_thread right now
_blas_saved = None    # BLAS's thread count when the first of them came in


def _loaded_openblas():
    """The OpenBLAS library NumPy loaded into this process, or None (another BLAS, or not Linux)."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.split()[-1].lower()}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def _blas_functions():
    """(set_num_threads, get_num_threads) of NumPy's OpenBLAS, or () when it has none."""
    global _blas
    if _blas is None:
        import numpy  # noqa: F401 (NumPy must have loaded its BLAS)
        library = _loaded_openblas()
        found = [(getattr(library, s), getattr(library, g)) for s, g in _BLAS_THREAD_FUNCTIONS
                 if library is not None and hasattr(library, s) and hasattr(library, g)]
        _blas = found[0] if found else ()
    return _blas


_CORE_NAME_FUNCTIONS = ("scipy_openblas_get_corename64_", "openblas_get_corename64_", "openblas_get_corename")


def blas_kernels():
    """The kernels NumPy's OpenBLAS runs, by OpenBLAS's name for them ("Haswell": AVX2, "SkylakeX":
    AVX-512, ...), or None with another BLAS.

    OpenBLAS picks them once, as it loads, from the CPU, unless the environment
    variable OPENBLAS_CORETYPE names them: some machines set it, because older
    OpenBLAS builds crash or compute wrong results on their processor. minicnn
    never changes it; :mod:`minicnn.doctor` and ``benchmarks.googlenet`` print
    the kernels, since on an AVX-512 CPU the AVX2 ones run products at half speed.
    """
    library = _loaded_openblas()
    for name in _CORE_NAME_FUNCTIONS:
        if library is not None and hasattr(library, name):
            function = getattr(library, name)
            function.restype = ctypes.c_char_p
            return function().decode()
    return None


def blas_thread_count():
    """How many threads NumPy's OpenBLAS uses per product now; None with another BLAS."""
    functions = _blas_functions()
    return functions[1]() if functions else None


@contextlib.contextmanager
def blas_on_one_thread():
    """Within the block, NumPy's OpenBLAS runs each product on one thread; after it, as many as before.

    Nested and concurrent blocks share one setting: the first caller in saves
    the count, the last one out restores it. With another BLAS nothing changes.
    """
    global _blas_holders, _blas_saved
    functions = _blas_functions()
    if not functions:
        yield
        return
    set_threads, get_threads = functions
    with _blas_lock:
        if _blas_holders == 0:
            _blas_saved = get_threads()
            if _blas_saved != 1:
                set_threads(1)
        _blas_holders += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_holders -= 1
            if _blas_holders == 0 and _blas_saved != 1:
                set_threads(_blas_saved)


def split_matmuls():
    """True when minicnn splits its matrix products over its own threads (BLAS on one thread meanwhile).

    That needs more than one thread in the pool, and an OpenBLAS whose thread
    count can be set; with another BLAS, its own threads split the products.
    """
    return _pool.threads > 1 and bool(_blas_functions())
