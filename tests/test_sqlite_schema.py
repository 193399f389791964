"""A new SQLite catalog is created from a snapshot of what the migrations build
(``jobstore/catalog/sqlite_schema.py``): it must stay exactly that, and Alembic must be able to
take over from it. And a catalog already at the head revision is recognised without Alembic."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from jobstore import Config, FileJobStore, JobDescription, create_job_store
from jobstore.catalog import Catalog
from jobstore.catalog.compile_sqlite_schema import dump, migrated_catalog, snapshot
from jobstore.catalog.migrate import alembic_config, head_revision, upgrade
from jobstore.catalog.operations import SQLiteOperations
from jobstore.catalog.schema import VERSION_TABLE, metadata
from jobstore.catalog.sqlite_schema import SNAPSHOT
from tests.fresh_process import heavy_modules_imported_by


def _from_snapshot(path: Path) -> bool:
    direct = SQLiteOperations(str(path), synchronous="NORMAL", busy_timeout_ms=10_000)
    try:
        return direct.create_schema_if_empty()
    finally:
        direct.close()


def _rows_of_every_table(path: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(path) as connection:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        found = {name: connection.execute(f'SELECT * FROM "{name}"').fetchall() for name in tables}  # noqa: S608
    return {name: rows for name, rows in found.items() if rows and name != "sqlite_stat1"}


def test_the_snapshot_is_what_the_migrations_build_now() -> None:
    """Fails after a new migration until ``python -m jobstore.catalog.compile_sqlite_schema`` runs."""
    assert snapshot() == SNAPSHOT
    assert SNAPSHOT["revision"] == head_revision()
    assert SNAPSHOT["versions"] == [(head_revision(),)]


def test_a_catalog_created_from_the_snapshot_equals_a_migrated_one(tmp_path: Path) -> None:
    """Object by object (tables, indexes, views, as SQLite stores their SQL), planner statistics and
    rows; and SQLAlchemy's metadata finds nothing to change in it."""
    migrated, replayed = tmp_path / "migrated.sqlite", tmp_path / "replayed.sqlite"
    migrated_catalog(migrated)
    assert _from_snapshot(replayed)
    expected, found = dump(migrated), dump(replayed)
    assert [name for _, name, _ in found["objects"]] == [name for _, name, _ in expected["objects"]]
    assert found == expected
    assert _rows_of_every_table(replayed) == _rows_of_every_table(migrated) == {VERSION_TABLE: [(head_revision(),)]}
    with sqlite3.connect(replayed) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    catalog = Catalog(f"sqlite:///{replayed}")
    with catalog.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE, "compare_type": True})
        assert compare_metadata(context, metadata) == []
    assert catalog.schema_state(str(replayed)) == "current"
    catalog.dispose()


def test_alembic_takes_over_a_catalog_created_from_the_snapshot(tmp_path: Path) -> None:
    """Down to the first revision and back up, with a job in place: the snapshot is a catalog the
    migrations recognise, not a look-alike."""
    store = FileJobStore(f"file:{tmp_path}/wf")
    store.initialize(Config())
    job_id = str(store.create_job(JobDescription({}, "kept")).jobStoreID)
    store.close()
    catalog = Catalog(f"sqlite:///{tmp_path}/wf/catalog.sqlite")
    with catalog.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0001")
    assert upgrade(catalog.engine) == ("0001", head_revision())
    catalog.dispose()
    reopened = FileJobStore(f"file:{tmp_path}/wf")
    reopened.resume()
    assert reopened.load_job(job_id).jobName == "kept"
    reopened.close()


def test_a_database_holding_anything_is_left_to_the_migrations(tmp_path: Path) -> None:
    """Another application's tables in the file: the snapshot is not replayed (it might clash);
    the migrations create jobstore's schema beside them and the foreign table keeps its rows."""
    path = tmp_path / "shared.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE their_table (x INTEGER)")
        connection.execute("INSERT INTO their_table VALUES (42)")
    assert not _from_snapshot(path)
    with sqlite3.connect(path) as connection:
        assert [row[0] for row in connection.execute("SELECT name FROM sqlite_master")] == ["their_table"]
    store = create_job_store(f"sql:sqlite:///{path}#wf")
    store.initialize(Config(blobStore=f"file://{tmp_path}/blobs"))
    store.create_job(JobDescription({}, "job"))
    store.close()
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT x FROM their_table").fetchall() == [(42,)]
        versions = connection.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall()  # noqa: S608
        assert versions == [(head_revision(),)]


def test_initializing_a_store_loads_neither_alembic_nor_sqlalchemy(tmp_path: Path) -> None:
    """The point of the snapshot: a new process creating a store (a workflow's leader, the
    command line) neither imports Alembic nor runs a migration script; the store's row goes
    through the fast path, so SQLAlchemy is not imported either (~150 ms in a new process)."""
    script = (
        "from jobstore import Config, FileJobStore\n"
        f"store = FileJobStore({str(tmp_path / 'wf')!r})\n"
        "store.initialize(Config())\n"
    )
    assert heavy_modules_imported_by(script) == []
    reopened = FileJobStore(str(tmp_path / "wf"))
    reopened.resume()
    assert list(reopened.jobs()) == []
    reopened.close()


def test_a_new_sqlite_catalog_in_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    """Not the driver's "unable to open database file": which directory is missing, and nothing
    created anywhere (no catalog file, no blob directory)."""
    from jobstore import CatalogError

    store = create_job_store(f"sql:sqlite:///{tmp_path}/missing/dir/catalog.sqlite#wf")
    with pytest.raises(CatalogError, match="does not exist"):
        store.initialize(Config(blobStore=f"file://{tmp_path}/blobs"))
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_initializing_a_store_in_a_catalog_at_head_loads_neither(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A shared PostgreSQL catalog's next store: the revision is recognised by one fast-path query,
    so a new process creates the store without Alembic or SQLAlchemy; a catalog at another revision
    still gets the full check (the version gate's tests)."""
    server = request.getfixturevalue("postgres_server")
    first = create_job_store(f"sql:{server.url}#head-first-{tmp_path.name[-12:]}")
    first.initialize(Config(blobStore=f"file://{tmp_path}/first"))
    first.close()
    locator = f"sql:{server.url}#head-second-{tmp_path.name[-12:]}"
    script = (
        "from jobstore import Config, create_job_store\n"
        f"store = create_job_store({locator!r})\n"
        f"store.initialize(Config(blobStore={'file://' + str(tmp_path / 'second')!r}))\n"
    )
    assert heavy_modules_imported_by(script) == []
    second = create_job_store(locator)
    second.resume()
    assert list(second.jobs()) == []
    second.destroy()
