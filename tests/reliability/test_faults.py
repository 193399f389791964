"""Faults: servers stopped and restarted in the middle of operations, and a full disk.

Outages (S3, GCS, PostgreSQL): a thread runs writes and reads while the server is stopped and
started again. Every operation either succeeds or raises a JobStoreError (never a botocore, google
or psycopg exception); every write that reported success reads back whole; afterwards fsck finds
nothing but unreferenced blobs (left by writes that failed between upload and commit), gc removes
them, and the store works.

Disk full: the local blob store lives on a 2 MiB tmpfs mounted for the test (the suite runs as root
here; a run that cannot mount fails rather than skipping). A write that does not fit raises
BlobStorageFullError; no row is added, no partial file is visible and no temporary file is left; an
update that does not fit leaves the old content. With the SQLite catalog itself on the full disk,
the error is a CatalogError and the store keeps working once space is freed.
"""

from __future__ import annotations

import random
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jobstore import Config, JobDescription, JobStore, JobStoreError, create_job_store
from jobstore.errors import BlobStorageFullError, CatalogError
from jobstore.maintenance import collect_garbage, fsck
from tests.reliability.crashlib import content_is_whole, digest, make_content, temporaries_left


def _new_store(locator: str, config: Config) -> JobStore:
    store = create_job_store(locator)
    store.initialize(config)
    return store


def _run_through_outage(store: JobStore, stop: Callable[[], None], start: Callable[[], None]) -> dict[str, Any]:
    """Writes and reads in a thread while the server goes down and comes back; returns the outcomes."""
    rng = random.Random(7)
    with store.write_file_stream() as (handle, before_id):
        before = make_content(rng, 50_000)
        handle.write(before)
    ok: dict[str, str] = {before_id: digest(before)}
    failed: list[str] = []
    attempted_ids: set[str] = set()
    done = threading.Event()

    def workload() -> None:
        while not done.is_set():
            data = make_content(rng, rng.randrange(0, 100_000))
            operation = rng.choice(["write", "read", "job"])
            try:
                if operation == "write":
                    with store.write_file_stream() as (stream, file_id):
                        attempted_ids.add(file_id)
                        stream.write(data)
                    ok[file_id] = digest(data)
                elif operation == "read":
                    with store.read_file_stream(before_id) as stream:
                        assert digest(stream.read()) == ok[before_id]
                else:
                    store.create_job(JobDescription({}, "outage"))
            except JobStoreError as error:
                failed.append(type(error).__name__)
            except BaseException as error:  # anything untyped is a failure of the test
                failed.append(f"UNTYPED {type(error).__module__}.{type(error).__name__}: {error}")
            time.sleep(0.02)

    thread = threading.Thread(target=workload)
    thread.start()
    try:
        time.sleep(0.5)
        stop()
        time.sleep(1.5)
    finally:
        start()
    time.sleep(1.0)
    done.set()
    thread.join(300)
    assert not thread.is_alive(), "an operation hung after the server came back"
    return {"ok": ok, "failed": failed, "attempted": attempted_ids}


def _check_after_outage(store: JobStore, outcome: dict[str, Any]) -> None:
    untyped = [name for name in outcome["failed"] if name.startswith("UNTYPED")]
    assert untyped == []
    present = set(store.get_all_file_ids())
    assert set(outcome["ok"]) <= present  # every write that reported success is there...
    assert present <= set(outcome["ok"]) | outcome["attempted"]  # ...and nothing nobody wrote
    for file_id in present:
        with store.read_file_stream(file_id) as stream:
            data = stream.read()
        assert content_is_whole(data)
        if file_id in outcome["ok"]:
            assert digest(data) == outcome["ok"][file_id]
    report = fsck(store, verify_checksums=True)
    assert set(report.counts()) <= {"unreferenced_blob"}, report.problems
    collect_garbage(store, grace="0")
    assert fsck(store).problems == []
    assert temporaries_left(store) == 0
    with store.write_file_stream() as (stream, file_id):  # usable again
        stream.write(b"after the outage")
    with store.read_file_stream(file_id) as stream:
        assert stream.read() == b"after the outage"


def test_s3_server_stopped_and_restarted_mid_operations(s3_server: Any, tmp_path: Path) -> None:
    config = s3_server.config(blobStore=f"s3://jobstore-tests/outage-{uuid.uuid4().hex[:8]}", awsMaxAttempts=3)
    store = _new_store(f"sql:sqlite:///{tmp_path}/catalog.sqlite#wf", config)
    outcome = _run_through_outage(store, lambda: s3_server.stop(kill=True), s3_server.start)
    print(f"S3 outage: {len(outcome['ok'])} writes succeeded, failures: {outcome['failed']}")
    _check_after_outage(store, outcome)
    store.close()


def test_gcs_server_stopped_and_restarted_mid_operations(gcs_server: Any, tmp_path: Path) -> None:
    config = gcs_server.config(blobStore=f"gs://jobstore-tests/outage-{uuid.uuid4().hex[:8]}")
    store = _new_store(f"sql:sqlite:///{tmp_path}/catalog.sqlite#wf", config)
    outcome = _run_through_outage(store, gcs_server.stop, gcs_server.start)
    print(f"GCS outage: {len(outcome['ok'])} writes succeeded, failures: {outcome['failed']}")
    _check_after_outage(store, outcome)
    store.close()


def test_postgres_stopped_and_restarted_mid_operations(postgres_server: Any, tmp_path: Path) -> None:
    config = Config(blobStore=f"file://{tmp_path}/blobs")
    store = _new_store(f"sql:{postgres_server.url}#outage-{uuid.uuid4().hex[:8]}", config)
    outcome = _run_through_outage(store, postgres_server.stop, postgres_server.start)
    print(f"PostgreSQL outage: {len(outcome['ok'])} writes succeeded, failures: {outcome['failed']}")
    _check_after_outage(store, outcome)
    store.close()


def test_postgres_down_for_longer_than_the_retries(postgres_server: Any, tmp_path: Path) -> None:
    """Down for good during a write: CatalogUnavailableError, the blob is left for gc, and nothing
    is committed; after the restart the store is consistent and usable."""
    config = Config(blobStore=f"file://{tmp_path}/blobs")
    store = _new_store(f"sql:{postgres_server.url}#down-{uuid.uuid4().hex[:8]}", config)
    try:
        with pytest.raises(CatalogError):
            with store.write_file_stream() as (stream, _):
                stream.write(b"bytes whose row never commits")
                postgres_server.stop()
    finally:
        postgres_server.start()
    assert store.get_all_file_ids() == []
    _check_after_outage(store, {"ok": {}, "failed": [], "attempted": set()})
    store.close()


# --- a full disk ----------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (root only; fails, never skips, where it cannot be mounted)."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_disk_full_on_the_blob_store(small_disk: Path, tmp_path: Path) -> None:
    store = _new_store(f"sql:sqlite:///{tmp_path}/catalog.sqlite#wf", Config(blobStore=f"file://{small_disk}/blobs"))
    with store.write_file_stream() as (stream, kept_id):
        stream.write(b"small and precious")
    big = make_content(random.Random(3), 3 * 1024 * 1024)
    (tmp_path / "big").write_bytes(big)
    snapshot = (store.get_all_file_ids(), sorted(store.blob_store.list_keys()))

    with pytest.raises(BlobStorageFullError, match="No space left"):
        with store.write_file_stream() as (stream, _):
            stream.write(big)
    with pytest.raises(BlobStorageFullError):
        store.write_file(str(tmp_path / "big"))
    with pytest.raises(BlobStorageFullError):
        with store.update_file_stream(kept_id) as stream:
            stream.write(big)
    with pytest.raises(BlobStorageFullError):
        with store.write_shared_file_stream("big") as stream:
            stream.write(big)

    assert (store.get_all_file_ids(), sorted(store.blob_store.list_keys())) == snapshot  # no row, no blob
    assert temporaries_left(store) == 0  # no partial file anywhere
    assert not store.shared_file_exists("big")
    with store.read_file_stream(kept_id) as stream:
        assert stream.read() == b"small and precious"  # the failed update left the old content
    assert fsck(store, verify_checksums=True).problems == []
    with store.write_file_stream() as (stream, _):  # small writes still fit
        stream.write(b"x" * 1000)
    store.close()


def test_disk_full_under_the_sqlite_catalog(small_disk: Path) -> None:
    store = _new_store(f"file:{small_disk}/store", Config())
    job = store.create_job(JobDescription({}, "before"))
    filler = small_disk / "filler"
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass
    jobs_before = sorted(str(j.jobStoreID) for j in store.jobs())
    errors = []
    for _ in range(20):  # until the catalog's pages are used up
        try:
            store.create_job(JobDescription({}, "fill", padding="x" * 4000, payload="y" * 60_000))
        except JobStoreError as error:
            errors.append(error)
            break
    assert errors and isinstance(errors[0], CatalogError | BlobStorageFullError), errors
    assert "disk" in str(errors[0]).lower() or "space" in str(errors[0]).lower()
    filler.unlink()
    assert set(jobs_before) <= {str(j.jobStoreID) for j in store.jobs()}
    assert store.load_job(str(job.jobStoreID)).jobName == "before"
    store.create_job(JobDescription({}, "after"))
    assert fsck(store, verify_checksums=True).problems == []
    store.close()


def test_postgres_restarted_during_a_batch(postgres_server: Any, tmp_path: Path) -> None:
    """A batch cannot be replayed (its block is the caller's code): a restart in the middle fails it
    with a CatalogError, nothing of it is committed, and the store works afterwards."""
    config = Config(blobStore=f"file://{tmp_path}/blobs")
    store = _new_store(f"sql:{postgres_server.url}#batch-{uuid.uuid4().hex[:8]}", config)
    try:
        with pytest.raises(CatalogError):
            with store.batch():
                store.create_job(JobDescription({}, "first"))
                with store.write_file_stream() as (stream, _):
                    stream.write(b"in a batch")
                postgres_server.stop()
                postgres_server.start()
                store.create_job(JobDescription({}, "second"))
    finally:
        if not postgres_server.running:
            postgres_server.start()
    assert list(store.jobs()) == [] and store.get_all_file_ids() == []
    _check_after_outage(store, {"ok": {}, "failed": [], "attempted": set()})
    store.close()
