"""The catalog side of the maintenance interface: what ``jobstore.maintenance`` asks the catalog.

Every method is one whole transaction (retried on transient failures) that takes and returns plain
values: no SQLAlchemy connection or transaction object leaves this package. A task that must see or
change several things atomically (gc's condemn-and-plan, a listing compared both ways, prune's
re-checked delete) is one method, so that its consistency is the catalog's promise, not the
caller's. The SQL itself is in :mod:`jobstore.catalog.reports`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from jobstore.catalog import reports
from jobstore.catalog.reports import FileCheckRow, OrphanRow

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from jobstore.catalog import Catalog, CatalogTx

__all__ = ["FileCheckRow", "MaintenanceCatalog", "OrphanRow", "catalog_now"]

T = TypeVar("T")

#: Log rows per INSERT when logs are copied between stores.
_LOG_BATCH = 1000


def catalog_now() -> datetime:
    """The catalog's notion of "now" for condemned and retention times (UTC, timezone-aware)."""
    return reports.now()


class MaintenanceCatalog:
    """One store's rows, as maintenance tasks (copy, fsck, gc, orphans, prune) need them."""

    def __init__(self, catalog: Catalog, store_id: int) -> None:
        self._catalog = catalog
        self._store_id = store_id

    @property
    def url(self) -> str:
        """The catalog's URL (with its password: redact before printing)."""
        return self._catalog.url

    def same_store_as(self, other: MaintenanceCatalog) -> bool:
        """True if both name the same store of the same catalog."""
        return self._catalog.url == other._catalog.url and self._store_id == other._store_id

    def _read(self, describe: str, work: Callable[[Connection, int], T]) -> T:
        return self._catalog.read(self._store_id, lambda tx: work(tx.connection, tx.store_id), describe=describe)

    def _write(self, describe: str, work: Callable[[Connection, int], T]) -> T:
        return self._catalog.write(self._store_id, lambda tx: work(tx.connection, tx.store_id), describe=describe)

    # --- totals --------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """The store's totals from the reporting views, in one snapshot (see ``JobStore.stats``)."""
        return self._read("count the store", reports.store_stats)

    def row_counts(self) -> dict[str, int]:
        """Jobs, files and logs of the store (``{"jobs": n, "files": n, "logs": n}``)."""
        return self._read("count the store's rows", reports.row_counts)

    def other_stores(self) -> list[tuple[str, str]]:
        """(name, blob store URL) of every other store of this catalog."""
        return self._read("list stores", reports.other_stores)

    # --- orphans and listings ------------------------------------------------------------------

    def orphaned_files(self, *, cleanup_only: bool = False) -> list[OrphanRow]:
        """Files whose owning job no longer exists (one anti-join)."""
        return self._read(
            "find orphaned files",
            lambda connection, sid: reports.orphaned_files(connection, sid, cleanup_only=cleanup_only),
        )

    def count_orphaned_files(self) -> tuple[int, int]:
        """(count, bytes) of files whose owning job is gone."""
        return self._read("count orphans", reports.count_orphaned_files)

    def delete_orphaned_files(self, ids: Sequence[str]) -> list[tuple[str, str, int]]:
        """Delete those files that are still orphans; (id, blob key, size) of each one deleted."""
        return self._write(
            "delete orphaned files", lambda connection, sid: reports.delete_orphaned_files(connection, sid, ids)
        )

    def compare_listing(self, keys: Iterable[str]) -> tuple[list[str], list[FileCheckRow]]:
        """A blob listing against the rows, both ways, in one short snapshot: (listed keys no row
        references, rows whose key was not listed). The listing lives in a temporary table."""

        def compare(connection: Connection, store_id: int) -> tuple[list[str], list[FileCheckRow]]:
            reports.load_listing(connection, keys)
            unreferenced = reports.unreferenced_listed_keys(connection, store_id)
            missing = reports.files_missing_from_listing(connection, store_id)
            reports.drop_listing(connection)
            return unreferenced, missing

        return self._read("compare the blob listing with the catalog", compare)

    def file_check_page(self, after: str, limit: int) -> list[FileCheckRow]:
        """Up to ``limit`` file rows with IDs after ``after``, in ID order."""
        return self._read("list files", lambda connection, sid: reports.file_check_page(connection, sid, after, limit))

    # --- condemned blobs (gc's grace period) ---------------------------------------------------

    def condemned_keys(self) -> dict[str, tuple[int | None, datetime]]:
        """Every condemned blob: key -> (size, condemned at)."""
        return self._read("read condemned blobs", reports.condemned_keys)

    def condemn(self, blobs: Sequence[tuple[str, int | None]], now: datetime) -> int:
        """Record (key, size) blobs as condemned at ``now`` (keys already condemned keep their time)."""
        return self._write(
            "condemn unreferenced blobs", lambda connection, sid: reports.condemn(connection, sid, blobs, now)
        )

    def plan_collection(self, cutoff: datetime) -> tuple[list[tuple[str, int | None]], int]:
        """Without changing anything: (condemned blobs due at ``cutoff``, how many a row claims again)."""

        def plan(connection: Connection, store_id: int) -> tuple[list[tuple[str, int | None]], int]:
            due = reports.condemned_due(connection, store_id, cutoff)
            return due, len(reports.referenced_condemned_keys(connection, store_id))

        return self._read("plan garbage collection", plan)

    def condemn_and_plan(
        self, fresh: Sequence[tuple[str, int | None]], now: datetime, cutoff: datetime
    ) -> tuple[list[tuple[str, int | None]], int]:
        """In one transaction: condemn ``fresh``, release condemned blobs a row claims again, and
        return (the blobs now due at ``cutoff``, how many were released)."""

        def condemn(connection: Connection, store_id: int) -> tuple[list[tuple[str, int | None]], int]:
            reports.condemn(connection, store_id, fresh, now)
            released = reports.release_referenced_condemned(connection, store_id)
            return reports.condemned_due(connection, store_id, cutoff), len(released)

        return self._write("condemn unreferenced blobs", condemn)

    def forget_condemned(self, keys: Sequence[str]) -> None:
        """Forget condemned blobs that were deleted."""
        self._write("forget deleted blobs", lambda connection, sid: reports.forget_condemned(connection, sid, keys))

    # --- retention -------------------------------------------------------------------------------

    def prunable_job_ids(self, cutoff: datetime, states: Sequence[str] | None, after: str, limit: int) -> list[str]:
        """Up to ``limit`` job IDs after ``after`` not updated since ``cutoff`` (in ``states``, if given)."""
        return self._read(
            "find jobs to prune",
            lambda connection, sid: reports.prunable_job_ids(connection, sid, cutoff, states, after, limit),
        )

    def prune_jobs(
        self,
        job_ids: Sequence[str],
        cutoff: datetime,
        states: Sequence[str] | None,
        *,
        all_files: bool,
        dry_run: bool,
    ) -> tuple[list[str], list[tuple[str, int]]]:
        """Delete (or, dry, only find) those jobs that still qualify and their files:
        (job IDs, [(blob key, size)]). The qualification is re-checked by the DELETE itself."""

        def prune(connection: Connection, store_id: int) -> tuple[list[str], list[tuple[str, int]]]:
            return reports.prune_jobs(
                connection, store_id, job_ids, cutoff, states, all_files=all_files, dry_run=dry_run
            )

        return self._read("plan pruning", prune) if dry_run else self._write("prune jobs", prune)

    def prune_read_logs(self, cutoff: datetime, *, dry_run: bool) -> int:
        """Delete (or, dry, count) log messages already read and older than ``cutoff``."""

        def prune(connection: Connection, store_id: int) -> int:
            return reports.prune_read_logs(connection, store_id, cutoff, dry_run=dry_run)

        return self._read("count old logs", prune) if dry_run else self._write("prune old logs", prune)

    # --- copying a store -----------------------------------------------------------------------

    def job_rows_page(self, after: str, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` whole job rows after ID ``after`` (the columns a copy carries)."""
        return self._read("read jobs", lambda connection, sid: reports.job_rows_page(connection, sid, after, limit))

    def file_rows_page(self, after: str, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` whole file rows after ID ``after`` (the columns a copy carries)."""
        return self._read("read files", lambda connection, sid: reports.file_rows_page(connection, sid, after, limit))

    def insert_job_rows(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert copied job rows into this store (one transaction)."""
        self._write("copy jobs", lambda connection, sid: reports.insert_job_rows(connection, sid, rows))

    def insert_file_rows(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert copied file rows into this store (one transaction)."""
        self._write("copy files", lambda connection, sid: reports.insert_file_rows(connection, sid, rows))

    def refresh_statistics(self) -> None:
        """Refresh the catalog's planner statistics after a bulk load (PostgreSQL: ANALYZE of the
        jobs, files and logs tables; nothing on SQLite, whose statistics are fixed)."""
        self._write("refresh the planner statistics", lambda connection, _sid: reports.refresh_statistics(connection))

    def existing_file_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` this store holds already."""
        return self._read("find copied files", lambda connection, sid: reports.existing_file_ids(connection, sid, ids))

    def set_workflow_id(self, workflow_id: str, config_json: str) -> None:
        """Record the workflow ID (and the config holding it) of the store this one copies."""
        self._write(
            "claim the destination",
            lambda connection, sid: reports.set_store_workflow_id(connection, sid, workflow_id, config_json),
        )

    def copy_logs_from(self, source: MaintenanceCatalog) -> int:
        """Copy every log message of ``source`` into this store in one transaction here (all or
        none, so that a rerun knows where it stands), read in one snapshot there."""

        def copy(tx: CatalogTx) -> int:
            def read(source_tx: CatalogTx) -> int:
                batch: list[dict[str, Any]] = []
                count = 0
                for row in reports.iter_log_rows(source_tx.connection, source_tx.store_id):
                    batch.append(row)
                    if len(batch) == _LOG_BATCH:
                        reports.insert_log_rows(tx.connection, tx.store_id, batch)
                        count, batch = count + len(batch), []
                if batch:
                    reports.insert_log_rows(tx.connection, tx.store_id, batch)
                return count + len(batch)

            return source._catalog.read(source._store_id, read, describe="read logs")

        return self._catalog.write(self._store_id, copy, describe="copy logs")
