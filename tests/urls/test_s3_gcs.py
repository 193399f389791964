"""s3:// and gs:// handlers against the session's SeaweedFS and fake-gcs-server."""

from __future__ import annotations

import io
import os
from typing import Any

import pytest

from jobstore import Config
from jobstore.blobs.checksum import checksum_of_bytes, crc32c_base64
from jobstore.errors import (
    TransferIntegrityError,
    UnsupportedURLError,
    URLAccessError,
    URLForbiddenError,
    URLNotFoundError,
)
from jobstore.urls import ChecksumHint, open_source, url_basename, write_to_url
from jobstore.urls.base import VerifyingReader
from jobstore.urls.s3 import declared_checksum
from tests.services.gcs import GCSServer
from tests.services.s3 import S3Server
from tests.urls.conftest import put_s3_object

MiB = 1024 * 1024


def _unique(stem: str) -> str:
    return f"{stem}/{os.urandom(5).hex()}"


@pytest.mark.parametrize("size", [0, 1, MiB, 5 * MiB, 5 * MiB + 1])
def test_s3_round_trip(s3_server: S3Server, s3_bucket: str, size: int) -> None:
    """5 MiB parts: one part exactly, and a multipart upload of one part plus a byte."""
    config = s3_server.config(s3PartSize=5 * MiB)
    data = os.urandom(size)
    url = f"s3://{s3_bucket}/{_unique('rt')}/data.bin"
    write_to_url(url, io.BytesIO(data), size, config=config)
    with open_source(url, config) as source:
        assert (source.size, source.basename) == (size, "data.bin")
        if size < 5 * MiB:  # single-part objects declare a full-object checksum; multipart ones do not
            assert source.checksum is not None and source.checksum.enforced
        assert source.stream.read() == data
        assert source.complete


def test_s3_declared_crc32c_is_enforced(s3_server: S3Server, s3_bucket: str) -> None:
    data = b"checked bytes"
    key = _unique("crc")
    put_s3_object(s3_server, s3_bucket, key, data, ChecksumCRC32C=crc32c_base64(checksum_of_bytes(data)))
    with open_source(f"s3://{s3_bucket}/{key}", s3_server.config()) as source:
        assert source.checksum == ChecksumHint("crc32c", checksum_of_bytes(data)[7:], "S3 ChecksumCRC32C", True)
        assert source.stream.read() == data


def test_s3_errors_name_the_url(s3_server: S3Server, s3_bucket: str) -> None:
    config = s3_server.config()
    put_s3_object(s3_server, s3_bucket, "tree/leaf.bin", b"x")
    cases: list[tuple[str, type[Exception], Config]] = [
        (f"s3://{s3_bucket}/no/such/key", URLNotFoundError, config),
        ("s3://no-such-bucket-here/key", URLNotFoundError, config),
        (f"s3://{s3_bucket}/tree", URLAccessError, config),
        (f"s3://{s3_bucket}/tree/", URLAccessError, config),
        (f"s3://{s3_bucket}", URLAccessError, config),
        (f"s3://{s3_bucket}/tree/leaf.bin", URLForbiddenError, s3_server.wrong_config()),
    ]
    for url, error_type, settings in cases:
        with pytest.raises(error_type) as info:
            with open_source(url, settings):
                pass
        assert url.rstrip("/") in str(info.value)
    with pytest.raises(UnsupportedURLError):
        write_to_url("s3:///key", io.BytesIO(b""), 0, config=config)
    with pytest.raises(URLForbiddenError):
        write_to_url(f"s3://{s3_bucket}/denied", io.BytesIO(b"x"), 1, config=s3_server.wrong_config())


def test_s3_export_of_a_failing_source_leaves_no_object(s3_server: S3Server, s3_bucket: str) -> None:
    config = s3_server.config(s3PartSize=5 * MiB)
    key = _unique("failing")
    with pytest.raises(TransferIntegrityError):  # the reader is 1 byte short of the announced size
        write_to_url(f"s3://{s3_bucket}/{key}", io.BytesIO(b"x" * (6 * MiB - 1)), 6 * MiB, config=config)
    listing = s3_server.boto3_client().list_objects_v2(Bucket=s3_bucket, Prefix=key)
    assert listing.get("KeyCount", 0) == 0


def test_declared_checksum_rules() -> None:
    crc = crc32c_base64("crc32c:0a0b0c0d")
    assert declared_checksum({"ChecksumCRC32C": crc}) == ChecksumHint("crc32c", "0a0b0c0d", "S3 ChecksumCRC32C", True)
    assert declared_checksum({"ChecksumCRC32": crc}) == ChecksumHint("crc32", "0a0b0c0d", "S3 ChecksumCRC32", True)
    md5 = '"0123456789abcdef0123456789abcdef"'
    assert declared_checksum({"ChecksumCRC32C": crc + "-3", "ETag": md5}) == ChecksumHint(
        "md5", md5.strip('"'), "ETag", True
    )
    assert declared_checksum({"ETag": md5, "ServerSideEncryption": "aws:kms"}) is None
    assert declared_checksum({"ETag": md5, "SSECustomerAlgorithm": "AES256"}) is None
    assert declared_checksum({"ETag": '"0123456789abcdef0123456789abcdef-2"'}) is None


@pytest.mark.parametrize("algorithm", ["crc32c", "crc32", "md5"])
def test_a_declared_checksum_that_does_not_match_fails_the_read(algorithm: str) -> None:
    data = io.BytesIO(b"what arrived")
    hint = ChecksumHint(algorithm, "0" * (32 if algorithm == "md5" else 8), "test", enforced=True)
    reader = VerifyingReader(data.read, what="s3://b/k", size=12, checksum=hint)
    with pytest.raises(TransferIntegrityError, match=algorithm):
        while reader.read(5):
            pass


@pytest.mark.parametrize("size", [0, 1, 256 * 1024 - 1, 256 * 1024, 256 * 1024 + 1, MiB + 1])
def test_gcs_round_trip(gcs_server: GCSServer, gcs_bucket: str, size: int) -> None:
    """Sizes around the 256 KiB chunk of the test Config (ranged reads and resumable uploads)."""
    config = gcs_server.config()
    data = os.urandom(size)
    url = f"gs://{gcs_bucket}/{_unique('rt')}/data.bin"
    write_to_url(url, io.BytesIO(data), size, config=config)
    with open_source(url, config) as source:
        assert (source.size, source.basename) == (size, "data.bin")
        assert source.checksum is not None
        assert (source.checksum.algorithm, source.checksum.enforced) == ("crc32c", True)
        assert "crc32c:" + source.checksum.hexdigest == checksum_of_bytes(data)
        assert source.stream.read() == data
        assert source.complete


def test_gcs_errors_name_the_url(gcs_server: GCSServer, gcs_bucket: str) -> None:
    config = gcs_server.config()
    gcs_server.client().bucket(gcs_bucket).blob("tree/leaf.bin").upload_from_string(b"x")
    cases: list[tuple[str, type[Exception]]] = [
        (f"gs://{gcs_bucket}/no/such/object", URLNotFoundError),
        ("gs://no-such-bucket-here/object", URLNotFoundError),
        (f"gs://{gcs_bucket}/tree", URLAccessError),
        (f"gs://{gcs_bucket}/tree/", URLAccessError),
    ]
    for url, error_type in cases:
        with pytest.raises(error_type) as info:
            with open_source(url, config):
                pass
        assert url.rstrip("/") in str(info.value)


def test_gcs_export_of_a_failing_source_leaves_no_object(gcs_server: GCSServer, gcs_bucket: str) -> None:
    name = _unique("failing")

    class Failing(io.RawIOBase):
        sent = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            if self.sent > MiB:
                raise OSError("the disk went away")
            view = memoryview(buffer).cast("B")
            view[:] = b"x" * len(view)
            self.sent += len(view)
            return len(view)

    with pytest.raises(OSError, match="disk went away"):
        write_to_url(f"gs://{gcs_bucket}/{name}", io.BufferedReader(Failing()), 2 * MiB, config=gcs_server.config())
    assert gcs_server.client().bucket(gcs_bucket).get_blob(name) is None


def test_url_basename() -> None:
    assert url_basename("s3://b/a%20b/c%2Fd.txt") == "c%2Fd.txt"  # keys are literal
    assert url_basename("gs://b/dir/x.bin") == "x.bin"
    assert url_basename("http://h/a/b%20c.txt?q=1") == "b c.txt"
    assert url_basename("file:///tmp/a%23b") == "a#b"
    assert url_basename("/tmp/plain") == "plain"
    assert url_basename("http://h/") is None
