"""Every query the store makes, dialect-generic, on one connection inside one transaction.

Statements are built once at import time with bound parameters, so SQLAlchemy's compiled cache
serves every call and no SQL is ever assembled from strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Table,
    Text,
    and_,
    bindparam,
    cast,
    column,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    table,
    true,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import BindParameter

from jobstore.catalog.rows import JOB_FIELD_NAMES, FileRow, JobFields, JobRow, NewFile, StoreRow, utc_now
from jobstore.catalog.schema import VERSION_TABLE, condemned_blobs, files, jobs, logs, stores
from jobstore.errors import JobStoreError, batch_id_taken

__all__ = ["JOB_FIELD_NAMES", "CatalogTx", "FileRow", "JobFields", "JobRow", "NewFile", "StoreRow", "utc_now"]


_FILE_COLUMNS = (
    files.c.id,
    files.c.version,
    files.c.job_id,
    files.c.cleanup,
    files.c.shared_name,
    files.c.basename,
    files.c.size,
    files.c.checksum,
    files.c.blob_key,
    files.c.executable,
    files.c.encrypted,
    files.c.source_url,
    files.c.created_at,
    files.c.updated_at,
)

# --- statements, built once -------------------------------------------------------------------

_store_id: BindParameter[int] = bindparam("sid")
_job_id: BindParameter[str] = bindparam("id")

_SELECT_JOB = select(jobs.c.version, jobs.c.description).where(jobs.c.store_id == _store_id, jobs.c.id == _job_id)
_JOB_EXISTS = select(literal(1)).where(jobs.c.store_id == _store_id, jobs.c.id == _job_id)
# Whether a store has an unread log: the cheap read that spares an empty read_logs() poll (Toil's
# leader polls about twice a second) a write transaction.
_HAS_UNREAD_LOGS = select(literal(1)).where(logs.c.store_id == _store_id, logs.c.is_read.is_(False)).limit(1)
#: Marks every unread log read and returns them: atomic, so two readers never get one message.
_CLAIM_UNREAD_LOGS = (
    update(logs)
    .where(logs.c.store_id == _store_id, logs.c.is_read.is_(False))
    .values(is_read=True)
    .returning(logs.c.seq, logs.c.message)
)
_READ_LOGS = (
    select(logs.c.seq, logs.c.message)
    .where(logs.c.store_id == _store_id, logs.c.is_read.is_(True))
    .order_by(logs.c.seq)
)
_UNCLAIM_LOG = update(logs).where(logs.c.store_id == _store_id, logs.c.seq == bindparam("seq")).values(is_read=False)
#: A store's rows, table by table, the store's own row last (explicitly, not relying on ON DELETE
#: CASCADE, which SQLite applies only with foreign keys on).
DELETE_STORE_ROWS = {
    **{
        f"delete_store_{each.name}": delete(each).where(each.c.store_id == _store_id)
        for each in (logs, files, jobs, condemned_blobs)
    },
    "delete_store_row": delete(stores).where(stores.c.id == _store_id),
}
# 0 for a row without a token (written before migration 0005), which no write's token equals.
_JOB_WRITE_TOKEN = select(func.coalesce(jobs.c.write_token, 0)).where(
    jobs.c.store_id == _store_id, jobs.c.id == _job_id
)
_JOB_VALUES = {
    "version": jobs.c.version + 1,
    **{name: bindparam(f"new_{name}") for name in JOB_FIELD_NAMES if name != "id"},
    "updated_at": bindparam("new_updated_at"),
}
_UPDATE_JOB_CAS = (
    update(jobs)
    .where(
        jobs.c.store_id == _store_id,
        jobs.c.id == bindparam("match_id"),
        jobs.c.version == bindparam("expected"),
    )
    .values(_JOB_VALUES)
)
_UPDATE_JOB_ANY = (
    update(jobs).where(jobs.c.store_id == _store_id, jobs.c.id == bindparam("match_id")).values(_JOB_VALUES)
)
_SELECT_JOB_VERSION = select(jobs.c.version).where(jobs.c.store_id == _store_id, jobs.c.id == _job_id)
_DELETE_JOB = delete(jobs).where(jobs.c.store_id == _store_id, jobs.c.id == _job_id)
_SELECT_JOB_PAGE = (
    select(jobs.c.id, jobs.c.version, jobs.c.description)
    .where(jobs.c.store_id == _store_id, jobs.c.id > bindparam("after"))
    .order_by(jobs.c.id)
    .limit(bindparam("page_size"))
)

_SELECT_FILE = select(*_FILE_COLUMNS).where(files.c.store_id == _store_id, files.c.id == bindparam("id"))
_SELECT_SHARED = select(*_FILE_COLUMNS).where(
    files.c.store_id == _store_id, files.c.shared_name == bindparam("shared_name")
)
_FILE_EXISTS = select(literal(1)).where(files.c.store_id == _store_id, files.c.id == bindparam("id"))
_FILE_SIZE = select(files.c.size).where(files.c.store_id == _store_id, files.c.id == bindparam("id"))
_DELETE_FILE = delete(files).where(files.c.store_id == _store_id, files.c.id == bindparam("id"))
_DELETE_CLEANUP_FILES_RETURNING_KEYS = (
    delete(files)
    .where(files.c.store_id == _store_id, files.c.job_id == bindparam("job_id"), files.c.cleanup.is_(True))
    .returning(files.c.blob_key)
)
_DELETE_FILE_RETURNING_KEY = (
    delete(files).where(files.c.store_id == _store_id, files.c.id == bindparam("id")).returning(files.c.blob_key)
)


def _one_row() -> Any:
    """A one-row table to LEFT JOIN a data-modifying WITH clause's output onto, so that a statement
    answers with a row even when that clause returned none."""
    return select(literal(1).label("one")).subquery("one_row")


def replace_file_content_in_one_statement() -> Any:
    """PostgreSQL only: ``_UPDATE_FILE_CAS`` together with the blob key it replaces, in ONE
    statement (one round trip instead of BEGIN, SELECT, UPDATE and COMMIT). One row: the key the
    file had (NULL if there is no such file) and how many rows the compare-and-set changed (0 if the
    version moved on). The key is read from the statement's snapshot; when the update succeeds the
    row it changed still had the expected version, and every change of a file's blob bumps the
    version, so that key is the one replaced."""
    current = (
        select(files.c.blob_key)
        .where(files.c.store_id == _store_id, files.c.id == bindparam("match_id"))
        .cte("current_file")
    )
    updated = _UPDATE_FILE_CAS.returning(files.c.version).cte("updated_file")
    one_row = _one_row()
    return select(
        current.c.blob_key,
        select(func.count()).select_from(updated).scalar_subquery().label("updated"),
    ).select_from(one_row.outerjoin(current, true()))


def _insert_jobs_from_arrays() -> Any:
    """PostgreSQL only: version 1 of many jobs from one array per column, in one statement."""
    from sqlalchemy.dialects.postgresql import ARRAY
    from sqlalchemy.dialects.postgresql import insert as postgresql_insert

    given = (
        func.unnest(*[cast(bindparam(f"all_{name}"), ARRAY(jobs.c[name].type)) for name in JOB_FIELD_NAMES])
        .table_valued(*JOB_FIELD_NAMES)
        .render_derived(name="given")
    )
    now = bindparam("now", type_=DateTime(timezone=True))
    rows = select(_store_id, literal(1), *[given.c[name] for name in JOB_FIELD_NAMES], now, now)
    return postgresql_insert(jobs).from_select(
        ["store_id", "version", *JOB_FIELD_NAMES, "created_at", "updated_at"], rows
    )


def insert_jobs_from_arrays() -> Any:
    """PostgreSQL only: ``batch()``'s creations in ONE statement (one round trip where BEGIN, the
    inserts and COMMIT take three); a taken or repeated ID fails the whole statement."""
    return _insert_jobs_from_arrays()


def upsert_jobs_from_arrays() -> Any:
    """PostgreSQL only: create or overwrite many jobs in ONE statement (``save_jobs``: a Toil
    worker's commit of its job and its new children), from one array per column, where the
    statement-per-job transaction takes 2 + one or two round trips per job. A new job gets version
    1; an existing one is overwritten at its version + 1, as ``_UPDATE_JOB_ANY`` does. Each
    ``id`` at most once (ON CONFLICT cannot change a row twice in one statement). Returns
    ``(id, version)`` rows, in no particular order."""
    insert = _insert_jobs_from_arrays()
    overwrite = {name: insert.excluded[name] for name in JOB_FIELD_NAMES if name != "id"}
    return insert.on_conflict_do_update(
        index_elements=[jobs.c.store_id, jobs.c.id],
        set_={"version": jobs.c.version + 1, **overwrite, "updated_at": insert.excluded.updated_at},
    ).returning(jobs.c.id, jobs.c.version)


def delete_job_with_cleanup_files() -> Any:
    """PostgreSQL only: delete a job and its cleanup files in ONE statement, whose data-modifying
    WITH clauses each run once and to completion (atomic in autocommit). One round trip instead of
    BEGIN, two DELETEs and COMMIT: ~4x faster per deleted job on a networked catalog. One row per
    released blob key (one row with a NULL key when there is none), each with the jobs deleted."""
    gone_job = _DELETE_JOB.returning(jobs.c.id).cte("gone_job")
    gone_files = _DELETE_CLEANUP_FILES_RETURNING_KEYS.cte("gone_files")
    one_row = _one_row()
    return select(
        select(func.count()).select_from(gone_job).scalar_subquery().label("jobs_deleted"),
        gone_files.c.blob_key,
    ).select_from(one_row.outerjoin(gone_files, true()))


_SELECT_FILE_KEY = select(files.c.blob_key).where(files.c.store_id == _store_id, files.c.id == bindparam("id"))
_UPDATE_FILE_CAS = (
    update(files)
    .where(
        files.c.store_id == _store_id,
        files.c.id == bindparam("match_id"),
        files.c.version == bindparam("expected"),
    )
    .values(
        version=files.c.version + 1,
        size=bindparam("new_size"),
        checksum=bindparam("new_checksum"),
        blob_key=bindparam("new_blob_key"),
        encrypted=bindparam("new_encrypted"),
        executable=func.coalesce(bindparam("new_executable", type_=Boolean), files.c.executable),
        source_url=func.coalesce(bindparam("new_source_url", type_=Text), files.c.source_url),
        updated_at=bindparam("new_updated_at"),
    )
)
_CLEANUP_FILES = select(files.c.id, files.c.blob_key).where(
    files.c.store_id == _store_id, files.c.job_id == bindparam("job_id"), files.c.cleanup.is_(True)
)
_DELETE_FILES_BY_ID = delete(files).where(
    files.c.store_id == _store_id, files.c.id.in_(bindparam("ids", expanding=True))
)

_INSERT_LOG = insert(logs)
_SELECT_STORE_BY_NAME = select(
    stores.c.id, stores.c.name, stores.c.blob_url, stores.c.workflow_id, stores.c.config_json, stores.c.created_at
).where(stores.c.name == bindparam("name"))


def revision_and_store() -> Any:
    """The catalog's schema revision and the row of the store named ``:name`` (NULLs when there is
    no such store) in one statement: a worker's resume is one round trip."""
    version = table(VERSION_TABLE, column("version_num"))
    return select(version.c.version_num, *_SELECT_STORE_BY_NAME.selected_columns).select_from(
        version.outerjoin(stores, stores.c.name == bindparam("name"))
    )


def insert_store_ignoring_conflicts(dialect: str) -> Any:
    """A store's row, returning its new ID; no row returned when the name is taken."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(stores).on_conflict_do_nothing().returning(stores.c.id)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(stores).on_conflict_do_nothing().returning(stores.c.id)


_INSERTS_IGNORING_CONFLICTS: dict[tuple[str, str], Any] = {}


#: Columns of a job row, in the order of ``_plain_job_insert``'s rows.
_JOB_ROW_COLUMNS = ("store_id", "version", "created_at", "updated_at", *JOB_FIELD_NAMES)
#: A job insert that fails on a taken ID (batch()'s executemany, here and on the fast path).
_INSERT_JOB = insert(jobs)
_PLAIN_JOB_INSERTS: dict[str, tuple[str, bool, tuple[str, ...], tuple[Any, ...]]] = {}


def _plain_job_insert(dialect: Any) -> tuple[str, bool, tuple[str, ...], tuple[Any, ...]]:
    """``INSERT INTO jobs`` compiled once per dialect, for ``insert_jobs``' executemany on the
    driver: (SQL, positional?, parameter names in order, each one's bind processor or None).

    SQLAlchemy's own executemany processes every row's parameters through its compiled-statement
    machinery (~8 us a row, a third of a 2,000-job ``batch()``); the driver needs only the values,
    converted once by the same bind processors."""
    found = _PLAIN_JOB_INSERTS.get(dialect.name)
    if found is None:
        compiled = _INSERT_JOB.compile(dialect=dialect, column_keys=list(_JOB_ROW_COLUMNS))
        names = tuple(compiled.positiontup) if compiled.positional and compiled.positiontup else _JOB_ROW_COLUMNS
        processors = tuple(jobs.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names)
        found = (compiled.string, bool(compiled.positional), names, processors)
        _PLAIN_JOB_INSERTS[dialect.name] = found
    return found


def _insert_ignoring_conflicts(table: Table, dialect: str) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING (SQLite and PostgreSQL both have it): a taken ID
    shows up as no returned row instead of an error that would abort a PostgreSQL transaction.
    (RETURNING rather than rowcount, which drivers do not report alike for this statement.)"""
    statement = _INSERTS_IGNORING_CONFLICTS.get((table.name, dialect))
    if statement is None:
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as postgresql_insert

            statement = postgresql_insert(table).on_conflict_do_nothing().returning(table.c.store_id)
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            statement = sqlite_insert(table).on_conflict_do_nothing().returning(table.c.store_id)
        _INSERTS_IGNORING_CONFLICTS[(table.name, dialect)] = statement
    return statement


def insert_file_of_existing_job(dialect: str) -> Any:
    """One statement that inserts a job-associated file row only if its job exists.

    ``INSERT ... SELECT <values> WHERE EXISTS (<the job>) ON CONFLICT DO NOTHING RETURNING``: the
    hottest write of small-file workloads in one round trip, with no BEGIN ... COMMIT around it
    (on SQLite a write statement takes the write lock before it reads, so check and insert are
    atomic; on PostgreSQL, as in the transactional path at READ COMMITTED, a job deleted at that
    moment can leave an orphaned file, which gc finds). No returned row means no such job, or
    the file ID was taken.
    """
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]

    values = select(*(bindparam(column.key, type_=column.type) for column in files.columns)).where(
        exists().where(jobs.c.store_id == bindparam("store_id"), jobs.c.id == bindparam("job_id"))
    )
    return (
        dialect_insert(files)
        .from_select([column.key for column in files.columns], values)
        .on_conflict_do_nothing()
        .returning(files.c.store_id)
    )


class CatalogTx:
    """The queries of one store, run on one connection inside one open transaction."""

    __slots__ = ("connection", "store_id")

    def __init__(self, connection: Connection, store_id: int) -> None:
        self.connection = connection
        self.store_id = store_id

    # --- stores ------------------------------------------------------------------------------

    @staticmethod
    def find_store(connection: Connection, name: str) -> StoreRow | None:
        row = connection.execute(_SELECT_STORE_BY_NAME, {"name": name}).first()
        if row is None:
            return None
        return StoreRow(row.id, row.name, row.blob_url, row.workflow_id, row.config_json, row.created_at)

    def update_store_config(self, config_json: str) -> None:
        self.connection.execute(update(stores).where(stores.c.id == self.store_id).values(config_json=config_json))

    # --- jobs --------------------------------------------------------------------------------

    def insert_job(self, fields: JobFields) -> bool:
        """Insert version 1 of a job; False if the ID is taken."""
        now = utc_now()
        params = fields.as_params()
        params.update(store_id=self.store_id, version=1, created_at=now, updated_at=now)
        result = self.connection.execute(_insert_ignoring_conflicts(jobs, self.connection.dialect.name), params)
        return result.first() is not None

    def insert_jobs(self, many: Sequence[JobFields]) -> None:
        """Insert version 1 of many jobs in one executemany (batch()); a taken ID raises
        JobStoreError and, the exception propagating, aborts the whole transaction."""
        sql, positional, names, processors = _plain_job_insert(self.connection.dialect)
        now = utc_now()
        converters = {name: processor for name, processor in zip(names, processors, strict=True) if processor}
        common = {"store_id": self.store_id, "version": 1, "created_at": now, "updated_at": now}
        common = {name: converters[name](value) if name in converters else value for name, value in common.items()}
        per_row = [(name, convert) for name, convert in converters.items() if name not in common]
        rows: list[Any] = []
        for fields in many:
            params = fields.as_params()
            for name, convert in per_row:
                if params[name] is not None:
                    params[name] = convert(params[name])
            params.update(common)
            rows.append(tuple([params[name] for name in names]) if positional else params)
        try:
            self.connection.exec_driver_sql(sql, rows)
        except IntegrityError:
            raise batch_id_taken() from None

    def get_job(self, job_id: str) -> tuple[int, str] | None:
        row = self.connection.execute(_SELECT_JOB, {"sid": self.store_id, "id": job_id}).first()
        return None if row is None else (row[0], row[1])

    def job_exists(self, job_id: str) -> bool:
        return self.connection.execute(_JOB_EXISTS, {"sid": self.store_id, "id": job_id}).first() is not None

    def job_write_token(self, job_id: str) -> int | None:
        """The token of the write that produced the job's row (0 if none); None if no such job."""
        row = self.connection.execute(_JOB_WRITE_TOKEN, {"sid": self.store_id, "id": job_id}).first()
        return None if row is None else int(row[0])

    def update_job(self, fields: JobFields, expected_version: int | None) -> int | None:
        """Compare-and-set update. Returns the new version, or None if the version moved on or the
        job is gone (the caller tells which, and whether it was its own committed write, with
        ``job_write_token``)."""
        params = {f"new_{name}": value for name, value in fields.as_params().items()}
        params.update(sid=self.store_id, match_id=fields.id, expected=expected_version, new_updated_at=utc_now())
        statement = _UPDATE_JOB_ANY if expected_version is None else _UPDATE_JOB_CAS
        result = self.connection.execute(statement, params)
        if result.rowcount != 1:
            return None
        if expected_version is not None:
            return expected_version + 1
        row = self.connection.execute(_SELECT_JOB_VERSION, {"sid": self.store_id, "id": fields.id}).first()
        return None if row is None else int(row[0])

    def save_jobs(self, many: Sequence[JobFields]) -> list[int]:
        """Overwrite each job, or create it if it does not exist; the version each job now has."""
        versions = []
        for fields in many:
            version = self.update_job(fields, None)
            if version is None:
                if not self.insert_job(fields):
                    raise JobStoreError(f"Job {fields.id!r} appeared while it was being saved; save it again.")
                version = 1
            versions.append(version)
        return versions

    def delete_job(self, job_id: str) -> tuple[bool, list[str]]:
        """Delete a job and its cleanup files. Returns (whether it existed, blob keys to delete)."""
        params = {"sid": self.store_id, "id": job_id}
        existed = self.connection.execute(_DELETE_JOB, params).rowcount > 0
        doomed = self.connection.execute(_CLEANUP_FILES, {"sid": self.store_id, "job_id": job_id}).all()
        if doomed:
            self.connection.execute(_DELETE_FILES_BY_ID, {"sid": self.store_id, "ids": [row[0] for row in doomed]})
        return existed, [row[1] for row in doomed]

    def job_page(self, after: str, page_size: int) -> Sequence[Any]:
        return self.connection.execute(
            _SELECT_JOB_PAGE, {"sid": self.store_id, "after": after, "page_size": page_size}
        ).all()

    # --- files -------------------------------------------------------------------------------

    def insert_file(self, new: NewFile) -> bool:
        """Insert version 1 of a file; False if the ID (or shared name) is taken."""
        now = utc_now()
        result = self.connection.execute(
            _insert_ignoring_conflicts(files, self.connection.dialect.name),
            {
                "store_id": self.store_id,
                "id": new.id,
                "version": 1,
                "job_id": new.job_id,
                "cleanup": new.cleanup,
                "shared_name": new.shared_name,
                "basename": new.basename,
                "size": new.size,
                "checksum": new.checksum,
                "blob_key": new.blob_key,
                "executable": new.executable,
                "encrypted": new.encrypted,
                "source_url": new.source_url,
                "created_at": now,
                "updated_at": now,
            },
        )
        return result.first() is not None

    def get_file(self, file_id: str) -> FileRow | None:
        row = self.connection.execute(_SELECT_FILE, {"sid": self.store_id, "id": file_id}).first()
        return None if row is None else FileRow(**row._asdict())

    def get_shared_file(self, shared_name: str) -> FileRow | None:
        row = self.connection.execute(_SELECT_SHARED, {"sid": self.store_id, "shared_name": shared_name}).first()
        return None if row is None else FileRow(**row._asdict())

    def file_exists(self, file_id: str) -> bool:
        return self.connection.execute(_FILE_EXISTS, {"sid": self.store_id, "id": file_id}).first() is not None

    def file_size(self, file_id: str) -> int | None:
        row = self.connection.execute(_FILE_SIZE, {"sid": self.store_id, "id": file_id}).first()
        return None if row is None else int(row[0])

    def replace_file_content(
        self,
        file_id: str,
        expected_version: int,
        *,
        size: int,
        checksum: str,
        blob_key: str,
        encrypted: bool,
        executable: bool | None = None,
        source_url: str | None = None,
    ) -> bool:
        """Point a file at new bytes if its version is still ``expected_version`` (compare-and-set)."""
        result = self.connection.execute(
            _UPDATE_FILE_CAS,
            {
                "sid": self.store_id,
                "match_id": file_id,
                "expected": expected_version,
                "new_size": size,
                "new_checksum": checksum,
                "new_blob_key": blob_key,
                "new_encrypted": encrypted,
                "new_executable": executable,
                "new_source_url": source_url,
                "new_updated_at": utc_now(),
            },
        )
        return result.rowcount == 1

    def delete_file(self, file_id: str) -> str | None:
        """Delete a file row; return its blob key, or None if there was no such file."""
        params = {"sid": self.store_id, "id": file_id}
        row = self.connection.execute(_SELECT_FILE_KEY, params).first()
        if row is None:
            return None
        self.connection.execute(_DELETE_FILE, params)
        return str(row[0])

    def all_file_ids(self) -> list[str]:
        return list(self.connection.execute(select(files.c.id).where(files.c.store_id == self.store_id)).scalars())

    def orphaned_file_ids(self) -> list[str]:
        """Files whose owning job no longer exists: one anti-join."""
        no_job = ~exists().where(and_(jobs.c.store_id == files.c.store_id, jobs.c.id == files.c.job_id))
        query = select(files.c.id).where(files.c.store_id == self.store_id, files.c.job_id.is_not(None), no_job)
        return list(self.connection.execute(query).scalars())

    # --- logs --------------------------------------------------------------------------------

    def append_log(self, message: bytes) -> None:
        self.connection.execute(
            _INSERT_LOG,
            {"store_id": self.store_id, "message": message, "is_read": False, "created_at": utc_now()},
        )

    def has_unread_logs(self) -> bool:
        return self.connection.execute(_HAS_UNREAD_LOGS, {"sid": self.store_id}).first() is not None

    def claim_unread_logs(self) -> list[tuple[int, bytes]]:
        """Mark every unread log read and return them (seq, message) in order. Atomic, so two
        concurrent readers never receive the same message."""
        rows = self.connection.execute(_CLAIM_UNREAD_LOGS, {"sid": self.store_id}).all()
        return sorted((int(row[0]), bytes(row[1])) for row in rows)

    def read_logs(self) -> list[tuple[int, bytes]]:
        """Logs already marked read, in order."""
        return [(int(row[0]), bytes(row[1])) for row in self.connection.execute(_READ_LOGS, {"sid": self.store_id})]

    def unclaim_logs(self, seqs: Sequence[int]) -> None:
        """Return logs to the unread state (their callback failed before they were delivered)."""
        if seqs:
            self.connection.execute(_UNCLAIM_LOG, [{"sid": self.store_id, "seq": seq} for seq in seqs])

    def job_file_summary(self) -> list[tuple[str, str, str, int, int]]:
        """Per job: (id, name, state, files owned, bytes owned), largest first (one join)."""
        query = (
            select(
                jobs.c.id,
                jobs.c.name,
                jobs.c.state,
                func.count(files.c.id),
                func.coalesce(func.sum(files.c.size), 0),
            )
            .select_from(jobs.outerjoin(files, and_(files.c.store_id == jobs.c.store_id, files.c.job_id == jobs.c.id)))
            .where(jobs.c.store_id == self.store_id)
            .group_by(jobs.c.id, jobs.c.name, jobs.c.state)
            .order_by(func.coalesce(func.sum(files.c.size), 0).desc(), jobs.c.name)
        )
        return [(str(r[0]), str(r[1]), str(r[2]), int(r[3]), int(r[4])) for r in self.connection.execute(query)]

    # --- counts ------------------------------------------------------------------------------

    def counts(self) -> dict[str, Any]:
        """Basic totals of this store (the maintenance layer builds richer reports)."""
        sid = self.store_id
        job_count = self.connection.execute(select(func.count()).where(jobs.c.store_id == sid)).scalar_one()
        by_state: dict[Any, Any] = dict(
            self.connection.execute(
                select(jobs.c.state, func.count()).where(jobs.c.store_id == sid).group_by(jobs.c.state)
            ).all()
        )
        failed = self.connection.execute(
            select(func.count()).where(jobs.c.store_id == sid, jobs.c.remaining_tries <= 0)
        ).scalar_one()
        file_count, total_bytes = self.connection.execute(
            select(func.count(), func.coalesce(func.sum(files.c.size), 0)).where(files.c.store_id == sid)
        ).one()
        shared = self.connection.execute(
            select(func.count()).where(files.c.store_id == sid, files.c.shared_name.is_not(None))
        ).scalar_one()
        unread = self.connection.execute(
            select(func.count()).where(logs.c.store_id == sid, logs.c.is_read.is_(False))
        ).scalar_one()
        return {
            "jobs": int(job_count),
            "jobs_by_state": {str(k): int(v) for k, v in by_state.items()},
            "failed_jobs": int(failed),
            "files": int(file_count),
            "bytes": int(total_bytes),
            "shared_files": int(shared),
            "unread_logs": int(unread),
        }
