"""file:// URLs and bare paths: verified reads, atomic writes that create parents."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path
from urllib.parse import quote

import pytest

from jobstore.errors import (
    TransferIntegrityError,
    UnsupportedURLError,
    URLAccessError,
    URLNotFoundError,
)
from jobstore.urls import open_source, write_to_url

SIZES = [0, 1, 1024 * 1024]


def _content(size: int) -> bytes:
    return os.urandom(size)


def _leftovers(directory: Path) -> list[str]:
    return [name for name in os.listdir(directory) if ".jobstore-" in name]


@pytest.mark.parametrize("size", SIZES)
def test_round_trip(tmp_path: Path, size: int) -> None:
    data = _content(size)
    source_path = tmp_path / "in" / "data.bin"
    source_path.parent.mkdir()
    source_path.write_bytes(data)
    with open_source(source_path.as_uri()) as source:
        assert source.size == size
        assert source.basename == "data.bin"
        assert source.executable is False
        assert source.stream.read() == data
        assert source.complete
    target = tmp_path / "out" / "deeper" / "copy.bin"
    write_to_url(target.as_uri(), io.BytesIO(data), size)
    assert target.read_bytes() == data
    assert _leftovers(target.parent) == []


def test_bare_paths_and_url_forms_name_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "odd name #1 %41.txt"
    path.write_bytes(b"odd")
    for url in (
        str(path),
        "file://" + quote(str(path)),
        "file://localhost" + quote(str(path)),
        "file:" + quote(str(path)),
    ):
        with open_source(url) as source:
            assert source.stream.read() == b"odd", url
            assert source.basename == "odd name #1 %41.txt"


@pytest.mark.parametrize(
    "url",
    ["file://otherhost/etc/passwd", "file:relative/x", "file:///tmp/a?b", "file:///tmp/a#b"],
)
def test_file_urls_that_are_refused(url: str) -> None:
    with pytest.raises(UnsupportedURLError):
        with open_source(url):
            pass


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(URLNotFoundError, match="no such file"):
        with open_source((tmp_path / "nope").as_uri()):
            pass


def test_directory_is_refused_for_import_and_export(tmp_path: Path) -> None:
    with pytest.raises(URLAccessError, match="is a directory"):
        with open_source(tmp_path.as_uri()):
            pass
    with pytest.raises(URLAccessError, match="is a directory"):
        write_to_url(tmp_path.as_uri(), io.BytesIO(b"x"), 1)
    with pytest.raises(URLAccessError, match="is a directory"):
        write_to_url(tmp_path.as_uri() + "/sub/", io.BytesIO(b"x"), 1)


def test_fifo_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(URLAccessError, match="not a regular file"):
        with open_source(str(fifo)):
            pass


def test_executable_bit_is_reported_and_kept(tmp_path: Path) -> None:
    script = tmp_path / "run.sh"
    script.write_bytes(b"#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    with open_source(str(script)) as source:
        assert source.executable is True
        data = source.stream.read()
    target = tmp_path / "bin" / "run.sh"
    write_to_url(str(target), io.BytesIO(data), len(data), executable=True)
    assert target.stat().st_mode & stat.S_IXUSR
    plain = tmp_path / "bin" / "plain.txt"
    write_to_url(str(plain), io.BytesIO(data), len(data))
    assert not plain.stat().st_mode & stat.S_IXUSR


def test_a_file_that_grows_while_read_is_an_integrity_error(tmp_path: Path) -> None:
    path = tmp_path / "growing.log"
    path.write_bytes(b"a" * 100)
    with open_source(str(path)) as source:
        with open(path, "ab") as more:
            more.write(b"b" * 100)
        with pytest.raises(TransferIntegrityError, match="more than the 100 bytes"):
            source.stream.read()


def test_a_file_that_shrinks_while_read_is_an_integrity_error(tmp_path: Path) -> None:
    path = tmp_path / "shrinking.log"
    path.write_bytes(b"a" * 100)
    with open_source(str(path)) as source:
        os.truncate(path, 40)
        with pytest.raises(TransferIntegrityError, match="40 of the 100 bytes"):
            source.stream.read()


def test_export_failure_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "result.txt"
    target.write_bytes(b"old content")
    with pytest.raises(TransferIntegrityError, match="5 of the 10 bytes"):
        write_to_url(str(target), io.BytesIO(b"short"), 10)
    assert target.read_bytes() == b"old content"
    assert _leftovers(tmp_path) == []
    with pytest.raises(TransferIntegrityError, match="longer than the 3 bytes"):
        write_to_url(str(target), io.BytesIO(b"too long"), 3)
    assert target.read_bytes() == b"old content"
    assert _leftovers(tmp_path) == []


class _Exploding(io.RawIOBase):
    """Delivers some bytes, then fails like a broken network stream."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        self.calls += 1
        if self.calls > 2:
            raise ConnectionResetError("source went away")
        view = memoryview(buffer).cast("B")
        view[:10] = b"x" * 10
        return 10


def test_export_reader_failure_cleans_up(tmp_path: Path) -> None:
    target = tmp_path / "new" / "result.txt"
    with pytest.raises(ConnectionResetError):
        write_to_url(str(target), io.BufferedReader(_Exploding()), 1000)
    assert not target.exists()
    assert _leftovers(target.parent) == []


def test_export_overwrites_atomically(tmp_path: Path) -> None:
    target = tmp_path / "result.txt"
    target.write_bytes(b"old")
    inode_before = target.stat().st_ino
    write_to_url(target.as_uri(), io.BytesIO(b"new content"), 11)
    assert target.read_bytes() == b"new content"
    assert target.stat().st_ino != inode_before  # replaced by rename, never rewritten in place


def test_export_of_unknown_size_copies_to_the_end(tmp_path: Path) -> None:
    target = tmp_path / "unsized.bin"
    write_to_url(str(target), io.BytesIO(b"abc" * 1000), None)
    assert target.read_bytes() == b"abc" * 1000


def test_export_under_a_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "afile").write_bytes(b"x")
    with pytest.raises(URLAccessError, match=r"a file is in the way|no such file|Not a directory"):
        write_to_url(str(tmp_path / "afile" / "child.txt"), io.BytesIO(b"x"), 1)


def test_abandoning_a_read_is_allowed(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(b"z" * 10_000)
    with open_source(str(path)) as source:
        assert source.stream.read(10) == b"z" * 10
        assert not source.complete
    assert source.stream.closed
