"""The trainer's files: paths checked before any work, files written so that nothing is lost, and the
one error type the command shows without a traceback.

Checking. :func:`check_path` says in one line why a path given on the command
line cannot serve (a file where a folder is expected or the reverse, missing,
unreadable, unwritable), before the command does anything that takes time.

Writing. :func:`write_atomically` gets the whole content in memory first (so
its size is known), writes it to a temporary file beside the target, flushes
it to the disk (fsync), renames it over the target with ``os.replace`` (atomic
on POSIX and Windows within one file system) and flushes the folder, so that
the rename itself survives a power cut. A kill -9 or Ctrl-C at any moment
leaves the old file or the new one, never half of one. A failed write (a full
disk, a read-only folder) removes the temporary file and raises WriteError,
which names the file, the bytes it needed and the space left. A temporary file
left by a process killed while writing is recognised by its name
(:func:`is_temporary`) and removed by the next run in that folder.
"""
import contextlib
import io
import os
import secrets
import shutil

TEMPORARY_SUFFIX = ".minicnn-tmp"


class UserError(Exception):
    """Something the user can fix (missing data, a bad checkpoint, ...): printed as one
    short message, without a traceback, and the command exits non-zero."""


class WriteError(UserError):
    """Writing ``path`` failed with the OSError ``error``; whatever was at ``path`` is unchanged."""

    def __init__(self, path, size, error):
        self.path, self.size, self.error = path, size, error
        super().__init__(f"could not write {path}: {error.strerror or error} "
                         f"(it needs {format_bytes(size)}{_free_space(os.path.dirname(os.path.abspath(path)))})")


def format_bytes(count):
    """1536 -> "1.5 KiB": a size as people read it."""
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024


def _free_space(folder):
    try:
        return f"; {format_bytes(shutil.disk_usage(folder).free)} free in {folder}"
    except OSError:
        return ""


def error_text(error):
    """An exception's message as a person reads it: a KeyError's str() is the repr of its message (quoted)."""
    return str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)


# -- checking paths ---------------------------------------------------------------------------------

def check_path(option, path, kind, write=False):
    """UserError, one line naming ``option``, unless ``path`` can serve as ``kind`` ("file" or "folder").

    A file must exist and be readable; a folder must be readable and, with ``write``,
    writable, or (with ``write``) be missing but possible to make: its nearest existing
    parent is a folder that may be written into. Permissions are asked with os.access,
    which also knows a read-only file system.
    """
    name = f"{option} {path}"
    if not os.path.exists(path):
        if kind == "file" or not write:
            raise UserError(f"{name} does not exist")
        parent = _nearest_existing(path)
        if not os.path.isdir(parent):
            raise UserError(f"{name} cannot be made: {parent} is a file, not a folder")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise UserError(f"{name} cannot be made: {parent} is not writable ({_why_not(parent)})")
        return
    is_folder = os.path.isdir(path)
    if is_folder != (kind == "folder"):
        found, wanted = ("folder", "file") if is_folder else ("file", "folder")
        raise UserError(f"{name} is a {found}, not a {wanted}")
    enter = os.X_OK if is_folder else 0  # a folder is read and written through by entering it
    if not os.access(path, os.R_OK | enter):
        raise UserError(f"{name} is not readable ({_why_not(path)})")
    if write and not os.access(path, os.W_OK | enter):
        raise UserError(f"{name} is not writable ({_why_not(path)})")


def _nearest_existing(path):
    path = os.path.abspath(path)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return path


def _why_not(path):
    """Why os.access refused: a read-only file system, or the permissions."""
    try:
        read_only = os.statvfs(path).f_flag & os.ST_RDONLY
    except (OSError, AttributeError):  # (Windows has no statvfs)
        read_only = False
    return "a read-only file system" if read_only else "permission denied"


# -- writing -----------------------------------------------------------------------------------------

def is_temporary(name):
    """True for the name of a temporary file that :func:`write_atomically` makes."""
    return name.startswith(".") and name.endswith(TEMPORARY_SUFFIX)


def write_atomically(path, content):
    """Replace the file ``path`` by ``content`` (bytes) in one step; WriteError if it cannot be written."""
    folder, name = os.path.split(os.path.abspath(path))
    temporary = os.path.join(folder, f".{name}.{os.getpid()}-{secrets.token_hex(4)}{TEMPORARY_SUFFIX}")
    try:
        # the umask's permissions, as open() gives; O_BINARY: no newline translation on Windows
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as error:
        raise WriteError(path, len(content), error) from None
    try:
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(handle, view):]
            os.fsync(handle)
        finally:
            os.close(handle)
        os.replace(temporary, path)
    except BaseException as error:  # a full disk, Ctrl-C, ...: no temporary file stays
        with contextlib.suppress(OSError):
            os.remove(temporary)
        if isinstance(error, OSError):
            raise WriteError(path, len(content), error) from None
        raise
    _fsync_folder(folder)


def _fsync_folder(folder):
    """Flush the folder's entries (the rename) to the disk. The new file is in place already, so a failure
    here is not an error of the write; Windows cannot open a folder at all."""
    with contextlib.suppress(OSError):
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """A file object (in memory) whose content replaces ``path`` by :func:`write_atomically` when the
    block ends without an error: ``with atomic_write(path, "w") as f: f.write(text)``."""
    buffer = io.StringIO() if mode == "w" else io.BytesIO()
    yield buffer
    content = buffer.getvalue()
    write_atomically(path, content.encode() if mode == "w" else content)
