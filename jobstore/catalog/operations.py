"""Every row operation of the catalog, written once, for both dialects, inside and outside a batch.

Each public method here is one operation of the store on its catalog rows (a job, a file, a shared
file, a log, a store row). It runs the statements compiled from ``queries.py`` (see
``compile_fast_path.py``) on a per-thread connection of the database driver: ``sqlite3`` for
:class:`SQLiteOperations`, psycopg for :class:`PostgresOperations`. Outside a batch the connection
is in autocommit mode, so a single statement is its own atomic transaction; operations of several
statements take an explicit one. The catalog's one retry policy (``retry.py``) wraps each
operation, and the recognition of a commit whose reply was lost (a write token, a fresh blob key,
a fresh workflow ID found in the row a retry meets) lives in the operation that retries.

``batch()`` opens a real transaction on the same per-thread connection (``BEGIN IMMEDIATE`` on
SQLite, a psycopg transaction on PostgreSQL) and the same methods join it: nothing is retried
inside it (a failure raises CatalogError and the whole batch rolls back). Job creations in a batch
are queued and inserted together (one executemany, or one statement on PostgreSQL) before the next
operation or at the end; a batch that only creates jobs needs no transaction of its own.

This module does not import SQLAlchemy: a process that only runs row operations on SQLite (a Toil
worker, a new process per job) never pays for that import.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from jobstore.catalog.compiled import (
    POSTGRES_CONVERSIONS,
    SQLITE_BIND_CONVERSIONS,
    SQLITE_RESULT_CONVERSIONS,
    Statement,
)
from jobstore.catalog.idle import DEFAULT_IDLE_TIMEOUT_SECONDS, IDLE_TIMEOUT, application_name, release_when_idle
from jobstore.catalog.postgres_statements import STATEMENTS as POSTGRES_STATEMENTS
from jobstore.catalog.retry import is_catalog_error, is_transient, run_with_retries
from jobstore.catalog.rows import DESTROYED_ATTEMPT, FileRow, JobFields, LeaseRow, NewFile, StoreRow, utc_now
from jobstore.catalog.sqlite_pragmas import connection_pragmas
from jobstore.catalog.sqlite_statements import STATEMENTS as SQLITE_STATEMENTS
from jobstore.errors import (
    CatalogError,
    CatalogUnavailableError,
    JobStoreError,
    LeaseLostError,
    StoreBeingDestroyedError,
    batch_id_taken,
)
from jobstore.redact import redact_url

F = TypeVar("F", bound=Callable[..., Any])

#: How often a shared file's write is retried when concurrent writers keep replacing it.
SHARED_FILE_ATTEMPTS = 20


class _Holder:
    """Owns one thread's connection and closes it when that thread ends (its thread-local
    storage, and so this holder, goes away): threads come and go (transfer pools), connections
    must not pile up, least of all on a PostgreSQL server. ``in_use`` and ``last_used`` tell the
    idle reaper (``idle.py``) which connections it may close; ``lock`` guards the three."""

    __slots__ = ("__weakref__", "connection", "in_use", "last_used", "lock", "pid")

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.in_use = True
        self.last_used = time.monotonic()

    def close(self, getpid: Callable[[], int] = os.getpid) -> None:
        # getpid is bound at definition: at interpreter shutdown a holder may be collected after
        # the os module's globals were cleared.
        connection, self.connection = self.connection, None
        if connection is not None and self.pid == getpid():  # never a connection of the parent
            try:
                connection.close()
            except Exception:
                pass

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: nothing left to release it to
            pass


class _Batch:
    """One thread's open ``batch()``: its store, its queued creations, its transaction once open."""

    __slots__ = ("connection", "creates", "failure", "store_id", "transaction")

    def __init__(self, store_id: int) -> None:
        self.store_id = store_id
        self.creates: list[JobFields] = []
        #: The connection the transaction is open on (None until the first other operation).
        self.connection: Any = None
        #: The driver's transaction object, where it has one (psycopg).
        self.transaction: Any = None
        #: The error that broke this batch: every later operation of it raises it again.
        self.failure: CatalogError | None = None


class _ThreadState(threading.local):
    holder: _Holder | None = None
    batch: _Batch | None = None
    #: True while an operation runs: operations it calls run inside it, not retried on their own.
    busy = False
    #: The connection of the fenced write transaction open on this thread (see ``_fenced``).
    fenced: Any = None
    #: (store ID, attempt) while a write operation runs with its fence in its statements.
    fence: tuple[int, int] | None = None


def _operation(describe: str, *, writes: bool = False) -> Callable[[F], F]:
    """Run the method as one operation: retried as a whole outside a batch, joined to the batch's
    transaction inside one. An operation called by another runs inside its caller's.

    ``writes``: the method writes rows of the store its first argument names; for a store with a
    fence (``fence()``) it runs in a transaction that first checks the lease (``_fenced``)."""

    def decorate(method: F) -> F:
        @functools.wraps(method)
        def run(self: CatalogOperations, *args: Any) -> Any:
            state = self._state
            if state.busy:
                return method(self, *args)
            state.busy = True
            try:
                batch = state.batch
                if batch is None:
                    if not (writes and args[0] in self._fences):
                        return run_with_retries(self.where, lambda: method(self, *args), describe=describe)
                    if method.__name__ in self.FENCED_STATEMENT_OPERATIONS:
                        state.fence = (args[0], self._fences[args[0]])
                        try:
                            return run_with_retries(self.where, lambda: method(self, *args), describe=describe)
                        finally:
                            state.fence = None
                    return run_with_retries(
                        self.where, lambda: self._fenced(args[0], lambda: method(self, *args)), describe=describe
                    )
                return self._in_batch(batch, describe, lambda: method(self, *args))
            finally:
                state.busy = False
                if state.batch is None:
                    self._release()

        return cast(F, run)

    return decorate


class CatalogOperations:
    """The row operations on per-thread driver connections; subclasses say how to connect, which
    compiled statements and conversions to use, and how to begin and end a transaction."""

    STATEMENTS: dict[str, dict[str, Any]]
    #: Write operations whose every write statement has a ``<name>_fenced`` variant that carries
    #: the lease check itself (no transaction needed around it); other fenced writes run in one.
    FENCED_STATEMENT_OPERATIONS: frozenset[str] = frozenset()
    BIND_CONVERSIONS: dict[str, Callable[[Any], Any]]
    RESULT_CONVERSIONS: dict[str, Callable[[Any], Any]]

    def __init__(self, where: str) -> None:
        #: The catalog named in messages (password masked).
        self.where = where
        self._state = _ThreadState()
        self._lock = threading.Lock()
        self._holders: weakref.WeakSet[_Holder] = weakref.WeakSet()
        #: store ID -> the lease attempt this process writes for (see ``fence``).
        self._fences: dict[int, int] = {}
        #: Seconds after which an unused connection is closed (PostgreSQL only; 0: never).
        self.idle_timeout = 0.0
        self._statements = {name: self._statement(name) for name in self.STATEMENTS}

    def _statement(self, name: str) -> Statement:
        return Statement(self.STATEMENTS[name], self.BIND_CONVERSIONS, self.RESULT_CONVERSIONS)

    # --- connections -------------------------------------------------------------------------

    def _connect(self) -> Any:
        raise NotImplementedError

    def _connection(self) -> Any:
        """This thread's connection, marked in use until the operation ends (``_release``)."""
        holder = self._state.holder
        if holder is not None and holder.pid == os.getpid():
            with holder.lock:
                connection = holder.connection
                if not (
                    connection is None or getattr(connection, "closed", False) or getattr(connection, "broken", False)
                ):
                    holder.in_use = True
                    return connection
        connection = self._connect()
        holder = _Holder(connection)
        self._state.holder = holder
        with self._lock:
            self._holders.add(holder)
        return connection

    def _release(self) -> None:
        """The thread's operation (or batch) is over: its connection may now be closed when idle."""
        holder = self._state.holder
        if holder is not None:
            with holder.lock:
                holder.in_use = False
                holder.last_used = time.monotonic()

    def close_idle(self, now: float) -> None:
        """Close every thread's connection that no operation uses and that has been idle for
        ``idle_timeout`` seconds (called by the idle reaper's thread; see ``idle.py``)."""
        with self._lock:
            holders = list(self._holders)
        for holder in holders:
            with holder.lock:
                if holder.in_use or holder.connection is None or now - holder.last_used < self.idle_timeout:
                    continue
                connection, holder.connection = holder.connection, None
            if holder.pid == os.getpid():  # never a connection of the parent
                try:
                    connection.close()
                except Exception:
                    pass  # already broken: the server has let it go

    def close(self) -> None:
        """Close every thread's connection (a later operation opens a new one)."""
        with self._lock:
            holders, self._holders = list(self._holders), weakref.WeakSet()
        for holder in holders:
            holder.close()
        self._state = _ThreadState()

    def _execute(self, name: str, values: dict[str, Any]) -> tuple[Statement, Any, bool]:
        """Run the statement ``name`` (its fenced variant while a fence is in force): the
        statement run, its cursor, and whether it was fenced."""
        fence = self._state.fence
        fenced = self._statements.get(f"{name}_fenced") if fence is not None else None
        if fenced is None:
            statement = self._statements[name]
            return statement, self._connection().execute(statement.sql, statement.parameters(values)), False
        assert fence is not None
        values = {**values, "fence_sid": fence[0], "fence_attempt": fence[1]}
        return fenced, self._connection().execute(fenced.sql, fenced.parameters(values)), True

    def _one(self, name: str, values: dict[str, Any]) -> tuple[Any, ...] | None:
        # fetchall, not fetchone: a statement (and in autocommit its transaction, with any write
        # lock) only finishes when it has been stepped to the end.
        statement, cursor, fenced = self._execute(name, values)
        rows = cursor.fetchall() if cursor.description is not None else []
        if fenced and not rows:
            self._check_fence_held()
        return statement.convert(rows[0]) if rows else None

    def _all(self, name: str, values: dict[str, Any]) -> list[Any]:
        _, cursor, fenced = self._execute(name, values)
        rows = list(cursor.fetchall())
        if fenced and not rows:
            self._check_fence_held()
        return rows

    def _rowcount(self, name: str, values: dict[str, Any]) -> int:
        _, cursor, fenced = self._execute(name, values)
        count = int(cursor.rowcount)
        if fenced and count == 0:
            self._check_fence_held()
        return count

    def _check_fence_held(self) -> None:
        """A fenced statement did nothing: raise LeaseLostError if that is because the lease moved
        on (an attempt only grows, so a lease still at ours now was at ours when it ran)."""
        fence = self._state.fence
        assert fence is not None
        row = self._one("lease_attempt", {"sid": fence[0]})
        if row is None or int(row[0]) != fence[1]:
            raise _lease_lost(fence[1], row)

    def _is_integrity_error(self, error: BaseException) -> bool:
        """A constraint violation (a taken key), which no retry cures."""
        raise NotImplementedError

    # --- transactions ------------------------------------------------------------------------

    def _begin(self, connection: Any) -> Any:
        """Open a write transaction on ``connection``; what ``_end`` needs to close it."""
        raise NotImplementedError

    def _end(self, connection: Any, transaction: Any, error: BaseException | None) -> None:
        """Commit (``error`` None) or roll back the transaction ``_begin`` opened."""
        raise NotImplementedError

    def _savepoint(self, connection: Any) -> AbstractContextManager[Any]:
        """A nested transaction inside the open one: rolled back alone if its block raises."""
        raise NotImplementedError

    def _in_transaction(self, work: Callable[[Any], Any]) -> Any:
        """Several statements as one write transaction (the batch's or a fenced write's, when one
        is open)."""
        batch = self._state.batch
        if batch is not None and batch.connection is not None:
            return work(batch.connection)
        if self._state.fenced is not None:
            return work(self._state.fenced)
        connection = self._connection()
        transaction = self._begin(connection)
        try:
            result = work(connection)
        except BaseException as error:
            self._end(connection, transaction, error)
            raise
        self._end(connection, transaction, None)
        return result

    @contextmanager
    def batch(self, store_id: int) -> Iterator[None]:
        """Run this thread's operations inside the block in one transaction (all or nothing).
        A nested batch joins the outer one."""
        state = self._state
        if state.batch is not None:
            yield
            return
        batch = state.batch = _Batch(store_id)
        try:
            yield
            if batch.connection is not None:
                self._in_batch(batch, "commit the batch", lambda: None)  # the creations queued last
                try:
                    self._end(batch.connection, batch.transaction, None)
                except Exception as error:
                    raise self._batch_failure("commit the batch", error) from error
                batch.connection = None
            elif batch.creates:
                state.batch = None
                if not self._insert_new_jobs(store_id, batch.creates):
                    raise batch_id_taken()
        except BaseException as error:
            if batch.connection is not None:
                try:
                    self._end(batch.connection, batch.transaction, error)
                except Exception:
                    pass  # the connection is broken: the server rolls the transaction back
            raise
        finally:
            state.batch = None
            self._release()

    def in_batch(self) -> bool:
        """Whether this thread is inside ``batch()``."""
        return self._state.batch is not None

    def _in_batch(self, batch: _Batch, describe: str, work: Callable[[], Any]) -> Any:
        """Run ``work`` inside the batch's transaction, opening it (and inserting the creations
        queued so far) first; database failures become CatalogError, since nothing is retried."""
        if batch.failure is not None:
            raise batch.failure
        try:
            if batch.connection is None:
                connection = self._connection()
                batch.transaction = self._begin_checked(connection, batch.store_id)
                batch.connection = connection
            self._flush_creates()
            return work()
        except Exception as error:
            if not is_catalog_error(error):
                raise
            batch.failure = self._batch_failure(describe, error)
            raise batch.failure from error

    def _flush_creates(self) -> None:
        batch = self._state.batch
        assert batch is not None
        if batch.creates:
            creates, batch.creates = batch.creates, []
            if not self._insert_jobs(batch.store_id, creates):
                raise batch_id_taken()

    def _batch_failure(self, describe: str, error: BaseException) -> CatalogError:
        original = getattr(error, "orig", None) or error
        kind = CatalogUnavailableError if is_transient(error) else CatalogError
        return kind(
            f"The catalog ({self.where}) failed during a batch, trying to {describe}: {type(original).__name__}: "
            f"{redact_url(str(original)).strip()[:300]}. Nothing of the batch was committed; run it again "
            "(once the database is reachable)."
        )

    # --- fencing -----------------------------------------------------------------------------

    def fence(self, store_id: int, attempt: int | None) -> None:
        """From now on, write the store's rows only while its leader lease is at ``attempt``
        (None: no longer check). Each write operation then checks the lease row in the transaction
        that writes (locking it against a takeover on PostgreSQL), and raises LeaseLostError,
        writing nothing, when another attempt holds the store: as a condition of its one statement
        (``FENCED_STATEMENT_OPERATIONS``), else as the first statement of a transaction around it."""
        if attempt is None:
            self._fences.pop(store_id, None)
        else:
            self._fences[store_id] = attempt

    def _fenced(self, store_id: int, work: Callable[[], Any]) -> Any:
        """``work`` in one write transaction that first checks the fence."""
        connection = self._connection()
        transaction = self._begin_checked(connection, store_id)
        self._state.fenced = connection
        try:
            result = work()
        except BaseException as error:
            self._state.fenced = None
            self._end(connection, transaction, error)
            raise
        self._state.fenced = None
        self._end(connection, transaction, None)
        return result

    def _begin_checked(self, connection: Any, store_id: int) -> Any:
        """``_begin``; for a fenced store the transaction's first statement then reads the lease
        (closing the transaction again and raising LeaseLostError when another attempt holds it)."""
        attempt = self._fences.get(store_id)
        transaction = self._begin(connection)
        if attempt is None:
            return transaction
        try:
            row = self._one("lease_attempt", {"sid": store_id})
            if row is None or int(row[0]) != attempt:
                raise _lease_lost(attempt, row)
        except BaseException as error:
            self._end(connection, transaction, error)
            raise
        return transaction

    @_operation("check the leader lease", writes=True)
    def check_fence(self, store_id: int) -> None:
        """Raise LeaseLostError if the store has a fence that no longer holds (else nothing)."""

    # --- jobs --------------------------------------------------------------------------------

    @_operation("load a job")
    def get_job(self, store_id: int, job_id: str) -> tuple[int, str] | None:
        """(version, description) of a job, or None."""
        row = self._one("get_job", {"sid": store_id, "id": job_id})
        return None if row is None else (int(row[0]), str(row[1]))

    @_operation("check a job")
    def job_exists(self, store_id: int, job_id: str) -> bool:
        return self._one("job_exists", {"sid": store_id, "id": job_id}) is not None

    def _job_write_token(self, store_id: int, job_id: str) -> int | None:
        """The token of the write that produced the job's row (0 if none); None if no such job."""
        row = self._one("job_write_token", {"sid": store_id, "id": job_id})
        return None if row is None else int(row[0])

    @_operation("list jobs")
    def job_page(self, store_id: int, after: str, page_size: int) -> list[tuple[str, int, str]]:
        """(ID, version, description) of up to ``page_size`` jobs with IDs after ``after``, in ID order."""
        rows = self._all("job_page", {"sid": store_id, "after": after, "page_size": page_size})
        return [(str(i), int(v), str(d)) for i, v, d in rows]

    def create_job(self, store_id: int, fields: JobFields) -> bool:
        """Insert version 1 of a job; False if its ID is taken. Inside a batch the insert is
        queued (a taken ID then fails the batch)."""
        batch = self._state.batch
        if batch is not None:
            batch.creates.append(fields)
            return True
        return bool(self._create_job(store_id, fields))

    @_operation("create a job", writes=True)
    def _create_job(self, store_id: int, fields: JobFields) -> bool:
        # A retry whose first attempt committed finds its own token (random per write): success.
        return self._insert_job(store_id, fields) or self._job_write_token(store_id, fields.id) == fields.write_token

    def _insert_job(self, store_id: int, fields: JobFields) -> bool:
        now = utc_now()
        values = fields.as_params()
        values.update(store_id=store_id, version=1, created_at=now, updated_at=now)
        return self._one("insert_job", values) is not None

    @_operation("create the batch's jobs", writes=True)
    def _insert_new_jobs(self, store_id: int, many: Sequence[JobFields]) -> bool:
        """A batch's creations when it did nothing else, in one transaction of their own."""
        # A retry whose first attempt committed finds its own token: the batch went in whole.
        return self._insert_jobs(store_id, many) or self._job_write_token(store_id, many[0].id) == many[0].write_token

    def _insert_jobs(self, store_id: int, many: Sequence[JobFields]) -> bool:
        """Insert version 1 of many jobs in one transaction, one executemany; False, and nothing
        inserted, if any ID is taken (or repeated in ``many``)."""
        statement = self._statements["insert_jobs"]
        now = utc_now()
        rows = statement.parameter_rows(
            [fields.as_params() for fields in many],
            {"store_id": store_id, "version": 1, "created_at": now, "updated_at": now},
        )

        def insert(connection: Any) -> None:
            if self._state.fenced is None:
                connection.cursor().executemany(statement.sql, rows)
            else:  # rows inserted before a taken ID must not commit with the fenced transaction
                with self._savepoint(connection):
                    connection.cursor().executemany(statement.sql, rows)

        try:
            self._in_transaction(insert)
        except Exception as error:
            if self._is_integrity_error(error):
                return False
            raise
        return True

    @_operation("update a job", writes=True)
    def update_job(self, store_id: int, fields: JobFields, expected_version: int | None) -> int | bool:
        """Store a job's new fields if its version is still ``expected_version`` (any version when
        None). The new version on success; True if the version moved on; False if there is no job.

        A compare-and-set that changed nothing reads the row's write token: our own means an
        earlier attempt of this call committed and its reply was lost (success)."""
        if expected_version is None:
            version = self._overwrite_job(store_id, fields)
            return False if version is None else version
        values = {f"new_{name}": value for name, value in fields.as_params().items()}
        values.update(sid=store_id, match_id=fields.id, expected=expected_version, new_updated_at=utc_now())
        if self._rowcount("update_job_cas", values) == 1:
            return expected_version + 1
        token = self._job_write_token(store_id, fields.id)
        if token is None:
            return False
        return expected_version + 1 if token == fields.write_token else True

    def _overwrite_job(self, store_id: int, fields: JobFields) -> int | None:
        """Update a job whatever its version; the new version, or None if there is no such job."""
        values = {f"new_{name}": value for name, value in fields.as_params().items()}
        values.update(sid=store_id, match_id=fields.id, new_updated_at=utc_now())
        row = self._one("update_job_any", values)
        return None if row is None else int(row[0])

    @_operation("save jobs", writes=True)
    def save_jobs(self, store_id: int, many: Sequence[JobFields]) -> list[int]:
        """Overwrite each job, or create it if it does not exist, all in one transaction; the
        version each job now has."""
        return cast(list[int], self._in_transaction(lambda _: self._save_each(store_id, many)))

    def _save_each(self, store_id: int, many: Sequence[JobFields]) -> list[int]:
        versions = []
        for fields in many:
            version = self._overwrite_job(store_id, fields)
            if version is None:
                if not self._insert_job(store_id, fields):
                    raise JobStoreError(f"Job {fields.id!r} appeared while it was being saved; save it again.")
                version = 1
            versions.append(version)
        return versions

    @_operation("delete a job", writes=True)
    def delete_job(self, store_id: int, job_id: str) -> tuple[bool, list[str]]:
        """Delete a job and its cleanup files in one transaction; (existed, blob keys released)."""

        def work(_: Any) -> tuple[bool, list[str]]:
            existed = self._rowcount("delete_job", {"sid": store_id, "id": job_id}) > 0
            keys = [str(row[0]) for row in self._all("delete_cleanup_files", {"sid": store_id, "job_id": job_id})]
            return existed, keys

        return cast(tuple[bool, list[str]], self._in_transaction(work))

    # --- files -------------------------------------------------------------------------------

    @_operation("look up a file")
    def get_file(self, store_id: int, file_id: str) -> FileRow | None:
        row = self._one("get_file", {"sid": store_id, "id": file_id})
        return None if row is None else FileRow(*row)

    @_operation("look up a shared file")
    def get_shared_file(self, store_id: int, name: str) -> FileRow | None:
        row = self._one("get_shared_file", {"sid": store_id, "shared_name": name})
        return None if row is None else FileRow(*row)

    @_operation("check a file")
    def file_exists(self, store_id: int, file_id: str) -> bool:
        return self._one("file_exists", {"sid": store_id, "id": file_id}) is not None

    @_operation("look up a file size")
    def file_size(self, store_id: int, file_id: str) -> int | None:
        row = self._one("file_size", {"sid": store_id, "id": file_id})
        return None if row is None else int(row[0])

    @_operation("record a new file", writes=True)
    def insert_file(self, store_id: int, new: NewFile) -> str | None:
        """Insert a file row (its job must exist) in one atomic statement.

        None on success, else "no job" or "taken". When nothing was inserted the existing row
        tells which: none means the job was missing; one with this blob is our own insert whose
        reply was lost (success); another blob means a taken ID.
        """
        now: datetime = utc_now()
        values = {"store_id": store_id, "version": 1, "created_at": now, "updated_at": now, **new._asdict()}
        if self._one("insert_file" if new.job_id is None else "insert_job_file", values) is not None:
            return None
        existing = self.get_file(store_id, new.id)
        if existing is None:
            return "no job"
        return None if existing.blob_key == new.blob_key else "taken"

    @_operation("update a file", writes=True)
    def replace_file_content(
        self, store_id: int, file_id: str, expected_version: int, values: dict[str, Any]
    ) -> str | bool | None:
        """Point a file at new content (``values``: size, checksum, blob_key, encrypted, and
        optionally executable and source_url) if its version is still ``expected_version``.

        The replaced blob key on success; False if the file is gone; True if its version moved
        on; None if the file already holds ``values["blob_key"]`` (our own update, whose reply was
        lost: the key it replaced is unknown then, left for gc)."""

        def work(connection: Any) -> str | bool | None:
            current = self.get_file(store_id, file_id)
            if current is None:
                return False
            if current.blob_key == values["blob_key"]:
                return None
            if self._rowcount("replace_file_content", _content_parameters(store_id, file_id, expected_version, values)):
                return current.blob_key
            return True

        return cast("str | bool | None", self._in_transaction(work))

    @_operation("write a shared file", writes=True)
    def put_shared_file(self, store_id: int, new: NewFile) -> str | bool | None:
        """Point the shared file ``new.shared_name`` at ``new``'s blob: insert it, or replace its
        content by compare-and-set (last writer wins, as Toil's shared files do).

        None when the row points at the new blob and replaced nothing, the replaced blob's key,
        or True when concurrent writers kept getting there first."""
        assert new.shared_name is not None
        content = {
            "size": new.size,
            "checksum": new.checksum,
            "blob_key": new.blob_key,
            "encrypted": new.encrypted,
            "executable": new.executable,
            "source_url": new.source_url,
            "reference": new.reference,
        }
        for _ in range(SHARED_FILE_ATTEMPTS):
            # Each step is atomic, and the compare-and-set catches whatever happens between them.
            current = self.get_shared_file(store_id, new.shared_name)
            if current is None:
                if self.insert_file(store_id, new) is None:
                    return None
                continue
            if current.blob_key == new.blob_key:
                return None  # ours already: an attempt whose reply was lost
            replaced = self.replace_file_content(store_id, current.id, current.version, content)
            if replaced is not True and replaced is not False:
                return replaced
        return True

    @_operation("delete a file", writes=True)
    def delete_file(self, store_id: int, file_id: str) -> str | None:
        """Delete a file row; its blob key, or None if there was no such file."""
        row = self._one("delete_file", {"sid": store_id, "id": file_id})
        return None if row is None else str(row[0])

    @_operation("list files")
    def all_file_ids(self, store_id: int) -> list[str]:
        return [str(row[0]) for row in self._all("all_file_ids", {"sid": store_id})]

    @_operation("find orphaned files")
    def orphaned_file_ids(self, store_id: int) -> list[str]:
        return [str(row[0]) for row in self._all("orphaned_file_ids", {"sid": store_id})]

    @_operation("summarise jobs")
    def job_file_summary(self, store_id: int) -> list[tuple[str, str, str, int, int]]:
        """Per job: (id, name, state, files owned, bytes owned), largest first."""
        return [
            (str(i), str(n), str(s), int(c), int(b))
            for i, n, s, c, b in self._all("job_file_summary", {"sid": store_id})
        ]

    # --- logs --------------------------------------------------------------------------------

    @_operation("write a log", writes=True)
    def append_log(self, store_id: int, message: bytes) -> None:
        self._one("insert_log", {"store_id": store_id, "message": message, "is_read": False, "created_at": utc_now()})

    @_operation("check for unread logs")
    def has_unread_logs(self, store_id: int) -> bool:
        return self._one("has_unread_logs", {"sid": store_id}) is not None

    @_operation("claim unread logs", writes=True)
    def claim_unread_logs(self, store_id: int) -> list[tuple[int, bytes]]:
        """Mark every unread log read and return them (seq, message) in order, in one statement:
        two concurrent readers never receive the same message."""
        return sorted((int(seq), bytes(message)) for seq, message in self._all("claim_unread_logs", {"sid": store_id}))

    @_operation("read logs")
    def read_logs(self, store_id: int) -> list[tuple[int, bytes]]:
        """Logs already marked read, in order."""
        return [(int(seq), bytes(message)) for seq, message in self._all("read_logs", {"sid": store_id})]

    @_operation("return undelivered logs", writes=True)
    def unclaim_logs(self, store_id: int, seqs: Sequence[int]) -> None:
        """Return logs to the unread state, in one transaction."""
        statement = self._statements["unclaim_log"]
        rows = [statement.parameters({"sid": store_id, "seq": seq}) for seq in seqs]
        if rows:
            self._in_transaction(lambda connection: connection.cursor().executemany(statement.sql, rows))

    # --- stores ------------------------------------------------------------------------------

    @_operation("delete the store's rows", writes=True)
    def delete_store(self, store_id: int) -> None:
        """A store's rows in every table, then its own row, in one transaction."""
        names = (
            "delete_store_logs",
            "delete_store_files",
            "delete_store_jobs",
            "delete_store_condemned_blobs",
            "delete_store_leases",
        )

        def work(_: Any) -> None:
            for name in (*names, "delete_store_row"):
                self._rowcount(name, {"sid": store_id})

        self._in_transaction(work)

    # --- the leader lease ----------------------------------------------------------------------

    @_operation("take the leader lease")
    def take_lease(self, store_id: int, holder: str, now: datetime, expires: datetime, expected: int) -> int | None:
        """Create the store's lease, or take it if it expired or is still the attempt ``expected``
        (a takeover of the lease the caller saw; 0 for none). The new attempt, or None when another
        holder has it (which may be this call's own first try, whose reply was lost: compare the
        holder, which is unique to the acquisition)."""
        values = {"store_id": store_id, "attempt": 1, "holder": holder, "acquired_at": now, "expires_at": expires}
        if self._one("insert_lease", values) is not None:
            return 1
        row = self._one(
            "take_lease", {"sid": store_id, "now": now, "expires": expires, "expected": expected, "holder": holder}
        )
        return None if row is None else int(row[0])

    @_operation("renew the leader lease")
    def renew_lease(self, store_id: int, attempt: int, expires: datetime) -> bool:
        """Push the lease's expiry to ``expires`` if it is still ``attempt``; False if it was taken."""
        return self._rowcount("renew_lease", {"sid": store_id, "attempt": attempt, "expires": expires}) == 1

    @_operation("mark the store as being destroyed")
    def mark_destroyed(self, store_id: int, holder: str, now: datetime) -> None:
        """Move the store's lease to DESTROYED_ATTEMPT for good (creating it if there is none): from
        the commit on, every fenced write of any process is refused, no leader can take the lease,
        and resume() refuses the store. On PostgreSQL this waits for fenced writes in flight (their
        FOR KEY SHARE lock), so none lands after it."""
        forever = datetime(9999, 1, 1, tzinfo=UTC)
        values = {"store_id": store_id, "attempt": DESTROYED_ATTEMPT, "holder": holder}

        def work(_: Any) -> None:
            inserted = self._one(
                "insert_lease_of_existing_store", {**values, "acquired_at": now, "expires_at": forever}
            )
            if inserted is None:  # a lease exists (or the store is gone: then this changes nothing)
                self._rowcount("mark_lease_destroyed", {"sid": store_id, **values, "now": now, "expires": forever})

        self._in_transaction(work)

    @_operation("read the leader lease")
    def get_lease(self, store_id: int) -> LeaseRow | None:
        row = self._one("select_lease", {"sid": store_id})
        return None if row is None else LeaseRow(int(row[0]), str(row[1]), _aware(row[2]), _aware(row[3]))

    @_operation("look up the store")
    def revision_and_store(self, name: str) -> tuple[str | None, StoreRow | None]:
        """The catalog's schema revision (None when it has none: a fresh file) and the store named
        ``name`` (None when there is none), in one statement."""
        try:
            row = self._one("revision_and_store", {"name": name})
        except Exception as error:  # the driver's "no such table" (SQLite) / undefined_table (PostgreSQL)
            if "no such table" in str(error) or getattr(error, "sqlstate", None) == "42P01":
                return None, None
            raise
        if row is None:
            return None, None
        if row[1] is None:
            return str(row[0]), None
        lease_attempt = row[7]
        being_destroyed = lease_attempt is not None and int(lease_attempt) >= DESTROYED_ATTEMPT
        return str(row[0]), StoreRow(*row[1:7])._replace(being_destroyed=being_destroyed)

    @_operation("create the store")
    def create_store(self, name: str, blob_url: str, workflow_id: str, config_json: str) -> int | None:
        """Insert a store's row; its new ID, or None if a store of that name exists (another
        store: a retry whose first attempt committed finds its own, fresh workflow ID)."""
        values = {
            "name": name,
            "blob_url": blob_url,
            "workflow_id": workflow_id,
            "config_json": config_json,
            "created_at": utc_now(),
        }
        row = self._one("insert_store", values)
        if row is not None:
            return int(row[0])
        existing = self.revision_and_store(name)[1]
        if existing is not None and existing.workflow_id == workflow_id and existing.blob_url == blob_url:
            return existing.id
        return None


def _lease_lost(attempt: int, row: tuple[Any, ...] | None) -> JobStoreError:
    """The refusal of a write for ``attempt`` when the lease row reads ``row``: LeaseLostError, or
    NoSuchJobStoreException once the store is being destroyed."""
    if row is not None and int(row[0]) >= DESTROYED_ATTEMPT:
        return StoreBeingDestroyedError("", "This write was refused and nothing was written: stop this process.")
    now = "no longer exists (the store was destroyed)" if row is None else f"is now at attempt {row[0]}"
    return LeaseLostError(
        f"Refused a write to the job store: this process writes for attempt {attempt} of the store's leader "
        f"lease, and the lease {now}. Another leader runs the workflow; stop this process (its writes would "
        "corrupt that leader's state)."
    )


def _aware(moment: datetime) -> datetime:
    """UTC with its zone: SQLite hands timestamps back without one."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _content_parameters(store_id: int, file_id: str, expected_version: int, values: dict[str, Any]) -> dict[str, Any]:
    """The bound values of a file's compare-and-set from ``replace_file_content``'s ``values``."""
    parameters = {f"new_{name}": value for name, value in values.items()}
    parameters.setdefault("new_executable", None)
    parameters.setdefault("new_source_url", None)
    parameters.setdefault("new_reference", None)
    parameters.update(sid=store_id, match_id=file_id, expected=expected_version, new_updated_at=utc_now())
    return parameters


class SQLiteOperations(CatalogOperations):
    """Per-thread sqlite3 connections to one catalog file, with the same pragmas as the engine."""

    STATEMENTS = SQLITE_STATEMENTS
    FENCED_STATEMENT_OPERATIONS = frozenset(
        {"update_job", "_create_job", "insert_file", "delete_file", "append_log", "claim_unread_logs"}
    )
    BIND_CONVERSIONS = SQLITE_BIND_CONVERSIONS
    RESULT_CONVERSIONS = SQLITE_RESULT_CONVERSIONS

    def __init__(self, path: str, *, synchronous: str, busy_timeout_ms: int) -> None:
        super().__init__(redact_url(f"sqlite:///{path}"))
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

    def _begin(self, connection: Any) -> None:
        # IMMEDIATE, as the engine does: the write lock first, so no deadlock can follow.
        connection.execute("BEGIN IMMEDIATE")

    def _end(self, connection: Any, transaction: Any, error: BaseException | None) -> None:
        connection.execute("ROLLBACK" if error is not None else "COMMIT")

    @contextmanager
    def _savepoint(self, connection: Any) -> Iterator[None]:
        connection.execute("SAVEPOINT nested")
        try:
            yield
        except BaseException:
            connection.execute("ROLLBACK TO nested")
            connection.execute("RELEASE nested")
            raise
        connection.execute("RELEASE nested")

    @_operation("create the catalog's schema")
    def create_schema_if_empty(self) -> bool:
        """Create the head schema in a database that holds nothing at all (a new catalog file)
        from the snapshot of what the migrations build (``compile_sqlite_schema``), in one
        transaction; False, touching nothing, if the database holds anything."""
        from jobstore.catalog.sqlite_schema import SNAPSHOT  # only stores being created need it

        def work(connection: Any) -> bool:
            if connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] != 0:
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
            return True

        return bool(self._in_transaction(work))


class PostgresOperations(CatalogOperations):
    """Per-thread psycopg connections in autocommit mode: a single-row operation costs one round
    trip and none of SQLAlchemy's per-call machinery. Where several statements would each cost a
    round trip, one statement with data-modifying WITH clauses or column arrays does the same."""

    STATEMENTS = POSTGRES_STATEMENTS
    FENCED_STATEMENT_OPERATIONS = frozenset(
        {
            "update_job",
            "delete_job",
            "replace_file_content",
            "_create_job",
            "_insert_new_jobs",
            "save_jobs",
            "insert_file",
            "delete_file",
            "append_log",
            "claim_unread_logs",
        }
    )
    BIND_CONVERSIONS = POSTGRES_CONVERSIONS
    RESULT_CONVERSIONS = POSTGRES_CONVERSIONS

    def __init__(self, connect_kwargs: dict[str, Any], where: str) -> None:
        super().__init__(where)
        connect_kwargs = dict(connect_kwargs)
        self.idle_timeout = float(connect_kwargs.pop(IDLE_TIMEOUT, DEFAULT_IDLE_TIMEOUT_SECONDS))
        self._connect_kwargs = connect_kwargs
        release_when_idle(self)

    def _connect(self) -> Any:
        import psycopg

        # The process ID names who holds each of the server's connections (pg_stat_activity).
        return psycopg.connect(autocommit=True, **{"application_name": application_name(), **self._connect_kwargs})

    def _is_integrity_error(self, error: BaseException) -> bool:
        psycopg = sys.modules.get("psycopg")
        return psycopg is not None and isinstance(error, psycopg.IntegrityError)

    def _begin(self, connection: Any) -> Any:
        transaction = connection.transaction()
        transaction.__enter__()
        return transaction

    def _end(self, connection: Any, transaction: Any, error: BaseException | None) -> None:
        if error is None:
            transaction.__exit__(None, None, None)
        else:
            transaction.__exit__(type(error), error, error.__traceback__)

    def _savepoint(self, connection: Any) -> AbstractContextManager[Any]:
        return cast(AbstractContextManager[Any], connection.transaction())  # nested: a savepoint

    @_operation("delete a job", writes=True)
    def delete_job(self, store_id: int, job_id: str) -> tuple[bool, list[str]]:
        """One round trip (one statement) where the transaction of two deletes takes four."""
        rows = self._all("delete_job_with_cleanup_files", {"sid": store_id, "id": job_id, "job_id": job_id})
        if not rows[0][0] and self._state.fence is not None:
            self._check_fence_held()  # nothing deleted: no such job, or the fence refused it
        return bool(rows[0][0]), [str(row[1]) for row in rows if row[1] is not None]

    @_operation("update a file", writes=True)
    def replace_file_content(
        self, store_id: int, file_id: str, expected_version: int, values: dict[str, Any]
    ) -> str | bool | None:
        """One round trip (one statement) where the transaction of a read and an update takes four."""
        parameters = _content_parameters(store_id, file_id, expected_version, values)
        ((replaced_key, updated),) = self._all("replace_file_content_in_one_statement", parameters)
        if updated != 1 and self._state.fence is not None:
            self._check_fence_held()  # nothing replaced: a miss, a newer version, or the fence
        if replaced_key is None:
            return False
        if updated == 1:
            return str(replaced_key)
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

    @_operation("save jobs", writes=True)
    def save_jobs(self, store_id: int, many: Sequence[JobFields]) -> list[int]:
        """One round trip (one upsert of column arrays) where the transaction takes two plus one
        or two per job; a list naming a job twice is saved job by job, in order."""
        if not many or len({fields.id for fields in many}) != len(many):
            return cast(list[int], self._in_transaction(lambda _: self._save_each(store_id, many)))
        versions = {
            str(job_id): int(version)
            for job_id, version in self._all("upsert_jobs_from_arrays", self._job_arrays(store_id, many))
        }
        return [versions[fields.id] for fields in many]

    def _insert_jobs(self, store_id: int, many: Sequence[JobFields]) -> bool:
        """One round trip (one insert of column arrays, atomic in autocommit) where the
        transaction takes three; False, nothing inserted, if an ID is taken or repeated."""
        if not many:
            return True
        arrays = self._job_arrays(store_id, many)
        try:
            if self._state.fenced is None:
                self._rowcount("insert_jobs_from_arrays", arrays)
            else:  # a taken ID must not abort the fenced transaction around it
                with self._savepoint(self._connection()):
                    self._rowcount("insert_jobs_from_arrays", arrays)
        except Exception as error:
            if self._is_integrity_error(error):
                return False
            raise
        return True
