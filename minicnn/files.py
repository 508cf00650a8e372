"""Writing a file so that a crash leaves the old file or the new one, never half of one.

The content goes to a temporary file beside the target, is flushed to the disk
(fsync), and is renamed over the target with ``os.replace`` (atomic on POSIX
and Windows within one file system). On any error the temporary file is
removed and the target is untouched. ``minicnn.save`` and ``minicnn.graph``
write this way; the trainer's checkpoints use ``train.files``, which also
names the space a failed write needed.
"""
import contextlib
import os
import tempfile


def write_atomically(path, content):
    """Replace the file ``path`` by ``content`` (bytes) in one step. Returns ``str(path)``."""
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes 0600; a saved file gets the usual permissions
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise
    return str(path)
