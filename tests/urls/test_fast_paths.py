"""Same-backend fast paths: S3 CopyObject/UploadPartCopy, GCS rewrite, kernel copy of local files.

Each test watches ``import_from_url`` (wrapping it, not replacing it) to prove the fast path ran,
then checks what every import must give: the bytes, their size and CRC32C, the source URL.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import google_crc32c
import pytest

from jobstore import JobStore, URLNotFoundError
from jobstore.blobs.base import BlobStore, ImportedBlob
from jobstore.blobs.checksum import checksum_of_bytes, crc32c_base64
from jobstore.blobs.s3 import crc32c_combine
from tests.conftest import Backend
from tests.services.gcs import GCSServer
from tests.services.s3 import S3Server
from tests.urls.conftest import put_s3_object

MiB = 1024 * 1024


def _watch_fast_path(monkeypatch: pytest.MonkeyPatch, store: JobStore) -> list[ImportedBlob | None]:
    """Record what the store's blob store's fast path returned, call by call."""
    blobs = store.blob_store
    original = blobs.import_from_url
    outcomes: list[ImportedBlob | None] = []

    def watched(url: str, key: str) -> ImportedBlob | None:
        outcome = original(url, key)
        outcomes.append(outcome)
        return outcome

    monkeypatch.setattr(blobs, "import_from_url", watched)
    return outcomes


def _check_import(store: JobStore, file_id: str | None, url: str, data: bytes) -> None:
    assert file_id is not None
    row = store.file_info(file_id)
    assert (row.size, row.checksum, row.source_url) == (len(data), checksum_of_bytes(data), url)
    with store.read_file_stream(file_id) as stream:
        assert stream.read() == data


def test_crc32c_combine_matches_a_direct_computation() -> None:
    rng = random.Random(7)
    for _ in range(50):
        a = rng.randbytes(rng.randint(0, 300))
        b = rng.randbytes(rng.randint(0, 3000))
        assert crc32c_combine(google_crc32c.value(a), google_crc32c.value(b), len(b)) == google_crc32c.value(a + b)


@pytest.mark.parametrize("backend", ["sqlite-s3", "postgres-s3"], indirect=True)
@pytest.mark.parametrize("with_crc32c", [True, False], ids=["source-has-crc32c", "source-without-crc32c"])
def test_s3_import_into_an_s3_store_is_a_server_side_copy(
    backend: Backend,
    s3_server: S3Server,
    s3_bucket: str,
    url_config: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    with_crc32c: bool,
) -> None:
    """Objects with a stored CRC32C are recorded from it; others are read once for it (SeaweedFS
    does not compute a CRC32C on CopyObject)."""
    store = backend.new_store(**url_config)
    outcomes = _watch_fast_path(monkeypatch, store)
    for size in (0, 1, MiB + 1):
        data = os.urandom(size)
        key = f"fast/{os.urandom(4).hex()}/data-{size}.bin"
        extra = {"ChecksumCRC32C": crc32c_base64(checksum_of_bytes(data))} if with_crc32c else {}
        put_s3_object(s3_server, s3_bucket, key, data, **extra)
        url = f"s3://{s3_bucket}/{key}"
        _check_import(store, store.import_file(url), url, data)
        assert outcomes[-1] is not None
    # A shared import takes the fast path too.
    url = f"s3://{s3_bucket}/{key}"
    assert store.import_file(url, shared_file_name="copied.bin") is None
    assert outcomes[-1] is not None
    with store.read_shared_file_stream("copied.bin") as stream:
        assert stream.read() == data


@pytest.mark.parametrize("backend", ["sqlite-s3"], indirect=True)
def test_s3_multipart_copy_combines_the_parts_crc32c(
    backend: Backend,
    s3_server: S3Server,
    s3_bucket: str,
    url_config: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Above the copy threshold (5 GiB in production, lowered here) the copy is UploadPartCopy by
    ranges, and the object's CRC32C is combined from the parts' without reading the object."""
    store = backend.new_store(**url_config)
    blobs: Any = store.blob_store
    monkeypatch.setattr(blobs, "copy_part_threshold", 6 * MiB)
    monkeypatch.setattr(blobs, "copy_part_size", 5 * MiB)
    read_back: list[str] = []
    original_read = blobs._read_checksum
    monkeypatch.setattr(blobs, "_read_checksum", lambda key, size: read_back.append(key) or original_read(key, size))
    outcomes = _watch_fast_path(monkeypatch, store)
    data = os.urandom(11 * MiB + 3)  # three parts: 5 MiB, 5 MiB, 1 MiB + 3
    s3_server.boto3_client().put_object(Bucket=s3_bucket, Key="fast/multipart.bin", Body=data)
    url = f"s3://{s3_bucket}/fast/multipart.bin"
    _check_import(store, store.import_file(url), url, data)
    assert outcomes[-1] is not None
    assert read_back == []  # the checksum came from the parts


@pytest.mark.parametrize("backend", ["sqlite-s3"], indirect=True)
def test_missing_s3_source_falls_back_and_reports_the_url(
    backend: Backend, s3_bucket: str, url_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = backend.new_store(**url_config)
    outcomes = _watch_fast_path(monkeypatch, store)
    before = store.get_all_file_ids()
    with pytest.raises(URLNotFoundError, match=f"s3://{s3_bucket}/nothing/here"):
        store.import_file(f"s3://{s3_bucket}/nothing/here")
    assert outcomes == [None]
    assert store.get_all_file_ids() == before


@pytest.mark.parametrize("backend", ["sqlite-gcs", "postgres-gcs"], indirect=True)
def test_gs_import_into_a_gcs_store_is_a_rewrite(
    backend: Backend,
    gcs_server: GCSServer,
    gcs_bucket: str,
    url_config: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = backend.new_store(**url_config)
    outcomes = _watch_fast_path(monkeypatch, store)
    bucket = gcs_server.client().bucket(gcs_bucket)
    for size in (0, 1, MiB + 1):
        data = os.urandom(size)
        name = f"fast/{os.urandom(4).hex()}/data-{size}.bin"
        bucket.blob(name).upload_from_string(data)
        url = f"gs://{gcs_bucket}/{name}"
        _check_import(store, store.import_file(url), url, data)
        assert outcomes[-1] is not None
    assert store.import_file(url, shared_file_name="rewritten.bin") is None
    assert outcomes[-1] is not None
    with pytest.raises(URLNotFoundError, match=f"gs://{gcs_bucket}/fast/missing"):
        store.import_file(f"gs://{gcs_bucket}/fast/missing")
    assert outcomes[-1] is None


@pytest.mark.parametrize("backend", ["sqlite-local", "postgres-local", "pgbouncer-local"], indirect=True)
def test_file_import_into_a_local_store_is_a_kernel_copy(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = backend.new_store()
    outcomes = _watch_fast_path(monkeypatch, store)
    for size in (0, 1, MiB + 1):
        data = os.urandom(size)
        source = tmp_path / f"data-{size}.bin"
        source.write_bytes(data)
        _check_import(store, store.import_file(source.as_uri()), source.as_uri(), data)
        assert outcomes[-1] is not None
    tool = tmp_path / "tool"
    tool.write_bytes(b"#!/bin/sh\n")
    tool.chmod(0o750)
    file_id = store.import_file(str(tool))
    assert file_id is not None and store.file_info(file_id).executable
    assert outcomes[-1] is not None and outcomes[-1].executable
    # Not a regular file: no fast path, and the streamed path refuses it clearly.
    with pytest.raises(Exception, match="directory"):
        store.import_file(tmp_path.as_uri())
    assert outcomes[-1] is None


def test_the_default_blob_store_has_no_fast_path() -> None:
    assert BlobStore.import_from_url(object(), "file:///x", "k") is None  # type: ignore[arg-type]
