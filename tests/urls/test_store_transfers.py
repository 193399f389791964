"""Store-level import/export failures and bulk transfers, on every backend.

Each failure is checked for its type, for naming the URL (password masked), and for leaving
nothing behind: no new file row, and the blob store holds the same keys as before.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from jobstore import (
    JobStore,
    TransferIntegrityError,
    TransferProgress,
    UnsupportedURLError,
    URLAccessError,
    URLForbiddenError,
    URLNotFoundError,
)
from jobstore.blobs.checksum import checksum_of_bytes
from tests.conftest import Backend
from tests.services.ftp import FtpServer
from tests.services.http import HttpServer

MiB = 1024 * 1024


def _state(store: JobStore) -> tuple[list[str], list[str]]:
    return sorted(store.get_all_file_ids()), sorted(store.blob_store.list_keys())


def test_failed_imports_raise_typed_errors_and_store_nothing(
    backend: Backend, http_server: HttpServer, ftp_server: FtpServer, tmp_path: Path, url_config: dict[str, Any]
) -> None:
    store = backend.new_store(**url_config)
    before = _state(store)
    password_url = http_server.base_url.replace("http://", "http://alice:hunter2@") + "/_special/status/404"
    cases: list[tuple[str, type[Exception], str]] = [
        (http_server.url("_special/truncate?declared=3000000&send=2000000"), TransferIntegrityError, "truncate"),
        (http_server.url(f"_special/bad-md5/{_http_file(http_server, 'md5', 1000)}"), TransferIntegrityError, "md5"),
        (http_server.url("_special/status/404"), URLNotFoundError, "404"),
        (http_server.url("_special/status/403"), URLForbiddenError, "403"),
        (http_server.url("_special/redirect-loop"), URLAccessError, "redirect"),
        (password_url, URLNotFoundError, "alice:***@"),
        (f"{ftp_server.base_url}/no/such/file.bin", URLNotFoundError, "no/such/file.bin"),
        ((tmp_path / "missing.bin").as_uri(), URLNotFoundError, "missing.bin"),
        (tmp_path.as_uri(), URLAccessError, "directory"),
        ("gopher://example.org/x", UnsupportedURLError, "gs"),
        ("s3://jobstore-urls/no/such/key", URLNotFoundError, "s3://jobstore-urls/no/such/key"),
        ("s3://jobstore-urls/", URLAccessError, "prefix"),
        ("gs://jobstore-urls/no/such/object", URLNotFoundError, "gs://jobstore-urls/no/such/object"),
    ]
    for url, error_type, mentioned in cases:
        with pytest.raises(error_type) as info:
            store.import_file(url)
        assert mentioned in str(info.value), (url, str(info.value))
        assert "hunter2" not in str(info.value)
        with pytest.raises(error_type):
            store.import_file(url, shared_file_name="never.bin")
    assert _state(store) == before
    assert not store.shared_file_exists("never.bin")


def test_unknown_scheme_lists_every_supported_one(backend: Backend) -> None:
    store = backend.new_store()
    with pytest.raises(UnsupportedURLError) as info:
        store.import_file("sftp://host/file")
    for scheme in ("file", "ftp", "gs", "http", "https", "s3"):
        assert scheme in str(info.value)


def test_redirects_and_transient_errors_are_handled(
    backend: Backend, http_server: HttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobstore.urls import web

    monkeypatch.setattr(web, "BACKOFF_FACTOR", 0.001)
    store = backend.new_store()
    data = os.urandom(MiB + 1)
    path = _http_file(http_server, "robust", data)
    redirected = store.import_file(http_server.url(f"_special/redirect?to=/{path}"))
    key = f"flaky-{os.urandom(4).hex()}"
    flaky = store.import_file(http_server.url(f"_special/flaky/{key}?fail=2&path={path}"))
    assert http_server.hits(key) == 3
    for file_id in (redirected, flaky):
        assert file_id is not None
        assert store.file_info(file_id).checksum == checksum_of_bytes(data)


def test_http_export_by_post_or_put_and_a_clear_refusal(backend: Backend, http_server: HttpServer) -> None:
    store = backend.new_store()
    with store.write_file_stream() as (handle, file_id):
        handle.write(b"payload")
    run = os.urandom(4).hex()
    store.export_file(file_id, http_server.url(f"_special/upload/post-{run}"))
    store.export_file(file_id, http_server.url(f"_special/upload/put-{run}"), http_method="PUT")
    assert http_server.upload(f"post-{run}").method == "POST"
    assert http_server.upload(f"put-{run}").method == "PUT"
    assert http_server.upload(f"put-{run}").data == b"payload"
    with pytest.raises(URLForbiddenError, match="PUT"):
        store.export_file(file_id, http_server.url("_special/readonly/x"))


def test_ftp_export_to_a_read_only_account_is_refused(backend: Backend, ftp_server: FtpServer) -> None:
    store = backend.new_store()
    with store.write_file_stream() as (handle, file_id):
        handle.write(b"payload")
    with pytest.raises(URLForbiddenError):
        store.export_file(file_id, f"{ftp_server.base_url}/out/refused.bin")
    assert not os.path.exists(os.path.join(ftp_server.root, "out", "refused.bin"))


def test_bulk_import_reports_each_item_and_keeps_the_successes(
    backend: Backend, http_server: HttpServer, tmp_path: Path, url_config: dict[str, Any]
) -> None:
    store = backend.new_store(**url_config)
    # No empty file here: SeaweedFS 4.48 answers an empty PutObject sent with "Expect: 100-continue"
    # twice, and a concurrent S3 store may then read the stray answer (the matrix covers size 0).
    good = [os.urandom(size) for size in (3, 1, 5 * MiB)]
    urls: list[str | tuple[str, str]] = [http_server.url(_http_file(http_server, "bulk", data)) for data in good]
    local = tmp_path / "local.bin"
    local.write_bytes(b"local")
    urls[1:1] = [http_server.url("_special/status/404"), (local.as_uri(), "bulk-shared.bin")]
    urls.append(http_server.url("_special/truncate?declared=100&send=10"))
    events: list[TransferProgress] = []
    results = store.import_files(urls, max_workers=3, progress=events.append)

    assert [result.ok for result in results] == [True, False, True, True, True, False]
    assert isinstance(results[1].error, URLNotFoundError)
    assert isinstance(results[5].error, TransferIntegrityError)
    assert results[2].file_id is None and results[2].shared_file_name == "bulk-shared.bin"
    for result, data in zip([results[0], results[3], results[4]], good, strict=True):
        assert result.file_id is not None
        with store.read_file_stream(result.file_id) as stream:
            assert stream.read() == data
    finished = [event for event in events if event.result is not None]
    assert sorted(event.index for event in finished) == list(range(len(urls)))
    big = [event for event in events if event.index == 4]
    assert big[-1].transferred == big[-1].total == 5 * MiB
    assert len(big) > 2  # bytes were reported as they arrived, not only at the end


def test_bulk_export_reports_each_item(backend: Backend, http_server: HttpServer, tmp_path: Path) -> None:
    store = backend.new_store()
    ids = []
    for content in (b"one", b"two"):
        with store.write_file_stream() as (handle, file_id):
            handle.write(content)
        ids.append(file_id)
    pairs = [
        (ids[0], (tmp_path / "a" / "one.txt").as_uri()),
        (ids[1], http_server.url("_special/readonly/two")),
        ("no-such-file-id", (tmp_path / "three.txt").as_uri()),
        (ids[1], (tmp_path / "b" / "two.txt").as_uri()),
    ]
    results = store.export_files(pairs, max_workers=2)
    assert [result.ok for result in results] == [True, False, False, True]
    assert isinstance(results[1].error, URLForbiddenError)
    assert (tmp_path / "a" / "one.txt").read_bytes() == b"one"
    assert (tmp_path / "b" / "two.txt").read_bytes() == b"two"
    assert not (tmp_path / "three.txt").exists()
    assert store.exportFiles(pairs[:1])[0].ok
    with pytest.raises(ValueError):
        store.import_files([], max_workers=0)


def _http_file(http_server: HttpServer, stem: str, data: bytes | int) -> str:
    content = os.urandom(data) if isinstance(data, int) else data
    path = f"{stem}/{os.urandom(6).hex()}.bin"
    http_server.write_file(path, content)
    return path
