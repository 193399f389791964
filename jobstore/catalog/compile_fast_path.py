"""Compile the catalog's row statements from the SQLAlchemy constructs in ``queries``.

``operations.py`` runs every row operation on the database driver directly: on SQLite without
importing SQLAlchemy at all (a Toil worker is a new process per job, and the import is a large
part of its start-up), on PostgreSQL without SQLAlchemy's per-call machinery. The SQL is defined
once, with SQLAlchemy Core, and compiled here into the generated modules ``sqlite_statements.py``
and ``postgres_statements.py``; a test recompiles them and fails if either is stale. Regenerate
with::

    python -m jobstore.catalog.compile_fast_path

Bind and result conversions are recorded as kinds (``datetime``, ``boolean``, ``float``,
``binary``) that ``compiled.py`` implements per driver; compiling fails on a column type whose
processor is not one of them, and a test checks the implementations against SQLAlchemy's own.
"""

from __future__ import annotations

import pprint
from pathlib import Path
from typing import Any

from sqlalchemy import Boolean, DateTime, Float, LargeBinary
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect
from sqlalchemy.types import TypeEngine

from jobstore.catalog import queries
from jobstore.catalog.rows import JOB_FIELD_NAMES
from jobstore.catalog.schema import files, jobs, leases, logs

#: dialect name -> (the dialect compiled for, positional parameters; the generated module)
_POSTGRES: Any = psycopg_dialect.dialect(paramstyle="format")  # type: ignore[no-untyped-call]
DIALECTS: dict[str, tuple[Any, Path]] = {
    "sqlite": (sqlite_dialect.dialect(), Path(__file__).with_name("sqlite_statements.py")),
    "postgresql": (_POSTGRES, Path(__file__).with_name("postgres_statements.py")),
}

JOB_INSERT_COLUMNS = ["store_id", "version", "created_at", "updated_at", *JOB_FIELD_NAMES]
FILE_INSERT_COLUMNS = [c.key for c in files.columns]
LOG_INSERT_COLUMNS = ["store_id", "message", "is_read", "created_at"]
STORE_INSERT_COLUMNS = ["name", "blob_url", "workflow_id", "config_json", "created_at"]
LEASE_INSERT_COLUMNS = [c.key for c in leases.columns]


def _constructs(dialect: str) -> dict[str, tuple[Any, list[str] | None]]:
    """name -> (statement, the columns an INSERT binds, or None)."""
    constructs: dict[str, tuple[Any, list[str] | None]] = {
        "get_job": (queries._SELECT_JOB, None),
        "job_exists": (queries._JOB_EXISTS, None),
        "job_write_token": (queries._JOB_WRITE_TOKEN, None),
        "job_page": (queries._SELECT_JOB_PAGE, None),
        "insert_job": (queries._insert_ignoring_conflicts(jobs, dialect), JOB_INSERT_COLUMNS),
        "insert_jobs": (queries._INSERT_JOB, JOB_INSERT_COLUMNS),
        "update_job_cas": (queries._UPDATE_JOB_CAS, None),
        "update_job_any": (queries._UPDATE_JOB_ANY.returning(jobs.c.version), None),
        "get_file": (queries._SELECT_FILE, None),
        "get_shared_file": (queries._SELECT_SHARED, None),
        "file_exists": (queries._FILE_EXISTS, None),
        "file_size": (queries._FILE_SIZE, None),
        "insert_file": (queries._insert_ignoring_conflicts(files, dialect), FILE_INSERT_COLUMNS),
        "insert_job_file": (queries.insert_file_of_existing_job(dialect), None),
        "replace_file_content": (queries._UPDATE_FILE_CAS, None),
        "delete_file": (queries._DELETE_FILE_RETURNING_KEY, None),
        "delete_job": (queries._DELETE_JOB, None),
        "delete_cleanup_files": (queries._DELETE_CLEANUP_FILES_RETURNING_KEYS, None),
        "insert_log": (queries._INSERT_LOG, LOG_INSERT_COLUMNS),
        "has_unread_logs": (queries._HAS_UNREAD_LOGS, None),
        "claim_unread_logs": (queries._CLAIM_UNREAD_LOGS, None),
        "read_logs": (queries._READ_LOGS, None),
        "unclaim_log": (queries._UNCLAIM_LOG, None),
        **{name: (statement, None) for name, statement in queries.DELETE_STORE_ROWS.items()},
        "all_file_ids": (queries._ALL_FILE_IDS, None),
        "orphaned_file_ids": (queries._ORPHANED_FILE_IDS, None),
        "job_file_summary": (queries._JOB_FILE_SUMMARY, None),
        "revision_and_store": (queries.revision_and_store(), None),
        "insert_store": (queries.insert_store_ignoring_conflicts(dialect), STORE_INSERT_COLUMNS),
        "insert_lease": (queries._insert_ignoring_conflicts(leases, dialect), LEASE_INSERT_COLUMNS),
        "take_lease": (queries._TAKE_LEASE, None),
        "renew_lease": (queries._RENEW_LEASE, None),
        "mark_lease_destroyed": (queries._MARK_LEASE_DESTROYED, None),
        "insert_lease_of_existing_store": (queries.insert_lease_of_existing_store(dialect), None),
        "select_lease": (queries._SELECT_LEASE, None),
        "lease_attempt": (queries._LEASE_ATTEMPT, None),
    }
    # Fenced variants (CatalogOperations.fence): each write carries the lease check itself.
    constructs["update_job_cas_fenced"] = (queries._UPDATE_JOB_CAS.where(queries.FENCE), None)
    constructs["update_job_any_fenced"] = (queries._UPDATE_JOB_ANY.where(queries.FENCE).returning(jobs.c.version), None)
    constructs["delete_file_fenced"] = (queries._DELETE_FILE_RETURNING_KEY.where(queries.FENCE), None)
    constructs["claim_unread_logs_fenced"] = (queries._CLAIM_UNREAD_LOGS.where(queries.FENCE), None)
    constructs["insert_job_fenced"] = (queries.fenced_insert(jobs, JOB_INSERT_COLUMNS, jobs.c.store_id, dialect), None)
    constructs["insert_file_fenced"] = (
        queries.fenced_insert(files, FILE_INSERT_COLUMNS, files.c.store_id, dialect),
        None,
    )
    constructs["insert_job_file_fenced"] = (queries.insert_file_of_existing_job(dialect, fenced=True), None)
    constructs["insert_log_fenced"] = (
        queries.fenced_insert(logs, LOG_INSERT_COLUMNS, logs.c.seq, dialect, ignoring_conflicts=False),
        None,
    )
    if dialect == "postgresql":  # data-modifying WITH clauses: SQLite has none
        constructs["delete_job_with_cleanup_files"] = (queries.delete_job_with_cleanup_files(), None)
        constructs["replace_file_content_in_one_statement"] = (queries.replace_file_content_in_one_statement(), None)
        constructs["upsert_jobs_from_arrays"] = (queries.upsert_jobs_from_arrays(), None)
        constructs["insert_jobs_from_arrays"] = (queries.insert_jobs_from_arrays(), None)
        constructs["delete_job_with_cleanup_files_fenced"] = (queries.delete_job_with_cleanup_files(fenced=True), None)
        constructs["replace_file_content_in_one_statement_fenced"] = (
            queries.replace_file_content_in_one_statement(fenced=True),
            None,
        )
        constructs["upsert_jobs_from_arrays_fenced"] = (queries.upsert_jobs_from_arrays(fenced=True), None)
        constructs["insert_jobs_from_arrays_fenced"] = (queries.insert_jobs_from_arrays(fenced=True), None)
    return constructs


def kind_of(type_: TypeEngine[Any], processor: Any) -> str | None:
    """The conversion a dialect's processor performs, as a kind compiled.py implements."""
    if processor is None:
        return None
    for kind, cls in (("datetime", DateTime), ("boolean", Boolean), ("float", Float), ("binary", LargeBinary)):
        if isinstance(type_, cls):
            return kind
    raise TypeError(f"No fast-path conversion for {type_!r}: teach compiled.py and this module about it.")


def _is_literal(bind: Any) -> bool:
    return not bind.required and isinstance(bind.effective_value, int | float | str | bool)


def _result_processor(impl: TypeEngine[Any], dialect: Any) -> Any:
    try:
        return impl.result_processor(dialect, None)
    except TypeError:
        # psycopg's numeric processors are chosen from the column's type OID at run time; the
        # driver already returns floats for our double precision column.
        return "driver-chosen"


def compile_statement(statement: Any, column_keys: list[str] | None, dialect: Any) -> dict[str, Any]:
    # The dialect's implementation of each generic type (DateTime -> SQLite's DATETIME, which
    # stores "YYYY-MM-DD HH:MM:SS.ffffff" text) has the processors SQLAlchemy's execution applies.
    compiled: Any = statement.compile(dialect=dialect, column_keys=column_keys)
    names = list(compiled.positiontup or ())
    binds = [compiled.binds[name] for name in names]
    columns = getattr(statement, "selected_columns", None) or getattr(statement, "_returning", None) or ()
    return {
        "sql": compiled.string,
        "names": names,
        "bind": [kind_of(bind.type, bind.type.dialect_impl(dialect).bind_processor(dialect)) for bind in binds],
        # Literals inside the statement (the 1 of "version + 1") are bound parameters too.
        "defaults": {name: bind.effective_value for name, bind in zip(names, binds, strict=True) if _is_literal(bind)},
        "result": [kind_of(col.type, _result_processor(col.type.dialect_impl(dialect), dialect)) for col in columns],
    }


def compile_all(dialect_name: str = "sqlite") -> dict[str, dict[str, Any]]:
    dialect = DIALECTS[dialect_name][0]
    return {name: compile_statement(*spec, dialect) for name, spec in _constructs(dialect_name).items()}


def render(dialect_name: str) -> str:
    body = pprint.pformat(compile_all(dialect_name), width=110, sort_dicts=True)
    return (
        '"""GENERATED by ``python -m jobstore.catalog.compile_fast_path`` from the SQLAlchemy constructs in\n'
        f"``queries.py``, for {dialect_name}: do not edit (tests/test_sqlite_statements.py fails when it is "
        'stale)."""\n\n'
        "from typing import Any\n\n"
        f"STATEMENTS: dict[str, dict[str, Any]] = {body}\n"
    )


if __name__ == "__main__":
    for name, (_, target) in DIALECTS.items():
        target.write_text(render(name))
        print(f"wrote {target}")
