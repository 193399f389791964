"""GCSBlobStore against a real fake-gcs-server (tests/services/gcs.py).

What the emulator cannot show, and how these tests deal with it:

* It does not enforce ``ifGenerationMatch`` on *resumable* uploads (it does on single-request
  ones): create-only conflicts are tested on small blobs; for streamed blobs we check that the
  precondition is sent.
* It does not enforce customer-supplied encryption keys (it stores plaintext and serves it to
  anyone): we check that every media request carries the ``x-goog-encryption-*`` headers, by
  recording requests on the client's HTTP session, and say so rather than claim enforcement.
* It cannot verify signatures, and anonymous credentials cannot sign: ``public_url`` is tested for
  its refusal, and for the URL it signs with a throwaway service-account key.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import io
import json
import os
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import psutil
import pytest
import requests
from google.api_core import exceptions as api_exceptions

from jobstore.blobs import open_blob_store
from jobstore.blobs.base import BlobInfo, BlobStore
from jobstore.blobs.checksum import checksum_of_bytes, crc32c_base64
from jobstore.blobs.gcs import GCSBlobStore
from jobstore.errors import (
    BlobAccessDeniedError,
    BlobExistsError,
    BlobNotFoundError,
    BlobStoreError,
    ChecksumMismatchError,
    EncryptionKeyError,
    InvalidLocatorError,
    PublicURLError,
)
from jobstore.providers.gcs import translate_gcs_error
from tests.services.gcs import TEST_CHUNK_SIZE, GCSServer

CHUNK = TEST_CHUNK_SIZE
SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, int(2.33 * CHUNK)]
CUSTOMER_KEY = bytes(range(32))


# --- helpers ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def server(gcs_server: GCSServer) -> GCSServer:
    """The session's fake-gcs-server (the fixture is imported above, as the suite's rule asks)."""
    return gcs_server


@pytest.fixture(scope="module")
def bucket(server: GCSServer) -> str:
    """One bucket for the module's stores; each test uses its own prefix."""
    name = server.new_bucket_name()
    GCSBlobStore.from_url(f"gs://{name}", server.config()).create()
    return name


@pytest.fixture
def store(server: GCSServer, bucket: str, request: pytest.FixtureRequest) -> GCSBlobStore:
    return GCSBlobStore.from_url(f"gs://{bucket}/{_prefix(request)}", server.config())


def _prefix(request: pytest.FixtureRequest) -> str:
    name = "".join(c if c.isalnum() else "-" for c in request.node.name)[:60]
    return f"t/{name}-{os.urandom(3).hex()}"


def _data(size: int) -> bytes:
    return os.urandom(size)


def _write(store: GCSBlobStore, key: str, data: bytes, piece: int = 100_000) -> BlobInfo:
    """Stream ``data`` in pieces through open_write (the path store.py uses for streams)."""
    with store.open_write(key) as (handle, pending):
        for start in range(0, len(data), piece):
            handle.write(data[start : start + piece])
    assert pending.info is not None
    return pending.info


def _read(store: BlobStore, key: str, expected: BlobInfo | None) -> bytes:
    with store.open_read(key, expected, key) as reader:
        return reader.read()


class Recorded(NamedTuple):
    method: str
    url: str
    headers: dict[str, str]
    body: bytes  # only for small request bodies (metadata, single-request uploads)


class _RecordingAdapter(requests.adapters.HTTPAdapter):
    """A transport hook: remembers every request's method, URL, headers and small body, then sends it."""

    def __init__(self, log: list[Recorded]) -> None:
        super().__init__()
        self.log = log

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        headers = {name.lower(): str(value) for name, value in request.headers.items()}
        body = request.body if isinstance(request.body, bytes) and len(request.body) < 65536 else b""
        self.log.append(Recorded(str(request.method), str(request.url), headers, body))
        return super().send(request, *args, **kwargs)


def _record_requests(store: GCSBlobStore) -> list[Recorded]:
    """Record the requests of ``store``'s client (mounted on its HTTP session; test-only access)."""
    log: list[Recorded] = []
    store._client._http.mount("http://", _RecordingAdapter(log))
    return log


def _is_media(method: str, url: str) -> bool:
    """Requests that carry object bytes (uploads, chunks, downloads), as opposed to metadata calls."""
    path = urllib.parse.urlsplit(url).path
    return path.startswith("/upload/") or "alt=media" in url or (method == "PUT" and "upload_id" in url)


@pytest.fixture
def server_restored(server: GCSServer) -> Iterator[GCSServer]:
    """For tests that stop the shared server: it is running again afterwards, whatever happens."""
    try:
        yield server
    finally:
        if not server.running:
            server.start()


# --- round trips ---------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES, ids=[f"{s}B" for s in SIZES])
def test_stream_round_trip(store: GCSBlobStore, size: int) -> None:
    """Sizes around the chunk boundary cover both paths: one request (<= chunk) and resumable."""
    data = _data(size)
    info = _write(store, "k/blob", data)
    assert info == BlobInfo(size, checksum_of_bytes(data))
    assert store.exists("k/blob")
    assert store.size("k/blob") == size
    assert _read(store, "k/blob", info) == data


@pytest.mark.parametrize("size", SIZES, ids=[f"{s}B" for s in SIZES])
def test_stream_read_asks_for_nothing_past_the_end(store: GCSBlobStore, size: int) -> None:
    """A stream read stops at the size found at open: no ranged request past the end, which costs a
    round trip, draws a 416 from GCS, and made the emulator reset the connection (a test flake)."""
    data = _data(size)
    info = _write(store, "k/ranged", data)
    log = _record_requests(store)
    assert _read(store, "k/ranged", info) == data
    starts = [
        int(request.headers["range"].removeprefix("bytes=").split("-")[0])
        for request in log
        if request.method == "GET" and _is_media(request.method, request.url)
    ]
    assert all(start < size for start in starts), starts
    assert len(starts) == (1 if size else 0) * max(1, -(-size // (1 << 20))), starts


@pytest.mark.parametrize("size", SIZES, ids=[f"{s}B" for s in SIZES])
def test_file_round_trip(store: GCSBlobStore, tmp_path: Path, size: int) -> None:
    data = _data(size)
    source = tmp_path / "in"
    source.write_bytes(data)
    info = store.put_file("k/file", str(source))
    assert info == BlobInfo(size, checksum_of_bytes(data))
    target = tmp_path / "out"
    store.get_file("k/file", str(target), info, executable=True)
    assert target.read_bytes() == data
    assert os.access(target, os.X_OK)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]  # no temp file left


def test_put_file_above_single_request_limit_uses_resumable_upload(store: GCSBlobStore, tmp_path: Path) -> None:
    """Above 8 MiB the library switches to a resumable upload, in our chunk size, create-only."""
    data = _data(9 * 1024 * 1024 + 17)
    source = tmp_path / "in"
    source.write_bytes(data)
    log = _record_requests(store)
    info = store.put_file("big", str(source))
    assert info.size == len(data)
    initiations = [r for r in log if r.method == "POST" and "uploadType=resumable" in r.url]
    assert len(initiations) == 1 and "ifGenerationMatch=0" in initiations[0].url
    assert json.loads(initiations[0].body)["crc32c"] == crc32c_base64(info.checksum)  # GCS checks it
    chunks = [h for m, url, h, _ in log if m == "PUT" and "upload_id" in url]
    assert len(chunks) == -(-len(data) // CHUNK)
    assert _read(store, "big", info) == data


def test_text_and_opened_via_registry(server: GCSServer, bucket: str) -> None:
    store = open_blob_store(f"gs://{bucket}/registry", server.config())
    assert isinstance(store, GCSBlobStore)
    info = store.put_bytes("hello", "héllo\n".encode())
    assert _read(store, "hello", info).decode() == "héllo\n"


# --- create-only -----------------------------------------------------------------------------------


def test_create_only_conflict_on_single_request_upload(store: GCSBlobStore) -> None:
    """The emulator enforces ifGenerationMatch=0 on single-request uploads: the second write fails."""
    first = store.put_bytes("k", b"first")
    with pytest.raises(BlobExistsError, match="create-only"):
        store.put_bytes("k", b"second")
    assert _read(store, "k", first) == b"first"


def test_create_only_retry_meeting_its_own_object_succeeds(store: GCSBlobStore) -> None:
    """A resent create that finds exactly its own bytes (same size and CRC32C) is not a conflict."""
    info = store.put_bytes("k", b"same bytes")
    assert store.put_bytes("k", b"same bytes") == info


def test_create_only_streamed_upload_sends_precondition(store: GCSBlobStore) -> None:
    """fake-gcs-server ignores preconditions on resumable uploads, so a conflict cannot be shown
    for streamed blobs here; what can be checked is that the session asks GCS for create-only and
    sends our CRC32C with the final chunk, which real GCS enforces.
    """
    log = _record_requests(store)
    data = _data(2 * CHUNK + 5)
    info = _write(store, "streamed", data)
    initiations = [url for method, url, _, _ in log if method == "POST" and "uploadType=resumable" in url]
    assert len(initiations) == 1 and "ifGenerationMatch=0" in initiations[0]
    final = [h for m, url, h, _ in log if m == "PUT" and "upload_id" in url][-1]
    assert final["x-goog-hash"] == f"crc32c={crc32c_base64(info.checksum)}"


def test_single_request_upload_sends_our_crc32c(store: GCSBlobStore) -> None:
    log = _record_requests(store)
    info = store.put_bytes("small", b"x" * 1000)
    (upload,) = [r for r in log if r.method == "POST" and "uploadType=multipart" in r.url]
    assert "ifGenerationMatch=0" in upload.url
    # The metadata part of the multipart body carries our CRC32C, which GCS verifies.
    assert f'"crc32c": "{crc32c_base64(info.checksum)}"'.encode() in upload.body


# --- streaming, memory, abort --------------------------------------------------------------------


@pytest.mark.slow
def test_200_mib_stream_with_bounded_memory(server: GCSServer, bucket: str) -> None:
    """200 MiB through open_write and open_read with the default 8 MiB chunk: RSS grows far less."""
    store = GCSBlobStore.from_url(f"gs://{bucket}/bigstream", server.config(googleChunkSize=None))
    process = psutil.Process()
    block = os.urandom(1024 * 1024)
    gc.collect()
    baseline = process.memory_info().rss
    peak = baseline
    with store.open_write("big") as (handle, pending):
        for i in range(200):
            handle.write(block)
            if i % 8 == 0:
                peak = max(peak, process.memory_info().rss)
    assert pending.info is not None and pending.info.size == 200 * 1024 * 1024
    with store.open_read("big", pending.info, "big") as reader:
        for i in range(10**6):
            if not reader.read(1024 * 1024):
                break
            if i % 8 == 0:
                peak = max(peak, process.memory_info().rss)
    growth = peak - baseline
    assert growth < 64 * 1024 * 1024, f"RSS grew by {growth / 2**20:.0f} MiB for a 200 MiB stream"
    store.delete("big")


def test_writer_failing_mid_stream_leaves_nothing(store: GCSBlobStore) -> None:
    """Two chunks have reached the resumable session when the writer fails: nothing may appear,
    not even once the abandoned upload object is garbage-collected (io.IOBase closes on collection,
    and the library's close() would finalize the upload).
    """
    log = _record_requests(store)
    with pytest.raises(RuntimeError, match="writer failed"):
        with store.open_write("partial") as (handle, _):
            handle.write(_data(2 * CHUNK + 100))
            handle.flush()
            raise RuntimeError("writer failed")
    assert any(m == "PUT" and "upload_id" in url for m, url, _, _ in log), "no chunk reached the server"
    gc.collect()
    assert not store.exists("partial")
    assert list(store.list_keys()) == []


def test_writer_failing_before_first_chunk_leaves_nothing(store: GCSBlobStore) -> None:
    with pytest.raises(ValueError):
        with store.open_write("small") as (handle, _):
            handle.write(b"abc")
            raise ValueError("stop")
    assert not store.exists("small")


# --- keys ------------------------------------------------------------------------------------------


def test_list_delete_exists_size(store: GCSBlobStore) -> None:
    keys = ["a/1", "a/2", "b/1", "ab"]
    for key in keys:
        store.put_bytes(key, key.encode())
    assert sorted(store.list_keys()) == sorted(keys)
    assert sorted(store.list_keys("a/")) == ["a/1", "a/2"]
    assert sorted(store.list_keys("a")) == ["a/1", "a/2", "ab"]  # a plain string prefix, as GCS lists
    assert store.size("a/1") == 3 and store.size("missing") is None
    assert store.exists("b/1") and not store.exists("missing")
    store.delete("a/1")
    store.delete("a/1")  # idempotent
    store.delete("never-written")
    assert not store.exists("a/1")
    assert sorted(store.list_keys()) == ["a/2", "ab", "b/1"]


def test_list_keys_and_destroy_follow_pages(server: GCSServer, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Listing follows page tokens (pages of 7 here, 1000 in production), and so does destroy()."""
    monkeypatch.setattr("jobstore.blobs.gcs.LIST_PAGE_SIZE", 7)
    store = GCSBlobStore.from_url(f"gs://{bucket}/pages", server.config())
    log = _record_requests(store)
    keys = {f"k{i:02d}" for i in range(30)}
    for key in keys:
        store.put_bytes(key, b"")
    assert set(store.list_keys()) == keys
    listings = [url for method, url, _, _ in log if method == "GET" and url.split("?")[0].endswith("/o")]
    assert len(listings) == 5 and all("maxResults=7" in url for url in listings)
    store.destroy()
    assert list(store.list_keys()) == []


def test_destroy_spares_other_prefixes(server: GCSServer, bucket: str) -> None:
    """destroy() removes this prefix only, not a sibling prefix sharing its first letters."""
    mine = GCSBlobStore.from_url(f"gs://{bucket}/run", server.config())
    sibling = GCSBlobStore.from_url(f"gs://{bucket}/run2", server.config())
    nested_name = GCSBlobStore.from_url(f"gs://{bucket}/other/run", server.config())
    for store in (mine, sibling, nested_name):
        store.put_bytes("x/y", b"data")
        store.put_bytes("z", b"data")
    mine.destroy()
    assert list(mine.list_keys()) == []
    assert sorted(sibling.list_keys()) == ["x/y", "z"]
    assert sorted(nested_name.list_keys()) == ["x/y", "z"]
    mine.destroy()  # idempotent
    assert mine.container_exists()  # the bucket itself is not ours to delete
    sibling.destroy()
    nested_name.destroy()


def test_create_is_idempotent_and_destroy_of_missing_bucket_is_quiet(server: GCSServer) -> None:
    store = GCSBlobStore.from_url(f"gs://{server.new_bucket_name()}/p", server.config())
    assert not store.container_exists()
    store.destroy()
    store.create()
    store.create()
    assert store.container_exists()


def test_missing_blob_is_blob_not_found(store: GCSBlobStore, tmp_path: Path) -> None:
    with pytest.raises(BlobNotFoundError):
        store.open_read("missing", None, "missing")
    with pytest.raises(BlobNotFoundError):
        store.get_file("missing", str(tmp_path / "out"), None)
    assert list(tmp_path.iterdir()) == []


def test_writing_to_missing_bucket_says_what_to_do(server: GCSServer) -> None:
    store = GCSBlobStore.from_url(f"gs://{server.new_bucket_name()}", server.config())
    with pytest.raises(BlobStoreError, match="create the store"):
        store.put_bytes("k", b"data")
    with pytest.raises(BlobNotFoundError, match="create the store"):
        list(store.list_keys())


# --- integrity -----------------------------------------------------------------------------------


def test_object_replaced_behind_the_stores_back_is_detected(
    server: GCSServer, store: GCSBlobStore, tmp_path: Path
) -> None:
    data = _data(CHUNK + 10)
    info = _write(store, "victim", data)
    raw = server.client().bucket(store.bucket_name).blob(store.object_name("victim"))
    damaged = bytearray(data)
    damaged[CHUNK // 2] ^= 0xFF
    raw.upload_from_string(bytes(damaged))  # same size, one bit different
    with pytest.raises(ChecksumMismatchError):
        _read(store, "victim", info)
    with pytest.raises(ChecksumMismatchError):
        store.get_file("victim", str(tmp_path / "out"), info)
    assert list(tmp_path.iterdir()) == []
    raw.upload_from_string(data[:-1])  # truncated
    with pytest.raises(ChecksumMismatchError, match="bytes"):
        _read(store, "victim", info)


# --- faults ------------------------------------------------------------------------------------------


def test_server_down_gives_typed_errors_and_store_recovers(
    server_restored: GCSServer, bucket: str, tmp_path: Path
) -> None:
    """With the server stopped, every operation fails with a BlobStoreError naming the endpoint,
    after retrying for Config.googleRetryTimeout; after a restart the same store works again.
    """
    server = server_restored
    store = GCSBlobStore.from_url(f"gs://{bucket}/down", server.config(googleRetryTimeout=0.5))
    info = store.put_bytes("before", b"kept")
    server.stop()
    started = time.monotonic()
    with pytest.raises(BlobStoreError, match="unreachable") as caught:
        store.exists("before")
    assert server.endpoint_url in str(caught.value)
    assert "retrying" in str(caught.value)
    assert time.monotonic() - started < 10
    with pytest.raises(BlobStoreError, match="unreachable"):
        store.put_bytes("new", b"data")
    with pytest.raises(BlobStoreError):
        store.get_file("before", str(tmp_path / "out"), info)
    with pytest.raises(BlobStoreError):
        list(store.list_keys())
    server.start()
    assert _read(store, "before", info) == b"kept"
    assert not store.exists("new")
    store.put_bytes("after", b"ok")
    assert store.exists("after")


def test_server_stopped_mid_stream_write(server_restored: GCSServer, bucket: str) -> None:
    """The server disappears after the upload session received its first chunks: the write fails
    with a BlobStoreError, nothing is left at the key after the restart, and the store still works.
    """
    server = server_restored
    store = GCSBlobStore.from_url(f"gs://{bucket}/midstream", server.config(googleRetryTimeout=0.5))
    with pytest.raises(BlobStoreError):
        with store.open_write("cut") as (handle, _):
            handle.write(_data(2 * CHUNK + 1))
            handle.flush()
            server.stop()
            handle.write(_data(2 * CHUNK))
            handle.flush()
    server.start()
    gc.collect()
    assert not store.exists("cut")
    data = _data(2 * CHUNK + 3)
    info = _write(store, "cut-again", data)
    assert _read(store, "cut-again", info) == data


def test_server_stopped_mid_read(server_restored: GCSServer, bucket: str) -> None:
    server = server_restored
    store = GCSBlobStore.from_url(f"gs://{bucket}/midread", server.config(googleRetryTimeout=0.5))
    data = _data(12 * CHUNK)  # 3 MiB: several ranged requests of the base class's 1 MiB reads
    info = _write(store, "r", data)
    with store.open_read("r", info, "r") as reader:
        reader.read(1000)  # the first ranged request has been served
        server.stop()
        with pytest.raises(BlobStoreError, match="unreachable"):
            reader.read()
    server.start()


def test_short_outage_is_ridden_out_by_retries(server_restored: GCSServer, bucket: str) -> None:
    """google-api-core's Retry resends the create-only upload once the server is back."""
    server = server_restored
    store = GCSBlobStore.from_url(f"gs://{bucket}/outage", server.config(googleRetryTimeout=20))
    server.stop()
    restart = threading.Timer(0.5, server.start)
    restart.start()
    try:
        info = store.put_bytes("k", b"survived")
    finally:
        restart.join()
    assert _read(store, "k", info) == b"survived"


# --- encryption ------------------------------------------------------------------------------------


def _expected_key_headers(key: bytes) -> dict[str, str]:
    return {
        "x-goog-encryption-algorithm": "AES256",
        "x-goog-encryption-key": base64.b64encode(key).decode(),
        "x-goog-encryption-key-sha256": base64.b64encode(hashlib.sha256(key).digest()).decode(),
    }


@pytest.mark.parametrize("size", [10, 2 * CHUNK + 7], ids=["single-request", "resumable"])
def test_customer_key_sent_on_every_media_request(server: GCSServer, bucket: str, tmp_path: Path, size: int) -> None:
    """fake-gcs-server does NOT enforce customer-supplied keys (it would serve the object to a
    reader without the key). What is checked: every upload, chunk and download request carries the
    key headers, including from a second store instance built from the same Config (the resume
    path), and requests of a store without a key carry none.
    """
    config = server.config(sseKey=base64.b64encode(CUSTOMER_KEY).decode())
    prefix = f"enc-{os.urandom(3).hex()}"
    writer = GCSBlobStore.from_url(f"gs://{bucket}/{prefix}", config)
    assert writer.encrypted
    log = _record_requests(writer)
    data = _data(size)
    info = _write(writer, "secret", data)
    source = tmp_path / "in"
    source.write_bytes(data)
    writer.put_file("secret-file", str(source))

    resumed = GCSBlobStore.from_url(f"gs://{bucket}/{prefix}", config)
    resumed_log = _record_requests(resumed)
    assert _read(resumed, "secret", info) == data
    resumed.get_file("secret-file", str(tmp_path / "out"), info)
    assert (tmp_path / "out").read_bytes() == data

    media = [(m, url, h) for m, url, h, _ in log + resumed_log if _is_media(m, url)]
    assert len(media) >= 4
    for method, url, headers in media:
        for name, value in _expected_key_headers(CUSTOMER_KEY).items():
            assert headers.get(name) == value, f"{method} {url} lacks {name}"

    plain = GCSBlobStore.from_url(f"gs://{bucket}/{prefix}-plain", server.config())
    assert not plain.encrypted
    plain_log = _record_requests(plain)
    plain.put_bytes("k", b"x")
    _read(plain, "k", None)
    assert plain_log and not any("x-goog-encryption-key" in h for _, _, h, _ in plain_log)


def test_kms_alias_and_bad_key_are_refused_before_network(server: GCSServer, bucket: str) -> None:
    with pytest.raises(EncryptionKeyError, match="KMS"):
        GCSBlobStore.from_url(f"gs://{bucket}", server.config(sseKey="alias/my-key"))
    with pytest.raises(EncryptionKeyError, match="32 bytes"):
        GCSBlobStore.from_url(f"gs://{bucket}", server.config(sseKey="too-short"))


# --- public URLs -----------------------------------------------------------------------------------


def test_public_url_refused_with_anonymous_credentials(store: GCSBlobStore) -> None:
    store.put_bytes("k", b"x")
    with pytest.raises(PublicURLError, match="anonymous credentials"):
        store.public_url("k", 3600)
    with pytest.raises(PublicURLError, match="7 days"):
        store.public_url("k", 8 * 24 * 3600)


def test_public_url_refused_for_customer_key_objects(server: GCSServer, bucket: str) -> None:
    store = GCSBlobStore.from_url(f"gs://{bucket}/enc-url", server.config(sseKey=CUSTOMER_KEY))
    with pytest.raises(PublicURLError, match="customer-supplied key"):
        store.public_url("k", 60)


def test_public_url_signed_with_service_account_key(server: GCSServer, bucket: str) -> None:
    """With signing credentials (a throwaway service-account key) the store returns a V4 signed
    URL. The emulator does not check signatures, so fetching it proves only that the URL names the
    object; the signature is checked for presence and RSA-2048 length, not validity.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from google.oauth2 import service_account

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    credentials = service_account.Credentials.from_service_account_info(
        {
            "type": "service_account",
            "project_id": "test",
            "private_key_id": "1",
            "private_key": pem,
            "client_email": "signer@test.iam.gserviceaccount.com",
            "token_uri": "https://oauth2.googleapis.com/token",
        }
    )
    writer = GCSBlobStore.from_url(f"gs://{bucket}/signed", server.config())
    writer.put_bytes("k", b"shared bytes")
    signer = GCSBlobStore(bucket, "signed", server.config(), credentials=credentials)
    url = signer.public_url("k", 600)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query["X-Goog-Algorithm"] == ["GOOG4-RSA-SHA256"]
    assert query["X-Goog-Expires"] == ["600"]
    assert query["X-Goog-Credential"][0].startswith("signer@test.iam.gserviceaccount.com/")
    signature = bytes.fromhex(query["X-Goog-Signature"][0])
    assert len(signature) == 256
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"shared bytes"


# --- names and settings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "gs://UpperCase",
        "gs://ab",
        "gs://goog-bucket",
        "gs://-leading-dash",
        "gs://192.168.1.1",
        "gs://bucket/../escape",
        "gs://bucket//double",
        "gs://bucket/a//b",
        "gs://bucket/pre fix",
        "gs://bucket?x=1",
        "gs://",
        "s3://bucket",
    ],
)
def test_invalid_urls_rejected_before_any_network_call(
    url: str, monkeypatch: pytest.MonkeyPatch, server: GCSServer
) -> None:
    def no_client(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a client was built before the name was validated")

    monkeypatch.setattr("google.cloud.storage.Client", no_client)
    with pytest.raises(InvalidLocatorError):
        GCSBlobStore.from_url(url, server.config())


def test_chunk_size_must_be_a_multiple_of_256_kib(server: GCSServer) -> None:
    with pytest.raises(InvalidLocatorError, match="256 KiB"):
        GCSBlobStore.from_url("gs://bucket", server.config(googleChunkSize=1000))


def test_unsafe_keys_refused(store: GCSBlobStore) -> None:
    from jobstore.errors import UnsafeLocationError

    for key in ("../x", "a//b", "/abs", "a/./b"):
        with pytest.raises(UnsafeLocationError):
            store.put_bytes(key, b"x")
        with pytest.raises(UnsafeLocationError):
            store.exists(key)


def test_missing_key_file_is_access_denied(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without the emulator, Config.googleCredentials names the key file; a bad one says so."""
    from jobstore.config import Config

    monkeypatch.delenv("STORAGE_EMULATOR_HOST")
    missing = tmp_path / "nope.json"
    with pytest.raises(BlobAccessDeniedError, match="googleCredentials"):
        GCSBlobStore.from_url("gs://bucket", Config(googleCredentials=str(missing)))


# --- the translation function ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected", "fragment"),
    [
        (api_exceptions.NotFound("No such object"), BlobNotFoundError, "not found"),
        (api_exceptions.Forbidden("denied"), BlobAccessDeniedError, "roles/storage.objectAdmin"),
        (api_exceptions.Unauthorized("who"), BlobAccessDeniedError, "credentials"),
        (api_exceptions.PreconditionFailed("exists"), BlobExistsError, "precondition"),
        (
            api_exceptions.BadRequest("The target object is encrypted by a customer-supplied encryption key."),
            EncryptionKeyError,
            "Config.sseKey",
        ),
        (api_exceptions.BadRequest("Provided CRC32C does not match"), ChecksumMismatchError, "retry"),
        (api_exceptions.ServiceUnavailable("busy"), BlobStoreError, "try again later"),
        (requests.ConnectionError("refused"), BlobStoreError, "unreachable"),
        (
            api_exceptions.RetryError("Timeout of 3.0s exceeded", api_exceptions.TooManyRequests("slow down")),
            BlobStoreError,
            "gave up",
        ),
    ],
)
def test_translate_gcs_error(error: Exception, expected: type[Exception], fragment: str) -> None:
    translated = translate_gcs_error(error, "read", "gs://b/k")
    assert type(translated) is expected
    assert fragment.lower() in str(translated).lower()


def test_translate_leaves_unrelated_errors_alone() -> None:
    assert translate_gcs_error(KeyError("x"), "read", "gs://b/k") is None
    assert translate_gcs_error(io.UnsupportedOperation("x"), "read", "gs://b/k") is None
