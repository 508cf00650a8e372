"""Faults for tests/test_faults.py: a disk call of train/files.py that fails or kills its process, a small
tmpfs, and the rank processes of an mpiexec job.

Run as a script, it is the process that tests/test_faults.py kills while it saves checkpoints:

    python tests/fault_injection.py kill-at K PATH   # save epoch 1, then epoch 2 dying at its K-th disk call
    python tests/fault_injection.py save-loop PATH   # save epochs 1, 2, 3, ... printing each one saved
"""
import contextlib
import errno
import os
import shutil
import signal
import subprocess
import sys

DISK_CALLS = ("open", "write", "fsync", "replace")
# what write_atomically calls, in order: the temporary file's open, write, fsync, its replace, then the folder's
# open and fsync (whose failure is no error: the new file is in place already)
SAVE_CALLS = ["open", "write", "fsync", "replace", "open", "fsync"]


class FaultyOS:
    """Stands in for the ``os`` module inside train/files.py: its ``at``-th disk call (one of DISK_CALLS,
    counted from 1) runs ``fault()`` first, which raises or kills the process. ``names`` lists the calls."""

    def __init__(self, at, fault):
        self.at, self.fault, self.names = at, fault, []

    def __getattr__(self, name):
        real = getattr(os, name)
        if name not in DISK_CALLS:
            return real

        def call(*args, **kwargs):
            self.names.append(name)
            if len(self.names) == self.at:
                self.fault()
            return real(*args, **kwargs)
        return call


def no_space():
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def kill_myself():
    os.kill(os.getpid(), signal.SIGKILL)


@contextlib.contextmanager
def tmpfs(folder, size, read_only=False):
    """A tmpfs of ``size`` bytes mounted at ``folder`` for the block. Where this machine lets no one mount
    (not root, no CAP_SYS_ADMIN), the test skips: the simulated faults (FaultyOS) cover the same code."""
    import pytest
    os.makedirs(folder, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    mount = shutil.which("mount")
    done = mount and subprocess.run([mount, "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                                    capture_output=True, text=True)
    if not done or done.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() if done else 'no mount command'})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def job_processes(text):
    """{pid: MPI rank} of the Python processes of an mpiexec job whose command line holds ``text``."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as file:
                argv = file.read().decode(errors="replace").split("\0")
            with open(f"/proc/{entry}/environ", "rb") as file:
                environment = dict(item.split("=", 1) for item in file.read().decode(errors="replace").split("\0")
                                   if "=" in item)
        except OSError:  # ended meanwhile
            continue
        if text in argv and "PMI_RANK" in environment:
            found[int(entry)] = int(environment["PMI_RANK"])
    return found


# -- the process that is killed while it saves -------------------------------------------------------------

def _small_run():
    """A model of 1024 x 1024 weights (4 MiB: a save takes a while), its optimizer and schedule."""
    from minicnn import nn, optim
    model = nn.Linear(1024, 1024)
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    return model, optimizer, optim.OneCycleLR(optimizer, max_lr=0.1, total_steps=10)


def save_epoch(path, run, epoch):
    """Save a checkpoint of ``epoch`` in which every value of the model is ``epoch``."""
    from train.checkpoint import save_checkpoint
    model, optimizer, scheduler = run
    for parameter in model.parameters():
        parameter.array[...] = epoch
    save_checkpoint(path, model, optimizer, scheduler, epoch=epoch, step=0, args={}, history=[])


def _main(mode, *rest):
    from train import files
    run = _small_run()
    if mode == "kill-at":
        at, path = int(rest[0]), rest[1]
        save_epoch(path, run, 1)
        files.os = FaultyOS(at, kill_myself)
        save_epoch(path, run, 2)
    else:
        for epoch in range(1, 10**6):
            save_epoch(rest[0], run, epoch)
            print(epoch, flush=True)


if __name__ == "__main__":
    _main(*sys.argv[1:])
