"""The BlobStore interface: immutable blobs under keys that are never reused.

The store layer (``jobstore/store.py``) chooses a fresh key for every version of every file, writes
the bytes with a create-only write, and only then commits the catalog row that points at them. A
blob store therefore never overwrites and never needs locking; it needs to do four things well:

* write a blob create-only, streaming, computing size and CRC32C in the same pass, and leave
  nothing at the key if the writer fails (``open_write`` / ``put_file``);
* read a blob back, streaming, verifying size and checksum in the same pass (``open_read`` /
  ``get_file``);
* delete (idempotent) and list keys (for garbage collection and fsck);
* translate its provider's errors into ``jobstore.errors`` in one place.

Providers implement the small abstract methods (``_open_sink``, ``_open_source`` and the
key operations); this module supplies checksumming, verification, text modes and atomic local
materialisation on top of them, so no provider writes those again.
"""

from __future__ import annotations

import io
import os
import re
import secrets
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

from jobstore.blobs.checksum import RunningChecksum, verify
from jobstore.errors import UnsafeLocationError

#: Read/write chunk size for streaming copies: large enough for throughput, small enough that
#: memory stays flat whatever the file size.
CHUNK_SIZE = 1024 * 1024
#: Reads smaller than this are served from a read-ahead buffer of this size.
READ_AHEAD = 64 * 1024

_KEY_SEGMENT = re.compile(r"^[A-Za-z0-9_.-]+$")
MAX_KEY_LENGTH = 512


@dataclass(frozen=True)
class BlobInfo:
    """Size and checksum of a blob as written (what the catalog records)."""

    size: int
    checksum: str


@dataclass(frozen=True)
class ImportedBlob(BlobInfo):
    """What a same-backend fast path (:meth:`BlobStore.import_from_url`) stored: size, checksum and
    whether the source was executable (only a local file can say so)."""

    executable: bool = False


def check_key(key: object) -> str:
    """Refuse keys that could escape the store's directory or prefix (e.g. from a tampered row)."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise UnsafeLocationError(f"Blob key {key!r} is not a valid key (1-{MAX_KEY_LENGTH} characters).")
    for segment in key.split("/"):
        if segment in ("", ".", "..") or not _KEY_SEGMENT.fullmatch(segment):
            raise UnsafeLocationError(
                f"Blob key {key!r} is not allowed: keys are '/'-separated segments of letters, digits, "
                "'.', '_' and '-', with no empty, '.' or '..' segment. A catalog row holding such a key "
                "has been tampered with; run `jobstore fsck`."
            )
    return key


def new_key(*parts: str) -> str:
    """A fresh, never-reused key: the given parts plus a random suffix."""
    return "/".join(parts) + "." + secrets.token_hex(8)


#: The first segment of a reference import's blob key. Owned blobs' keys begin "f/" or "s/", so no
#: blob store ever holds a "ref/" key: a reference's row can pass through every path that releases
#: blobs (delete, update, prune, a rolled-back batch) and none of them can reach its source.
REFERENCE_KEY_PREFIX = "ref/"


def is_reference_key(key: str) -> bool:
    return key.startswith(REFERENCE_KEY_PREFIX)


class BlobSink(ABC):
    """A blob being written. The provider's half of ``open_write``."""

    @abstractmethod
    def write(self, data: bytes) -> None:
        """Append ``data``."""

    @abstractmethod
    def commit(self, info: BlobInfo) -> None:
        """Make the blob visible at its key (create-only). ``info`` lets providers verify server-side."""

    @abstractmethod
    def abort(self) -> None:
        """Discard everything written; nothing may remain at the key. Must not raise."""


class HashingWriter(io.BufferedIOBase):
    """What ``open_write`` hands to callers: feeds a sink and a running checksum.

    Large ``bytes`` writes go straight to the sink (checksummed, no copy); small ones are gathered
    into one chunk first. A ``BufferedWriter`` over a raw writer copied every chunk once more
    (the raw writer had to turn the memoryview it was given into bytes for the CRC).
    """

    def __init__(self, sink: BlobSink) -> None:
        super().__init__()
        self._sink: BlobSink | None = sink
        self._buffer = bytearray()
        self.checksum = RunningChecksum()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.closed or self._sink is None:
            raise ValueError("write to a closed jobstore stream (the blob was already committed or aborted)")
        if isinstance(data, bytes) and len(data) >= CHUNK_SIZE // 4:
            self._drain()
            self._emit(data)
            return len(data)
        view = memoryview(data).cast("B")
        self._buffer += view
        if len(self._buffer) >= CHUNK_SIZE:
            self._drain()
        return view.nbytes

    def _emit(self, chunk: bytes) -> None:
        assert self._sink is not None
        self._sink.write(chunk)
        self.checksum.update(chunk)

    def _drain(self) -> None:
        if self._buffer:
            chunk = bytes(self._buffer)
            self._buffer.clear()
            self._emit(chunk)

    def flush(self) -> None:
        if self._sink is not None and not self.closed:
            self._drain()

    def close(self) -> None:
        if not self.closed:
            self.flush()
        super().close()

    def detach_sink(self) -> None:
        """Drop anything unwritten and disconnect from the sink (after commit or abort)."""
        self._buffer.clear()
        self._sink = None
        super().close()


class VerifyingReader(io.BufferedIOBase):
    """A buffered binary reader over a provider stream that checks size and checksum at the end.

    Reads of ``READ_AHEAD`` bytes or more go straight from the provider to the caller (checksummed
    on the way, no intermediate copy: a ``BufferedReader`` over a raw reader copied every chunk
    once more and ran at ~1 GB/s). Smaller reads, ``readline`` and iteration are served from a
    read-ahead buffer, consumed by an offset (slicing the rest off after each line copied the
    buffer once per line: iterating over the lines of a 6 MiB file took 17 times as long as
    ``open()``'s). ``read()`` of everything takes a local blob in one buffer.
    """

    def __init__(self, source: BinaryIO, expected: BlobInfo | None, what: str) -> None:
        super().__init__()
        self._source = source
        self._expected = expected
        self._what = what
        # Each chunk is checksummed as it passes, while it is still in the cache.
        self._checksum = RunningChecksum()
        self._verified = expected is None
        # Bytes already checksummed and not yet returned: self._buffer[self._offset:].
        self._buffer = b""
        self._offset = 0

    def readable(self) -> bool:
        return True

    def _pull(self, size: int) -> bytes:
        """Up to ``size`` new bytes from the provider (b"" at the end), checksummed."""
        return self._passed(self._source.read(size))

    def _passed(self, data: bytes) -> bytes:
        """Checksum ``data`` as it passes; at the end (``data`` empty), verify."""
        if not data:
            if not self._verified and self._expected is not None:
                self._verify()
            return b""
        if not isinstance(data, bytes):
            data = bytes(data)
        self._checksum.update(data)
        if self._expected is not None and self._checksum.size > self._expected.size:
            self._verify()
        return data

    def _verify(self) -> None:
        assert self._expected is not None
        self._verified = True
        verify(self._expected.size, self._expected.checksum, self._checksum, self._what)

    def _buffered(self) -> int:
        return len(self._buffer) - self._offset

    def _take(self, size: int) -> bytes:
        """Up to ``size`` buffered bytes (all of them if ``size`` < 0)."""
        start, stop = self._offset, len(self._buffer)
        if size >= 0:
            stop = min(stop, start + size)
        if start == 0 and stop == len(self._buffer):
            data = self._buffer  # all of it: no copy
        else:
            data = self._buffer[start:stop]
        if stop == len(self._buffer):
            self._buffer, self._offset = b"", 0
        else:
            self._offset = stop
        return data

    def _refill(self, size: int) -> bool:
        """Read ahead into the (empty) buffer; False at the end of the blob."""
        self._buffer, self._offset = self._pull(max(size, READ_AHEAD)), 0
        return bool(self._buffer)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            buffered = self._take(-1)
            if _has_own_readall(self._source):
                # One buffer of the whole rest, as open().read() makes. Chunks joined at the end
                # cost fresh pages for every chunk and again for the join: 16 MiB took 23-25 ms
                # that way against 1.4-1.8 ms for a plain read (page faults on this VM).
                rest = self._passed(self._source.readall())  # type: ignore[attr-defined]
                self._passed(b"")  # the end: verify
                return buffered + rest if buffered else rest
            parts = [buffered]
            while chunk := self._pull(CHUNK_SIZE):
                parts.append(chunk)
            return b"".join(parts)
        parts = [self._take(size)] if self._buffered() else []
        missing = size - (len(parts[0]) if parts else 0)
        while missing > 0:  # the buffer is empty here
            if missing >= READ_AHEAD:
                chunk = self._pull(missing)  # large: straight through, no copy
            else:
                chunk = self._take(missing) if self._refill(missing) else b""
            if not chunk:
                break
            parts.append(chunk)
            missing -= len(chunk)
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)

    def read1(self, size: int = -1) -> bytes:
        if self._buffered():
            return self._take(size)
        if size == 0:
            return b""
        if 0 < size < READ_AHEAD:
            return self._take(size) if self._refill(size) else b""
        return self._pull(size if size > 0 else CHUNK_SIZE)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def peek(self, size: int = 0) -> bytes:
        if not self._buffered():
            self._refill(size)
        return self._buffer[self._offset :] if self._offset else self._buffer

    def __iter__(self) -> Iterator[bytes]:
        self._checkClosed()
        return self._lines()

    def _lines(self) -> Iterator[bytes]:
        """The lines, found in the read-ahead buffer without a method call each (``readline`` per
        line cost ~1.2 us); the reader's position follows every line handed out, so reads may be
        mixed with iteration."""
        while self._buffered() or self._refill(0):
            buffer, start = self._buffer, self._offset
            newline = buffer.find(b"\n", start)
            if newline < 0:
                yield self.readline()  # a line that continues past the buffer
                continue
            if newline + 1 == len(buffer):
                self._buffer, self._offset = b"", 0
            else:
                self._offset = newline + 1
            yield buffer[start : newline + 1]

    def readline(self, size: int | None = -1) -> bytes:
        limit = -1 if size is None else size
        parts: list[bytes] = []
        total = 0
        while limit < 0 or total < limit:
            if not self._buffered() and not self._refill(0):
                break
            newline = self._buffer.find(b"\n", self._offset)
            through = len(self._buffer) if newline < 0 else newline + 1
            want = through - self._offset
            if limit >= 0:
                want = min(want, limit - total)  # a cut line ends the loop by its limit
            parts.append(self._take(want))
            total += want
            if newline >= 0:
                break
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._source.close()
        finally:
            super().close()


def _has_own_readall(source: object) -> bool:
    """Whether ``source`` reads everything at once by itself (a local file: ``FileIO.readall`` sizes
    one buffer from the file's size), rather than by ``RawIOBase``'s default, a loop of 8 KiB reads."""
    readall = getattr(type(source), "readall", None)
    return readall is not None and readall is not io.RawIOBase.readall


def wrap_text(stream: io.BufferedIOBase, encoding: str | None, errors: str | None) -> io.IOBase:
    """Return ``stream`` itself (binary) or a text wrapper over it, as ``open()`` would."""
    if encoding is None:
        if errors is not None:
            raise ValueError("errors= is only meaningful together with encoding=, as with open().")
        return stream
    return io.TextIOWrapper(stream, encoding=encoding, errors=errors or "strict", write_through=True)  # type: ignore[type-var]


class BlobStore(ABC):
    """A place for immutable blobs: a local directory, an S3 prefix or a GCS prefix."""

    #: URL of this blob store (``file:///dir``, ``s3://bucket/prefix``, ``gs://bucket/prefix``).
    url: str
    #: True when every blob is written with a customer or KMS key.
    encrypted: bool = False

    # --- the container ------------------------------------------------------------------------

    @abstractmethod
    def create(self, owner: str | None = None) -> None:
        """Make the container (directory, bucket) exist. Idempotent.

        ``owner`` names the store (its store name and workflow ID); a local blob directory records it in its
        marker and refuses to be created for another store, inside one, or around one.
        """

    def check_owner(self, owner: str) -> None:
        """Raise UnsafeLocationError if the container is marked as another store's.

        Local directories carry a marker; buckets have none (a prefix is the store's own by its
        name: see docs/SECURITY.md), so this is a no-op for them.
        """
        del owner

    @abstractmethod
    def container_exists(self) -> bool:
        """True if the directory / bucket exists."""

    @abstractmethod
    def destroy(self, *, final: bool = True) -> None:
        """Delete every blob under this store's prefix (and the directory, for local stores).
        ``final=False`` keeps the directory's marker, so that a later, final pass still recognises
        the directory as this store's (``JobStore.destroy`` sweeps twice)."""

    # --- provider primitives ------------------------------------------------------------------

    @abstractmethod
    def _open_sink(self, key: str) -> BlobSink:
        """Start a create-only write of ``key`` (already checked)."""

    @abstractmethod
    def _open_source(self, key: str) -> BinaryIO:
        """Open ``key`` (already checked) for streaming reads. Raise BlobNotFoundError if missing."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Delete ``key``; a missing key is not an error."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """True if a blob is stored at ``key``."""

    @abstractmethod
    def size(self, key: str) -> int | None:
        """Stored size of ``key`` in bytes, or None if it is missing."""

    @abstractmethod
    def list_keys(self, prefix: str = "") -> Iterator[str]:
        """Every key under this store (optionally under ``prefix``), in no particular order."""

    @abstractmethod
    def public_url(self, key: str, expires_in: int) -> str:
        """A URL anyone holding it can GET for ``expires_in`` seconds (PublicURLError if impossible)."""

    def remove_stale_uploads(self, older_than: float) -> int:
        """Discard uploads a killed writer left half done, untouched since ``older_than`` (a Unix
        time); return how many. Garbage collection calls it. Providers whose unfinished uploads
        leave nothing behind (GCS resumable sessions expire on the server) keep this default."""
        return 0

    # --- same-backend fast path ---------------------------------------------------------------

    def import_from_url(self, url: str, key: str) -> ImportedBlob | None:
        """Copy the object at ``url`` to a new ``key`` without streaming it through this process.

        Providers override this where a copy can stay inside the backend (S3 CopyObject, GCS
        rewrite, a kernel copy between local files). Returns None when no fast path applies (another
        scheme, another endpoint, a source that cannot be inspected): the caller then streams the
        URL as usual, and that path reports any error about the source. Once a fast path has
        started, its failures raise, and nothing is left at ``key``.
        """
        return None

    # --- what the store layer calls -----------------------------------------------------------

    @contextmanager
    def open_write(self, key: str) -> Iterator[tuple[HashingWriter, _PendingInfo]]:
        """Write a new blob from a stream.

        Yields ``(handle, pending)``: write bytes to ``handle``; after a normal exit the blob is
        committed and ``pending.info`` holds its size and checksum. On an exception the blob is
        aborted (nothing at the key) and the exception propagates.
        """
        sink = self._open_sink(check_key(key))
        handle = HashingWriter(sink)
        pending = _PendingInfo()
        try:
            yield handle, pending
            handle.flush()
            info = BlobInfo(handle.checksum.size, handle.checksum.hexdigest())
            sink.commit(info)
            pending.info = info
        except BaseException:
            sink.abort()
            raise
        finally:
            # Disconnect so a caller's later write or close cannot reach the sink again.
            handle.detach_sink()

    def put_file(self, key: str, local_path: str) -> BlobInfo:
        """Store the contents of a local file at a new ``key``; return its size and checksum."""
        with open(local_path, "rb") as source, self.open_write(key) as (handle, pending):
            while chunk := source.read(CHUNK_SIZE):
                handle.write(chunk)
        assert pending.info is not None
        return pending.info

    def put_bytes(self, key: str, data: bytes) -> BlobInfo:
        with self.open_write(key) as (handle, pending):
            handle.write(data)
        assert pending.info is not None
        return pending.info

    def open_read(self, key: str, expected: BlobInfo | None, what: str) -> VerifyingReader:
        """A binary reader of ``key`` that verifies ``expected`` when read to the end."""
        return VerifyingReader(self._open_source(check_key(key)), expected, what)

    def get_file(
        self,
        key: str,
        local_path: str,
        expected: BlobInfo | None,
        *,
        executable: bool = False,
        allow_link: bool = False,
        what: str = "",
    ) -> None:
        """Materialise ``key`` at ``local_path`` atomically (temp name, then rename), verified.

        ``allow_link`` lets local providers hard-link the immutable blob instead of copying.
        """
        with self.open_read(key, expected, what or key) as reader:
            write_local_atomically(local_path, reader, executable=executable)


class _PendingInfo:
    """Filled in with the blob's BlobInfo once ``open_write`` commits."""

    __slots__ = ("info",)

    def __init__(self) -> None:
        self.info: BlobInfo | None = None


def local_temp_path(local_path: str) -> str:
    """A hidden temporary name beside ``local_path`` (same directory, so rename is atomic)."""
    directory, name = os.path.split(os.path.abspath(local_path))
    return os.path.join(directory, f".{name}.jobstore-{secrets.token_hex(6)}.tmp")


def write_local_atomically(local_path: str, reader: io.BufferedIOBase, *, executable: bool) -> None:
    """Copy ``reader`` into ``local_path`` via a temporary file and a rename; clean up on failure."""
    temp = local_temp_path(local_path)
    mode = 0o755 if executable else 0o644  # O_CREAT applies the umask, as open() would
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb", buffering=0) as out:
            while chunk := reader.read(CHUNK_SIZE):
                out.write(chunk)
        os.replace(temp, local_path)
    except BaseException:
        _unlink_quietly(temp)
        raise


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
