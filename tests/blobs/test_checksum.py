"""Checksums: the bulk CRC32C engine, when a process loads it, and its fallback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import google_crc32c
import pytest

from jobstore.blobs import checksum as checksum_module
from jobstore.blobs.checksum import RunningChecksum

MIB = 1 << 20


def test_the_bulk_engine_is_awscrt_when_installed() -> None:
    """awscrt is a dependency; if the selection silently fell back, large transfers would be slower."""
    import awscrt.checksums  # a dependency of jobstore: missing, this test fails

    assert awscrt.checksums.crc32c(b"123456789") == 0xE3069283
    assert checksum_module.bulk_extend() is not google_crc32c.extend


def test_the_engines_agree_across_the_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bulk engine is loaded after the first 1 MiB here, so this checksum starts on
    google-crc32c and finishes on awscrt, in uneven chunks: the running value carries over."""
    monkeypatch.setattr(checksum_module, "_RENTAL", checksum_module._Rental())
    monkeypatch.setattr(checksum_module, "BULK_ENGINE_AFTER_BYTES", MIB)
    data = os.urandom(3 << 20)
    running = RunningChecksum()
    for start in range(0, len(data), 777_777):
        running.update(data[start : start + 777_777])
    assert running.value == google_crc32c.value(data)
    assert running.size == len(data)
    assert checksum_module.bulk_engine_loaded() and running._extend is checksum_module.bulk_extend()
    assert RunningChecksum().hexdigest() == "crc32c:00000000"


def test_checksums_wait_for_the_process_to_have_paid_for_the_bulk_engine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ski rental: checksums run on google-crc32c, counted, until the count reaches the threshold;
    then the running one switches mid-way and later ones start on the bulk engine."""
    monkeypatch.setattr(checksum_module, "_RENTAL", checksum_module._Rental())
    monkeypatch.setattr(checksum_module, "BULK_ENGINE_AFTER_BYTES", 5 * MIB)
    chunk = os.urandom(MIB)
    first = RunningChecksum()
    for _ in range(3):
        first.update(chunk)
    assert first._extend is google_crc32c.extend and not checksum_module.bulk_engine_loaded()
    second = RunningChecksum()
    for _ in range(2):
        second.update(chunk)  # 5 MiB counted in all: the next chunk goes to the bulk engine
    assert checksum_module.bulk_engine_loaded() and second._extend is checksum_module.bulk_extend()
    second.update(chunk)
    assert second.value == google_crc32c.value(chunk * 3)
    assert RunningChecksum()._extend is checksum_module.bulk_extend()


def test_without_awscrt_the_bulk_engine_falls_back_to_google_crc32c() -> None:
    """A platform without an awscrt wheel still works, only slower (run in a fresh interpreter so
    that the blocked import is not already cached)."""
    program = (
        "import sys; sys.modules['awscrt'] = None; sys.modules['awscrt.checksums'] = None\n"
        "import google_crc32c\n"
        "from jobstore.blobs.checksum import RunningChecksum, bulk_extend\n"
        "assert bulk_extend() is google_crc32c.extend\n"
        "import jobstore.blobs.checksum as checksum\n"
        "checksum.BULK_ENGINE_AFTER_BYTES = 4  # the switch is reached, and finds no awscrt\n"
        "c = RunningChecksum(); c.update(b'12345'); c.update(b'6789')\n"
        "assert c.value == 0xE3069283, hex(c.value)\n"
        "assert RunningChecksum()._extend is google_crc32c.extend\n"
    )
    subprocess.run([sys.executable, "-c", program], check=True, timeout=60)


def test_a_process_moving_one_large_file_never_loads_the_bulk_engine(tmp_path: Path) -> None:
    """A Toil worker is a new process per job: its first 16 MiB file must not pay awscrt's ~40 ms
    import (it made that write_file 50 ms instead of 11). Written, read across file systems, read
    as a stream: no awscrt; the same process, having moved more than the threshold, loads it."""
    other = Path("/dev/shm")
    assert other.is_dir() and other.stat().st_dev != tmp_path.stat().st_dev, "needs /dev/shm as another file system"
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(16 * MIB))
    copy = other / f"jobstore-test-{os.getpid()}.bin"
    program = f"""
import sys
import jobstore
from jobstore.blobs import checksum
store = jobstore.FileJobStore({str(tmp_path / "store")!r})
store.initialize(jobstore.Config(jobStore={str(tmp_path / "store")!r}))
file_id = store.write_file({str(source)!r})
store.read_file(file_id, {str(copy)!r})
with store.read_file_stream(file_id) as handle:
    assert len(handle.read()) == {16 * MIB}
assert "awscrt" not in sys.modules, "awscrt was imported"
checksum.BULK_ENGINE_AFTER_BYTES = {64 * MIB}
for _ in range(2):
    with store.read_file_stream(file_id) as handle:
        assert len(handle.read()) == {16 * MIB}
assert checksum.bulk_engine_loaded() and "awscrt" in sys.modules
with store.read_file_stream(file_id) as handle:  # verified on the bulk engine from the start
    assert handle._checksum._extend is checksum.bulk_extend() and len(handle.read()) == {16 * MIB}
"""
    try:
        subprocess.run([sys.executable, "-c", program], check=True, timeout=120)
        assert copy.read_bytes() == source.read_bytes()
    finally:
        copy.unlink(missing_ok=True)


def test_small_transfers_do_not_load_the_bulk_engine() -> None:
    """awscrt takes ~40 ms to load; a process that only checksums small data must not pay it."""
    program = (
        "import sys\n"
        "from jobstore.blobs.checksum import RunningChecksum\n"
        "c = RunningChecksum(); c.update(b'x' * 4096)\n"
        "assert 'awscrt' not in sys.modules, 'awscrt was imported'\n"
    )
    subprocess.run([sys.executable, "-c", program], check=True, timeout=60)
