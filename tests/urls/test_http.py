"""http:// import and export against a real HTTP server (tests/services/http.py)."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import threading
from urllib.parse import quote

import psutil
import pytest

from jobstore.errors import (
    TransferIntegrityError,
    UnsupportedURLError,
    URLAccessError,
    URLForbiddenError,
    URLNotFoundError,
)
from jobstore.urls import open_source, web, write_to_url
from tests.services.http import HttpServer, pattern_bytes

SIZES = [0, 1, 1024 * 1024]
MiB = 1024 * 1024


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries as urllib3 does them, without the seconds of sleep between them."""
    monkeypatch.setattr(web, "BACKOFF_FACTOR", 0.001)


def _with_password(url: str) -> str:
    return url.replace("http://", "http://alice:hunter2@", 1)


@pytest.mark.parametrize("size", SIZES)
def test_download_round_trip(http_server: HttpServer, size: int) -> None:
    data = os.urandom(size)
    url = http_server.write_file(f"rt/file-{size}.bin", data)
    with open_source(url) as source:
        assert source.size == size
        assert source.basename == f"file-{size}.bin"
        assert source.executable is False
        assert source.stream.read() == data
        assert source.complete


@pytest.mark.parametrize("method", ["POST", "PUT"])
@pytest.mark.parametrize("size", SIZES)
def test_upload_round_trip(http_server: HttpServer, size: int, method: str) -> None:
    data = os.urandom(size)
    name = f"up-{method}-{size}"
    write_to_url(http_server.url(f"_special/upload/{name}"), io.BytesIO(data), size, http_method=method)
    upload = http_server.upload(name)
    assert upload.method == method
    assert upload.data == data
    assert upload.headers.get("Content-Length") == str(size)  # announced, not chunked


def test_upload_of_unknown_size_is_chunked(http_server: HttpServer) -> None:
    data = b"chunky" * 50_000
    write_to_url(http_server.url("_special/upload/chunked"), io.BytesIO(data), None, http_method="PUT")
    upload = http_server.upload("chunked")
    assert upload.data == data
    assert upload.headers.get("Transfer-Encoding") == "chunked"


def test_percent_encoded_name(http_server: HttpServer) -> None:
    http_server.write_file("enc/a b+c.txt", b"spaced")
    with open_source(http_server.url("enc/" + quote("a b+c.txt"))) as source:
        assert source.basename == "a b+c.txt"
        assert source.stream.read() == b"spaced"


def test_truncated_body_is_an_integrity_error(http_server: HttpServer) -> None:
    url = http_server.url("_special/truncate?declared=100000&send=4000")
    with open_source(url) as source:
        assert source.size == 100000
        with pytest.raises(TransferIntegrityError) as info:
            while source.stream.read(MiB):
                pass
    assert "127.0.0.1" in str(info.value)
    assert not source.complete


def test_redirect_is_followed(http_server: HttpServer) -> None:
    http_server.write_file("redir/target.txt", b"arrived")
    for code in (301, 302, 303, 307, 308):
        with open_source(http_server.url(f"_special/redirect?to=/redir/target.txt&code={code}")) as source:
            assert source.stream.read() == b"arrived"
            assert source.size == 7


def test_redirect_loop_is_a_clear_error(http_server: HttpServer) -> None:
    with pytest.raises(URLAccessError, match="redirect"):
        with open_source(_with_password(http_server.url("_special/redirect-loop"))):
            pass


def test_server_error_is_retried(http_server: HttpServer, fast_backoff: None) -> None:
    http_server.write_file("flaky/ok.txt", b"second time lucky")
    with open_source(http_server.url("_special/flaky/once?fail=1&path=flaky/ok.txt")) as source:
        assert source.stream.read() == b"second time lucky"
    assert http_server.hits("once") == 2


def test_server_error_that_persists_is_reported(http_server: HttpServer, fast_backoff: None) -> None:
    http_server.write_file("flaky/never.txt", b"never")
    url = _with_password(http_server.url("_special/flaky/always?fail=1000&path=flaky/never.txt"))
    with pytest.raises(URLAccessError, match="500") as info:
        with open_source(url):
            pass
    assert "hunter2" not in str(info.value)
    assert http_server.hits("always") == 5  # the first try and four retries


@pytest.mark.parametrize(
    ("status", "error"),
    [(404, URLNotFoundError), (410, URLNotFoundError), (403, URLForbiddenError), (401, URLForbiddenError)],
)
def test_error_statuses_are_typed_and_mask_the_password(
    http_server: HttpServer, status: int, error: type[Exception]
) -> None:
    url = _with_password(http_server.url(f"_special/status/{status}"))
    with pytest.raises(error) as info:
        with open_source(url):
            pass
    message = str(info.value)
    assert "hunter2" not in message
    assert "alice:***@127.0.0.1" in message
    assert str(status) in message


def test_missing_file_is_not_found(http_server: HttpServer) -> None:
    with pytest.raises(URLNotFoundError):
        with open_source(http_server.url("no/such/file.txt")):
            pass


def test_content_md5_is_enforced(http_server: HttpServer) -> None:
    data = os.urandom(5000)
    http_server.write_file("md5/data.bin", data)
    with open_source(http_server.url("_special/md5/md5/data.bin")) as source:
        assert source.checksum is not None
        assert source.checksum.hexdigest == hashlib.md5(data).hexdigest()
        assert source.checksum.enforced
        assert source.stream.read() == data
    with open_source(http_server.url("_special/bad-md5/md5/data.bin")) as source:
        with pytest.raises(TransferIntegrityError, match="md5"):
            source.stream.read()


def test_md5_shaped_etag_is_only_a_hint() -> None:
    hint = web.checksum_hint({"ETag": '"0123456789abcdef0123456789abcdef"'})
    assert hint is not None and not hint.enforced and hint.source == "ETag"
    assert web.checksum_hint({"ETag": 'W/"0123456789abcdef0123456789abcdef"'}) is None
    assert web.checksum_hint({"ETag": '"abc-123"'}) is None
    assert web.checksum_hint({}) is None


def test_refused_upload(http_server: HttpServer) -> None:
    with pytest.raises(URLForbiddenError, match="does not accept uploads by POST") as info:
        write_to_url(_with_password(http_server.url("_special/readonly/x")), io.BytesIO(b"data"), 4)
    assert "hunter2" not in str(info.value)
    with pytest.raises(URLForbiddenError, match="403"):
        write_to_url(http_server.url("_special/status/403"), io.BytesIO(b"data"), 4, http_method="PUT")
    with pytest.raises(URLNotFoundError):
        write_to_url(http_server.url("_special/status/404"), io.BytesIO(b"data"), 4)
    with pytest.raises(URLAccessError, match="500"):
        write_to_url(http_server.url("_special/status/500"), io.BytesIO(b"data"), 4)


def test_upload_is_not_sent_to_a_redirect(http_server: HttpServer) -> None:
    with pytest.raises(URLAccessError, match="redirects the upload to /_special/upload/moved"):
        write_to_url(http_server.url("_special/redirect?to=/_special/upload/moved"), io.BytesIO(b"d"), 1)
    assert "moved" not in http_server.uploads


def test_upload_of_the_wrong_length_is_refused(http_server: HttpServer) -> None:
    with pytest.raises(TransferIntegrityError, match="5 of the 10 bytes"):
        write_to_url(http_server.url("_special/upload/short"), io.BytesIO(b"short"), 10)
    with pytest.raises(TransferIntegrityError, match="longer than"):
        write_to_url(http_server.url("_special/upload/long"), io.BytesIO(b"too long"), 3)
    assert "long" not in http_server.uploads


def test_failing_reader_is_reported_as_itself(http_server: HttpServer) -> None:
    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
            raise ConnectionResetError("the blob store went away")

    with pytest.raises(ConnectionResetError, match="blob store"):
        write_to_url(http_server.url("_special/upload/broken"), io.BufferedReader(Broken()), 100)


def test_bad_method_and_bad_urls() -> None:
    with pytest.raises(UnsupportedURLError, match="http_method"):
        write_to_url("http://127.0.0.1:9/x", io.BytesIO(b""), 0, http_method="DELETE")
    with pytest.raises(UnsupportedURLError, match="no host"):
        with open_source("http:///path-only"):
            pass


def test_connection_refused(fast_backoff: None) -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://bob:pw123@127.0.0.1:{port}/x"
    with pytest.raises(URLAccessError, match="could not connect") as info:
        with open_source(url):
            pass
    assert "pw123" not in str(info.value)
    with pytest.raises(URLAccessError, match="could not connect"):
        write_to_url(url, io.BytesIO(b"x"), 1)


def test_large_download_memory_does_not_grow_with_size(http_server: HttpServer) -> None:
    """100 MiB streamed through: resident memory grows by far less than the file."""
    size = 100 * MiB
    expected = hashlib.md5()
    for block in pattern_bytes(size):
        expected.update(block)
    process = psutil.Process()
    baseline = process.memory_info().rss
    peak = baseline
    digest = hashlib.md5()
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.wait(0.01):
            peak = max(peak, process.memory_info().rss)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with open_source(http_server.url(f"_special/bytes/{size}")) as source:
            assert source.size == size
            while chunk := source.stream.read(MiB):
                digest.update(chunk)
            assert source.complete
    finally:
        stop.set()
        sampler.join()
    assert digest.hexdigest() == expected.hexdigest()
    growth = peak - baseline
    print(f"RSS growth while streaming 100 MiB: {growth / MiB:.1f} MiB")
    assert growth < 30 * MiB, f"RSS grew by {growth / MiB:.1f} MiB while streaming 100 MiB"
