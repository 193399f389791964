"""Alembic from the first table: metadata parity, one head, the version gate, concurrent creation,
and migrations that ship inside a non-editable wheel."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import uuid
import venv
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.exc import IntegrityError

from jobstore import Config, FileJobStore, SchemaTooNewError, SchemaTooOldError
from jobstore.catalog import Catalog
from jobstore.catalog.migrate import alembic_config, head_revision, upgrade
from jobstore.catalog.schema import VERSION_TABLE, metadata
from jobstore.catalog.schema import files as files_table

REPO = Path(__file__).resolve().parent.parent


def test_exactly_one_head() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert len(script.get_heads()) == 1
    # The constant the version gate uses (so opening a store needs no Alembic) is the real head.
    assert head_revision() == script.get_heads()[0]


def test_migrated_database_matches_metadata(tmp_path: Path) -> None:
    catalog = Catalog(f"sqlite:///{tmp_path}/c.sqlite")
    upgrade(catalog.engine)
    with catalog.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE, "compare_type": True})
        assert compare_metadata(context, metadata) == []
        tables = set(connection.execute(text("SELECT name FROM sqlite_master WHERE type='table'")).scalars())
    assert VERSION_TABLE in tables and "alembic_version" not in tables
    catalog.dispose()


def _store_with_revision(tmp_path: Path, revision: str) -> str:
    store = FileJobStore(f"file:{tmp_path}/wf")
    store.initialize(Config())
    store.close()
    engine = create_engine(f"sqlite:///{tmp_path}/wf/catalog.sqlite")
    with engine.begin() as connection:
        connection.execute(text("UPDATE jobstore_alembic_version SET version_num = :r"), {"r": revision})
    engine.dispose()
    return store.locator


def test_catalog_ahead_of_code_is_refused(tmp_path: Path) -> None:
    locator = _store_with_revision(tmp_path, "9999_from_the_future")
    with pytest.raises(SchemaTooNewError, match="newer jobstore"):
        FileJobStore(locator).resume()


def test_catalog_behind_code_names_the_upgrade_command(tmp_path: Path) -> None:
    """A real old catalog: built at head, then migrated down to the first revision."""
    from alembic import command

    store = FileJobStore(f"file:{tmp_path}/wf")
    store.initialize(Config())
    store.close()
    catalog = Catalog(f"sqlite:///{tmp_path}/wf/catalog.sqlite")
    with catalog.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0001")
    catalog.dispose()
    locator = store.locator
    with pytest.raises(SchemaTooOldError, match=f"jobstore db upgrade {locator}"):
        FileJobStore(locator).resume()
    result = subprocess.run(
        [sys.executable, "-m", "jobstore", "db", "upgrade", locator], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    FileJobStore(locator).resume()  # upgraded: opens again


def _initialize(path: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    try:
        catalog = Catalog(f"sqlite:///{path}")
        catalog.create_schema_if_fresh(path)
        queue.put("ok")
    except Exception as error:  # reported to the parent
        queue.put(repr(error))


def test_concurrent_initialization_of_a_new_catalog(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.sqlite")
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=_initialize, args=(path, queue)) for _ in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    exit_codes = [process.exitcode for process in processes]
    results = []
    for _ in processes:  # a child that died without reporting must fail the test, not hang it
        try:
            results.append(queue.get(timeout=30))
        except Exception:
            results.append("no report")
    assert sorted(results) == ["ok"] * 4, (results, exit_codes)
    catalog = Catalog(f"sqlite:///{path}")
    assert catalog.schema_state(path) == "current"
    catalog.dispose()


def test_cli_db_commands(tmp_path: Path) -> None:
    store = FileJobStore(f"file:{tmp_path}/wf")
    store.initialize(Config())
    store.close()
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "jobstore", *args], capture_output=True, text=True, timeout=120
    )
    current = run("db", "current", store.locator)
    assert current.returncode == 0 and f"current: {head_revision()}" in current.stdout
    assert run("db", "check", store.locator).returncode == 0
    assert run("db", "upgrade", store.locator).returncode == 0
    sql = run("db", "upgrade", "--sql", "sql:sqlite:///unused.sqlite#x")
    assert sql.returncode == 0 and "CREATE TABLE jobs" in sql.stdout
    bad = run("db", "check", "aws:nowhere:x")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def _site_dirs_of_this_interpreter() -> list[str]:
    """The site directories the running interpreter imports from (a venv's own, or the base's)."""
    import site

    dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE and os.path.isdir(site.getusersitepackages()):
        dirs.append(site.getusersitepackages())
    return [d for d in dirs if os.path.isdir(d)]


@pytest.mark.slow
def test_wheel_install_can_run_migrations(tmp_path: Path) -> None:
    """Build a wheel, install it (not editable) into a fresh venv, and create a store with it:
    proves migrations/ ships inside the wheel.

    The fresh venv's dependencies are the ones the running interpreter has: a ``.pth`` file adds
    its site directories (processing their ``.pth`` files too) after the venv's own. The venv is
    made from the base interpreter, so ``system_site_packages`` alone would give the base's
    packages, not those of a venv the suite runs in. ``--ignore-installed`` installs the wheel
    without touching the running environment's jobstore, which stays importable later on the path.
    """
    wheel_dir = tmp_path / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(wheel_dir), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next(wheel_dir.glob("jobstore-*.whl"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False, system_site_packages=False)
    python = env_dir / "bin" / "python"
    venv_site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    lines = [f"import site; site.addsitedir({d!r})\n" for d in _site_dirs_of_this_interpreter()]
    (Path(venv_site) / "00-running-interpreter.pth").write_text("".join(lines))
    env = {**os.environ, "PYTHONPATH": "", "PIP_NO_INDEX": "1"}
    subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--ignore-installed", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
        cwd=str(tmp_path),
        env=env,
    )
    script = (
        "import jobstore, jobstore.catalog.migrate as m, sys\n"
        "assert jobstore.__file__.startswith(sys.prefix), (jobstore.__file__, sys.prefix)\n"
        "assert 'site-packages' in jobstore.__file__, jobstore.__file__\n"
        "assert m.migrations_directory().startswith(sys.prefix), m.migrations_directory()\n"
        f"s = jobstore.FileJobStore('file:{tmp_path}/wheel-store'); s.initialize(jobstore.Config())\n"
        "print(s.stats()['schema_revision'])\n"
    )
    result = subprocess.run(
        [str(python), "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(tmp_path),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == head_revision()


def _catalog_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/catalog.sqlite"
    server = request.getfixturevalue("postgres_server")
    return str(server.new_database(f"migrate_{os.getpid()}_{uuid.uuid4().hex[:8]}"))


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_0003_keeps_every_row_and_the_shared_name_rule(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """0003 (partial unique index on shared names) down to 0002 and back up, with data in place:
    every row survives both ways, the reporting views still answer, and a second shared file of
    the same name is refused at either revision while any number of unnamed files coexist."""
    from alembic import command

    from jobstore import JobDescription, create_job_store

    url = _catalog_url(kind, tmp_path, request)
    store = create_job_store(f"sql:{url}#wf")
    store.initialize(Config(blobStore=f"file://{tmp_path}/blobs"))
    job = store.create(JobDescription(jobName="owner"))
    source = tmp_path / "source.bin"
    source.write_bytes(b"content")
    job_files = [store.write_file(str(source), job.jobStoreID) for _ in range(3)]
    with store.write_shared_file_stream("config.json") as handle:
        handle.write(b"{}")
    store.close()

    def snapshot(connection: Any) -> tuple[list[Any], list[Any]]:
        # Every column of 0002's files table (later revisions add columns that 0002 does not have).
        rows = connection.execute(text("SELECT * FROM files ORDER BY id")).mappings().all()
        totals = connection.execute(text("SELECT files, shared_files FROM report_store_totals")).all()
        return [{k: v for k, v in row.items() if k != "reference"} for row in rows], [tuple(row) for row in totals]

    def duplicate_shared_name_refused(connection: Any) -> bool:
        columns = set(connection.execute(text("SELECT * FROM files")).keys())
        present = [column for column in files_table.columns if column.key in columns]
        query = select(*present).where(files_table.c.shared_name == "config.json")
        copy = dict(connection.execute(query).mappings().one(), id="another-id")
        try:
            with connection.begin_nested():
                connection.execute(insert(files_table).values(copy))
        except IntegrityError:
            return True
        return False

    catalog = Catalog(url)
    with catalog.engine.begin() as connection:
        before = snapshot(connection)
        assert before[1] == [(4, 1)]
        assert duplicate_shared_name_refused(connection)
        command.downgrade(alembic_config(connection), "0002")
    with catalog.engine.begin() as connection:
        assert snapshot(connection) == before
        assert duplicate_shared_name_refused(connection)
    before_up, after_up = upgrade(catalog.engine)
    assert (before_up, after_up) == ("0002", head_revision())
    with catalog.engine.begin() as connection:
        assert snapshot(connection) == before
        assert duplicate_shared_name_refused(connection)
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE, "compare_type": True})
        assert compare_metadata(context, metadata) == []
    catalog.dispose()
    reopened = create_job_store(f"sql:{url}#wf")
    reopened.resume()
    for file_id in job_files:
        with reopened.read_file_stream(file_id) as handle:
            assert handle.read() == b"content"
    with reopened.read_shared_file_stream("config.json") as handle:
        assert handle.read() == b"{}"
    reopened.close()


def test_0004_gives_sqlite_fixed_planner_statistics(tmp_path: Path) -> None:
    """A fresh SQLite catalog carries 0004's statistics, naming indexes that exist; a downgrade to
    0003 removes them and the upgrade writes them again (a user's own rows for other tables stay)."""
    from alembic import command

    store = FileJobStore(f"file:{tmp_path}/wf")
    store.initialize(Config())
    store.close()
    catalog = Catalog(f"sqlite:///{tmp_path}/wf/catalog.sqlite")
    statistics_0004 = ScriptDirectory.from_config(alembic_config()).get_revision("0004").module.STATISTICS

    def statistics(connection: Any) -> list[tuple[str, str, str]]:
        rows = connection.execute(text("SELECT tbl, idx, stat FROM sqlite_stat1 ORDER BY tbl, idx"))
        return [tuple(row) for row in rows]

    with catalog.engine.begin() as connection:
        assert statistics(connection) == sorted(statistics_0004)
        indexes = {row[0] for row in connection.execute(text("SELECT name FROM sqlite_master WHERE type = 'index'"))}
        assert {index for _, index, _ in statistics_0004} <= indexes
        connection.execute(text("INSERT INTO sqlite_stat1 VALUES ('stores', 'sqlite_autoindex_stores_1', '1 1')"))
        command.downgrade(alembic_config(connection), "0003")
    with catalog.engine.begin() as connection:
        assert statistics(connection) == [("stores", "sqlite_autoindex_stores_1", "1 1")]
    assert upgrade(catalog.engine) == ("0003", head_revision())
    with catalog.engine.begin() as connection:
        assert statistics(connection) == sorted([*statistics_0004, ("stores", "sqlite_autoindex_stores_1", "1 1")])
    catalog.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_0005_job_write_tokens_down_and_up_with_jobs_in_place(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """0005 adds ``jobs.write_token``: down to 0004 and back up keeps every job; rows written at
    0004 (token NULL) load, update and conflict as before; writes after the upgrade set a token,
    a different one each time."""
    from alembic import command

    from jobstore import ConcurrentFileModificationException, JobDescription, create_job_store

    url = _catalog_url(kind, tmp_path, request)
    store = create_job_store(f"sql:{url}#wf")
    store.initialize(Config(blobStore=f"file://{tmp_path}/blobs"))
    job_id = str(store.create(JobDescription(jobName="before")).jobStoreID)
    store.close()

    def job_columns(connection: Any) -> set[str]:
        return set(connection.execute(text("SELECT * FROM jobs")).keys())

    catalog = Catalog(url)
    with catalog.engine.begin() as connection:
        assert "write_token" in job_columns(connection)
        command.downgrade(alembic_config(connection), "0004")
    with catalog.engine.begin() as connection:
        assert "write_token" not in job_columns(connection)
    assert upgrade(catalog.engine) == ("0004", head_revision())
    with catalog.engine.begin() as connection:
        assert connection.execute(text("SELECT write_token FROM jobs")).scalar_one() is None
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE, "compare_type": True})
        assert compare_metadata(context, metadata) == []
    catalog.dispose()

    reopened = create_job_store(f"sql:{url}#wf")
    reopened.resume()
    first, stale = reopened.load_job(job_id), reopened.load_job(job_id)
    assert (first.version, first.jobName) == (1, "before")
    first.remainingTryCount = 4
    reopened.update_job(first)
    stale.remainingTryCount = 4
    with pytest.raises(ConcurrentFileModificationException):
        reopened.update_job(stale)
    reopened.update_job(first)
    reopened.close()
    with catalog.engine.begin() as connection:
        tokens = connection.execute(text("SELECT write_token FROM jobs")).scalars().all()
    assert len(tokens) == 1 and tokens[0] is not None and tokens[0] > 0
    catalog.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_0006_file_references_down_and_up(
    kind: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> None:
    """0006 adds ``files.reference``: a downgrade with a reference import in place is refused (the
    row cannot be represented without the column) and changes nothing; once the reference is
    deleted, down to 0005 and back up keeps every owned file, whose ``reference`` is NULL."""
    from alembic import command

    from jobstore import create_job_store

    url = _catalog_url(kind, tmp_path, request)
    source = tmp_path_factory.mktemp("inputs") / "source.bin"  # outside the store's tree
    source.write_bytes(b"referenced")
    store = create_job_store(f"sql:{url}#wf")
    store.initialize(Config(blobStore=f"file://{tmp_path}/blobs"))
    owned = store.import_file(str(source))
    referenced = store.import_file(str(source), mode="reference")
    assert owned is not None and referenced is not None
    store.close()

    catalog = Catalog(url)
    with pytest.raises(RuntimeError, match="1 files are reference imports"):
        with catalog.engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0005")
    with catalog.engine.begin() as connection:
        assert connection.execute(text("SELECT count(*) FROM files WHERE reference IS NOT NULL")).scalar_one() == 1
        connection.execute(text("DELETE FROM files WHERE reference IS NOT NULL"))
        command.downgrade(alembic_config(connection), "0005")
    with catalog.engine.begin() as connection:
        assert "reference" not in set(connection.execute(text("SELECT * FROM files")).keys())
    assert upgrade(catalog.engine) == ("0005", head_revision())
    with catalog.engine.begin() as connection:
        assert connection.execute(text("SELECT reference FROM files")).scalars().all() == [None]
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE, "compare_type": True})
        assert compare_metadata(context, metadata) == []
    catalog.dispose()
    reopened = create_job_store(f"sql:{url}#wf")
    reopened.resume()
    with reopened.read_file_stream(owned) as handle:
        assert handle.read() == b"referenced"
    assert source.read_bytes() == b"referenced"
    reopened.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_0007_leader_leases_down_and_up(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """0007 adds the ``leases`` table: down to 0006 drops it (a lease is only ever a running
    leader's), back up recreates it empty, and a leader can take the lease again."""
    from alembic import command
    from sqlalchemy import inspect

    from jobstore import create_job_store

    url = _catalog_url(kind, tmp_path, request)
    store = create_job_store(f"sql:{url}#wf")
    store.initialize(Config(blobStore=f"file://{tmp_path}/blobs"))
    assert store.acquire_leader_lease(seconds=30).attempt == 1
    store.close()
    catalog = Catalog(url)
    with catalog.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0006")
    with catalog.engine.begin() as connection:
        assert "leases" not in inspect(connection).get_table_names()
    assert upgrade(catalog.engine) == ("0006", head_revision())
    catalog.dispose()
    reopened = create_job_store(f"sql:{url}#wf")
    reopened.resume()
    assert reopened.leader_lease() is None
    assert reopened.acquire_leader_lease(seconds=30).attempt == 1
    reopened.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_0009_lease_attempt_key_down_and_up(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """0009 adds the unique index over (store_id, attempt) that fenced writes lock against: down to
    0008 drops only the index (the lease row stays), back up recreates it, and fencing works on."""
    from alembic import command
    from sqlalchemy import inspect

    from jobstore import JobDescription, LeaseLostError, create_job_store

    def lease_indexes(catalog: Catalog) -> list[str]:
        with catalog.engine.begin() as connection:
            return [str(index["name"]) for index in inspect(connection).get_indexes("leases")]

    url = _catalog_url(kind, tmp_path, request)
    store = create_job_store(f"sql:{url}#wf")
    store.initialize(Config(blobStore=f"file://{tmp_path}/blobs"))
    assert store.acquire_leader_lease(seconds=30).attempt == 1
    catalog = Catalog(url)
    assert "uq_leases_store_id_attempt" in lease_indexes(catalog)
    with catalog.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0008")
    assert "uq_leases_store_id_attempt" not in lease_indexes(catalog)
    assert store.leader_lease() is not None and store.leader_lease().attempt == 1  # type: ignore[union-attr]
    assert upgrade(catalog.engine) == ("0008", head_revision())
    assert "uq_leases_store_id_attempt" in lease_indexes(catalog)
    catalog.dispose()
    rival = create_job_store(f"sql:{url}#wf")
    rival.resume()
    assert rival.acquire_leader_lease(take_over=True, seconds=30).attempt == 2
    with pytest.raises(LeaseLostError, match="now at attempt 2"):
        store.create_job(JobDescription(jobName="zombie"))
    store.close()
    rival.close()
