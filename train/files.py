"""Writing files atomically, and the one error type the command shows without a traceback.

A file is written to a temporary file in the same folder, flushed to disk, and
renamed over the target with ``os.replace`` (atomic on POSIX and Windows within
one file system): a crash or Ctrl-C leaves either the old file or the new one,
never half of one.
"""
import contextlib
import os
import tempfile


class UserError(Exception):
    """Something the user can fix (missing data, a bad checkpoint, ...): printed as one
    short message, without a traceback, and the command exits non-zero."""


def _umask():
    mask = os.umask(0)  # the only way to read it is to set it
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Open a temporary file beside ``path`` for writing; on success rename it to ``path``.

    Usage: ``with atomic_write(path, "w") as f: f.write(text)``. If the block
    raises, the temporary file is removed and ``path`` is untouched.
    """
    folder, name = os.path.split(os.path.abspath(path))
    handle, temp_path = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, mode) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(temp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temp_path)
        raise
