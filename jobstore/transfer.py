"""Moving bytes between a caller's files or streams and the blob store, with progress reports.

The store's write paths call these; what they add to the blob store's own calls is the caller's
view: a local file that cannot be read is the caller's error (LocalPermissionError,
LocalFileNotFoundError), not the store's, and long copies report ``progress(done, total)``.
"""

from __future__ import annotations

import errno
import io
from typing import IO, Any

from jobstore.abstract import ByteProgress
from jobstore.blobs import BlobInfo, BlobStore
from jobstore.errors import LocalFileNotFoundError, LocalPermissionError

__all__ = ["ProgressReader", "copy_with_progress", "put_local_file"]

#: Bytes per read of a streamed copy.
COPY_CHUNK = 1024 * 1024


def put_local_file(blobs: BlobStore, key: str, path: str) -> BlobInfo:
    """``put_file``, with a permission failure on the source reported as the caller's error."""
    try:
        return blobs.put_file(key, path)
    except PermissionError:
        raise LocalPermissionError(errno.EACCES, "The local file is not readable by this process", path) from None
    except FileNotFoundError:
        raise LocalFileNotFoundError(errno.ENOENT, "The local file disappeared while being stored", path) from None


def copy_with_progress(
    source: IO[bytes], target: IO[Any] | io.BufferedIOBase, total: int | None, progress: ByteProgress | None
) -> None:
    """Copy ``source`` to ``target`` in chunks, reporting the running byte count."""
    done = 0
    while chunk := source.read(COPY_CHUNK):
        target.write(chunk)
        done += len(chunk)
        if progress is not None:
            progress(done, total)


class ProgressReader(io.RawIOBase):
    """Passes reads through and reports the running byte count (an export's progress)."""

    def __init__(self, stream: IO[bytes], total: int, progress: ByteProgress) -> None:
        super().__init__()
        self._stream = stream
        self._total = total
        self._progress = progress
        self._done = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        data = self._stream.read(-1 if size is None else size)
        if data:
            self._done += len(data)
            self._progress(self._done, self._total)
        return data

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)
