"""minicnn's CPU thread pool: every chunk runs once, errors come back, workers really take chunks."""
import threading

import pytest

from minicnn.kernels import threads


@pytest.fixture
def thread_count():
    """Run a test with a given thread count, and put the pool back as it was."""
    before = threads.thread_count()
    yield threads.set_thread_count
    threads.set_thread_count(before)


@pytest.mark.parametrize("count", [1, 2, 3])
def test_parallel_for_runs_every_chunk_once(thread_count, count):
    thread_count(count)
    seen = []
    threads.parallel_for(50, seen.append)  # list.append is atomic under the GIL
    assert sorted(seen) == list(range(50))


def test_a_worker_takes_chunks_while_the_caller_works(thread_count):
    """Chunk 0 waits until another thread has run a chunk; with the caller alone it would time out."""
    thread_count(2)
    someone_else = threading.Event()
    caller = threading.get_ident()

    def task(chunk):
        if threading.get_ident() != caller:
            someone_else.set()
        elif chunk == 0:
            assert someone_else.wait(timeout=30), "no worker thread took a chunk"

    threads.parallel_for(4, task)


def test_an_error_in_a_chunk_is_raised_after_every_chunk_finished(thread_count):
    thread_count(2)
    done = []

    def task(chunk):
        if chunk == 3:
            raise ValueError("chunk 3 failed")
        done.append(chunk)

    with pytest.raises(ValueError, match="chunk 3 failed"):
        threads.parallel_for(10, task)
    assert sorted(done) == [c for c in range(10) if c != 3]


def test_a_task_may_call_parallel_for_itself(thread_count):
    thread_count(2)
    seen = []
    threads.parallel_for(4, lambda outer: threads.parallel_for(3, lambda inner: seen.append((outer, inner))))
    assert sorted(seen) == [(o, i) for o in range(4) for i in range(3)]


@pytest.mark.parametrize("total,min_size", [(1000, 1), (1000, 300), (7, 1), (5, 10), (0, 1)])
def test_chunk_bounds_cover_the_range_in_order(thread_count, total, min_size):
    thread_count(2)
    bounds = threads.chunk_bounds(total, min_size)
    assert [start for start, _ in bounds] == [0] + [stop for _, stop in bounds[:-1]]
    assert bounds[-1][1] == total and all(stop > start or total == 0 for start, stop in bounds)
    assert len(bounds) <= 8 and (len(bounds) == 1 or all(stop - start >= min_size for start, stop in bounds))


@pytest.mark.parametrize("threads_used", [2, 3])
@pytest.mark.parametrize("total", [300, 390, 520, 700, 5000])
def test_more_chunks_than_threads_come_in_a_multiple_of_the_thread_count(thread_count, threads_used, total):
    """3 equal chunks on 2 threads leave one thread idle a third of the time (a weight gradient's 480 columns in
    blocks of at least 128 were 3 chunks): past one chunk per thread, the count is a multiple of the threads."""
    thread_count(threads_used)
    bounds = threads.chunk_bounds(total, 128)
    count = len(bounds)
    assert count <= threads_used or count % threads_used == 0
    assert min(threads_used, total // 128) <= count <= 4 * threads_used
    assert all(stop - start >= 128 for start, stop in bounds)
    if threads_used == 2:
        assert len(threads.chunk_bounds(480, 128)) == 2  # the weight gradient's columns: not 3


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_thread_count_rejects_bad_counts(bad):
    with pytest.raises(ValueError, match="threads must be an int >= 1"):
        threads.set_thread_count(bad)
