"""Server connections on PostgreSQL: how many a worker holds, that idle ones are released, and what
a full server (``max_connections`` reached) does to an operation: wait for a slot, then explain.

Connections are counted in ``pg_stat_activity`` by ``application_name``, which each test sets to
its own value in the catalog URL (a user's value wins over jobstore's ``jobstore pid N``).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from jobstore import (
    CatalogConnectionLimitError,
    Config,
    InvalidLocatorError,
    JobDescription,
    JobStore,
    create_job_store,
)
from jobstore.catalog import retry
from tests.services.postgres import PostgresServer


def _held(server: PostgresServer, name: str) -> int:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (name,)).fetchone()
    return int(row[0]) if row else 0


def _wait_until(condition: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def _new_store(url: str, tmp_path: Path) -> JobStore:
    store = create_job_store(f"sql:{url}#wf-{uuid.uuid4().hex[:8]}")
    store.initialize(Config(blobStore=f"file://{tmp_path / ('blobs-' + uuid.uuid4().hex[:8])}"))
    return store


def test_a_toil_workers_operations_hold_one_server_connection(postgres_server: PostgresServer, tmp_path: Path) -> None:
    name = f"worker-{uuid.uuid4().hex[:8]}"
    leader = _new_store(postgres_server.url, tmp_path)
    parent = leader.create_job(JobDescription(jobName="parent"))
    worker = create_job_store(f"sql:{postgres_server.url}?application_name={name}#{leader.locator.rsplit('#', 1)[1]}")
    try:
        worker.resume()
        job = worker.load_job(parent.jobStoreID)
        source = tmp_path / "in.txt"
        source.write_bytes(b"input")
        file_id = worker.write_file(str(source), job.jobStoreID)
        worker.read_file(file_id, str(tmp_path / "out.txt"))
        with worker.write_file_stream(job.jobStoreID) as (stream, _streamed_id):
            stream.write(b"streamed")
        children = [JobDescription(jobName=f"child-{i}") for i in range(3)]
        for child in children:
            worker.assign_job_id(child)
        worker.save_jobs([job, *children])
        worker.update_job(job)
        worker.write_logs("done")
        worker.delete_job(children[0].jobStoreID)
        assert _held(postgres_server, name) == 1
    finally:
        worker.close()
        leader.close()
    assert _wait_until(lambda: _held(postgres_server, name) == 0)


def test_idle_connections_are_released_and_reopened(postgres_server: PostgresServer, tmp_path: Path) -> None:
    name = f"idle-{uuid.uuid4().hex[:8]}"
    store = _new_store(f"{postgres_server.url}?application_name={name}&idle_timeout=0.5", tmp_path)
    try:
        job = store.create_job(JobDescription(jobName="idle"))
        list(store.jobs())  # the pages of jobs() and the SQLAlchemy pool (reports) both release
        store.stats()
        assert _held(postgres_server, name) >= 1
        assert _wait_until(lambda: _held(postgres_server, name) == 0)
        store.update_job(job)  # a new connection, transparently
        assert store.load_job(job.jobStoreID).jobName == "idle"
        assert _held(postgres_server, name) == 1
    finally:
        store.close()


def test_a_batch_keeps_its_connection_however_long_it_is_idle(postgres_server: PostgresServer, tmp_path: Path) -> None:
    name = f"batch-{uuid.uuid4().hex[:8]}"
    store = _new_store(f"{postgres_server.url}?application_name={name}&idle_timeout=0.3", tmp_path)
    try:
        first = store.create_job(JobDescription(jobName="first"))
        with store.batch():
            store.update_job(first)  # opens the batch's transaction
            time.sleep(1.5)  # five idle timeouts with a transaction open: it must survive
            store.delete_job(first.jobStoreID)
            second = store.create_job(JobDescription(jobName="second"))
        assert not store.job_exists(first.jobStoreID)
        assert store.job_exists(second.jobStoreID)
    finally:
        store.close()


def test_idle_timeout_zero_keeps_the_connection(postgres_server: PostgresServer, tmp_path: Path) -> None:
    name = f"keep-{uuid.uuid4().hex[:8]}"
    store = _new_store(f"{postgres_server.url}?application_name={name}&idle_timeout=0", tmp_path)
    try:
        store.create_job(JobDescription(jobName="kept"))
        time.sleep(0.6)
        assert _held(postgres_server, name) == 1
    finally:
        store.close()


@pytest.mark.parametrize("value", ["soon", "-1", "inf", "nan", ""])
def test_an_invalid_idle_timeout_is_a_locator_error(value: str, postgres_server: PostgresServer) -> None:
    for url in (
        f"{postgres_server.url}?idle_timeout={value}",
        f"{postgres_server.url}?idle_timeout={value}&application_name=a&application_name=b",  # SQLAlchemy's parser
    ):
        with pytest.raises(InvalidLocatorError, match=r"idle_timeout=.*seconds"):
            create_job_store(f"sql:{url}#wf").resume()


@pytest.fixture
def small_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server with room for five clients."""
    with PostgresServer(max_connections=5) as server:
        yield server


def _fill(server: PostgresServer) -> list[psycopg.Connection[tuple[object, ...]]]:
    held = []
    while True:
        try:
            held.append(psycopg.connect(server.dsn, autocommit=True))
        except psycopg.OperationalError as error:
            assert "too many clients" in str(error)
            return held


def test_a_full_server_is_waited_for(small_server: PostgresServer, tmp_path: Path) -> None:
    store = _new_store(small_server.url, tmp_path)
    job = store.create_job(JobDescription(jobName="waits"))
    store.close()
    held = _fill(small_server)
    releaser = threading.Timer(1.0, held.pop().close)
    releaser.start()
    try:
        started = time.monotonic()
        worker = create_job_store(store.locator)
        worker.resume()  # no slot free for its first second
        assert worker.load_job(job.jobStoreID).jobName == "waits"
        assert time.monotonic() - started >= 0.9
        worker.close()
    finally:
        releaser.join()
        for connection in held:
            connection.close()


def test_a_server_that_stays_full_is_explained(
    small_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _new_store(small_server.url, tmp_path)
    store.close()
    monkeypatch.setattr(retry, "CONNECTION_LIMIT_WAIT_SECONDS", 1.5)
    held = _fill(small_server)
    try:
        with pytest.raises(CatalogConnectionLimitError) as refused:
            create_job_store(store.locator).resume()
        message = str(refused.value)
        assert "no free connection" in message and "max_connections" in message and "PgBouncer" in message
    finally:
        for connection in held:
            connection.close()


def test_jobstore_names_its_connections_by_process(postgres_server: PostgresServer, tmp_path: Path) -> None:
    store = _new_store(postgres_server.url, tmp_path)
    try:
        store.create_job(JobDescription(jobName="named"))
        assert _held(postgres_server, f"jobstore pid {os.getpid()}") >= 1
    finally:
        store.close()
