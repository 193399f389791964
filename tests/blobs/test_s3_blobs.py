"""S3BlobStore against a real S3 server (SeaweedFS ``weed mini``, started by the session fixture).

SeaweedFS enforces SigV4, SSE-C, conditional writes and presigned-URL expiry, so these tests check
the real protocol, not a mock. Only the SSE-KMS request shape is checked with botocore's Stubber:
SeaweedFS has no KMS to talk to.
"""

from __future__ import annotations

import os
import random
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import botocore.exceptions
import psutil
import pytest
import requests
from botocore.stub import ANY, Stubber

from jobstore.blobs.base import BlobInfo
from jobstore.blobs.checksum import checksum_of_bytes
from jobstore.blobs.s3 import S3BlobStore
from jobstore.errors import (
    BlobAccessDeniedError,
    BlobExistsError,
    BlobNotFoundError,
    BlobStoreError,
    ChecksumMismatchError,
    EncryptionKeyError,
    InvalidLocatorError,
    PublicURLError,
    UnsafeLocationError,
)
from tests.services.s3 import S3Server

MIB = 1024 * 1024
PART = 5 * MIB  # S3's minimum part size keeps the multipart cases small
BUCKET = "jobstore-s3-tests"
SIZES = [0, 1, PART - 1, PART, PART + 1, int(2.33 * PART)]
DATA = random.Random(1234).randbytes(max(SIZES))


@pytest.fixture(scope="module")
def bucket(s3_server: S3Server) -> str:
    S3BlobStore(BUCKET, "", s3_server.config()).create()
    return BUCKET


def make_store(server: S3Server, prefix: str | None = None, **config: Any) -> S3BlobStore:
    """A store on a fresh prefix, small parts, few attempts (failure tests stay fast)."""
    return S3BlobStore(
        BUCKET, prefix or f"tests/{uuid.uuid4().hex}", server.config(**config), part_size=PART, max_attempts=2
    )


@pytest.fixture
def store(s3_server: S3Server, bucket: str) -> S3BlobStore:
    return make_store(s3_server)


def record_operations(store: S3BlobStore) -> list[str]:
    """The S3 operations the store's client performs from now on, in order."""
    calls: list[str] = []

    def remember(model: Any, **_: Any) -> None:
        calls.append(model.name)

    store._client.meta.events.register("before-call.s3", remember)
    return calls


def pending_uploads(server: S3Server, prefix: str) -> list[dict[str, Any]]:
    response = server.boto3_client().list_multipart_uploads(Bucket=BUCKET, Prefix=prefix + "/")
    return list(response.get("Uploads") or [])


def write_stream(store: S3BlobStore, key: str, data: bytes, chunk: int = 1_000_003) -> BlobInfo:
    with store.open_write(key) as (handle, pending):
        for start in range(0, len(data), chunk):
            handle.write(data[start : start + chunk])
    assert pending.info is not None
    return pending.info


# --- round trips ----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES, ids=[f"{size}B" for size in SIZES])
def test_round_trip_at_part_boundaries(store: S3BlobStore, size: int, tmp_path: Any) -> None:
    data = DATA[:size]
    expected = BlobInfo(size, checksum_of_bytes(data))
    calls = record_operations(store)

    assert write_stream(store, "streamed", data) == expected
    # Up to one full part is a single PutObject; beyond it, a multipart upload.
    assert ("CreateMultipartUpload" in calls) == (size > PART)
    assert ("PutObject" in calls) == (size <= PART)
    with store.open_read("streamed", expected, "streamed") as reader:
        assert reader.read() == data

    source = tmp_path / "source"
    source.write_bytes(data)
    assert store.put_file("uploaded", str(source)) == expected
    assert store.size("uploaded") == size
    destination = tmp_path / "destination"
    store.get_file("uploaded", str(destination), expected)
    assert destination.read_bytes() == data
    store.get_file("streamed", str(tmp_path / "exe"), expected, executable=True)
    assert os.access(tmp_path / "exe", os.X_OK)
    assert sorted(os.listdir(tmp_path)) == ["destination", "exe", "source"]  # no temp files left


def test_keys_live_under_the_prefix(s3_server: S3Server, store: S3BlobStore) -> None:
    store.put_bytes("a/b.c", b"x")
    raw = s3_server.boto3_client().get_object(Bucket=BUCKET, Key=f"{store.prefix}/a/b.c")
    assert raw["Body"].read() == b"x"


def test_partial_read_then_close_does_not_hang(store: S3BlobStore) -> None:
    info = store.put_bytes("partial", DATA)
    started = time.monotonic()
    with store.open_read("partial", info, "partial") as reader:
        assert reader.read(10) == DATA[:10]
    assert time.monotonic() - started < 5


# --- create-only ----------------------------------------------------------------------------------


def test_writes_are_create_only(s3_server: S3Server, store: S3BlobStore, tmp_path: Any) -> None:
    original = store.put_bytes("taken", b"first")
    big = DATA[: 2 * PART + 1]
    (tmp_path / "big").write_bytes(big)
    (tmp_path / "small").write_bytes(b"second")

    with pytest.raises(BlobExistsError):
        store.put_bytes("taken", b"second")  # single PutObject
    with pytest.raises(BlobExistsError):
        write_stream(store, "taken", big)  # CompleteMultipartUpload
    with pytest.raises(BlobExistsError):
        store.put_file("taken", str(tmp_path / "small"))  # transfer manager, PutObject
    with pytest.raises(BlobExistsError):
        store.put_file("taken", str(tmp_path / "big"))  # transfer manager, multipart

    with store.open_read("taken", original, "taken") as reader:
        assert reader.read() == b"first"
    assert pending_uploads(s3_server, store.prefix) == []


# --- failures leave nothing behind --------------------------------------------------------------


def test_writer_failing_mid_stream_leaves_nothing(s3_server: S3Server, store: S3BlobStore) -> None:
    class WriterFailed(Exception):
        pass

    with pytest.raises(WriterFailed), store.open_write("doomed") as (handle, _):
        handle.write(DATA[: int(2.5 * PART)])  # two parts already uploaded
        raise WriterFailed

    assert not store.exists("doomed")
    assert list(store.list_keys()) == []
    assert pending_uploads(s3_server, store.prefix) == []


def test_missing_blobs(store: S3BlobStore, tmp_path: Any) -> None:
    assert not store.exists("nothing")
    assert store.size("nothing") is None
    store.delete("nothing")  # idempotent
    with pytest.raises(BlobNotFoundError):
        store.open_read("nothing", None, "nothing")
    with pytest.raises(BlobNotFoundError):
        store.get_file("nothing", str(tmp_path / "out"), None)
    assert os.listdir(tmp_path) == []


def test_checksum_mismatch_on_get_file_leaves_no_file(store: S3BlobStore, tmp_path: Any) -> None:
    info = store.put_bytes("blob", b"payload")
    wrong = BlobInfo(info.size, checksum_of_bytes(b"something else"))
    with pytest.raises(ChecksumMismatchError):
        store.get_file("blob", str(tmp_path / "out"), wrong)
    with pytest.raises(ChecksumMismatchError):
        store.get_file("blob", str(tmp_path / "out"), BlobInfo(info.size + 1, info.checksum))
    assert os.listdir(tmp_path) == []


def test_single_put_is_checked_by_the_server(store: S3BlobStore) -> None:
    """The CRC32C computed while streaming travels with the PutObject; S3 rejects a mismatch."""
    with pytest.raises(BlobStoreError, match="corrupted"):
        store._put_object("corrupt", b"hello", BlobInfo(5, checksum_of_bytes(b"other")))
    assert not store.exists("corrupt")


def test_unsafe_keys_are_refused(store: S3BlobStore) -> None:
    for key in ("../escape", "a//b", "/abs", ""):
        with pytest.raises(UnsafeLocationError):
            store.exists(key)


# --- bounded memory -------------------------------------------------------------------------------


def test_large_stream_is_written_with_bounded_memory(store: S3BlobStore) -> None:
    total = 200 * MIB
    block = random.Random(7).randbytes(MIB)
    store.put_bytes("warm-up", b"x")  # load boto3's models before the baseline
    process = psutil.Process()
    baseline = process.memory_info().rss
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        with store.open_write("large") as (handle, pending):
            for _ in range(total // MIB):
                handle.write(block)
    finally:
        done.set()
        sampler.join()

    growth = peak - baseline
    print(f"RSS growth while streaming {total // MIB} MiB: {growth / MIB:.1f} MiB")
    # (concurrency + 2) parts of 5 MiB plus library overhead; far below the 200 MiB written.
    assert growth < 100 * MIB, f"RSS grew by {growth / MIB:.0f} MiB while streaming {total / MIB:.0f} MiB"
    assert pending.info is not None and pending.info.size == total
    assert store.size("large") == total
    with store.open_read("large", pending.info, "large") as reader:
        while reader.read(8 * MIB):
            pass  # verified against size and CRC32C at the end
    store.delete("large")


# --- encryption -----------------------------------------------------------------------------------


def test_sse_c_round_trip_and_key_errors(s3_server: S3Server, bucket: str, tmp_path: Any) -> None:
    prefix = f"tests/{uuid.uuid4().hex}"
    key = os.urandom(32)
    store = make_store(s3_server, prefix, sseKey=key)
    assert store.encrypted
    data = DATA[: PART + 1]
    (tmp_path / "source").write_bytes(data)

    info = write_stream(store, "streamed", data)
    assert store.put_file("uploaded", str(tmp_path / "source")) == info
    assert store.put_bytes("small", b"tiny") == BlobInfo(4, checksum_of_bytes(b"tiny"))
    for name in ("streamed", "uploaded"):
        with store.open_read(name, info, name) as reader:
            assert reader.read() == data
        store.get_file(name, str(tmp_path / name), info)
        assert (tmp_path / name).read_bytes() == data
        assert store.size(name) == len(data)

    # The bytes really are encrypted: a reader without the key is refused by the server.
    with pytest.raises(botocore.exceptions.ClientError):
        s3_server.boto3_client().get_object(Bucket=BUCKET, Key=f"{prefix}/small")

    wrong = make_store(s3_server, prefix, sseKey=os.urandom(32))
    missing = make_store(s3_server, prefix)
    for other, hint in ((wrong, "not the one"), (missing, "none was given")):
        for name in ("streamed", "small"):
            with pytest.raises(EncryptionKeyError, match=hint) as raised:
                other.open_read(name, None, name)
            assert "Config.sseKey" in str(raised.value)
            assert key.hex() not in str(raised.value)
        with pytest.raises(EncryptionKeyError):
            other.get_file("uploaded", str(tmp_path / "never"), info)
        with pytest.raises(EncryptionKeyError):
            other.size("small")
    assert not (tmp_path / "never").exists()
    assert sorted(os.listdir(tmp_path)) == ["source", "streamed", "uploaded"]

    with pytest.raises(PublicURLError, match="SSE-C"):
        store.public_url("small", 60)


def test_kms_alias_requests_sse_kms(s3_server: S3Server) -> None:
    """SeaweedFS has no KMS: check the request shape with botocore's Stubber (no network)."""
    store = make_store(s3_server, sseKey="alias/jobstore-test")
    assert store.encrypted
    with Stubber(store._client) as stubber:
        stubber.add_response(
            "put_object",
            {"ETag": '"0"'},
            {
                "Bucket": BUCKET,
                "Key": f"{store.prefix}/k",
                "Body": ANY,
                "IfNoneMatch": "*",
                "ChecksumCRC32C": ANY,
                "ServerSideEncryption": "aws:kms",
                "SSEKMSKeyId": "alias/jobstore-test",
            },
        )
        store.put_bytes("k", b"data")
        stubber.assert_no_pending_responses()


# --- outages and credentials ----------------------------------------------------------------------


def test_server_stopped_mid_operation(s3_server: S3Server, bucket: str) -> None:
    store = make_store(s3_server)
    store.max_attempts = 1  # no retries (set before the client is made): an outage fails at once
    info = store.put_bytes("kept", DATA)
    reader = store.open_read("kept", info, "kept")
    reader.read(MIB)
    try:
        with pytest.raises(BlobStoreError) as raised, store.open_write("interrupted") as (handle, _):
            handle.write(DATA[: PART + 1])  # a multipart upload is under way
            s3_server.stop(kill=True)
            handle.write(DATA[: 2 * PART])
        assert "unreachable" in str(raised.value)
        assert not isinstance(raised.value, botocore.exceptions.BotoCoreError | botocore.exceptions.ClientError)

        with pytest.raises(BlobStoreError, match="unreachable"):
            reader.read()  # the rest of a read cut off by the crash
        with pytest.raises(BlobStoreError, match="unreachable"):
            store.exists("kept")  # an outage is not "missing"
        with pytest.raises(BlobStoreError, match="unreachable"):
            store.put_bytes("during", b"x")
    finally:
        reader.close()
        s3_server.start()

    assert not store.exists("interrupted")
    with store.open_read("kept", info, "kept") as again:
        assert again.read() == DATA
    assert write_stream(store, "after", DATA[: PART + 1]).size == PART + 1
    store.destroy()  # also aborts the upload the crash left pending
    assert pending_uploads(s3_server, store.prefix) == []
    assert list(store.list_keys()) == []


def test_wrong_credentials_are_access_denied(s3_server: S3Server, bucket: str) -> None:
    store = S3BlobStore(BUCKET, "tests/denied", s3_server.wrong_config(), part_size=PART, max_attempts=1)
    for attempt in (
        lambda: store.put_bytes("k", b"x"),
        lambda: store.exists("k"),
        lambda: list(store.list_keys()),
        store.container_exists,
    ):
        with pytest.raises(BlobAccessDeniedError) as raised:
            attempt()
        assert "credentials" in str(raised.value)
        assert "not-the-secret-key" not in str(raised.value)


def test_missing_credentials_file(s3_server: S3Server, tmp_path: Any) -> None:
    store = make_store(s3_server, awsCredentials=str(tmp_path / "absent"))
    with pytest.raises(BlobAccessDeniedError, match="awsCredentials"):
        store.exists("k")


# --- container and key operations ---------------------------------------------------------------


def test_create_and_missing_bucket(s3_server: S3Server) -> None:
    name = f"jobstore-new-{uuid.uuid4().hex[:12]}"
    store = S3BlobStore(name, "p", s3_server.config(), part_size=PART, max_attempts=1)
    assert not store.container_exists()
    store.destroy()  # nothing to destroy: not an error
    with pytest.raises(BlobNotFoundError, match="bucket does not exist"):
        store.put_bytes("k", b"x")
    store.create()
    store.create()  # idempotent
    assert store.container_exists()
    store.put_bytes("k", b"x")
    assert store.exists("k")


def test_list_delete_exists_size_destroy(s3_server: S3Server, bucket: str) -> None:
    base = f"tests/{uuid.uuid4().hex}"
    store = make_store(s3_server, f"{base}/store")
    neighbour = make_store(s3_server, f"{base}/store2")  # shares the "store" string prefix
    store.list_page_size = store.delete_batch_size = 2  # exercise paging and batching
    keys = {"a", "b/c", "b/d", "e.f", "g-h", "files/x.1"}
    for key in keys:
        store.put_bytes(key, key.encode())
    neighbour.put_bytes("a", b"neighbour")

    assert set(store.list_keys()) == keys
    assert set(store.list_keys("b/")) == {"b/c", "b/d"}
    assert store.exists("b/c") and store.size("b/c") == 3
    store.delete("b/c")
    store.delete("b/c")
    assert not store.exists("b/c") and store.size("b/c") is None

    store.destroy()
    assert list(store.list_keys()) == []
    assert pending_uploads(s3_server, store.prefix) == []
    assert list(neighbour.list_keys()) == ["a"]
    with neighbour.open_read("a", None, "a") as reader:
        assert reader.read() == b"neighbour"


def test_destroy_aborts_pending_uploads(s3_server: S3Server, store: S3BlobStore) -> None:
    client = s3_server.boto3_client()
    client.create_multipart_upload(Bucket=BUCKET, Key=f"{store.prefix}/left-over")
    other = client.create_multipart_upload(Bucket=BUCKET, Key=f"{store.prefix}-other/left-over")
    store.destroy()
    assert pending_uploads(s3_server, store.prefix) == []
    assert len(pending_uploads(s3_server, f"{store.prefix}-other")) == 1
    client.abort_multipart_upload(Bucket=BUCKET, Key=f"{store.prefix}-other/left-over", UploadId=other["UploadId"])


# --- public URLs ----------------------------------------------------------------------------------


def test_presigned_url_is_fetchable_and_expires(store: S3BlobStore) -> None:
    store.put_bytes("shared", b"hello world")
    with urllib.request.urlopen(store.public_url("shared", 60), timeout=10) as response:
        assert response.read() == b"hello world"
    assert requests.get(store.public_url("shared", 60), timeout=10).content == b"hello world"

    short = store.public_url("shared", 1)
    time.sleep(2.1)
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(short, timeout=10)
    assert raised.value.code == 403
    with pytest.raises(PublicURLError):
        store.public_url("shared", 8 * 24 * 3600)


# --- validation before any network call ---------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "s3://Bad_Bucket/prefix",
        "s3://ab",
        "s3://-leading-dash",
        "s3://192.168.1.1/p",
        "s3://two..dots",
        "s3://bucket/../escape",
        "s3://bucket/p?x=1",
        "s3://user@bucket/p",
        "gs://bucket/p",
    ],
)
def test_invalid_urls_are_rejected_before_any_network_call(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from jobstore.config import Config

    def no_network(*args: Any, **kwargs: Any) -> Iterator[None]:
        raise AssertionError("a network client was created")

    monkeypatch.setattr("boto3.session.Session", no_network)
    with pytest.raises(InvalidLocatorError):
        S3BlobStore.from_url(url, Config(awsEndpointURL="http://127.0.0.1:9"))


def test_from_url_and_endpoint_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from jobstore.config import Config

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    store = S3BlobStore.from_url("s3://my-bucket/a/b/", Config())
    assert (store.bucket, store.prefix, store.url) == ("my-bucket", "a/b", "s3://my-bucket/a/b")
    assert store.endpoint_url == "http://127.0.0.1:9" and store.region == "us-east-1"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:8")
    assert S3BlobStore.from_url("s3://my-bucket", Config()).endpoint_url == "http://127.0.0.1:8"
    assert S3BlobStore.from_url("s3://my-bucket", Config(awsEndpointURL="http://x:1")).endpoint_url == "http://x:1"
    assert not S3BlobStore.from_url("s3://my-bucket", Config()).encrypted
