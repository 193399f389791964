"""``file://`` URLs and bare absolute paths.

Reads refuse anything that is not a regular file (a directory, a FIFO that would block forever,
``/dev/zero`` that never ends). Writes create missing parents and go through a temporary name in
the destination's directory, fsynced, then renamed over the destination, so a reader of the
destination sees the old file or the complete new one, never a prefix; on failure the temporary
file is removed.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any, NoReturn

from jobstore.errors import (
    UnsafeLocationError,
    URLAccessError,
    URLForbiddenError,
    URLNotFoundError,
)
from jobstore.providers.local import local_path_of
from jobstore.providers.local_target import refuse_inside_a_store
from jobstore.redact import redact_url
from jobstore.urls.base import CHUNK_SIZE, ExactReader, UrlHandler, UrlSource, VerifyingReader


def check_export_destination(url: str, roots: list[str] | None) -> None:
    """Refuse a ``file://`` export into any job store's tree, or outside ``Config.exportRoots``
    (when set).

    The destination's directory is resolved (symlinks, ``..``) before the comparison, so neither
    can lead out of the allowed trees; a symlink *named* by the destination is replaced by the
    rename, never followed.
    """
    path = local_path_of(url)
    refuse_inside_a_store(path, "Will not export to", "a destination")
    if not roots:
        return
    where = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
    for root in roots:
        real_root = os.path.realpath(root)
        if os.path.commonpath([real_root, where]) == real_root and where != real_root:
            return
    raise UnsafeLocationError(
        f"{redact_url(url)!r} is outside the directories exports may write to (Config.exportRoots: "
        f"{', '.join(roots)}); export under one of them, or add its directory to exportRoots."
    )


def _raise_os_error(url: str, action: str, error: OSError) -> NoReturn:
    """Translate an OSError into a jobstore URL error: the one place this module does it."""
    where = redact_url(url)
    reason = error.strerror or str(error)
    if isinstance(error, (FileNotFoundError, NotADirectoryError)):
        raise URLNotFoundError(f"{where}: cannot {action}: no such file or directory.") from error
    if isinstance(error, PermissionError):
        raise URLForbiddenError(f"{where}: cannot {action}: permission denied ({reason}).") from error
    if isinstance(error, IsADirectoryError):
        raise URLAccessError(f"{where} is a directory; give the URL of a file.") from error
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        raise URLAccessError(f"{where}: cannot {action}: no space left on the device ({reason}).") from error
    raise URLAccessError(f"{where}: cannot {action}: {reason}.") from error


class FileHandler(UrlHandler):
    """Local files."""

    schemes = ("file",)

    @contextmanager
    def open_source(self, url: str) -> Iterator[UrlSource]:
        path = local_path_of(url)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as error:
            _raise_os_error(url, "open it for reading", error)
        try:
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):
                raise URLAccessError(
                    f"{redact_url(url)} is a directory; import its files one by one (a directory is not a file)."
                )
            if not stat.S_ISREG(info.st_mode):
                raise URLAccessError(
                    f"{redact_url(url)} is not a regular file (a device, FIFO or socket); only regular files "
                    "can be imported, because only they have a fixed size to verify."
                )
            os.set_blocking(fd, True)
            file = os.fdopen(fd, "rb", buffering=0)
        except BaseException:
            os.close(fd)
            raise

        def read(n: int) -> bytes:
            try:
                return file.read(n) or b""
            except OSError as error:
                _raise_os_error(url, "read it", error)

        raw = VerifyingReader(read, what=redact_url(url), size=info.st_size, on_close=file.close)
        source = UrlSource(
            url=redact_url(url),
            raw=raw,
            size=info.st_size,
            basename=os.path.basename(path) or None,
            executable=bool(info.st_mode & stat.S_IXUSR),
            fingerprint=_fingerprint_of(info),
        )
        try:
            yield source
        finally:
            source.close()

    def fingerprint(self, url: str) -> dict[str, Any]:
        """Size, modification time and identity (inode, device) of the file, symlinks followed."""
        try:
            info = os.stat(local_path_of(url))
        except OSError as error:
            _raise_os_error(url, "look at it", error)
        if not stat.S_ISREG(info.st_mode):
            raise URLAccessError(f"{redact_url(url)} is not a regular file; only regular files can be referenced.")
        return _fingerprint_of(info)

    def write(
        self,
        url: str,
        reader: IO[bytes],
        size: int | None,
        *,
        executable: bool = False,
        http_method: str = "POST",
    ) -> None:
        path = local_path_of(url)
        if path.endswith("/") or os.path.isdir(path):
            raise URLAccessError(f"{redact_url(url)} is a directory; export to the URL of a file inside it instead.")
        try:
            existing = os.lstat(path).st_mode
        except OSError:
            existing = None
        if existing is not None and not (stat.S_ISREG(existing) or stat.S_ISLNK(existing)):
            # Renaming over a device, FIFO or socket would replace it (as root, /dev/null...).
            raise UnsafeLocationError(
                f"{redact_url(url)} exists and is not a regular file (a device, FIFO or socket); "
                "exports only create or replace regular files."
            )
        directory = os.path.dirname(path)
        try:
            os.makedirs(directory, exist_ok=True)
        except FileExistsError as error:  # a parent component is a file
            raise URLAccessError(
                f"{redact_url(url)}: cannot create the directory {directory}: a file is in the way."
            ) from error
        except OSError as error:
            _raise_os_error(url, f"create the directory {directory}", error)
        temp = os.path.join(directory, f".{os.path.basename(path)}.jobstore-{secrets.token_hex(6)}.tmp")
        # Permissions as open()/cp would give (the umask applies), with x bits when asked.
        mode = 0o777 if executable else 0o666
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        except OSError as error:
            _raise_os_error(url, "create a file in its directory", error)
        try:
            body = ExactReader(reader, size, redact_url(url))
            with os.fdopen(fd, "wb", buffering=0) as out:
                # Errors of the reader (the caller's stream) propagate as they are; only errors of
                # writing here are about this URL.
                while chunk := body.read(CHUNK_SIZE):
                    view = memoryview(chunk)
                    while view:  # a raw write may be partial
                        try:
                            written = out.write(view) or 0
                        except OSError as error:
                            _raise_os_error(url, "write it", error)
                        view = view[written:]
                try:
                    os.fsync(out.fileno())
                except OSError as error:
                    _raise_os_error(url, "write it", error)
            try:
                os.replace(temp, path)
            except OSError as error:
                _raise_os_error(url, "rename the finished file into place", error)
        except BaseException:
            _unlink_quietly(temp)
            raise
        _fsync_directory(directory)

    def __repr__(self) -> str:
        return "<FileHandler>"


def _fingerprint_of(info: os.stat_result) -> dict[str, Any]:
    """A rename over the file changes the inode, a write in place the mtime (nanoseconds)."""
    return {"size": info.st_size, "mtime_ns": info.st_mtime_ns, "inode": info.st_ino, "device": info.st_dev}


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _fsync_directory(directory: str) -> None:
    """Make the rename durable; best effort (some file systems cannot fsync a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
