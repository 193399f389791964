"""Content checksums: CRC32C, computed in the same pass as the bytes move.

CRC32C (Castagnoli) is hardware-accelerated through ``google-crc32c`` (~20-25 GB/s here, ten times
sha256), and it is the checksum GCS verifies natively and S3 accepts, so one value serves every
backend. ``awscrt`` (a dependency of jobstore) has a faster one: it folds with carry-less
multiplication (VPCLMULQDQ/AVX-512 where the CPU has them), ~48 GB/s on cache-hot 1 MiB chunks on
this project's machine, which saves ~21-29 ms per GiB checksummed.

But loading awscrt's native library costs ~40-55 ms, once per process, holding the GIL throughout
(measured: a Python thread stalls for ~46 ms while another imports it, so it cannot be hidden
behind a copy). A Toil worker is a fresh process per job: loading it for its first large file made
that transfer ~40 ms slower (a 16 MiB ``write_file`` in a new process: 50 ms instead of 11). So the
choice is a ski-rental one: checksums start on google-crc32c, a process counts the bytes it
checksums that way, and once they reach ``BULK_ENGINE_AFTER_BYTES`` (about what the import costs
at the speed difference) it loads awscrt and every running and later checksum switches to it.
A process that moves little never pays the import; one that moves a lot pays it once, early.
Switching mid-stream is exact: both engines extend a finished CRC32C value the same way.

Neither engine releases the GIL (google-crc32c 1.9 and awscrt 0.38, measured: two threads
checksumming at once take twice as long as one), so checksums are computed inline, on the chunk
that was just copied and is still in the cache; a helper thread only added a handoff per chunk.

It detects corruption (bit rot, truncation, a wrong object), which is its job here; it is
not a defence against a deliberate forger, and does not need to be: only the store writes blobs.

Checksums are stored as ``"crc32c:" + 8 hex digits`` so another algorithm can be added later
without ambiguity.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable

import google_crc32c

from jobstore.errors import ChecksumMismatchError

ALGORITHM = "crc32c"


#: Bytes a process checksums on google-crc32c before it loads the bulk engine: the import (~45 ms)
#: over what the bulk engine saves (~21-29 ms per GiB), rounded up.
BULK_ENGINE_AFTER_BYTES = 2 * 1024**3

Extend = Callable[[int, bytes], int]
"""``extend(crc, data)``: the CRC32C of everything so far followed by ``data``."""

#: google-crc32c's, the engine every checksum starts on.
DEFAULT_EXTEND: Extend = google_crc32c.extend


def _awscrt_extend() -> Extend | None:
    try:
        from awscrt.checksums import crc32c
    except ImportError:  # not installed, or no wheel for this platform
        return None

    def extend(crc: int, data: bytes) -> int:
        return int(crc32c(data, crc))

    return extend


@functools.cache
def bulk_extend() -> Extend:
    """The fastest CRC32C at hand for large data: awscrt's if importable, else google-crc32c's.

    Loads awscrt on first call; ``RunningChecksum`` calls it only once the process has
    checksummed ``BULK_ENGINE_AFTER_BYTES`` without it.
    """
    return _awscrt_extend() or DEFAULT_EXTEND


class _Rental:
    """How many bytes this process has checksummed on the default engine, and the
    bulk engine once those paid for loading it. Updated without a lock: threads may lose a few
    counts between them, which only moves the switch by a chunk or two."""

    __slots__ = ("bulk", "rented")

    def __init__(self) -> None:
        self.rented = 0
        self.bulk: Extend | None = None

    def engine_after(self, size: int) -> Extend:
        """Record ``size`` more bytes done on google-crc32c; the engine for the next chunk."""
        self.rented += size
        if self.rented >= BULK_ENGINE_AFTER_BYTES:
            self.bulk = bulk_extend()
            return self.bulk
        return DEFAULT_EXTEND


_RENTAL = _Rental()


def bulk_engine_loaded() -> bool:
    """Whether this process has switched its checksums to the bulk engine."""
    return _RENTAL.bulk is not None


class RunningChecksum:
    """Accumulates the checksum of bytes as they pass, with their count, on the bulk engine once
    this process has loaded it, and on google-crc32c (counted towards loading it) until then."""

    __slots__ = ("_crc", "_extend", "_renting", "size")

    def __init__(self) -> None:
        self._crc = 0
        self.size = 0
        bulk = _RENTAL.bulk
        self._renting = bulk is None
        self._extend: Extend = DEFAULT_EXTEND if bulk is None else bulk

    def update(self, data: bytes) -> None:
        """Add ``data`` (bytes, not a memoryview: the C extension wants read-only bytes)."""
        self._crc = self._extend(self._crc, data)
        self.size += len(data)
        if self._renting:
            self._extend = _RENTAL.engine_after(len(data))
            self._renting = _RENTAL.bulk is None  # decided (awscrt, or its absence): stop counting

    @property
    def value(self) -> int:
        return self._crc

    def hexdigest(self) -> str:
        return format_checksum(self._crc)

    def base64_digest(self) -> str:
        """Big-endian base64, the form GCS and S3 use in headers."""
        return base64.b64encode(self._crc.to_bytes(4, "big")).decode()


def format_checksum(crc: int) -> str:
    return f"{ALGORITHM}:{crc:08x}"


def checksum_of_bytes(data: bytes) -> str:
    return format_checksum(google_crc32c.value(data))


def crc32c_base64(checksum: str) -> str:
    """Our ``crc32c:hex`` string as the base64 big-endian form used by GCS/S3 headers."""
    algorithm, _, digits = checksum.partition(":")
    if algorithm != ALGORITHM:
        raise ValueError(f"Not a {ALGORITHM} checksum: {checksum!r}")
    return base64.b64encode(int(digits, 16).to_bytes(4, "big")).decode()


def verify(expected_size: int | None, expected_checksum: str | None, actual: RunningChecksum, what: str) -> None:
    """Raise ChecksumMismatchError unless ``actual`` matches what was recorded."""
    if expected_size is not None and actual.size != expected_size:
        raise ChecksumMismatchError(
            f"{what}: read {actual.size} bytes but {expected_size} were recorded when it was written. "
            "The stored copy is damaged or truncated; run `jobstore fsck LOCATOR --verify-checksums`."
        )
    if expected_checksum is not None and actual.hexdigest() != expected_checksum:
        raise ChecksumMismatchError(
            f"{what}: content checksum {actual.hexdigest()} does not match the recorded "
            f"{expected_checksum}. The stored copy is corrupted; run `jobstore fsck LOCATOR --verify-checksums`."
        )
