"""The hot statements' query plans use indexes, on SQLite and PostgreSQL.

A store with a million jobs (docs/PERFORMANCE.md, "A million jobs") stays fast only if every
per-operation statement finds its rows through an index. This test drives the operations a leader
and its workers run, and asks the database for the plan of every statement they send, with the
statement's own parameters, just before it runs: a plan that reads a whole table of the catalog
(SQLite's ``SCAN <table>``, PostgreSQL's ``Seq Scan on <table>`` with sequential scans disabled,
so that one appears only where no index can serve) fails the test and names the statement.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from jobstore import JobDescription, JobStore
from tests.conftest import Backend
from tests.statement_log import RecordingConnection

CATALOG_TABLES = ("jobs", "files", "logs", "leases", "stores", "condemned_blobs")
_PLANNED = ("SELECT", "UPDATE", "DELETE", "INSERT", "WITH")


class PlanningConnection(RecordingConnection):
    """Asks for the plan of each statement (with its parameters) before running it."""

    def __init__(self, connection: Any, dialect: str) -> None:
        super().__init__(connection)
        self.dialect = dialect
        self.plans: list[tuple[str, str]] = []
        if dialect == "postgresql":
            connection.execute("SET enable_seqscan = off")

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        if sql.split(None, 1)[0].upper() in _PLANNED:
            prefix = "EXPLAIN QUERY PLAN " if self.dialect == "sqlite" else "EXPLAIN "
            rows = self._connection.execute(prefix + sql, *args, **kwargs).fetchall()
            detail = "\n".join(str(row[-1]) for row in rows)
            self.plans.append((sql, detail))
        return super().execute(sql, *args, **kwargs)


def _planning(store: JobStore) -> PlanningConnection:
    operations = store.catalog.operations
    planning = PlanningConnection(operations._connection(), store.catalog.dialect)  # test-only access
    assert operations._state.holder is not None
    operations._state.holder.connection = planning
    return planning


#: SQLite only: the orphan query reads every file row of the store anyway, and the catalog's
#: statistics (catalog/sqlite_schema.py) describe what a SQLite catalog normally is, a file holding
#: one store, where those rows are the whole table; so SQLite scans the table rather than walk an
#: index over all of it. On PostgreSQL (shared catalogs) it must use the store's index.
_SQLITE_WHOLE_STORE_READS = (
    re.compile(r"^SELECT files\.id \nFROM files \nWHERE files\.store_id = \? .*NOT \(EXISTS", re.S),
)


def _whole_table_reads(plans: list[tuple[str, str]], dialect: str) -> list[str]:
    tables = "|".join(CATALOG_TABLES)
    pattern = re.compile(rf"^SCAN ({tables})\b" if dialect == "sqlite" else rf"Seq Scan on ({tables})\b", re.M)
    allowed = _SQLITE_WHOLE_STORE_READS if dialect == "sqlite" else ()
    return [
        f"{sql}\n  -> {detail}"
        for sql, detail in plans
        if pattern.search(detail) and not any(rule.search(sql) for rule in allowed)
    ]


@pytest.mark.parametrize("backend", ["sqlite-local", "postgres-local"], indirect=True)
def test_the_hot_statements_read_through_indexes(backend: Backend, tmp_path: Path) -> None:
    leader = backend.new_store()
    # Enough rows that a planner has something to choose between, in another store too.
    neighbour = backend.new_store()
    with neighbour.batch():
        for index in range(300):
            neighbour.create_job(JobDescription(jobName=f"other-{index}"))
    with leader.batch():
        jobs = [leader.create_job(JobDescription(jobName=f"job-{index}")) for index in range(300)]
    source = tmp_path / "in.txt"
    source.write_bytes(b"data")
    worker = backend.reopen(leader)
    planning = _planning(leader)
    worker_planning = _planning(worker)

    lease = leader.acquire_leader_lease(seconds=3600)
    worker.require_lease_attempt(lease.attempt)
    job = worker.load_job(jobs[0].jobStoreID)
    assert worker.job_exists(job.jobStoreID)
    file_id = worker.write_file(str(source), job.jobStoreID, cleanup=True)
    loose = worker.write_file(str(source))
    assert worker.file_exists(file_id) and worker.get_file_size(file_id) == 4
    with worker.read_file_stream(file_id) as stream:
        assert stream.read() == b"data"
    worker.update_file(file_id, str(source))
    child = JobDescription(jobName="child")
    worker.assign_job_id(child)
    worker.save_jobs([job, child])
    job = worker.load_job(job.jobStoreID)
    worker.update_job(job)
    with worker.write_shared_file_stream("config") as shared:
        shared.write(b"{}")
    with worker.read_shared_file_stream("config") as shared_in:
        assert shared_in.read() == b"{}"
    worker.write_logs("a log")
    worker.delete_file(loose)
    worker.delete_job(jobs[1].jobStoreID)
    assert len(list(leader.jobs())) == 300
    leader.read_logs(lambda stream: stream.read())
    leader.read_logs(lambda stream: stream.read(), read_all=True)
    leader.orphaned_file_ids()
    leader.get_all_file_ids()
    leader.job_file_summary()
    leader.delete_job(job.jobStoreID)  # and its cleanup file
    lease.renew()
    leader.release_leader_lease()

    plans = planning.plans + worker_planning.plans
    assert len(plans) >= 20  # the operations above really went through the planner
    assert _whole_table_reads(plans, leader.catalog.dialect) == []
