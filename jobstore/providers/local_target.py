"""Local paths a store reads from or writes to on a caller's behalf, checked before any I/O.

Shared by ``JobStore.read_file`` / ``write_file`` and the ``file:`` URL handler's exports, so that
every route that writes a caller's path refuses the same things: a device, FIFO, socket or
directory (a rename would replace the node: as root, ``/dev/null``), a missing parent directory
(a typed error, not a bare ``FileNotFoundError``), and a path inside any job store (a blob
directory, or a ``file:`` store's catalog), whose files belong to that store alone.

A store's territory is recognised by its markers: a blob directory holds :data:`BLOB_ROOT_MARKER`;
a ``file:`` store's directory holds its catalog file and a marked ``blobs`` directory.
"""

from __future__ import annotations

import errno
import os
import stat

from jobstore.errors import (
    LocalFileError,
    LocalFileNotFoundError,
    LocalIsADirectoryError,
    LocalPermissionError,
    UnsafeLocationError,
)
from jobstore.locator import LOCAL_BLOB_DIR, SQLITE_CATALOG_NAME

#: The file that says a directory is a jobstore blob root (and, in it, which store owns it).
BLOB_ROOT_MARKER = ".jobstore-blobs"


def readable_regular_file(local_path: object) -> tuple[str, bool]:
    """Check a local path names a readable regular file (one stat, the fast path of every write);
    return it with its executable bit, or raise an error that says what is wrong."""
    if not isinstance(local_path, str | os.PathLike):
        raise TypeError(f"local_path must be a path, not {type(local_path).__name__}.")
    path = _text_path(local_path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise LocalFileNotFoundError(errno.ENOENT, "No such local file to store; check the path", path) from None
    except PermissionError:
        raise LocalPermissionError(errno.EACCES, "The local file cannot be reached by this process", path) from None
    except (OSError, ValueError) as error:  # ENAMETOOLONG, ELOOP, a NUL in the name
        raise LocalFileError(errno.EINVAL, f"The local path cannot be used: {error}", path) from None
    if stat.S_ISDIR(mode):
        raise LocalIsADirectoryError(errno.EISDIR, "A directory cannot be stored as a file; archive it first", path)
    if not stat.S_ISREG(mode):
        raise LocalFileError(errno.EINVAL, "Only regular files can be stored (not a device, socket or FIFO)", path)
    if not mode & (stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH) and not os.access(path, os.R_OK):
        raise LocalPermissionError(errno.EACCES, "The local file is not readable by this process", path)
    return path, bool(mode & stat.S_IXUSR)


def replaceable_target(local_path: object, what: str) -> str:
    """Check ``local_path`` may be created or atomically replaced by ``what`` (e.g. "read_file").

    Accepted: a new name in an existing directory, an existing regular file, a symbolic link (the
    rename replaces the link, never what it points at). Refused, each with its own typed error: a
    directory, a device / FIFO / socket, a missing or non-directory parent, a path in a store.
    """
    if not isinstance(local_path, str | os.PathLike):
        raise TypeError(f"{what} needs a local path, not {type(local_path).__name__}.")
    path = os.path.abspath(_text_path(local_path))
    try:
        mode: int | None = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = None
    except (OSError, ValueError) as error:
        raise _unusable(path, what, error) from None
    if mode is not None and stat.S_ISDIR(mode):
        raise LocalIsADirectoryError(errno.EISDIR, f"{what} needs a file path, not a directory", path)
    if mode is not None and not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        raise LocalFileError(
            errno.EINVAL,
            f"{what} only creates or replaces regular files; this is a device, FIFO or socket, which it leaves alone",
            path,
        )
    parent = os.path.dirname(path)
    parent_stat: os.stat_result | None = None
    if mode is None:
        try:
            parent_stat = os.stat(parent)
        except FileNotFoundError:
            raise LocalFileNotFoundError(
                errno.ENOENT, f"The directory {what} should write into does not exist; create it first", path
            ) from None
        except (OSError, ValueError) as error:
            raise _unusable(path, what, error) from None
        if not stat.S_ISDIR(parent_stat.st_mode):
            raise LocalFileError(errno.ENOTDIR, f"{what} cannot write here: {parent} is not a directory", path)
    refuse_inside_a_store(path, f"{what} will not write", "a path", parent_stat)
    return path


#: Directories found outside every job store, by absolute path, with the (device, inode) they had
#: then. While such a directory keeps its path and inode, none of its ancestors can become a store
#: (a store is only made in a new or empty directory, and an ancestor holds this directory); the
#: directory itself can (it may be emptied), so that one level is checked every time.
_OUTSIDE_EVERY_STORE: dict[str, tuple[int, int]] = {}
_OUTSIDE_EVERY_STORE_LIMIT = 4096


def refuse_inside_a_store(path: str, refusal: str, choose: str, directory_stat: os.stat_result | None = None) -> None:
    """Raise UnsafeLocationError when ``path`` lies inside a job store's tree, which only that store
    may change. ``refusal`` opens the message ("The blob directory", "read_file will not write"),
    ``choose`` says what to pick instead ("a directory", "a path"); ``directory_stat`` is the
    caller's ``os.stat`` of the path's directory, if it has one.

    A directory found outside every store is remembered with its identity, so that writing many
    files into one directory walks its ancestors once; while the path still names the same
    directory only the directory itself is checked again (it may since have become a store)."""
    directory = os.path.dirname(os.path.abspath(path))
    identity: tuple[int, int] | None = None
    try:
        found = directory_stat if directory_stat is not None else os.stat(directory)
        identity = (found.st_dev, found.st_ino)
    except (OSError, ValueError):
        pass  # no such directory (yet): nothing to remember, walk its ancestors
    remembered = identity is not None and _OUTSIDE_EVERY_STORE.get(directory) == identity
    if remembered:
        owner = directory if _is_store_root(directory) else None
    else:
        owner = enclosing_store(directory)
    if owner is not None:
        raise UnsafeLocationError(
            f"{refusal} {path!r}: it is inside the job store at {owner!r}, whose files only that store may "
            f"change. Choose {choose} outside every job store."
        )
    if identity is not None and not remembered:
        if len(_OUTSIDE_EVERY_STORE) >= _OUTSIDE_EVERY_STORE_LIMIT:
            _OUTSIDE_EVERY_STORE.clear()
        _OUTSIDE_EVERY_STORE[directory] = identity


def enclosing_store(directory: str) -> str | None:
    """The job store directory (or blob root) ``directory`` is in or is, if any: one stat per
    ancestor, so it costs microseconds and needs no knowledge of which stores exist."""
    current = os.path.realpath(directory)
    while True:
        if _is_store_root(current):
            return current
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


def _is_store_root(directory: str) -> bool:
    """A marked blob root, or a file: store's directory (its catalog beside its marked blobs)."""
    if os.path.exists(os.path.join(directory, BLOB_ROOT_MARKER)):
        return True
    return os.path.exists(os.path.join(directory, SQLITE_CATALOG_NAME)) and os.path.exists(
        os.path.join(directory, LOCAL_BLOB_DIR, BLOB_ROOT_MARKER)
    )


def _text_path(local_path: str | os.PathLike[str] | os.PathLike[bytes]) -> str:
    path = os.fspath(local_path)
    return path if isinstance(path, str) else os.fsdecode(path)


def _unusable(path: str, what: str, error: OSError | ValueError) -> LocalFileError:
    reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
    return LocalFileError(errno.EINVAL, f"{what} cannot use this path: {reason}", path)
