"""ftp:// import and export against a real FTP server (tests/services/ftp.py)."""

from __future__ import annotations

import io
import os
import uuid
from urllib.parse import quote

import pytest

from jobstore.errors import (
    TransferIntegrityError,
    URLAccessError,
    URLForbiddenError,
    URLNotFoundError,
)
from jobstore.urls import open_source, write_to_url
from tests.services.ftp import PASSWORD, FtpServer

SIZES = [0, 1, 1024 * 1024]


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _leftovers(directory: str) -> list[str]:
    return [name for name in os.listdir(directory) if ".jobstore-" in name]


@pytest.mark.parametrize("size", SIZES)
def test_anonymous_download(ftp_server: FtpServer, size: int) -> None:
    data = os.urandom(size)
    url = ftp_server.write_file(f"pub/file-{size}.bin", data)
    with open_source(url) as source:
        assert source.size == size
        assert source.basename == f"file-{size}.bin"
        assert source.stream.read() == data
        assert source.complete


@pytest.mark.parametrize("size", SIZES)
def test_upload_then_download(ftp_server: FtpServer, size: int) -> None:
    data = os.urandom(size)
    directory = _unique("up")
    url = f"{ftp_server.user_url}/{directory}/nested/data.bin"
    write_to_url(url, io.BytesIO(data), size)
    local_dir = os.path.join(ftp_server.root, directory, "nested")
    with open(os.path.join(local_dir, "data.bin"), "rb") as f:
        assert f.read() == data
    assert _leftovers(local_dir) == []
    with open_source(url) as source:
        assert source.stream.read() == data


def test_upload_replaces_an_existing_file(ftp_server: FtpServer) -> None:
    name = _unique("replace")
    ftp_server.write_file(f"{name}/f.txt", b"old")
    write_to_url(f"{ftp_server.user_url}/{name}/f.txt", io.BytesIO(b"brand new"), 9)
    with open(os.path.join(ftp_server.root, name, "f.txt"), "rb") as f:
        assert f.read() == b"brand new"


def test_percent_encoded_path(ftp_server: FtpServer) -> None:
    ftp_server.write_file("enc/with space.txt", b"spaced")
    with open_source(f"{ftp_server.base_url}/enc/{quote('with space.txt')}") as source:
        assert source.basename == "with space.txt"
        assert source.stream.read() == b"spaced"


def test_missing_file_is_550_not_found_with_password_masked(ftp_server: FtpServer) -> None:
    with pytest.raises(URLNotFoundError, match="550") as info:
        with open_source(f"{ftp_server.user_url}/no/such/file.txt"):
            pass
    message = str(info.value)
    assert PASSWORD not in message
    assert ":***@127.0.0.1" in message


def test_wrong_password_is_forbidden_and_masked(ftp_server: FtpServer) -> None:
    url = ftp_server.user_url.replace(PASSWORD, "wrong-pw") + "/x.txt"
    with pytest.raises(URLForbiddenError, match="login was refused") as info:
        with open_source(url):
            pass
    assert "wrong-pw" not in str(info.value)


def test_anonymous_upload_is_forbidden(ftp_server: FtpServer) -> None:
    with pytest.raises(URLForbiddenError):
        write_to_url(f"{ftp_server.base_url}/{_unique('anon')}.txt", io.BytesIO(b"no"), 2)
    assert _leftovers(ftp_server.root) == []


def test_directories_are_refused(ftp_server: FtpServer) -> None:
    ftp_server.write_file("adir/inside.txt", b"x")
    for url in (f"{ftp_server.base_url}/adir", f"{ftp_server.base_url}/adir/", ftp_server.base_url + "/"):
        with pytest.raises(URLAccessError, match="is a directory"):
            with open_source(url):
                pass
    with pytest.raises(URLAccessError, match="is a directory"):
        write_to_url(f"{ftp_server.user_url}/adir", io.BytesIO(b"x"), 1)


def test_short_upload_leaves_nothing(ftp_server: FtpServer) -> None:
    name = _unique("short")
    with pytest.raises(TransferIntegrityError, match="5 of the 10 bytes"):
        write_to_url(f"{ftp_server.user_url}/{name}/f.txt", io.BytesIO(b"short"), 10)
    directory = os.path.join(ftp_server.root, name)
    assert os.listdir(directory) == []


def test_server_without_rename_gets_a_direct_upload_when_the_data_can_be_reread(
    ftp_server: FtpServer,
) -> None:
    name = _unique("norename")
    url = f"{ftp_server.norename_url}/{name}/f.txt"
    write_to_url(url, io.BytesIO(b"direct"), 6)
    directory = os.path.join(ftp_server.root, name)
    with open(os.path.join(directory, "f.txt"), "rb") as f:
        assert f.read() == b"direct"
    assert _leftovers(directory) == []


class _OneWay(io.RawIOBase):
    """A stream that cannot seek back (like a network download)."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        return self._data.readinto(buffer)


def test_server_without_rename_and_unrereadable_data_is_a_clear_error(ftp_server: FtpServer) -> None:
    name = _unique("norename")
    url = f"{ftp_server.norename_url}/{name}/f.txt"
    with pytest.raises(URLForbiddenError, match="refused to rename") as info:
        write_to_url(url, io.BufferedReader(_OneWay(b"oneway")), 6)
    assert PASSWORD not in str(info.value)
    assert os.listdir(os.path.join(ftp_server.root, name)) == []


def test_executable_upload_sets_the_mode_where_the_server_allows(ftp_server: FtpServer) -> None:
    name = _unique("exec")
    write_to_url(f"{ftp_server.user_url}/{name}/run.sh", io.BytesIO(b"#!/bin/sh\n"), 10, executable=True)
    assert os.stat(os.path.join(ftp_server.root, name, "run.sh")).st_mode & 0o100


def test_abandoned_download_releases_the_connection(ftp_server: FtpServer) -> None:
    url = ftp_server.write_file("big/abandon.bin", b"q" * 3_000_000)
    for _ in range(3):
        with open_source(url) as source:
            assert source.stream.read(10) == b"q" * 10
    with open_source(url) as source:
        assert len(source.stream.read()) == 3_000_000
