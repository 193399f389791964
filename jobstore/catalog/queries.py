"""Every row statement of the store, defined once with SQLAlchemy Core.

``compile_fast_path.py`` compiles these constructs per dialect into the generated
``sqlite_statements.py`` and ``postgres_statements.py``, which ``operations.py`` executes on the
driver's connection; nothing else runs them, and no SQL is assembled from strings. Reports and
maintenance have their own queries in ``reports.py``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Integer,
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
from sqlalchemy.sql.elements import BindParameter

from jobstore.catalog.rows import JOB_FIELD_NAMES
from jobstore.catalog.schema import VERSION_TABLE, condemned_blobs, files, jobs, leases, logs, stores

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
    files.c.reference,
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
        for each in (logs, files, jobs, condemned_blobs, leases)
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


def replace_file_content_in_one_statement(*, fenced: bool = False) -> Any:
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
    update_cas = _UPDATE_FILE_CAS.where(FENCE) if fenced else _UPDATE_FILE_CAS
    updated = update_cas.returning(files.c.version).cte("updated_file")
    one_row = _one_row()
    return select(
        current.c.blob_key,
        select(func.count()).select_from(updated).scalar_subquery().label("updated"),
    ).select_from(one_row.outerjoin(current, true()))


def _insert_jobs_from_arrays(fenced: bool = False) -> Any:
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
    if fenced:
        rows = rows.where(FENCE)
    return postgresql_insert(jobs).from_select(
        ["store_id", "version", *JOB_FIELD_NAMES, "created_at", "updated_at"], rows
    )


def insert_jobs_from_arrays(*, fenced: bool = False) -> Any:
    """PostgreSQL only: ``batch()``'s creations in ONE statement (one round trip where BEGIN, the
    inserts and COMMIT take three); a taken or repeated ID fails the whole statement."""
    return _insert_jobs_from_arrays(fenced)


def upsert_jobs_from_arrays(*, fenced: bool = False) -> Any:
    """PostgreSQL only: create or overwrite many jobs in ONE statement (``save_jobs``: a Toil
    worker's commit of its job and its new children), from one array per column, where the
    statement-per-job transaction takes 2 + one or two round trips per job. A new job gets version
    1; an existing one is overwritten at its version + 1, as ``_UPDATE_JOB_ANY`` does. Each
    ``id`` at most once (ON CONFLICT cannot change a row twice in one statement). Returns
    ``(id, version)`` rows, in no particular order."""
    insert = _insert_jobs_from_arrays(fenced)
    overwrite = {name: insert.excluded[name] for name in JOB_FIELD_NAMES if name != "id"}
    return insert.on_conflict_do_update(
        index_elements=[jobs.c.store_id, jobs.c.id],
        set_={"version": jobs.c.version + 1, **overwrite, "updated_at": insert.excluded.updated_at},
    ).returning(jobs.c.id, jobs.c.version)


def delete_job_with_cleanup_files(*, fenced: bool = False) -> Any:
    """PostgreSQL only: delete a job and its cleanup files in ONE statement, whose data-modifying
    WITH clauses each run once and to completion (atomic in autocommit). One round trip instead of
    BEGIN, two DELETEs and COMMIT: ~4x faster per deleted job on a networked catalog. One row per
    released blob key (one row with a NULL key when there is none), each with the jobs deleted."""
    delete_job = _DELETE_JOB.where(FENCE) if fenced else _DELETE_JOB
    delete_files = _DELETE_CLEANUP_FILES_RETURNING_KEYS.where(FENCE) if fenced else _DELETE_CLEANUP_FILES_RETURNING_KEYS
    gone_job = delete_job.returning(jobs.c.id).cte("gone_job")
    gone_files = delete_files.cte("gone_files")
    one_row = _one_row()
    return select(
        select(func.count()).select_from(gone_job).scalar_subquery().label("jobs_deleted"),
        gone_files.c.blob_key,
    ).select_from(one_row.outerjoin(gone_files, true()))


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
        # New content is owned unless it is itself a reference: an update ends a reference.
        reference=bindparam("new_reference", type_=Text),
        updated_at=bindparam("new_updated_at"),
    )
)
_INSERT_LOG = insert(logs)
_SELECT_STORE_BY_NAME = select(
    stores.c.id, stores.c.name, stores.c.blob_url, stores.c.workflow_id, stores.c.config_json, stores.c.created_at
).where(stores.c.name == bindparam("name"))


def revision_and_store() -> Any:
    """The catalog's schema revision, the row of the store named ``:name`` (NULLs when there is no
    such store) and its lease's attempt (NULL without a lease; ``DESTROYED_ATTEMPT`` once destroy
    began) in one statement: a worker's resume is one round trip."""
    version = table(VERSION_TABLE, column("version_num"))
    lease_attempt = select(leases.c.attempt).where(leases.c.store_id == stores.c.id).scalar_subquery()
    return select(
        version.c.version_num, *_SELECT_STORE_BY_NAME.selected_columns, lease_attempt.label("lease_attempt")
    ).select_from(version.outerjoin(stores, stores.c.name == bindparam("name")))


def insert_store_ignoring_conflicts(dialect: str) -> Any:
    """A store's row, returning its new ID; no row returned when the name is taken."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(stores).on_conflict_do_nothing().returning(stores.c.id)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(stores).on_conflict_do_nothing().returning(stores.c.id)


_INSERTS_IGNORING_CONFLICTS: dict[tuple[str, str], Any] = {}


#: A job insert that fails on a taken ID (``batch()``'s executemany).
_INSERT_JOB = insert(jobs)


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


def insert_lease_of_existing_store(dialect: str) -> Any:
    """``destroy()``'s lease row, inserted only while the store's row exists (another handle may
    have destroyed the store already): ``INSERT ... SELECT ... WHERE EXISTS (<the store>) ON CONFLICT
    DO NOTHING RETURNING``. No returned row: the store has a lease already, or no row any more."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]

    columns = ["store_id", "attempt", "holder", "acquired_at", "expires_at"]
    values = select(*(bindparam(name, type_=leases.c[name].type) for name in columns)).where(
        exists().where(stores.c.id == bindparam("store_id"))
    )
    return dialect_insert(leases).from_select(columns, values).on_conflict_do_nothing().returning(leases.c.store_id)


def insert_file_of_existing_job(dialect: str, *, fenced: bool = False) -> Any:
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
    if fenced:
        values = values.where(FENCE)
    return (
        dialect_insert(files)
        .from_select([column.key for column in files.columns], values)
        .on_conflict_do_nothing()
        .returning(files.c.store_id)
    )


_ALL_FILE_IDS = select(files.c.id).where(files.c.store_id == _store_id)
#: Files whose owning job no longer exists: one anti-join.
_ORPHANED_FILE_IDS = select(files.c.id).where(
    files.c.store_id == _store_id,
    files.c.job_id.is_not(None),
    ~exists().where(and_(jobs.c.store_id == files.c.store_id, jobs.c.id == files.c.job_id)),
)
_BYTES_OWNED = func.coalesce(func.sum(files.c.size), 0)
#: Per job: (id, name, state, files owned, bytes owned), largest first (one join).
_JOB_FILE_SUMMARY = (
    select(jobs.c.id, jobs.c.name, jobs.c.state, func.count(files.c.id), _BYTES_OWNED)
    .select_from(jobs.outerjoin(files, and_(files.c.store_id == jobs.c.store_id, files.c.job_id == jobs.c.id)))
    .where(jobs.c.store_id == _store_id)
    .group_by(jobs.c.id, jobs.c.name, jobs.c.state)
    .order_by(_BYTES_OWNED.desc(), jobs.c.name)
)


# --- the leader lease -------------------------------------------------------------------------

_lease_now = bindparam("now", type_=DateTime(timezone=True))
_lease_expires = bindparam("expires", type_=DateTime(timezone=True))
#: Take a lease that has expired, or the very lease (``expected``: its attempt) the caller saw and
#: chose to take over; the new attempt, or no row when neither holds (someone else holds it).
_TAKE_LEASE = (
    update(leases)
    .where(
        leases.c.store_id == _store_id,
        (leases.c.expires_at < _lease_now) | (leases.c.attempt == bindparam("expected", type_=BigInteger)),
    )
    .values(
        attempt=leases.c.attempt + 1,
        holder=bindparam("holder", type_=Text),
        acquired_at=_lease_now,
        expires_at=_lease_expires,
    )
    .returning(leases.c.attempt)
)
_RENEW_LEASE = (
    update(leases)
    .where(leases.c.store_id == _store_id, leases.c.attempt == bindparam("attempt", type_=BigInteger))
    .values(expires_at=_lease_expires)
)
#: ``destroy()``'s first step: the lease moves to DESTROYED_ATTEMPT for good (see rows.py).
_MARK_LEASE_DESTROYED = (
    update(leases)
    .where(leases.c.store_id == _store_id)
    .values(
        attempt=bindparam("attempt", type_=BigInteger),
        holder=bindparam("holder", type_=Text),
        acquired_at=_lease_now,
        expires_at=_lease_expires,
    )
)
_SELECT_LEASE = select(leases.c.attempt, leases.c.holder, leases.c.acquired_at, leases.c.expires_at).where(
    leases.c.store_id == _store_id
)
#: A fenced write's check, inside its transaction: the lease's attempt now. On PostgreSQL the row is
#: locked FOR KEY SHARE until the write commits, so a takeover (a key update: migration 0009) waits
#: for the write, while a renewal does not; SQLite's write transaction already excludes a takeover.
_LEASE_ATTEMPT = (
    select(leases.c.attempt).where(leases.c.store_id == _store_id).with_for_update(read=True, key_share=True)
)


# --- fenced writes ----------------------------------------------------------------

#: The condition a fenced write statement carries (``CatalogOperations.fence``): the store's lease
#: is still at the writer's attempt. One primary-key lookup; on PostgreSQL locked FOR KEY SHARE
#: for the statement's transaction, so that a takeover (a new attempt: a key update since migration
#: 0009) waits for the write and every later write of the old attempt finds no row to act on. On
#: SQLite the statement's write lock does the same (SQLite renders no FOR clause).
FENCE = exists(
    select(literal(1))
    .where(
        leases.c.store_id == bindparam("fence_sid", type_=Integer),
        leases.c.attempt == bindparam("fence_attempt", type_=BigInteger),
    )
    .with_for_update(read=True, key_share=True)
)


def fenced_insert(
    table: Table, columns: list[str], returning: Any, dialect: str, *, ignoring_conflicts: bool = True
) -> Any:
    """``INSERT ... SELECT <values> WHERE <FENCE>`` [ON CONFLICT DO NOTHING] RETURNING: an insert
    of one row that inserts nothing once the writer's attempt lost the lease. (On SQLite the
    statement takes the write lock, or fails busy and is retried, so check and insert are one.)"""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert

        # Explicit casts: in a SELECT list an untyped NULL parameter would otherwise be text.
        parameters: list[Any] = [
            cast(bindparam(name, type_=table.c[name].type), table.c[name].type) for name in columns
        ]
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]

        # No casts: SQLite's CAST(... AS DATETIME) would turn a timestamp into a number.
        parameters = [bindparam(name, type_=table.c[name].type) for name in columns]
    values = select(*parameters).where(FENCE)
    statement = dialect_insert(table).from_select(columns, values)
    if ignoring_conflicts:
        statement = statement.on_conflict_do_nothing()
    return statement.returning(returning)
