"""The ``--out`` folder of a training run: made and locked before any data loads, tidied at exit.

    with RunFolder("runs/X") as folder:   # UserError: a file, not writable, or in use by another run
        ...                               # the run writes its files into folder.path

Locking. Two runs writing into one folder would overwrite each other's
checkpoints, so a run holds a lock on the file ``.lock`` in its folder for as
long as it lasts: ``fcntl.flock`` on POSIX, ``msvcrt.locking`` on Windows. The
operating system releases either lock when the process ends in any way (an
error, kill -9, a power cut), so a crashed run never leaves its folder locked:
the file may stay behind, but nobody holds it. It records the process id, for
the message a second run gets. Holding the lock, a run removes the temporary
files that a run killed while writing left there (train/files.py).

Tidying. A run that stops before its first checkpoint (a NaN in epoch 1, a
double Ctrl-C, an error, a full disk) has nothing worth keeping in its folder,
and an empty folder left behind would only puzzle. At exit the lock file is
removed, and so is every folder that this run created and that is now empty:
a folder holding anything (a checkpoint, a file of the user's) is never
removed, nor is a folder that was there before.
"""
import contextlib
import os

from .files import UserError, check_path, is_temporary

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

LOCK_FILE = ".lock"


def _try_lock(fd):
    """Lock the open file ``fd`` for this process without waiting; False if another holds it."""
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # the file's first byte (it need not exist)
    except (BlockingIOError, PermissionError):  # flock's EWOULDBLOCK; msvcrt's EACCES
        return False
    except OSError:
        if fcntl is None:  # msvcrt's "locked by another process" is EDEADLOCK after its retries
            return False
        raise
    return True


def _is_file_at(fd, path):
    """True if the open file ``fd`` is the file now at ``path`` (not one removed since it was opened)."""
    try:
        here = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (here.st_dev, here.st_ino) == (mine.st_dev, mine.st_ino)


class RunFolder:
    """The folder ``path`` of one run, created if need be and locked while the ``with`` block runs.

    Attributes:
        path: the folder, as given.
        created: the folders this run made (``path`` and any missing parents), outermost first.
    """

    def __init__(self, path):
        self.path, self.created, self._fd = path, [], None

    @property
    def lock_path(self):
        return os.path.join(self.path, LOCK_FILE)

    def __enter__(self):
        check_path("--out", self.path, "folder", write=True)
        try:
            self._lock()
        except BaseException:
            self._tidy()
            raise
        self._remove_stale_temporaries()
        return self

    def __exit__(self, *exc):
        self._tidy()

    def _make_folders(self):
        """Create ``path`` and its missing parents one by one, remembering which ones are new."""
        missing, folder = [], os.path.abspath(self.path)
        while not os.path.isdir(folder):
            missing.append(folder)
            folder = os.path.dirname(folder)
        for folder in reversed(missing):
            try:
                os.mkdir(folder)
            except FileExistsError:  # made meanwhile by someone else (or a file): not ours
                continue
            self.created.append(folder)

    def _lock(self):
        # A run ending removes its lock file while still holding it; a run that opened that
        # file just before would lock a file no longer in the folder, so it checks and tries again.
        for _ in range(100):
            try:
                self._make_folders()
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as error:
                raise UserError(f"cannot write into --out {self.path}: {error.strerror or error}") from None
            try:
                if not _try_lock(fd):
                    raise UserError(f"--out {self.path} is in use by another run ({self._owner(fd)}): wait "
                                    "for it to end, or choose another --out (nothing there was changed)")
            except BaseException:
                os.close(fd)
                raise
            if _is_file_at(fd, self.lock_path):
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                self._fd = fd
                return
            os.close(fd)
        raise UserError(f"could not lock {self.lock_path}: it keeps being removed")

    def _remove_stale_temporaries(self):
        """Remove the temporary files of a run killed while writing here (no one else writes here now)."""
        for name in os.listdir(self.path):
            if is_temporary(name):
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(self.path, name))

    @staticmethod
    def _owner(fd):
        """"process N", as the lock file records it."""
        try:
            pid = os.read(fd, 32).decode().strip()
        except OSError:  # Windows refuses to read a byte another process has locked
            pid = ""
        return f"process {pid}" if pid.isdigit() else "another process"

    def _tidy(self):
        """Release the lock and remove the lock file, then the folders this run made if they are empty."""
        if self._fd is not None:
            if fcntl is not None:  # remove it while still locked (see _lock); Windows cannot remove an open file
                with contextlib.suppress(OSError):
                    os.remove(self.lock_path)
            os.close(self._fd)
            self._fd = None
            if fcntl is None:
                with contextlib.suppress(OSError):
                    os.remove(self.lock_path)
        for folder in reversed(self.created):
            try:
                os.rmdir(folder)
            except OSError:  # not empty: the run's files are there (or someone else's)
                break
        self.created = []
