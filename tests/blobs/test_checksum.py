"""BackgroundChecksum: the CRC32C of a verified stream, computed on a helper thread."""

from __future__ import annotations

import os

import google_crc32c
import pytest

from jobstore.blobs.checksum import BackgroundChecksum, RunningChecksum
from jobstore.errors import ChecksumMismatchError


def test_background_checksum_equals_the_inline_one() -> None:
    chunks = [os.urandom(size) for size in (0, 1, 4096, 1 << 20, 12345)] * 5
    inline, background = RunningChecksum(), BackgroundChecksum(depth=2)
    for chunk in chunks:
        inline.update(chunk)
        background.update(chunk)
    background.finish()
    background.finish()  # idempotent
    assert (background.size, background.hexdigest()) == (inline.size, inline.hexdigest())
    assert background.value == google_crc32c.value(b"".join(chunks))


def test_a_forked_child_cannot_continue_a_background_checksum() -> None:
    """The child has the object but not the helper thread: it must fail at once, never hang."""
    checksum = BackgroundChecksum(depth=1)
    checksum.update(b"before the fork")
    pid = os.fork()
    if pid == 0:  # the child
        try:
            for _ in range(4):  # more than the queue holds: would block forever without the check
                checksum.update(b"in the child")
        except ChecksumMismatchError:
            os._exit(0)
        os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    checksum.finish()
    assert checksum.value == google_crc32c.value(b"before the fork")


@pytest.mark.parametrize("depth", [1, 8])
def test_closing_early_stops_the_helper(depth: int) -> None:
    checksum = BackgroundChecksum(depth=depth)
    checksum.update(b"x" * 1000)
    checksum.close()
    assert checksum._thread is None
