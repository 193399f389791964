"""Places to import from and export to, one per URL scheme, on the session's real servers.

A :class:`Place` puts bytes where a URL of its scheme names them (behind jobstore's back, with the
server's own client or the file system), and reads back what an export left there, so a round-trip
test is written once for every scheme.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.services.ftp import FtpServer
from tests.services.gcs import GCSServer
from tests.services.http import HttpServer
from tests.services.s3 import S3Server

#: The bucket that URL tests read from and write to (on both the S3 and the GCS server).
URL_BUCKET = "jobstore-urls"
SCHEMES = ["file", "http", "ftp", "s3", "gs"]


@dataclass
class Place:
    """Where URLs of one scheme point, for tests."""

    scheme: str
    put: Callable[[str, bytes], str]  # (name, data) -> URL to import from
    target: Callable[[str], str]  # name -> URL to export to
    fetch: Callable[[str], bytes]  # name -> what the export left there


@pytest.fixture(scope="session")
def s3_bucket(s3_server: S3Server) -> str:
    client = s3_server.boto3_client()
    try:
        client.create_bucket(Bucket=URL_BUCKET)
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    return URL_BUCKET


@pytest.fixture(scope="session")
def gcs_bucket(gcs_server: GCSServer) -> str:
    client = gcs_server.client()
    if client.lookup_bucket(URL_BUCKET) is None:
        client.create_bucket(URL_BUCKET)
    return URL_BUCKET


def url_settings(s3_server: S3Server, gcs_server: GCSServer) -> dict[str, Any]:
    """Config attributes that let any store reach the test S3 and GCS servers by URL."""
    s3, gcs = s3_server.config(), gcs_server.config()
    return {
        **{key: getattr(s3, key) for key in ("awsEndpointURL", "awsRegion", "awsCredentials")},
        **{key: getattr(gcs, key) for key in ("googleProject", "googleChunkSize", "googleRetryTimeout")},
    }


@pytest.fixture
def url_config(s3_server: S3Server, gcs_server: GCSServer, s3_bucket: str, gcs_bucket: str) -> dict[str, Any]:
    return url_settings(s3_server, gcs_server)


def put_s3_object(server: S3Server, bucket: str, key: str, data: bytes, **extra: Any) -> None:
    """PutObject with a client of its own: SeaweedFS 4.48 leaves a keep-alive connection stuck
    after an empty PutObject, so the next PutObject on it waits for the 60 s read timeout."""
    server.boto3_client().put_object(Bucket=bucket, Key=key, Body=data, **extra)


def make_place(scheme: str, request: pytest.FixtureRequest, tmp_path: Path) -> Place:
    run = uuid.uuid4().hex[:8]
    if scheme == "file":
        root = tmp_path / "places"

        def put_file(name: str, data: bytes) -> str:
            path = root / "in" / run / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            return path.as_uri()

        return Place(
            scheme,
            put_file,
            lambda name: (root / "out" / run / name).as_uri(),
            lambda name: (root / "out" / run / name).read_bytes(),
        )
    if scheme == "http":
        http: HttpServer = request.getfixturevalue("http_server")
        return Place(
            scheme,
            lambda name, data: http.write_file(f"in/{run}/{name}", data),
            lambda name: http.url(f"_special/upload/{run}-{name}"),
            lambda name: http.upload(f"{run}-{name}").data,
        )
    if scheme == "ftp":
        ftp: FtpServer = request.getfixturevalue("ftp_server")

        def fetch_ftp(name: str) -> bytes:
            with open(os.path.join(ftp.root, "out", run, name), "rb") as handle:
                return handle.read()

        return Place(
            scheme,
            lambda name, data: ftp.write_file(f"in/{run}/{name}", data),
            lambda name: f"{ftp.user_url}/out/{run}/{name}",
            fetch_ftp,
        )
    if scheme == "s3":
        s3: S3Server = request.getfixturevalue("s3_server")
        bucket = request.getfixturevalue("s3_bucket")

        def put_s3(name: str, data: bytes) -> str:
            put_s3_object(s3, bucket, f"in/{run}/{name}", data)
            return f"s3://{bucket}/in/{run}/{name}"

        def fetch_s3(name: str) -> bytes:
            body: bytes = s3.boto3_client().get_object(Bucket=bucket, Key=f"out/{run}/{name}")["Body"].read()
            return body

        return Place(scheme, put_s3, lambda name: f"s3://{bucket}/out/{run}/{name}", fetch_s3)
    if scheme == "gs":
        gcs: GCSServer = request.getfixturevalue("gcs_server")
        gcs_bucket_name = request.getfixturevalue("gcs_bucket")
        bucket = gcs.client().bucket(gcs_bucket_name)

        def put_gs(name: str, data: bytes) -> str:
            bucket.blob(f"in/{run}/{name}").upload_from_string(data)
            return f"gs://{gcs_bucket_name}/in/{run}/{name}"

        def fetch_gs(name: str) -> bytes:
            data: bytes = bucket.blob(f"out/{run}/{name}").download_as_bytes()
            return data

        return Place(scheme, put_gs, lambda name: f"gs://{gcs_bucket_name}/out/{run}/{name}", fetch_gs)
    raise AssertionError(scheme)


@pytest.fixture(params=SCHEMES)
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Place:
    """One scheme's place; tests taking it run once per scheme."""
    return make_place(request.param, request, tmp_path)
