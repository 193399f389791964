"""The catalog's operations run SQL compiled from queries.py (sqlite_statements.py and
postgres_statements.py are generated) and convert values exactly as SQLAlchemy would; a worker's
operations, batches included, never import SQLAlchemy."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Boolean, DateTime, Float, LargeBinary
from sqlalchemy.dialects import sqlite

from jobstore.catalog import compile_fast_path, compiled, operations
from jobstore.catalog.postgres_statements import STATEMENTS as POSTGRES_STATEMENTS
from jobstore.catalog.sqlite_statements import STATEMENTS
from tests.statement_log import RecordingConnection, record_statements

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("dialect", "generated"),
    [("sqlite", STATEMENTS), ("postgresql", POSTGRES_STATEMENTS)],
    ids=["sqlite", "postgresql"],
)
def test_generated_statements_match_the_sqlalchemy_constructs(dialect: str, generated: dict[str, object]) -> None:
    assert generated == compile_fast_path.compile_all(dialect), (
        f"the generated statements for {dialect} are stale: run `python -m jobstore.catalog.compile_fast_path`"
    )


SAMPLES = {
    "datetime": (
        DateTime(timezone=True),
        [datetime(2026, 11, 26, 6, 0, 0, 123456, tzinfo=UTC), datetime(2001, 1, 2, 3, 4, 5), datetime(1999, 12, 31)],
        ["2026-11-26 06:00:00.123456", "2026-11-26 06:00:00.123456+00:00", "2001-01-02 03:04:05.000000"],
    ),
    "boolean": (Boolean(), [True, False], [0, 1]),
    "float": (Float(), [1, 2.5, 0], [1.0, 2.5]),
    "binary": (LargeBinary(), [b"", b"\x00\xffbytes"], [b"", b"\x00\xff"]),
}


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_conversions_equal_sqlalchemys_processors(kind: str) -> None:
    dialect = sqlite.dialect()
    type_, bind_values, result_values = SAMPLES[kind]
    impl = type_.dialect_impl(dialect)
    bind = impl.bind_processor(dialect) or (lambda value: value)
    result = impl.result_processor(dialect, None) or (lambda value: value)
    for value in bind_values:
        assert compiled.SQLITE_BIND_CONVERSIONS[kind](value) == bind(value), value
    for value in result_values:
        assert compiled.SQLITE_RESULT_CONVERSIONS[kind](value) == result(value), value


@pytest.mark.parametrize(
    "fast_path", [operations.SQLiteOperations, operations.PostgresOperations], ids=["sqlite", "postgresql"]
)
def test_every_recorded_kind_has_a_conversion(fast_path: type[operations.CatalogOperations]) -> None:
    kinds = {kind for spec in fast_path.STATEMENTS.values() for kind in spec["bind"] + spec["result"] if kind}
    assert kinds <= set(fast_path.BIND_CONVERSIONS) & set(fast_path.RESULT_CONVERSIONS)


def test_postgres_boolean_binds_stay_booleans() -> None:
    """SQLAlchemy's psycopg Boolean processor passes booleans through (SQLite's makes integers)."""
    from sqlalchemy.dialects.postgresql import psycopg

    dialect = psycopg.dialect()  # type: ignore[no-untyped-call]
    processor = Boolean().dialect_impl(dialect).bind_processor(dialect)
    assert processor is not None
    for value in (True, False):
        assert operations.PostgresOperations.BIND_CONVERSIONS["boolean"](value) is processor(value)


def test_offset_datetimes_are_stored_as_sqlalchemy_stores_them() -> None:
    """SQLAlchemy's SQLite DATETIME drops the offset; so must the fast path (both write one format)."""
    value = datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    dialect = sqlite.dialect()
    processor = DateTime(timezone=True).dialect_impl(dialect).bind_processor(dialect)
    assert processor is not None
    assert compiled.SQLITE_BIND_CONVERSIONS["datetime"](value) == processor(value) == "2026-01-01 12:00:00.000000"


WORKER = textwrap.dedent(
    """
    import sys
    from jobstore import JobDescription, create_job_store
    store = create_job_store(sys.argv[1])
    store.resume()
    job = store.load_job(sys.argv[2])
    job.counter = 1
    store.update_job(job)
    overwrite = JobDescription(command="again", jobStoreID=job.jobStoreID)
    store.update_job(overwrite)
    child = store.create_job(JobDescription(command="child"))
    file_id = store.write_file(sys.argv[3], job_id=child.jobStoreID, cleanup=True)
    store.read_file(file_id, sys.argv[3] + ".copy")
    with store.read_file_stream(file_id) as handle:
        assert handle.read() == b"payload"
    with store.read_shared_file_stream("config") as handle:
        assert handle.read() == b"settings"
    assert store.file_exists(file_id) and store.get_file_size(file_id) == 7
    with store.update_file_stream(file_id) as handle:
        handle.write(b"promised")
    store.save_jobs([JobDescription(command="saved", jobStoreID=child.jobStoreID), JobDescription(command="new")])
    store.write_logs("done")
    store.delete_file(file_id)
    store.delete_job(child.jobStoreID)
    with store.batch():  # a batch that does more than create jobs: a transaction of its own
        batched = store.create_job(JobDescription(command="batched"))
        store.delete_file(store.write_file(sys.argv[3], job_id=batched.jobStoreID))
        store.write_logs("batched")
        assert store.job_exists(batched.jobStoreID)
    store.delete_job(batched.jobStoreID)
    loaded = [name for name in sys.modules if name.split(".")[0] in ("sqlalchemy", "alembic")]
    print("LOADED", loaded)
    """
)


@pytest.mark.parametrize("catalog", ["sqlite", "postgresql"])
def test_a_worker_on_the_fast_path_never_imports_sqlalchemy(
    catalog: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """What a Toil worker does (resume, load, update, create, files, promises, batches of
    creations, shared file, logs, delete) must not import SQLAlchemy, on the embedded catalog or on
    PostgreSQL: it is ~130 ms of every job's start-up."""
    from jobstore import Config, JobDescription, create_job_store

    if catalog == "sqlite":
        locator = f"file:{tmp_path / 'store'}"
        config = Config()
    else:
        server = request.getfixturevalue("postgres_server")
        locator = f"sql:{server.url}#worker-{tmp_path.name[-20:]}"
        config = Config(blobStore=f"file://{tmp_path / 'blobs'}")
    store = create_job_store(locator)
    store.initialize(config)
    job = store.create_job(JobDescription(command="root"))
    with store.write_shared_file_stream("config") as handle:
        handle.write(b"settings")
    store.close()
    source = tmp_path / "payload"
    source.write_bytes(b"payload")
    result = subprocess.run(
        [sys.executable, "-c", WORKER, locator, str(job.jobStoreID), str(source)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "LOADED []" in result.stdout, result.stdout
    store.resume()
    assert store.load_job(str(job.jobStoreID)).command == "again"
    assert sorted(j.command for j in store.jobs()) == ["again", "new"]
    assert [message for message in _logs(store)] == [b"done", b"batched"]


def test_a_workers_writes_on_postgres_are_one_statement_each(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """A job and its cleanup files go in one round trip on PostgreSQL (BEGIN, two DELETEs and
    COMMIT cost four: ~1 ms per deleted job on a loopback server), and its blobs go with them."""
    from jobstore import Config, JobDescription, create_job_store

    server = request.getfixturevalue("postgres_server")
    store = create_job_store(f"sql:{server.url}#deletes-{tmp_path.name[-20:]}")
    store.initialize(Config(blobStore=f"file://{tmp_path / 'blobs'}"))
    source = tmp_path / "payload"
    source.write_bytes(b"payload")
    job = store.create_job(JobDescription(command="doomed"))
    doomed = [store.write_file(str(source), job.jobStoreID, cleanup=True) for _ in range(2)]
    kept = store.write_file(str(source), job.jobStoreID)
    assert isinstance(store.catalog.operations, operations.PostgresOperations)
    counting = record_statements(store)
    store.delete_job(job.jobStoreID)
    assert len(counting.sent) == 1, counting.sent
    assert not store.job_exists(job.jobStoreID)
    assert [store.file_exists(file_id) for file_id in [*doomed, kept]] == [False, False, True]
    assert len(list(store.blob_store.list_keys())) == 1
    store.delete_job(job.jobStoreID)  # idempotent: nothing left to delete is no error
    # A file's compare-and-set with the key it replaces: one statement too (after the read of the
    # version it starts from).
    counting.sent.clear()
    store.update_file(kept, str(source))
    assert len(counting.sent) == 2, counting.sent
    assert len(list(store.blob_store.list_keys())) == 1  # the replaced blob went
    # A worker's commit of its job and its new children (Toil's batch()): one statement.
    parent = store.create_job(JobDescription(command="parent"))
    parent.command = "done"
    children = [JobDescription(command=f"child {n}") for n in range(3)]
    counting.sent.clear()
    store.save_jobs([parent, *children])
    assert len(counting.sent) == 1, counting.sent
    assert [parent.version, *(child.version for child in children)] == [2, 1, 1, 1]
    assert sorted(job.command for job in store.jobs()) == ["child 0", "child 1", "child 2", "done"]
    store.close()


def _count_new_postgres_connections(monkeypatch: pytest.MonkeyPatch) -> list[RecordingConnection]:
    """From now on, every PostgreSQL connection of the catalog's operations records what it
    sends; the list fills as they open."""
    opened: list[RecordingConnection] = []
    connect = operations.PostgresOperations._connect

    def counting_connect(self: operations.PostgresOperations) -> RecordingConnection:
        opened.append(RecordingConnection(connect(self)))
        return opened[-1]

    monkeypatch.setattr(operations.PostgresOperations, "_connect", counting_connect)
    return opened


def test_a_workers_resume_on_postgres_is_one_statement(
    tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Resuming (what every Toil worker does first) checks the schema revision and finds the store
    row in one round trip; a store that does not exist is still reported as such."""
    from jobstore import Config, NoSuchJobStoreException, create_job_store

    server = request.getfixturevalue("postgres_server")
    locator = f"sql:{server.url}#resume-{tmp_path.name[-20:]}"
    create_job_store(locator).initialize(Config(blobStore=f"file://{tmp_path / 'blobs'}"))
    opened = _count_new_postgres_connections(monkeypatch)
    store = create_job_store(locator)
    store.resume()
    assert len(opened) == 1 and len(opened[0].sent) == 1, [c.sent for c in opened]
    assert "jobstore_alembic_version" in opened[0].sent[0] and "stores" in opened[0].sent[0]
    store.close()
    with pytest.raises(NoSuchJobStoreException):
        create_job_store(f"{locator}-missing").resume()


def test_the_next_store_of_a_shared_postgres_catalog_takes_two_statements(
    tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``initialize`` on a catalog already at the head revision: one statement checks the revision
    and looks for the store, one inserts its row (the lookup used to be sent twice: once for the
    revision alone, once with the store). A second initialize of the same locator still raises."""
    from jobstore import Config, JobStoreExistsException, create_job_store

    server = request.getfixturevalue("postgres_server")
    create_job_store(f"sql:{server.url}#first-{tmp_path.name[-20:]}").initialize(
        Config(blobStore=f"file://{tmp_path / 'blobs-first'}")
    )  # the catalog is at head from here on
    opened = _count_new_postgres_connections(monkeypatch)
    locator = f"sql:{server.url}#next-{tmp_path.name[-20:]}"
    store = create_job_store(locator)
    store.initialize(Config(blobStore=f"file://{tmp_path / 'blobs-next'}"))
    sent = [statement for connection in opened for statement in connection.sent]
    assert len(sent) == 2, sent
    assert "jobstore_alembic_version" in sent[0] and sent[1].lstrip().upper().startswith("INSERT INTO STORES")
    store.close()
    with pytest.raises(JobStoreExistsException):
        create_job_store(locator).initialize(Config(blobStore=f"file://{tmp_path / 'blobs-again'}"))


def _logs(store: object) -> list[bytes]:
    messages: list[bytes] = []
    store.read_logs(lambda handle: messages.append(handle.read()))  # type: ignore[attr-defined]
    return messages


PLAIN_POSTGRES_URLS = [
    "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
    "postgresql://u:p%40ss@db.example.org/wf?sslmode=require",
    "postgresql+psycopg://u@/db?host=/var/run/postgresql",
    "postgresql+psycopg://u:pw@h:1/db?pool_size=3&application_name=x",
    "postgresql+psycopg://h/db%20name",
    "postgresql+psycopg://u:p:w@h/db",
    "postgresql+psycopg://u:@h/db",
    "postgresql+psycopg:///db",
    "postgresql+psycopg://h",
    "postgresql+psycopg://h/db?connect_timeout=3",
    "postgresql+psycopg://h/db?options=-c%20statement_timeout%3D5",
    "postgresql+psycopg://H.Example.ORG/db",
    "postgresql+psycopg://h:6432/db?prepare_threshold=none",
    "postgresql+psycopg://h/db?prepare_threshold=0&pool_size=2",
    "postgresql+psycopg://h/db?prepare_threshold=NONE",
    "postgresql+psycopg://h/db?idle_timeout=30",
    "postgresql+psycopg://h/db?idle_timeout=0.5&prepare_threshold=none",
]


@pytest.mark.parametrize("url", PLAIN_POSTGRES_URLS)
def test_plain_postgres_urls_parse_as_sqlalchemy_parses_them(url: str) -> None:
    """Workers connect with arguments parsed without SQLAlchemy: they must be exactly the ones the
    engine's URL gives (SQLAlchemy is the oracle)."""
    from jobstore.catalog import _psycopg_connect_args
    from jobstore.catalog.engine import make_engine
    from jobstore.catalog.location import postgres_connect_args

    assert postgres_connect_args(url) == _psycopg_connect_args(make_engine(url), url)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://[::1]:5432/db",  # IPv6 literal
        "postgresql+psycopg://h/db?application_name=a&application_name=b",  # repeated option
        "postgresql+psycopg://h/db?pool_size=zero",  # invalid: SQLAlchemy's path reports it
        "postgresql+psycopg2://h/db",  # another driver
        "POSTGRESQL://h/db",  # SQLAlchemy refuses it, and says why
        "postgresql+psycopg://h/db?novalue",
        "sqlite:///x.sqlite",
    ],
)
def test_unusual_urls_are_left_to_sqlalchemy(url: str) -> None:
    from jobstore.catalog.location import postgres_connect_args

    assert postgres_connect_args(url) is None


def test_an_invalid_pool_size_is_still_reported_when_the_catalog_is_opened() -> None:
    from jobstore.catalog import Catalog
    from jobstore.errors import InvalidLocatorError

    with pytest.raises(InvalidLocatorError, match="pool_size"):
        Catalog("postgresql+psycopg://127.0.0.1/db?pool_size=zero")


_CONNECTION_SETTINGS = ("journal_mode", "synchronous", "foreign_keys", "busy_timeout", "wal_autocheckpoint")


@pytest.mark.parametrize(("durability", "synchronous"), [("normal", 1), ("full", 2)])
def test_both_sqlite_paths_configure_their_connections_alike(tmp_path: Path, durability: str, synchronous: int) -> None:
    """The SQLAlchemy engine and the fast path open their own connections; each must get the
    same settings (a store would otherwise commit differently depending on the path taken)."""
    from jobstore.catalog import Catalog
    from jobstore.catalog.retry import SQLITE_BUSY_TIMEOUT_MS
    from jobstore.catalog.sqlite_pragmas import WAL_AUTOCHECKPOINT_PAGES

    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.sqlite'}", durability=durability)
    try:
        fast = catalog.operations._connection()
        with catalog.engine.connect() as engine_connection:
            raw = engine_connection.connection.dbapi_connection
            assert raw is not None
            seen = {
                name: (
                    fast.execute(f"PRAGMA {name}").fetchone()[0],
                    raw.execute(f"PRAGMA {name}").fetchone()[0],
                )
                for name in _CONNECTION_SETTINGS
            }
    finally:
        catalog.dispose()
    expected = ("wal", synchronous, 1, SQLITE_BUSY_TIMEOUT_MS, WAL_AUTOCHECKPOINT_PAGES)
    assert seen == {name: (value, value) for name, value in zip(_CONNECTION_SETTINGS, expected, strict=True)}


def test_connection_pragmas_refuse_an_unknown_synchronous_level() -> None:
    from jobstore.catalog.sqlite_pragmas import connection_pragmas

    with pytest.raises(ValueError, match="NORMAL or FULL"):
        connection_pragmas(synchronous="OFF", busy_timeout_ms=1000)
