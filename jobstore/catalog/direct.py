"""The SQLite fast path: the hottest single-row operations on a per-thread sqlite3 connection.

Profiling showed that on an embedded catalog, SQLAlchemy's per-call machinery (pool checkout,
events, BEGIN/COMMIT, result wrapping) cost ~100 us around a ~10 us SQLite statement, which made a
``load_job`` slower than Toil's unpickling of a file. These operations are single statements (or a
few, in one ``BEGIN IMMEDIATE`` transaction), so they run here directly, in autocommit mode, where a
single statement is its own atomic transaction.

The statements are not written twice: each is compiled once from the SQLAlchemy construct in
``queries.py`` for the SQLite dialect, with its bind and result processors (datetimes, booleans),
so both paths run exactly the same SQL. Only SQLite gets this path; PostgreSQL costs are network
round trips, which SQLAlchemy does not add to.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.sql import ClauseElement

from jobstore.catalog import queries
from jobstore.catalog.queries import FileRow, JobFields, NewFile, utc_now
from jobstore.catalog.schema import files, jobs

_DIALECT = sqlite_dialect.dialect()


class _Statement:
    """One statement compiled for SQLite: SQL text, parameter order and bind/result processors."""

    __slots__ = ("defaults", "names", "processors", "result_processors", "sql")

    def __init__(self, statement: ClauseElement, column_keys: Sequence[str] | None = None) -> None:
        compiled: Any = statement.compile(dialect=_DIALECT, column_keys=list(column_keys) if column_keys else None)
        self.sql: str = compiled.string
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        self.processors = tuple(compiled.binds[name].type.bind_processor(_DIALECT) for name in self.names)
        # Literals inside the statement (the 1 of "version + 1") are bound parameters too.
        self.defaults = {name: compiled.binds[name].effective_value for name in self.names}
        columns = getattr(statement, "selected_columns", None) or getattr(statement, "_returning", None) or ()
        self.result_processors = tuple(column.type.result_processor(_DIALECT, None) for column in columns)

    def parameters(self, values: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(
            value if processor is None else processor(value)
            for value, processor in zip(
                (values[name] if name in values else self.defaults[name] for name in self.names),
                self.processors,
                strict=True,
            )
        )

    def convert(self, row: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(
            value if processor is None else processor(value)
            for value, processor in zip(row, self.result_processors, strict=False)
        )


_JOB_COLUMNS = ["store_id", "version", "created_at", "updated_at", *queries.JOB_FIELD_NAMES]
_FILE_COLUMNS = [column.key for column in files.columns]


class DirectSQLite:
    """Per-thread sqlite3 connections to one catalog file, with the same pragmas as the engine."""

    def __init__(self, path: str, *, synchronous: str, busy_timeout_ms: int) -> None:
        self._path = path
        self._synchronous = synchronous
        self._busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._get_job = _Statement(queries._SELECT_JOB)
        self._job_exists = _Statement(queries._JOB_EXISTS)
        self._insert_job = _Statement(queries._insert_ignoring_conflicts(jobs, "sqlite"), _JOB_COLUMNS)
        self._update_job_cas = _Statement(queries._UPDATE_JOB_CAS)
        self._get_file = _Statement(queries._SELECT_FILE)
        self._file_exists = _Statement(queries._FILE_EXISTS)
        self._file_size = _Statement(queries._FILE_SIZE)
        self._insert_file = _Statement(queries._insert_ignoring_conflicts(files, "sqlite"), _FILE_COLUMNS)
        self._insert_job_file = _Statement(queries.sqlite_insert_file_of_existing_job())
        self._delete_file = _Statement(queries._DELETE_FILE_RETURNING_KEY)
        self._delete_job = _Statement(queries._DELETE_JOB)
        self._delete_cleanup_files = _Statement(queries._DELETE_CLEANUP_FILES_RETURNING_KEYS)

    # --- connections -------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        local = self._local
        connection: sqlite3.Connection | None = getattr(local, "connection", None)
        if connection is None or local.pid != os.getpid():
            connection = sqlite3.connect(
                self._path,
                timeout=self._busy_timeout_ms / 1000,
                isolation_level=None,  # autocommit: one statement, one transaction
                check_same_thread=False,
                cached_statements=64,
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(f"PRAGMA synchronous={self._synchronous}")
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
            local.connection, local.pid = connection, os.getpid()
            with self._lock:
                self._connections.append(connection)
        return connection

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            try:
                connection.close()
            except sqlite3.Error:
                pass
        self._local = threading.local()

    def _one(self, statement: _Statement, values: dict[str, Any]) -> tuple[Any, ...] | None:
        # fetchall, not fetchone: a statement (and in autocommit its transaction, with any write
        # lock) only finishes when it has been stepped to the end.
        rows = self._connection().execute(statement.sql, statement.parameters(values)).fetchall()
        return statement.convert(rows[0]) if rows else None

    def _in_transaction(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        """Several statements as one write transaction (BEGIN IMMEDIATE, as the engine does)."""
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            result = work(connection)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        return result

    # --- jobs --------------------------------------------------------------------------------

    def get_job(self, store_id: int, job_id: str) -> tuple[int, str] | None:
        row = self._one(self._get_job, {"sid": store_id, "id": job_id})
        return None if row is None else (int(row[0]), str(row[1]))

    def job_exists(self, store_id: int, job_id: str) -> bool:
        return self._one(self._job_exists, {"sid": store_id, "id": job_id}) is not None

    def insert_job(self, store_id: int, fields: JobFields) -> bool:
        now = utc_now()
        values = fields.as_params()
        values.update(store_id=store_id, version=1, created_at=now, updated_at=now)
        return self._one(self._insert_job, values) is not None

    def update_job(self, store_id: int, fields: JobFields, expected_version: int) -> bool:
        values = {f"new_{name}": value for name, value in fields.as_params().items()}
        values.update(sid=store_id, match_id=fields.id, expected=expected_version, new_updated_at=utc_now())
        cursor = self._connection().execute(self._update_job_cas.sql, self._update_job_cas.parameters(values))
        return cursor.rowcount == 1

    def delete_job(self, store_id: int, job_id: str) -> tuple[bool, list[str]]:
        """Delete a job and its cleanup files in one transaction; (existed, blob keys released)."""
        job_parameters = self._delete_job.parameters({"sid": store_id, "id": job_id})
        file_parameters = self._delete_cleanup_files.parameters({"sid": store_id, "job_id": job_id})

        def work(connection: sqlite3.Connection) -> tuple[bool, list[str]]:
            existed = connection.execute(self._delete_job.sql, job_parameters).rowcount > 0
            keys = [str(row[0]) for row in connection.execute(self._delete_cleanup_files.sql, file_parameters)]
            return existed, keys

        result: tuple[bool, list[str]] = self._in_transaction(work)
        return result

    # --- files -------------------------------------------------------------------------------

    def get_file(self, store_id: int, file_id: str) -> FileRow | None:
        row = self._one(self._get_file, {"sid": store_id, "id": file_id})
        return None if row is None else FileRow(*row)

    def file_exists(self, store_id: int, file_id: str) -> bool:
        return self._one(self._file_exists, {"sid": store_id, "id": file_id}) is not None

    def file_size(self, store_id: int, file_id: str) -> int | None:
        row = self._one(self._file_size, {"sid": store_id, "id": file_id})
        return None if row is None else int(row[0])

    def insert_file(self, store_id: int, new: NewFile) -> str | None:
        """Insert a file row (its job must exist), as one atomic statement in autocommit.

        None on success, else "no job" or "taken". When nothing was inserted the existing row
        tells which: none means the job was missing; one with this blob is our own insert whose
        commit was retried after an ambiguous failure (success); another blob means a taken ID.
        """
        now: datetime = utc_now()
        values = {
            "store_id": store_id,
            "version": 1,
            "created_at": now,
            "updated_at": now,
            **{name: getattr(new, name) for name in NewFile.__dataclass_fields__},
        }
        statement = self._insert_file if new.job_id is None else self._insert_job_file
        connection = self._connection()
        if connection.execute(statement.sql, statement.parameters(values)).fetchall():
            return None
        existing = self.get_file(store_id, new.id)
        if existing is None:
            return "no job"
        return None if existing.blob_key == new.blob_key else "taken"

    def delete_file(self, store_id: int, file_id: str) -> str | None:
        row = self._one(self._delete_file, {"sid": store_id, "id": file_id})
        return None if row is None else str(row[0])
