"""PostgreSQL behind PgBouncer in transaction pooling mode: what a pooler changes, on a real one.

The behaviour suite runs through PgBouncer as the ``pgbouncer-local`` backend (tests/conftest.py).
This file covers what only a pooler shows: prepared statements that a transaction finds missing
on the next server connection (refused with a message that names the fix), migrations of a fresh
database through the pooler, and many clients sharing a few server connections.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from jobstore import Config, JobDescription, JobStore, create_job_store
from jobstore.errors import CatalogError, InvalidLocatorError
from tests.services.pgbouncer import PgBouncerServer
from tests.services.postgres import PostgresServer


@pytest.fixture
def round_robin_pgbouncer(postgres_server: PostgresServer) -> Iterator[PgBouncerServer]:
    """A PgBouncer that hands consecutive transactions to different server connections, so that a
    statement prepared by one transaction is missing in the next (a busy pool does this at random)."""
    with PgBouncerServer(postgres_server, pool_size=2, round_robin=True) as server:
        # Two clients inside a transaction at once make PgBouncer open both server connections;
        # from then on, round robin alternates between them.
        clients = [psycopg.connect(server.url.replace("+psycopg", ""), prepare_threshold=None) for _ in range(2)]
        for client in clients:
            client.execute("SELECT 1")  # opens a transaction, which holds a server connection
        for client in clients:
            client.commit()  # (a client that leaves mid-transaction makes PgBouncer drop its server)
            client.close()
        assert _server_connections(server, "postgres") == 2
        yield server


def _new_store(url: str, tmp_path: Path, name: str = "") -> JobStore:
    store = create_job_store(f"sql:{url}#{name or 'wf-' + uuid.uuid4().hex[:8]}")
    store.initialize(Config(blobStore=f"file://{tmp_path / ('blobs-' + uuid.uuid4().hex[:8])}"))
    return store


def _update_many_times(store: JobStore, runs: int = 20) -> JobDescription:
    job = store.create_job(JobDescription(jobName="pooled"))
    for _ in range(runs):  # psycopg prepares a statement on its 5th run by default
        store.update_job(job)
    return store.load_job(job.jobStoreID)


def test_prepared_statements_behind_a_pooler_are_refused_with_the_fix(
    round_robin_pgbouncer: PgBouncerServer, tmp_path: Path
) -> None:
    store = _new_store(round_robin_pgbouncer.url, tmp_path)
    try:
        with pytest.raises(CatalogError, match=r"prepare_threshold=none") as refused:
            _update_many_times(store)
        assert "prepared statement" in str(refused.value)
        assert "Nothing was committed" in str(refused.value)
    finally:
        store.close()


def test_prepare_threshold_none_works_behind_a_pooler(round_robin_pgbouncer: PgBouncerServer, tmp_path: Path) -> None:
    store = _new_store(f"{round_robin_pgbouncer.url}?prepare_threshold=none", tmp_path)
    try:
        loaded = _update_many_times(store, runs=30)
        assert loaded.jobName == "pooled"
        # A second process's view (the worker's) goes through the pool too.
        other = create_job_store(store.locator)
        other.resume()
        assert other.load_job(loaded.jobStoreID).jobName == "pooled"
        other.close()
    finally:
        store.close()


@pytest.mark.parametrize("value", ["never", "-1", "1.5", ""])
def test_an_invalid_prepare_threshold_is_a_locator_error(value: str, postgres_server: PostgresServer) -> None:
    for url in (
        f"{postgres_server.url}?prepare_threshold={value}",
        # another option that sends the URL through SQLAlchemy's parser instead of the plain one
        f"{postgres_server.url}?prepare_threshold={value}&application_name=a&application_name=b",
    ):
        with pytest.raises(InvalidLocatorError, match=r"prepare_threshold=.*none"):
            create_job_store(f"sql:{url}#wf").resume()


def test_a_fresh_database_is_migrated_through_the_pooler(
    pgbouncer_server: PgBouncerServer, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    """Alembic's migrations run through PgBouncer (their lock is transaction-scoped), also when
    two stores are created on the fresh database at once."""
    database = "fresh_" + uuid.uuid4().hex[:8]
    postgres_server.new_database(database)
    url = f"{pgbouncer_server.database_url(database)}?prepare_threshold=none"
    stores: list[JobStore] = []
    errors: list[BaseException] = []

    def create(name: str) -> None:
        try:
            stores.append(_new_store(url, tmp_path, name))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=create, args=(f"wf{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        with psycopg.connect(postgres_server.dsn.replace("dbname=postgres", f"dbname={database}")) as conn:
            (revision,) = conn.execute("SELECT version_num FROM jobstore_alembic_version").fetchone() or ("",)
        from jobstore.catalog.rows import HEAD_REVISION

        assert revision == HEAD_REVISION
    finally:
        for store in stores:
            store.close()


def _server_connections(pgbouncer: PgBouncerServer, database: str) -> int:
    with psycopg.connect(pgbouncer.admin_dsn, autocommit=True, prepare_threshold=None) as admin:
        cursor = admin.cursor()
        cursor.execute("SHOW SERVERS")
        columns = [column.name for column in cursor.description or []]
        return sum(1 for row in cursor.fetchall() if dict(zip(columns, row, strict=False))["database"] == database)


def test_many_clients_share_the_pool(pgbouncer_server: PgBouncerServer, tmp_path: Path) -> None:
    """Forty store instances, each with its own client connection, write at once; PgBouncer never
    opens more server connections than its pool (the point of running one)."""
    url = f"{pgbouncer_server.url}?prepare_threshold=none"
    leader = _new_store(url, tmp_path)
    clients = [create_job_store(leader.locator) for _ in range(40)]
    for client in clients:
        client.resume()
    barrier = threading.Barrier(len(clients))
    errors: list[BaseException] = []
    created: list[str] = []

    def work(client: JobStore) -> None:
        try:
            barrier.wait()
            for _ in range(5):
                job = client.create_job(JobDescription(jobName="shared"))
                client.update_job(job)
                created.append(job.jobStoreID)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(client,)) for client in clients]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert sorted(job.jobStoreID for job in leader.jobs()) == sorted(created)
        assert 1 <= _server_connections(pgbouncer_server, "postgres") <= pgbouncer_server.pool_size
    finally:
        for client in clients:
            client.close()
        leader.close()
