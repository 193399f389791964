"""The verifying reader behaves like a buffered file, whatever the mix of calls, and verifies.

Every sequence of ``read(n)``, ``read()``, ``read1``, ``readline``, ``peek``, ``readinto`` and
line iteration returns what ``io.BufferedReader`` over the same bytes returns (the reader keeps
a read-ahead buffer consumed by an offset, and reads of 64 KiB or more bypass it), and damage is
reported however the blob is read. A real local blob store: the provider stream is a ``FileIO``.
"""

from __future__ import annotations

import io
import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from jobstore.blobs.base import READ_AHEAD, BlobInfo, VerifyingReader
from jobstore.blobs.checksum import checksum_of_bytes
from jobstore.blobs.local import LocalBlobStore
from jobstore.errors import ChecksumMismatchError


def _content(size: int, seed: int) -> bytes:
    """Lines of varied length (some longer than the read-ahead buffer), and binary noise."""
    rng = random.Random(seed)
    parts = []
    while sum(map(len, parts)) < size:
        if rng.random() < 0.02:
            parts.append(os.urandom(rng.randrange(READ_AHEAD, 3 * READ_AHEAD)))  # crosses buffers
        else:
            parts.append(b"x" * rng.randrange(0, 120) + b"\n")
    return b"".join(parts)[:size]


@pytest.fixture
def blobs(tmp_path: Path) -> LocalBlobStore:
    store = LocalBlobStore(str(tmp_path / "blobs"))
    store.create()
    return store


def _open(blobs: LocalBlobStore, content: bytes, expected: bytes | None = None) -> VerifyingReader:
    key = f"f/rd/{os.urandom(6).hex()}"
    blobs.put_bytes(key, content)
    recorded = content if expected is None else expected
    return blobs.open_read(key, BlobInfo(len(recorded), checksum_of_bytes(recorded)), key)


Operation = Callable[[io.BufferedIOBase, random.Random], object]


def _readinto(reader: io.BufferedIOBase, size: int) -> bytes:
    buffer = bytearray(size)
    return bytes(buffer[: reader.readinto(buffer)])


OPERATIONS: dict[str, Operation] = {
    "read small": lambda r, rng: r.read(rng.randrange(0, 300)),
    "read large": lambda r, rng: r.read(rng.randrange(READ_AHEAD, 3 * READ_AHEAD)),
    "read1": lambda r, rng: r.read1(rng.randrange(1, 2 * READ_AHEAD)),
    "readline": lambda r, rng: r.readline(),
    "readline limited": lambda r, rng: r.readline(rng.randrange(0, 200)),
    "readinto": lambda r, rng: _readinto(r, rng.randrange(1, 2 * READ_AHEAD)),
    "next line": lambda r, rng: next(iter(r), b""),
}


@pytest.mark.parametrize("seed", range(12))
def test_any_mix_of_calls_reads_what_a_buffered_file_reads(blobs: LocalBlobStore, seed: int) -> None:
    rng = random.Random(seed)
    content = _content(rng.randrange(0, 6 * READ_AHEAD), seed)
    reference = io.BufferedReader(io.BytesIO(content), buffer_size=8192)
    names = list(OPERATIONS)
    with _open(blobs, content) as reader:
        position = 0
        for _ in range(400):
            name = rng.choice(names)
            if name == "read1":  # may return fewer bytes than asked: compare as a prefix
                got = OPERATIONS[name](reader, random.Random(position))
                assert isinstance(got, bytes) and content[position : position + len(got)] == got
                reference.read(len(got))
            else:
                state = random.Random(position)
                expected = OPERATIONS[name](reference, random.Random(position))
                assert OPERATIONS[name](reader, state) == expected, (name, position)
                assert isinstance(expected, bytes)
                got = expected
            position += len(got)
            peeked = reader.peek(1)
            assert content[position:].startswith(peeked)  # peek moves nothing
        assert reader.read() == content[position:]
        assert reader.read() == b"" and reader.readline() == b"" and list(reader) == []


def test_iterating_over_lines_matches_a_file_and_can_be_mixed_with_reads(blobs: LocalBlobStore) -> None:
    content = _content(5 * READ_AHEAD, 99) + b"no newline at the end"
    with _open(blobs, content) as reader:
        assert list(reader) == list(io.BytesIO(content))
    with _open(blobs, content) as reader:
        lines = iter(reader)
        first = next(lines)
        middle = reader.read(1000)
        rest = b"".join(lines)
        assert first + middle + rest == content


@pytest.mark.parametrize("damage", ["changed", "truncated", "grown"])
@pytest.mark.parametrize("how", ["lines", "small reads", "whole"])
def test_damage_is_caught_however_the_blob_is_read(blobs: LocalBlobStore, damage: str, how: str) -> None:
    content = _content(3 * READ_AHEAD, 7)
    stored = {"changed": content[:-1] + bytes([content[-1] ^ 1]), "truncated": content[:-1], "grown": content + b"\n"}
    with pytest.raises(ChecksumMismatchError):
        with _open(blobs, stored[damage], expected=content) as reader:
            if how == "lines":
                for _ in reader:
                    pass
            elif how == "small reads":
                while reader.read(100):
                    pass
            else:
                reader.read()
