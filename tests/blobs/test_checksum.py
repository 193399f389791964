"""Checksums: the bulk CRC32C engine and its fallback."""

from __future__ import annotations

import os
import subprocess
import sys

import google_crc32c
import pytest

from jobstore.blobs import checksum as checksum_module
from jobstore.blobs.checksum import RunningChecksum


def test_the_bulk_engine_is_awscrt_when_installed() -> None:
    """awscrt is a dependency; if the selection silently fell back, large transfers would be slower."""
    import awscrt.checksums  # a dependency of jobstore: missing, this test fails

    assert awscrt.checksums.crc32c(b"123456789") == 0xE3069283
    assert checksum_module.bulk_extend() is not google_crc32c.extend


@pytest.mark.parametrize("bulk", [False, True])
def test_bulk_and_plain_engines_agree(bulk: bool) -> None:
    data = os.urandom(3 << 20)
    running = RunningChecksum(bulk=bulk)
    for start in range(0, len(data), 777_777):  # uneven chunks: the running value is carried over
        running.update(data[start : start + 777_777])
    assert running.value == google_crc32c.value(data)
    assert running.size == len(data)
    assert RunningChecksum(bulk=bulk).hexdigest() == "crc32c:00000000"


def test_without_awscrt_the_bulk_engine_falls_back_to_google_crc32c() -> None:
    """A platform without an awscrt wheel still works, only slower (run in a fresh interpreter so
    that the blocked import is not already cached)."""
    program = (
        "import sys; sys.modules['awscrt'] = None; sys.modules['awscrt.checksums'] = None\n"
        "import google_crc32c\n"
        "from jobstore.blobs.checksum import RunningChecksum, bulk_extend\n"
        "assert bulk_extend() is google_crc32c.extend\n"
        "c = RunningChecksum(bulk=True); c.update(b'123456789')\n"
        "assert c.value == 0xE3069283, hex(c.value)\n"
    )
    subprocess.run([sys.executable, "-c", program], check=True, timeout=60)


def test_small_transfers_do_not_load_the_bulk_engine() -> None:
    """awscrt takes ~40 ms to load; a process that only checksums small data must not pay it."""
    program = (
        "import sys\n"
        "from jobstore.blobs.checksum import RunningChecksum\n"
        "c = RunningChecksum(); c.update(b'x' * 4096)\n"
        "assert 'awscrt' not in sys.modules, 'awscrt was imported'\n"
    )
    subprocess.run([sys.executable, "-c", program], check=True, timeout=60)
