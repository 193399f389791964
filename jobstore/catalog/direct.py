"""The fast path: the hottest single-row operations on per-thread driver connections.

Profiling showed that on an embedded catalog, SQLAlchemy's per-call machinery (pool checkout,
events, BEGIN/COMMIT, result wrapping) cost ~100 us around a ~10 us SQLite statement, which made a
``load_job`` slower than Toil's unpickling of a file; on PostgreSQL it was half of a ~0.45 ms load.
These operations are single statements (or a few, in one transaction), so they run here
directly, in autocommit mode, where a single statement is its own atomic transaction:
``DirectSQLite`` on sqlite3, ``DirectPostgres`` on psycopg.

The statements are not written twice: each is compiled from the SQLAlchemy construct in
``queries.py`` for each dialect (``compile_fast_path.py``, which records them in the generated
``sqlite_statements.py`` and ``postgres_statements.py`` with their bind and result conversions), so
both paths run exactly the same SQL, and this module does not import SQLAlchemy: a process that
only uses these operations on SQLite (a Toil worker, a fresh process per job) never pays
SQLAlchemy's ~130 ms import.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from jobstore.catalog.postgres_statements import STATEMENTS as POSTGRES_STATEMENTS
from jobstore.catalog.rows import FileRow, JobFields, NewFile, StoreRow, utc_now
from jobstore.catalog.sqlite_pragmas import connection_pragmas
from jobstore.catalog.sqlite_statements import STATEMENTS as SQLITE_STATEMENTS


def _datetime_to_sql(value: datetime) -> str:
    # SQLAlchemy's SQLite DATETIME storage format, so both paths write identical text.
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d} "
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}"
    )


#: The SQLite conversions compile_fast_path records for column types (checked against SQLAlchemy's own
#: processors by tests/test_sqlite_statements.py).
BIND_CONVERSIONS: dict[str, Callable[[Any], Any]] = {
    "datetime": _datetime_to_sql,
    "boolean": int,
    "float": float,
    "binary": bytes,
}
RESULT_CONVERSIONS: dict[str, Callable[[Any], Any]] = {
    "datetime": datetime.fromisoformat,
    "boolean": bool,
    "float": float,
    "binary": bytes,
}


def _file_content_parameters(
    store_id: int, file_id: str, expected_version: int, values: dict[str, Any]
) -> dict[str, Any]:
    """The bound values of a file's compare-and-set from ``CatalogTx.replace_file_content``'s keywords."""
    parameters = {f"new_{name}": value for name, value in values.items()}
    parameters.setdefault("new_executable", None)
    parameters.setdefault("new_source_url", None)
    parameters.update(sid=store_id, match_id=file_id, expected=expected_version, new_updated_at=utc_now())
    return parameters


class _Statement:
    """One statement compiled for SQLite: SQL text, parameter order and bind/result conversions."""

    __slots__ = ("bindings", "defaults", "names", "processors", "result_processors", "sql")

    def __init__(
        self,
        spec: dict[str, Any],
        bind_conversions: dict[str, Callable[[Any], Any]],
        result_conversions: dict[str, Callable[[Any], Any]],
    ) -> None:
        self.sql: str = spec["sql"]
        self.names: tuple[str, ...] = tuple(spec["names"])
        self.processors = tuple(None if kind is None else bind_conversions[kind] for kind in spec["bind"])
        self.defaults: dict[str, Any] = dict(spec["defaults"])
        self.result_processors = tuple(None if kind is None else result_conversions[kind] for kind in spec["result"])
        self.bindings = tuple(zip(self.names, self.processors, strict=True))

    def parameters(self, values: dict[str, Any]) -> list[Any]:
        # A plain loop: this runs for every statement, and nested generators cost ~4 us more on
        # an 18-parameter insert.
        defaults = self.defaults
        bound = []
        for name, processor in self.bindings:
            value = values[name] if name in values else defaults[name]
            bound.append(value if processor is None or value is None else processor(value))
        return bound

    def parameter_rows(self, rows: Sequence[dict[str, Any]], common: dict[str, Any]) -> list[list[Any]]:
        """``parameters`` of many rows for an executemany; ``common``'s values are the same in
        every row, so they are converted once (a batch's two timestamps: ~2.6 us a row)."""
        shared = {}
        for name, processor in self.bindings:
            if name in common:
                value = common[name]
                shared[name] = value if processor is None or value is None else processor(value)
        defaults = self.defaults
        bound_rows = []
        for values in rows:
            bound = []
            for name, processor in self.bindings:
                if name in shared:
                    bound.append(shared[name])
                    continue
                value = values[name] if name in values else defaults[name]
                bound.append(value if processor is None or value is None else processor(value))
            bound_rows.append(bound)
        return bound_rows

    def convert(self, row: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(
            value if processor is None or value is None else processor(value)
            for value, processor in zip(row, self.result_processors, strict=False)
        )


class _Holder:
    """Owns one thread's connection and closes it when that thread ends (its thread-local
    storage, and so this holder, goes away): threads come and go (transfer pools), connections
    must not pile up, least of all on a PostgreSQL server."""

    __slots__ = ("__weakref__", "connection", "pid")

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.pid = os.getpid()

    def close(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None and self.pid == os.getpid():  # never a connection of the parent
            try:
                connection.close()
            except Exception:
                pass

    def __del__(self) -> None:
        self.close()


class DirectCatalog:
    """The fast path's operations on per-thread driver connections in autocommit mode.

    Subclasses say how to connect, which compiled statements and value conversions to use, and how
    to run several statements as one write transaction.
    """

    STATEMENTS: dict[str, dict[str, Any]]
    BIND_CONVERSIONS: dict[str, Callable[[Any], Any]]
    RESULT_CONVERSIONS: dict[str, Callable[[Any], Any]]

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._holders: weakref.WeakSet[_Holder] = weakref.WeakSet()
        self._get_job = self._statement("get_job")
        self._job_exists = self._statement("job_exists")
        self._job_write_token = self._statement("job_write_token")
        self._job_page = self._statement("job_page")
        self._insert_job = self._statement("insert_job")
        self._insert_jobs = self._statement("insert_jobs")
        self._update_job_cas = self._statement("update_job_cas")
        self._update_job_any = self._statement("update_job_any")
        self._get_file = self._statement("get_file")
        self._get_shared_file = self._statement("get_shared_file")
        self._file_exists = self._statement("file_exists")
        self._file_size = self._statement("file_size")
        self._insert_file = self._statement("insert_file")
        self._insert_job_file = self._statement("insert_job_file")
        self._replace_file_content = self._statement("replace_file_content")
        self._delete_file = self._statement("delete_file")
        self._delete_job = self._statement("delete_job")
        self._delete_cleanup_files = self._statement("delete_cleanup_files")
        self._insert_log = self._statement("insert_log")
        self._has_unread_logs = self._statement("has_unread_logs")
        self._claim_unread_logs = self._statement("claim_unread_logs")
        self._read_logs = self._statement("read_logs")
        self._unclaim_log = self._statement("unclaim_log")
        self._delete_store_rows = [
            self._statement(name)
            for name in (
                "delete_store_logs",
                "delete_store_files",
                "delete_store_jobs",
                "delete_store_condemned_blobs",
                "delete_store_row",
            )
        ]
        self._revision_and_store = self._statement("revision_and_store")
        self._insert_store = self._statement("insert_store")

    def _statement(self, name: str) -> _Statement:
        return _Statement(self.STATEMENTS[name], self.BIND_CONVERSIONS, self.RESULT_CONVERSIONS)

    # --- connections -------------------------------------------------------------------------

    def _connect(self) -> Any:
        raise NotImplementedError

    def _connection(self) -> Any:
        holder: _Holder | None = getattr(self._local, "holder", None)
        connection = None if holder is None or holder.pid != os.getpid() else holder.connection
        if connection is None or getattr(connection, "closed", False) or getattr(connection, "broken", False):
            connection = self._connect()
            holder = _Holder(connection)
            self._local.holder = holder
            with self._lock:
                self._holders.add(holder)
        return connection

    def close(self) -> None:
        with self._lock:
            holders, self._holders = list(self._holders), weakref.WeakSet()
        for holder in holders:
            holder.close()
        self._local = threading.local()

    def _one(self, statement: _Statement, values: dict[str, Any]) -> tuple[Any, ...] | None:
        # fetchall, not fetchone: a statement (and in autocommit its transaction, with any write
        # lock) only finishes when it has been stepped to the end.
        cursor = self._connection().execute(statement.sql, statement.parameters(values))
        rows = cursor.fetchall() if cursor.description is not None else []
        return statement.convert(rows[0]) if rows else None

    def _in_transaction(self, work: Callable[[Any], Any]) -> Any:
        """Several statements as one write transaction."""
        raise NotImplementedError

    # --- jobs --------------------------------------------------------------------------------

    def get_job(self, store_id: int, job_id: str) -> tuple[int, str] | None:
        row = self._one(self._get_job, {"sid": store_id, "id": job_id})
        return None if row is None else (int(row[0]), str(row[1]))

    def job_exists(self, store_id: int, job_id: str) -> bool:
        return self._one(self._job_exists, {"sid": store_id, "id": job_id}) is not None

    def job_write_token(self, store_id: int, job_id: str) -> int | None:
        """The token of the write that produced the job's row (0 if none); None if no such job."""
        row = self._one(self._job_write_token, {"sid": store_id, "id": job_id})
        return None if row is None else int(row[0])

    def job_page(self, store_id: int, after: str, page_size: int) -> list[tuple[str, int, str]]:
        """(ID, version, description) of up to ``page_size`` jobs with IDs after ``after``, in ID order."""
        statement = self._job_page
        parameters = statement.parameters({"sid": store_id, "after": after, "page_size": page_size})
        return [(str(i), int(v), str(d)) for i, v, d in self._connection().execute(statement.sql, parameters)]

    def insert_job(self, store_id: int, fields: JobFields) -> bool:
        now = utc_now()
        values = fields.as_params()
        values.update(store_id=store_id, version=1, created_at=now, updated_at=now)
        return self._one(self._insert_job, values) is not None

    def insert_jobs(self, store_id: int, many: Sequence[JobFields]) -> bool:
        """Insert version 1 of many jobs in one transaction, one executemany (``batch()``'s
        creations); False, and nothing inserted, if any ID is taken (or repeated in ``many``)."""
        statement = self._insert_jobs
        now = utc_now()
        rows = statement.parameter_rows(
            [fields.as_params() for fields in many],
            {"store_id": store_id, "version": 1, "created_at": now, "updated_at": now},
        )
        try:
            self._in_transaction(lambda connection: connection.cursor().executemany(statement.sql, rows))
        except Exception as error:
            if self._is_integrity_error(error):
                return False
            raise
        return True

    def _is_integrity_error(self, error: BaseException) -> bool:
        """A constraint violation (a taken key), which no retry cures."""
        raise NotImplementedError

    def update_job(self, store_id: int, fields: JobFields, expected_version: int) -> bool:
        values = {f"new_{name}": value for name, value in fields.as_params().items()}
        values.update(sid=store_id, match_id=fields.id, expected=expected_version, new_updated_at=utc_now())
        cursor = self._connection().execute(self._update_job_cas.sql, self._update_job_cas.parameters(values))
        return bool(cursor.rowcount == 1)

    def overwrite_job(self, store_id: int, fields: JobFields) -> int | None:
        """Update a job whatever its version (a description that never came from the store);
        the new version, or None if there is no such job."""
        values = {f"new_{name}": value for name, value in fields.as_params().items()}
        values.update(sid=store_id, match_id=fields.id, new_updated_at=utc_now())
        row = self._one(self._update_job_any, values)
        return None if row is None else int(row[0])

    def save_jobs(self, store_id: int, many: Sequence[JobFields]) -> list[int]:
        """Overwrite each job, or create it if it does not exist, all in one transaction; the
        version each job now has."""

        def work(connection: Any) -> list[int]:
            versions = []
            for fields in many:
                version = self.overwrite_job(store_id, fields)
                if version is None:
                    self.insert_job(store_id, fields)
                    version = 1
                versions.append(version)
            return versions

        result: list[int] = self._in_transaction(work)
        return result

    def delete_job(self, store_id: int, job_id: str) -> tuple[bool, list[str]]:
        """Delete a job and its cleanup files in one transaction; (existed, blob keys released)."""
        job_parameters = self._delete_job.parameters({"sid": store_id, "id": job_id})
        file_parameters = self._delete_cleanup_files.parameters({"sid": store_id, "job_id": job_id})

        def work(connection: Any) -> tuple[bool, list[str]]:
            existed = connection.execute(self._delete_job.sql, job_parameters).rowcount > 0
            keys = [str(row[0]) for row in connection.execute(self._delete_cleanup_files.sql, file_parameters)]
            return existed, keys

        result: tuple[bool, list[str]] = self._in_transaction(work)
        return result

    # --- files -------------------------------------------------------------------------------

    def get_file(self, store_id: int, file_id: str) -> FileRow | None:
        row = self._one(self._get_file, {"sid": store_id, "id": file_id})
        return None if row is None else FileRow(*row)

    def get_shared_file(self, store_id: int, name: str) -> FileRow | None:
        row = self._one(self._get_shared_file, {"sid": store_id, "shared_name": name})
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
            **new._asdict(),
        }
        statement = self._insert_file if new.job_id is None else self._insert_job_file
        if self._one(statement, values) is not None:
            return None
        existing = self.get_file(store_id, new.id)
        if existing is None:
            return "no job"
        return None if existing.blob_key == new.blob_key else "taken"

    def replace_file_content(
        self, store_id: int, file_id: str, expected_version: int, values: dict[str, Any]
    ) -> str | bool | None:
        """Compare-and-set a file's content in one transaction, as ``CatalogTx.replace_file_content``
        with ``values`` its keyword arguments. The replaced blob key on success; False if the file
        is gone; True if its version moved on."""
        parameters = _file_content_parameters(store_id, file_id, expected_version, values)
        statement = self._replace_file_content

        def work(connection: Any) -> str | bool | None:
            current = self.get_file(store_id, file_id)
            if current is None:
                return False
            if current.blob_key == values["blob_key"]:
                return None  # our own update, committed by an attempt whose reply was lost
            if connection.execute(statement.sql, statement.parameters(parameters)).rowcount != 1:
                return True
            return current.blob_key

        result: str | bool | None = self._in_transaction(work)
        return result

    def delete_file(self, store_id: int, file_id: str) -> str | None:
        row = self._one(self._delete_file, {"sid": store_id, "id": file_id})
        return None if row is None else str(row[0])

    # --- logs and stores ---------------------------------------------------------------------

    def append_log(self, store_id: int, message: bytes) -> None:
        self._one(
            self._insert_log, {"store_id": store_id, "message": message, "is_read": False, "created_at": utc_now()}
        )

    def has_unread_logs(self, store_id: int) -> bool:
        return self._one(self._has_unread_logs, {"sid": store_id}) is not None

    def claim_unread_logs(self, store_id: int) -> list[tuple[int, bytes]]:
        """Mark every unread log read and return them (seq, message) in order, in one statement."""
        statement = self._claim_unread_logs
        rows = self._connection().execute(statement.sql, statement.parameters({"sid": store_id})).fetchall()
        return sorted((int(seq), bytes(message)) for seq, message in rows)

    def read_logs(self, store_id: int) -> list[tuple[int, bytes]]:
        """Logs already marked read, in order."""
        statement = self._read_logs
        rows = self._connection().execute(statement.sql, statement.parameters({"sid": store_id}))
        return [(int(seq), bytes(message)) for seq, message in rows]

    def unclaim_logs(self, store_id: int, seqs: Sequence[int]) -> None:
        """Return logs to the unread state, in one transaction."""
        statement = self._unclaim_log
        rows = [statement.parameters({"sid": store_id, "seq": seq}) for seq in seqs]
        if rows:
            self._in_transaction(lambda connection: connection.cursor().executemany(statement.sql, rows))

    def delete_store(self, store_id: int) -> None:
        """A store's rows in every table, then its own row, in one transaction."""

        def work(connection: Any) -> None:
            for statement in self._delete_store_rows:
                connection.execute(statement.sql, statement.parameters({"sid": store_id}))

        self._in_transaction(work)

    def revision_and_store(self, name: str) -> tuple[str | None, StoreRow | None]:
        """The catalog's schema revision (None when it has none: a fresh file) and the store named
        ``name`` (None when there is none), in one statement."""
        try:
            row = self._one(self._revision_and_store, {"name": name})
        except Exception as error:  # the driver's "no such table" (SQLite) / undefined_table (PostgreSQL)
            if "no such table" in str(error) or getattr(error, "sqlstate", None) == "42P01":
                return None, None
            raise
        if row is None:
            return None, None
        return str(row[0]), (None if row[1] is None else StoreRow(*row[1:]))

    def insert_store(self, name: str, blob_url: str, workflow_id: str, config_json: str) -> int | None:
        """Insert a store's row; its new ID, or None if a store of that name exists."""
        row = self._one(
            self._insert_store,
            {
                "name": name,
                "blob_url": blob_url,
                "workflow_id": workflow_id,
                "config_json": config_json,
                "created_at": utc_now(),
            },
        )
        return None if row is None else int(row[0])


class DirectSQLite(DirectCatalog):
    """Per-thread sqlite3 connections to one catalog file, with the same pragmas as the engine."""

    STATEMENTS = SQLITE_STATEMENTS
    BIND_CONVERSIONS = BIND_CONVERSIONS
    RESULT_CONVERSIONS = RESULT_CONVERSIONS

    def __init__(self, path: str, *, synchronous: str, busy_timeout_ms: int) -> None:
        super().__init__()
        self.path = path
        self._synchronous = synchronous
        self._busy_timeout_ms = busy_timeout_ms

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout_ms / 1000,
            isolation_level=None,  # autocommit: one statement, one transaction
            check_same_thread=False,
            cached_statements=64,
        )
        for pragma in connection_pragmas(synchronous=self._synchronous, busy_timeout_ms=self._busy_timeout_ms):
            connection.execute(pragma)
        return connection

    def _is_integrity_error(self, error: BaseException) -> bool:
        return isinstance(error, sqlite3.IntegrityError)

    def create_schema_if_empty(self) -> bool:
        """Create the head schema in a database that holds nothing at all (a new catalog file)
        from the snapshot of what the migrations build (``compile_sqlite_schema``), in one
        transaction; False, touching nothing, if the database holds anything."""
        from jobstore.catalog.sqlite_schema import SNAPSHOT  # only stores being created need it

        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            if connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] != 0:
                connection.execute("ROLLBACK")
                return False
            for _, _, sql in SNAPSHOT["objects"]:
                connection.execute(sql)
            connection.executemany(
                "INSERT INTO jobstore_alembic_version (version_num) VALUES (?)", SNAPSHOT["versions"]
            )
            # As migration 0004: ANALYZE creates sqlite_stat1, whose rows are then the fixed ones,
            # and a second ANALYZE makes this connection plan with them.
            connection.execute("ANALYZE sqlite_master")
            connection.execute("DELETE FROM sqlite_stat1")
            connection.executemany("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?, ?, ?)", SNAPSHOT["statistics"])
            connection.execute("ANALYZE sqlite_master")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        return True

    def _in_transaction(self, work: Callable[[Any], Any]) -> Any:
        """BEGIN IMMEDIATE, as the engine does: the write lock first, so no deadlock can follow."""
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            result = work(connection)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        return result


class DirectPostgres(DirectCatalog):
    """Per-thread psycopg connections in autocommit mode: a single-row operation costs one round
    trip and none of SQLAlchemy's per-call machinery (a load: ~0.45 ms -> ~0.25 ms measured)."""

    STATEMENTS = POSTGRES_STATEMENTS
    BIND_CONVERSIONS = {"boolean": bool, "float": float, "binary": bytes}
    RESULT_CONVERSIONS = {"boolean": bool, "float": float, "binary": bytes}

    def __init__(self, connect_kwargs: dict[str, Any]) -> None:
        super().__init__()
        self._connect_kwargs = connect_kwargs
        self._delete_job_with_cleanup_files = self._statement("delete_job_with_cleanup_files")
        self._replace_file_content_in_one_statement = self._statement("replace_file_content_in_one_statement")
        self._upsert_jobs_from_arrays = self._statement("upsert_jobs_from_arrays")
        self._insert_jobs_from_arrays = self._statement("insert_jobs_from_arrays")

    def _connect(self) -> Any:
        import psycopg

        return psycopg.connect(autocommit=True, **self._connect_kwargs)

    def _is_integrity_error(self, error: BaseException) -> bool:
        import psycopg

        return isinstance(error, psycopg.IntegrityError)

    def _in_transaction(self, work: Callable[[Any], Any]) -> Any:
        connection = self._connection()
        with connection.transaction():
            return work(connection)

    def delete_job(self, store_id: int, job_id: str) -> tuple[bool, list[str]]:
        """One round trip (one statement) where the base class's transaction takes four."""
        statement = self._delete_job_with_cleanup_files
        parameters = statement.parameters({"sid": store_id, "id": job_id, "job_id": job_id})
        rows = self._connection().execute(statement.sql, parameters).fetchall()
        return bool(rows[0][0]), [str(row[1]) for row in rows if row[1] is not None]

    def replace_file_content(
        self, store_id: int, file_id: str, expected_version: int, values: dict[str, Any]
    ) -> str | bool | None:
        """One round trip (one statement) where the base class's transaction takes four."""
        statement = self._replace_file_content_in_one_statement
        parameters = statement.parameters(_file_content_parameters(store_id, file_id, expected_version, values))
        ((replaced_key, updated),) = self._connection().execute(statement.sql, parameters).fetchall()
        if replaced_key is None:
            return False
        if updated == 1:
            return str(replaced_key)
        # Not updated: our own update if the file already holds our fresh blob (committed by an
        # attempt whose reply was lost); the key it replaced is unknown then, left for gc.
        return None if replaced_key == values["blob_key"] else True

    @staticmethod
    def _job_arrays(store_id: int, many: Sequence[JobFields]) -> dict[str, Any]:
        """The parameters of a from-arrays statement: one array per job column."""
        columns = [fields.as_params() for fields in many]
        values: dict[str, Any] = {"sid": store_id, "now": utc_now()}
        for name in columns[0]:
            values[f"all_{name}"] = [row[name] for row in columns]
        # One element type per array for the driver (it refuses a list mixing ints and floats), each
        # value converted as PostgreSQL converts a single one into the column (float8 -> int8 rounds).
        values["all_cores"] = [None if cores is None else float(cores) for cores in values["all_cores"]]
        for name in ("all_memory", "all_disk"):
            values[name] = [None if value is None else round(value) for value in values[name]]
        return values

    def save_jobs(self, store_id: int, many: Sequence[JobFields]) -> list[int]:
        """One round trip (one upsert of column arrays) where the base class's transaction takes
        two plus one or two per job; a list naming a job twice keeps the base class's semantics."""
        if not many or len({fields.id for fields in many}) != len(many):
            return super().save_jobs(store_id, many)
        statement = self._upsert_jobs_from_arrays
        parameters = statement.parameters(self._job_arrays(store_id, many))
        rows = self._connection().execute(statement.sql, parameters).fetchall()
        versions = {str(job_id): int(version) for job_id, version in rows}
        return [versions[fields.id] for fields in many]

    def insert_jobs(self, store_id: int, many: Sequence[JobFields]) -> bool:
        """One round trip (one insert of column arrays, atomic in autocommit) where the base
        class's transaction takes three; False, nothing inserted, if an ID is taken or repeated."""
        if not many:
            return True
        statement = self._insert_jobs_from_arrays
        try:
            self._connection().execute(statement.sql, statement.parameters(self._job_arrays(store_id, many)))
        except Exception as error:
            if self._is_integrity_error(error):
                return False
            raise
        return True
