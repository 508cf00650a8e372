"""What a GPU would pay for, counted per call site.

Three kinds of events (see the package docstring for what counts as which):

    device_ops   ~ kernel launches (elementwise ops, reductions, copies, fills, gathers, matrix products)
    syncs        device -> host reads: the host waits for the device and copies a value back
    uploads      host -> device copies

Each event is charged to its *call site*: the first stack frame outside the
stand-in package, as (file, line), so a test can see which line of minicnn paid.

    with standin.counting() as counter:
        train_step()
    counter.device_ops, counter.syncs, counter.uploads   # totals inside the block
    counter.sites("syncs")                               # {(file, line): count}
    print(counter.report())                              # the busiest lines

A session counter runs all the time (``totals()``, ``reset()``): the benchmark
reads it through ``minicnn.backend.device_counts()``, where ``install`` registers it.
"""
import collections
import contextlib
import os
import sys

KINDS = ("device_ops", "syncs", "uploads")
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class DeviceSynchronized(RuntimeError):
    """Raised on a device -> host read inside ``cupyx.allow_synchronize(False)``, as CuPy does."""

    __module__ = "cupy._core.syncdetect"


class Counter:
    """Counts of each kind, in total and per call site (file, line)."""

    def __init__(self):
        self.per_site = {kind: collections.Counter() for kind in KINDS}

    def add(self, kind, site, n):
        self.per_site[kind][site] += n

    def total(self, kind):
        return sum(self.per_site[kind].values())

    device_ops = property(lambda self: self.total("device_ops"), doc="Device operations (~kernel launches).")
    syncs = property(lambda self: self.total("syncs"), doc="Device -> host reads.")
    uploads = property(lambda self: self.total("uploads"), doc="Host -> device copies.")

    def totals(self):
        """{kind: count} for every kind."""
        return {kind: self.total(kind) for kind in KINDS}

    def sites(self, kind):
        """{(file, line): count} of one kind."""
        return dict(self.per_site[kind])

    def report(self, kind="device_ops", top=15):
        """The totals and the ``top`` call sites of ``kind``, as text."""
        lines = [", ".join(f"{name} {count:,}" for name, count in self.totals().items())]
        for (path, line), count in self.per_site[kind].most_common(top):
            lines.append(f"  {count:>7,}  {os.path.relpath(path)}:{line}")
        return "\n".join(lines)


_session = Counter()
_active = [_session]
_inside_one_operation = 0  # > 0 while a composite call runs that counts as a single device operation
_synchronize_allowed = True


def call_site():
    """(file, line) of the innermost frame outside this package (and contextlib, which runs its ``with`` blocks)."""
    frame = sys._getframe(1)
    while frame is not None and (frame.f_code.co_filename.startswith(_PACKAGE_DIR)
                                 or frame.f_code.co_filename == contextlib.__file__):
        frame = frame.f_back
    return (frame.f_code.co_filename, frame.f_lineno) if frame is not None else ("<unknown>", 0)


def record(kind, n=1):
    """Count ``n`` events of ``kind`` at the current call site."""
    if n <= 0 or (kind == "device_ops" and _inside_one_operation):
        return
    if kind == "syncs" and not _synchronize_allowed:
        raise DeviceSynchronized("device synchronization was detected while cupyx.allow_synchronize(False)")
    site = call_site()
    for counter in _active:
        counter.add(kind, site, n)


@contextlib.contextmanager
def one_operation(n=1):
    """Count a composite call as ``n`` device operations, whatever it does inside.

    For things that are one kernel on a GPU but several NumPy calls here: a
    fused function, a custom kernel's NumPy twin. Reads and uploads inside are
    still counted (a kernel cannot read the host).
    """
    global _inside_one_operation
    record("device_ops", n)
    _inside_one_operation += 1
    try:
        yield
    finally:
        _inside_one_operation -= 1


@contextlib.contextmanager
def counting():
    """Yield a fresh Counter that sees every event until the block ends."""
    counter = Counter()
    _active.append(counter)
    try:
        yield counter
    finally:
        _active.remove(counter)


@contextlib.contextmanager
def allow_synchronize(allow):
    """``cupyx.allow_synchronize``: with False, a device -> host read raises DeviceSynchronized."""
    global _synchronize_allowed
    previous, _synchronize_allowed = _synchronize_allowed, bool(allow)
    try:
        yield
    finally:
        _synchronize_allowed = previous


def totals():
    """{kind: count} since the stand-in was installed (or last reset)."""
    return _session.totals()


def report(kind="device_ops", top=15):
    """The session counter's report (see Counter.report)."""
    return _session.report(kind, top)


def reset():
    """Zero the session counter."""
    for per_site in _session.per_site.values():
        per_site.clear()
