"""The reporting surface: every cookbook query of docs/REPORTING.md runs, as printed, on SQLite and
PostgreSQL and gives the right answer; the views come and go with migration 0002."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from jobstore import JobStore
from jobstore.catalog import Catalog
from jobstore.catalog.migrate import upgrade
from jobstore.catalog.reports import REPORT_VIEWS
from tests.conftest import Backend
from tests.maintenance.helpers import delete_job_row, populate

DOC = Path(__file__).resolve().parents[2] / "docs" / "REPORTING.md"


def cookbook() -> dict[str, str]:
    """The cookbook's queries by their heading."""
    text_ = DOC.read_text(encoding="utf-8").split("## Cookbook", 1)[1]
    queries: dict[str, str] = {}
    for match in re.finditer(r"### (.+?)\n.*?```sql\n(.*?)```", text_, re.S):
        queries[match.group(1).strip()] = match.group(2)
    return queries


def test_the_cookbook_has_the_promised_queries() -> None:
    names = set(cookbook())
    assert {
        "Which jobs failed",
        "Which job wrote this file",
        "Largest jobs by bytes",
        "Workflows still running",
    } <= names


@pytest.mark.parametrize("backend", ["sqlite-local", "postgres-local", "pgbouncer-local"], indirect=True)
def test_cookbook_queries_run_and_answer(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> None:
    store: JobStore = backend.new_store()
    data = populate(store, jobs_count=4)
    source = tmp_path_factory.mktemp("inputs") / "reference.bin"
    source.write_bytes(b"r" * 1234)
    store.import_file(str(source), mode="reference")
    gone = next(job_id for job_id, job in data.jobs.items() if job.state == "running")
    delete_job_row(store, gone)
    failed = next(job_id for job_id, job in data.jobs.items() if job.state == "failed")
    some_file = next(file_id for file_id, owner in data.owners.items() if owner == failed)
    orphan = next(file_id for file_id, owner in data.owners.items() if owner == gone)
    params = {"store_name": _name(store), "file_id": some_file, "job_id": failed}
    results = {}
    with store.catalog.engine.connect() as connection:
        for title, sql in cookbook().items():
            statement = text(sql)
            wanted = {key: value for key, value in params.items() if f":{key}" in sql}
            results[title] = [dict(row._mapping) for row in connection.execute(statement, wanted)]
        orphan_row = connection.execute(
            text(cookbook()["Which job wrote this file"]), {"store_name": _name(store), "file_id": orphan}
        ).one()
    assert orphan_row.job_status == "gone"
    assert [row["job_id"] for row in results["Which jobs failed"]] == [failed]
    assert results["Which jobs failed"][0]["remaining_tries"] == 0
    assert results["Which job wrote this file"][0]["job_id"] == failed
    assert results["Which job wrote this file"][0]["job_status"] == "exists"
    assert {row["state"]: row["jobs"] for row in results["Jobs by state"]} == {
        "completed": 1,
        "failed": 1,
        "pending": 1,
    }
    assert len(results["Largest jobs by bytes"]) == 3
    sizes = [row["bytes"] for row in results["Largest jobs by bytes"]]
    assert sizes == sorted(sizes, reverse=True)
    running = [row for row in results["Workflows still running"] if row["store_name"] == _name(store)]
    assert running and running[0]["unfinished_jobs"] == 1  # the pending one
    totals = [
        row for row in results["Store totals for every store of the catalog"] if row["files"] == store.stats()["files"]
    ]
    assert totals and totals[0]["orphaned_files"] == 2
    (referenced,) = results["Referenced inputs, apart from stored bytes"]
    stats = store.stats()
    assert (referenced["referenced_files"], referenced["referenced_bytes"]) == (1, 1234)
    assert (referenced["bytes"], referenced["stored_bytes"]) == (stats["bytes"], stats["stored_bytes"])
    assert {row["file_id"] for row in results["Orphaned files and their size"]} == {
        file_id for file_id, owner in data.owners.items() if owner == gone
    }
    assert len(results["Files of one job"]) == 2
    assert [row["shared_name"] for row in results["Shared files"]] == sorted(data.shared)


def _name(store: JobStore) -> str:
    locator = store.locator
    return locator.rsplit("#", 1)[1] if locator.startswith("sql:") else "default"


def test_views_are_created_and_dropped_by_migration_0002(tmp_path: Path) -> None:
    catalog = Catalog(f"sqlite:///{tmp_path}/c.sqlite")
    try:
        upgrade(catalog.engine)
        with catalog.engine.connect() as connection:
            assert {view.name for view in REPORT_VIEWS} <= set(inspect(connection).get_view_names())
        upgrade_down(catalog, "0001")
        with catalog.engine.connect() as connection:
            assert not set(inspect(connection).get_view_names())
        upgrade(catalog.engine)
        with catalog.engine.connect() as connection:
            assert {view.name for view in REPORT_VIEWS} <= set(inspect(connection).get_view_names())
    finally:
        catalog.dispose()


def upgrade_down(catalog: Catalog, revision: str) -> None:
    from alembic import command

    from jobstore.catalog.migrate import alembic_config

    with catalog.engine.begin() as connection:
        command.downgrade(alembic_config(connection), revision)
