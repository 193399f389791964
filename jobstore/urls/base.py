"""What every URL scheme shares: the handler interface, the source object, length verification.

A scheme handler (``file``, ``http``/``https``, ``ftp``; later ``s3`` and ``gs``) only knows how to
open its transport and translate its library's errors. Everything that must behave identically on
every scheme lives here, written once:

* :class:`UrlSource` is what an import reads: a streaming binary reader plus what the source
  declared about itself (length, a checksum hint, the executable bit, a base name);
* :class:`VerifyingReader` counts (and, when the source declared an authoritative checksum, hashes)
  the bytes as they pass, and raises :class:`~jobstore.errors.TransferIntegrityError` at the end
  if they differ from the declaration. A truncated transfer must never become a short file;
* :class:`ExactReader` is the other direction: what an export sends, cut at the announced size and
  checked against it, so a destination never receives a silently short or long body.
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, ClassVar, NoReturn

import google_crc32c

from jobstore.errors import TransferIntegrityError, UnsupportedURLError
from jobstore.redact import redact_url

if TYPE_CHECKING:
    from jobstore.config import Config

#: Size of each read and write when streaming: throughput without memory that grows with the file.
CHUNK_SIZE = 1024 * 1024


@dataclass(frozen=True)
class ChecksumHint:
    """A checksum the source declared for its content.

    ``enforced`` hints come from a field whose meaning is defined to be the digest of the body
    (HTTP ``Content-MD5``); :class:`VerifyingReader` checks them. Other hints (an ``ETag`` that
    looks like an MD5, as S3 and many servers send) are a convention, not a promise, so they are
    only reported: checking them would fail on servers whose 32-hex-digit ETag is something else.
    """

    algorithm: str  # "md5", "crc32c" or "crc32" (CRCs as 8 hex digits, big-endian)
    hexdigest: str
    source: str  # where it came from: "Content-MD5", "ETag", "GCS crc32c"...
    enforced: bool


class Digest:
    """hashlib's md5, or a CRC (crc32c through google-crc32c, crc32 through zlib), behind one face."""

    def __init__(self, algorithm: str) -> None:
        self._algorithm = algorithm
        self._crc = 0
        self._md5 = hashlib.md5(usedforsecurity=False) if algorithm == "md5" else None
        if self._md5 is None and algorithm not in ("crc32c", "crc32"):
            raise ValueError(f"cannot verify a {algorithm!r} checksum; use md5, crc32c or crc32")

    def update(self, data: bytes) -> None:
        if self._md5 is not None:
            self._md5.update(data)
        elif self._algorithm == "crc32c":
            self._crc = google_crc32c.extend(self._crc, data)
        else:
            self._crc = zlib.crc32(data, self._crc)

    def hexdigest(self) -> str:
        return self._md5.hexdigest() if self._md5 is not None else f"{self._crc:08x}"


class VerifyingReader(io.RawIOBase):
    """A raw binary reader over a transport's ``read(n)`` that checks what arrived at the end.

    ``read`` must return up to ``n`` bytes and ``b""`` only at the end, and must already raise
    ``jobstore.errors`` exceptions (each handler translates its own library's errors).
    ``on_close`` releases the transport (connection, socket, file descriptor).
    """

    def __init__(
        self,
        read: Callable[[int], bytes],
        *,
        what: str,
        size: int | None,
        checksum: ChecksumHint | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self._read = read
        self._what = what
        self._size = size
        self._checksum = checksum if checksum is not None and checksum.enforced else None
        self._hash = Digest(self._checksum.algorithm) if self._checksum is not None else None
        self._on_close = on_close
        self._failure: TransferIntegrityError | None = None
        self._eof = False
        #: Bytes delivered so far.
        self.delivered = 0

    def readable(self) -> bool:
        return True

    @property
    def complete(self) -> bool:
        """True once the end was reached and everything declared was delivered and matched."""
        return self._eof and self._failure is None

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._failure is not None:
            raise self._failure
        if self._eof:
            return 0
        view = memoryview(buffer).cast("B")
        data = self._read(len(view))
        if not data:
            self._eof = True
            self._check_end()
            return 0
        self.delivered += len(data)
        if self._size is not None and self.delivered > self._size:
            self._fail(f"received more than the {self._size} bytes the source declared")
        if self._hash is not None:
            self._hash.update(data)
        view[: len(data)] = data
        return len(data)

    def _check_end(self) -> None:
        if self._size is not None and self.delivered != self._size:
            self._fail(
                f"the transfer ended after {self.delivered} of the {self._size} bytes the source declared "
                "(the connection was cut or the source changed); retry the transfer"
            )
        if self._checksum is not None and self._hash is not None:
            actual = self._hash.hexdigest()
            if actual != self._checksum.hexdigest.lower():
                self._fail(
                    f"the content's {self._checksum.algorithm} is {actual}, but the source declared "
                    f"{self._checksum.hexdigest} in {self._checksum.source}. The bytes were damaged in "
                    "transit or the source is inconsistent; retry the transfer"
                )

    def _fail(self, detail: str) -> None:
        self._failure = TransferIntegrityError(f"{self._what}: {detail}.")
        raise self._failure

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self._on_close is not None:
                self._on_close()
        finally:
            super().close()


class ExactReader:
    """Reads exactly ``size`` bytes from ``reader`` for an upload, and proves there were no more.

    Also what ``requests`` and ``ftplib`` consume: ``read(n)`` plus ``__len__`` (so requests sends
    ``Content-Length`` instead of chunked encoding). With ``size=None`` it passes everything through.
    """

    def __init__(self, reader: IO[bytes], size: int | None, what: str) -> None:
        if size is not None and size < 0:
            raise ValueError(f"size must be >= 0 (or None for unknown), not {size}")
        self._reader = reader
        self._size = size
        self._what = what
        self.consumed = 0
        self._done = False
        #: The exception the reader itself raised, if any. Transports catch OSError broadly and
        #: would report a failing *source* as a failing destination; handlers check this first
        #: and re-raise it unchanged.
        self.failure: BaseException | None = None

    def __len__(self) -> int:
        return self._size if self._size is not None else 0

    def read(self, n: int = -1) -> bytes:
        if self._done:
            return b""
        want = CHUNK_SIZE if n is None or n < 0 else n
        if want == 0:
            return b""
        if self._size is None:
            data = self._read(want)
            self._done = not data
            self.consumed += len(data)
            return bytes(data)
        remaining = self._size - self.consumed
        if want < remaining:
            data = self._read(want)
            if not data:
                self._fail_short()
            self.consumed += len(data)
            return bytes(data)
        # The last piece is held back until the reader is proven to end right there: once the
        # destination has the announced number of bytes it considers the transfer complete, so
        # "too long" must be detected before those bytes leave.
        pieces: list[bytes] = []
        missing = remaining
        while missing:
            data = self._read(missing)
            if not data:
                self.consumed += remaining - missing
                self._fail_short()
            pieces.append(bytes(data))
            missing -= len(data)
        if self._read(1):
            self.failure = TransferIntegrityError(
                f"{self._what}: the data to send is longer than the {self._size} bytes announced. "
                "The destination was not completed."
            )
            raise self.failure
        self._done = True
        self.consumed += remaining
        return b"".join(pieces)

    def _fail_short(self) -> NoReturn:
        self.failure = TransferIntegrityError(
            f"{self._what}: the data to send ended after {self.consumed} of the {self._size} bytes "
            "announced. The destination was not completed."
        )
        raise self.failure

    def _read(self, n: int) -> bytes:
        try:
            return self._reader.read(n)
        except BaseException as error:
            self.failure = error
            raise


class UrlSource:
    """An open URL being imported: read ``stream`` to the end, then use what it declared.

    Attributes:
        url: the URL, with any password masked (safe to log).
        stream: buffered binary reader; memory use does not depend on the size. Reading it to the
            end raises TransferIntegrityError if fewer or more bytes arrived than ``size``, or if
            an enforced checksum does not match.
        size: the length the source declared (file size, Content-Length, FTP SIZE), or None.
        checksum: a checksum the source declared, or None (see :class:`ChecksumHint`).
        basename: the last segment of the URL's path (percent-decoded), or None if it has none.
        executable: whether the source is executable (file:// only; False elsewhere).
        fingerprint: what identifies the opened content (see :meth:`UrlHandler.fingerprint`),
            or None where the transport cannot say.
    """

    def __init__(
        self,
        *,
        url: str,
        raw: VerifyingReader,
        size: int | None,
        basename: str | None,
        executable: bool = False,
        checksum: ChecksumHint | None = None,
        fingerprint: dict[str, Any] | None = None,
    ) -> None:
        self.url = url
        self.fingerprint = fingerprint
        self._raw = raw
        self.stream: io.BufferedReader = io.BufferedReader(raw, buffer_size=CHUNK_SIZE)
        self.size = size
        self.basename = basename
        self.executable = executable
        self.checksum = checksum

    @property
    def complete(self) -> bool:
        """True once ``stream`` was read to the end and passed verification."""
        return self._raw.complete

    @property
    def delivered(self) -> int:
        """Bytes delivered by the transport so far."""
        return self._raw.delivered

    def close(self) -> None:
        self.stream.close()

    def __repr__(self) -> str:
        return f"<UrlSource {self.url} size={self.size}>"


class UrlHandler(ABC):
    """Reads and writes URLs of one transport. Subclasses translate their library's errors.

    A handler is created per operation with the store's Config (None outside a store), which
    later handlers (s3, gs) need for endpoints and credentials.
    """

    #: The URL schemes this handler serves.
    schemes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Config | None = None) -> None:
        self.config = config

    @abstractmethod
    def open_source(self, url: str) -> AbstractContextManager[UrlSource]:
        """Open ``url`` for a streaming, verified read (see :class:`UrlSource`)."""

    @abstractmethod
    def write(
        self,
        url: str,
        reader: IO[bytes],
        size: int | None,
        *,
        executable: bool = False,
        http_method: str = "POST",
    ) -> None:
        """Store exactly ``size`` bytes of ``reader`` at ``url``, leaving nothing partial on failure
        where the transport allows it."""

    def fingerprint(self, url: str) -> dict[str, Any]:
        """What identifies the content ``url`` names now, without reading it: ``size`` plus
        ``mtime_ns``/``inode``/``device`` (a local file), ``etag`` (S3) or ``generation`` (GCS).
        Reference imports record it and compare it on every read. Transports whose servers give no
        reliable identity of the content raise UnsupportedURLError."""
        raise UnsupportedURLError(
            f"{redact_url(url)}: {self.schemes[0] if self.schemes else 'this'} URLs cannot be imported by "
            "reference, because their servers give no reliable identity of the content to check on each "
            "read (references work for file:, s3: and gs: URLs); import it with mode='copy'."
        )


def basename_of(path: str) -> str | None:
    """The last segment of a URL path (already decoded), or None when there is none."""
    name = posixpath.basename(path.rstrip("/")) if path.strip("/") else ""
    return name if name not in ("", ".", "..") else None


def reader_position(reader: IO[bytes]) -> int | None:
    """Where ``reader`` is, if it can seek back there (so an upload can be re-sent); else None."""
    try:
        if not reader.seekable():
            return None
        return reader.tell()
    except (OSError, ValueError, AttributeError):
        return None
