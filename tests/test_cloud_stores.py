"""AWSJobStore and GoogleJobStore through their own locators, with catalogs on SQLite and PostgreSQL,
and customer-key encryption carried through the store (rows record it; workers resume with it)."""

from __future__ import annotations

import multiprocessing
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from jobstore import (
    AWSJobStore,
    Config,
    EncryptionKeyError,
    GoogleJobStore,
    JobDescription,
    JobStoreExistsException,
    NoSuchJobStoreException,
    create_job_store,
)


@pytest.fixture(params=["sqlite", "postgres"])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/catalog.sqlite"
    server = request.getfixturevalue("postgres_server")
    return str(server.url)


def _round_trip(store: Any, tmp_path: Path) -> None:
    job = store.create(JobDescription({"memory": 1, "cores": 1, "disk": 1}, "cloud"))
    source = tmp_path / "in"
    source.write_bytes(os.urandom(300_000))
    file_id = store.write_file(str(source), job.jobStoreID, cleanup=True)
    store.read_file(file_id, str(tmp_path / "out"))
    assert (tmp_path / "out").read_bytes() == source.read_bytes()


def test_aws_locator_with_catalog(
    s3_server: Any, catalog_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locator = f"aws:us-east-1:jobstore-aws-locator:wf-{uuid.uuid4().hex[:8]}"
    store = AWSJobStore(locator)
    store.initialize(s3_server.config(catalog=catalog_url))
    _round_trip(store, tmp_path)
    with pytest.raises(JobStoreExistsException):
        AWSJobStore(locator).initialize(s3_server.config(catalog=catalog_url))
    # A worker resumes from the locator alone plus the catalog URL from the environment.
    monkeypatch.setenv("JOBSTORE_CATALOG", catalog_url)
    worker = create_job_store(locator)
    worker.resume()
    assert isinstance(worker, AWSJobStore)
    assert len(list(worker.jobs())) == 1
    worker.close()
    store.destroy()
    with pytest.raises(NoSuchJobStoreException):
        AWSJobStore(locator).resume()


def test_aws_locator_creates_missing_bucket(s3_server: Any, tmp_path: Path) -> None:
    bucket = f"fresh-{uuid.uuid4().hex[:10]}"
    store = AWSJobStore(f"aws:us-east-1:{bucket}")
    store.initialize(s3_server.config(catalog=f"sqlite:///{tmp_path}/c.sqlite"))
    _round_trip(store, tmp_path)
    assert bucket in [b["Name"] for b in s3_server.boto3_client().list_buckets()["Buckets"]]
    store.close()


def test_google_locators_with_catalog(gcs_server: Any, catalog_url: str, tmp_path: Path) -> None:
    gce = GoogleJobStore(f"gce:us-central1:jobstore-gce-locator:wf-{uuid.uuid4().hex[:8]}")
    gce.initialize(gcs_server.config(catalog=catalog_url))
    assert gce.config.googleRegion == "us-central1"
    _round_trip(gce, tmp_path)
    toil_form = GoogleJobStore(f"google:test-project:toil-{uuid.uuid4().hex[:8]}")
    toil_form.initialize(gcs_server.config(catalog=catalog_url))
    assert toil_form.config.googleProject in ("test-project", "test")
    _round_trip(toil_form, tmp_path)
    gce.destroy()
    toil_form.destroy()


def _read_in_worker(locator: str, catalog: str, file_id: str, queue: Any) -> None:
    try:
        store = create_job_store(locator)
        store.resume(Config(catalog=catalog))
        with store.read_file_stream(file_id) as handle:
            queue.put(("ok", len(handle.read())))
    except BaseException as error:  # reported to the parent
        queue.put(("error", type(error).__name__))


def test_sse_c_key_file_follows_the_store_to_other_processes(s3_server: Any, tmp_path: Path) -> None:
    """SeaweedFS enforces SSE-C: reading without the key or with another key fails server-side."""
    key_file = tmp_path / "sse.key"
    key_file.write_bytes(os.urandom(32).hex().encode())
    catalog = f"sqlite:///{tmp_path}/c.sqlite"
    locator = f"aws:us-east-1:jobstore-sse:{uuid.uuid4().hex[:8]}"
    store = AWSJobStore(locator)
    store.initialize(s3_server.config(catalog=catalog, sseKeyFile=str(key_file)))
    with store.write_file_stream() as (handle, file_id):
        handle.write(b"secret" * 1000)
    assert store.file_info(file_id).encrypted
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    worker = context.Process(target=_read_in_worker, args=(locator, catalog, file_id, queue))
    worker.start()
    worker.join(120)
    assert queue.get(timeout=10) == ("ok", 6000)
    # The same object read by a store with a different key fails with a typed error.
    other_key = tmp_path / "other.key"
    other_key.write_bytes(os.urandom(32).hex().encode())
    wrong = create_job_store(locator)
    wrong.resume(Config(catalog=catalog, sseKeyFile=str(other_key)))
    with pytest.raises(EncryptionKeyError):
        with wrong.read_file_stream(file_id) as handle:
            handle.read()
    wrong.close()
    store.destroy()


def test_inline_sse_key_is_never_persisted(s3_server: Any, tmp_path: Path) -> None:
    catalog = f"sqlite:///{tmp_path}/c.sqlite"
    key = os.urandom(32)
    locator = f"aws:us-east-1:jobstore-sse:{uuid.uuid4().hex[:8]}"
    store = AWSJobStore(locator)
    store.initialize(s3_server.config(catalog=catalog, sseKey=key))
    with store.write_file_stream() as (handle, file_id):
        handle.write(b"x" * 100)
    assert key.hex() not in store.config.to_json()
    # Resumed without the key: the read fails with a typed error, not garbage.
    keyless = create_job_store(locator)
    keyless.resume(Config(catalog=catalog))
    with pytest.raises(EncryptionKeyError):
        with keyless.read_file_stream(file_id) as handle:
            handle.read()
    # Resumed with the key passed in: works.
    keyed = create_job_store(locator)
    keyed.resume(Config(catalog=catalog, sseKey=key))
    with keyed.read_file_stream(file_id) as handle:
        assert handle.read() == b"x" * 100
    keyless.close()
    keyed.close()
    store.destroy()
