"""Reference imports: read a file from where it lies, and never return bytes that changed.

A reference records the source's URL and fingerprint (:meth:`UrlHandler.fingerprint`: size plus
mtime + inode + device, ETag or generation) and, when the caller asked for one, the CRC32C of its
content. Every read compares the fingerprint first, so a source replaced, rewritten, truncated or
deleted since the import raises :class:`ReferenceChangedError` naming it instead of handing out
other bytes; a local source is looked at again when the read ends (a write in place during the read
moves its mtime), and a recorded checksum is verified at the end of every whole read.

jobstore never writes, moves, chmods or deletes a reference's source: nothing here opens it for
anything but reading, and a reference's blob key (``ref/...``) names nothing in any blob store.
"""

from __future__ import annotations

import io
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from jobstore.errors import ReferenceChangedError, URLAccessError, URLNotFoundError
from jobstore.providers.local import local_path_of
from jobstore.redact import redact_url
from jobstore.urls.base import CHUNK_SIZE, Digest, UrlSource
from jobstore.urls.registry import handler_for, scheme_of

if TYPE_CHECKING:
    from jobstore.config import Config

__all__ = [
    "Reference",
    "open_reference",
    "place_symlink",
    "reference_of",
]

#: The fingerprint fields compared on each read (whichever the transport gives).
IDENTITY_FIELDS = ("size", "mtime_ns", "inode", "device", "etag", "version_id", "generation")


class Reference:
    """A recorded source: its URL, its fingerprint when imported, its CRC32C if one was taken."""

    def __init__(self, url: str, fingerprint: dict[str, Any], checksum: str = "") -> None:
        self.url = url
        self.fingerprint = fingerprint
        self.checksum = checksum

    @property
    def size(self) -> int:
        return int(self.fingerprint["size"])

    @property
    def is_local(self) -> bool:
        return scheme_of(self.url) == "file"

    def to_json(self) -> str:
        return json.dumps({"url": self.url, **self.fingerprint}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, checksum: str = "") -> Reference:
        found = json.loads(text)
        url = str(found.pop("url"))
        return cls(url, found, checksum)

    def changes(self, current: dict[str, Any] | None) -> list[str]:
        """How ``current`` differs from the recorded fingerprint (empty when unchanged)."""
        if current is None:
            return ["the transport no longer says what it holds"]
        return [
            f"{name} {self.fingerprint.get(name)!r} -> {current.get(name)!r}"
            for name in IDENTITY_FIELDS
            if self.fingerprint.get(name) != current.get(name)
        ]

    def require_unchanged(self, current: dict[str, Any] | None, what: str) -> None:
        changed = self.changes(current)
        if changed:
            raise ReferenceChangedError(
                f"{what} is a reference to {redact_url(self.url)}, which changed since it was imported "
                f"({'; '.join(changed)}). jobstore never hands out changed bytes of a reference: restore "
                "the source, or import it again."
            )

    def validate(self, config: Config | None, what: str) -> None:
        """Compare the source's fingerprint now (a stat, or one HEAD request) with the recorded one."""
        self.require_unchanged(self._current(config, what), what)

    def _current(self, config: Config | None, what: str) -> dict[str, Any]:
        try:
            return handler_for(self.url, config).fingerprint(self.url)
        except URLNotFoundError as error:
            raise ReferenceChangedError(
                f"{what} is a reference to {redact_url(self.url)}, which no longer exists. Restore the "
                "source, or delete the file."
            ) from error


def reference_of(url: str, config: Config | None, *, checksum: bool) -> tuple[Reference, bool]:
    """Fingerprint ``url`` for a reference import (reading it once for a CRC32C if ``checksum``),
    plus whether it is executable. Raises UnsupportedURLError for transports that cannot be
    referenced, URLAccessError subclasses when the source cannot be looked at."""
    handler = handler_for(url, config)
    fingerprint = handler.fingerprint(url)
    executable = False
    if scheme_of(url) == "file":
        executable = os.access(local_path_of(url), os.X_OK)
    reference = Reference(url, fingerprint)
    if checksum:
        with handler.open_source(url) as source:
            reference.require_unchanged(source.fingerprint, redact_url(url))
            running = Digest("crc32c")
            while chunk := source.stream.read(CHUNK_SIZE):
                running.update(chunk)
        reference.checksum = _checksum_text(running)
        reference.validate(config, redact_url(url))  # not rewritten while it was being read
    return reference, executable


@contextmanager
def open_reference(reference: Reference, config: Config | None, what: str) -> Iterator[io.BufferedIOBase]:
    """A buffered reader of the source, after its fingerprint matched; reading it to the end checks
    the recorded checksum (if any) and, for a local file, that it did not change meanwhile."""
    try:
        opened = handler_for(reference.url, config).open_source(reference.url)
        source = opened.__enter__()
    except URLNotFoundError:
        reference.validate(config, what)  # raises the "no longer exists" error
        raise
    try:
        reference.require_unchanged(source.fingerprint, what)
        yield io.BufferedReader(_ReferenceReader(source, reference, config, what), buffer_size=CHUNK_SIZE)
    finally:
        opened.__exit__(None, None, None)


class _ReferenceReader(io.RawIOBase):
    """Passes the source's bytes through and checks, at their end, that they were the referenced ones."""

    def __init__(self, source: UrlSource, reference: Reference, config: Config | None, what: str) -> None:
        super().__init__()
        self._source = source
        self._reference = reference
        self._config = config
        self._what = what
        self._checksum = Digest("crc32c") if reference.checksum else None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        data = self._source.stream.read(len(view))
        if not data:
            self._check_end()
            return 0
        if self._checksum is not None:
            self._checksum.update(data)
        view[: len(data)] = data
        return len(data)

    def _check_end(self) -> None:
        if self._reference.is_local:
            self._reference.validate(self._config, self._what)
        if self._checksum is not None and _checksum_text(self._checksum) != self._reference.checksum:
            raise ReferenceChangedError(
                f"{self._what} is a reference to {redact_url(self._reference.url)}, whose content no longer "
                f"has the CRC32C recorded at import ({_checksum_text(self._checksum)}, not "
                f"{self._reference.checksum}). Restore the source, or import it again."
            )


def _checksum_text(digest: Digest) -> str:
    """The form the catalog records every checksum in (that of the blob stores' own)."""
    return f"crc32c:{digest.hexdigest()}"


def place_symlink(reference: Reference, target: str) -> None:
    """Make ``target`` a symbolic link to the (local) source, atomically: a link under a temporary
    name in the target's directory, then a rename over whatever ``target`` was."""
    source = os.path.realpath(local_path_of(reference.url))
    temp = os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.jobstore-{secrets.token_hex(6)}.lnk")
    try:
        os.symlink(source, temp)
        os.replace(temp, target)
    except OSError as error:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise URLAccessError(f"Cannot link {target!r} to {redact_url(reference.url)}: {error.strerror}.") from error
