"""Garbage collection: orphaned cleanup files, and blobs no row references, in two phases.

Blobs are written before the row that points at them commits (the store's first promise), so at any
moment a live writer may own a blob that no row references *yet*. Garbage collection therefore never
deletes an unreferenced blob the first time it sees one: it records it in ``condemned_blobs`` with
the time, and a later run deletes it only once the grace period has passed since then **and** no
row references it by that time. A writer that commits within the grace period keeps its blob (the
record is simply dropped). Every step is idempotent: a blob already gone is not an error, and a run
interrupted at any point is finished by the next one.

Orphaned files (rows whose job is gone) are removed only when they were written with
``cleanup=True``: such files should have gone with their job (a race between ``delete_job`` and a
concurrent ``write_file`` on PostgreSQL can leave one). Files written with ``cleanup=False`` outlive
their job by design (Toil passes them on to later jobs), so they are removed only on request
(``all_orphans=True``, ``jobstore gc --all-orphans``).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from jobstore.catalog.maintenance import catalog_now
from jobstore.errors import JobStoreError
from jobstore.maintenance.durations import format_duration, parse_duration
from jobstore.maintenance.orphans import (
    DEFAULT_WORKERS,
    check_blobs_not_shared,
    compare_blobs,
    orphaned_files,
    parallel_map,
)
from jobstore.maintenance.progress import Progress, no_progress
from jobstore.store import JobStore

log = logging.getLogger(__name__)

#: How long an unreferenced blob stays condemned before it may be deleted.
DEFAULT_GRACE = timedelta(hours=1)


@dataclass
class GCReport:
    """What a garbage collection did (or, in a dry run, would do). Sizes in bytes."""

    dry_run: bool
    grace: str
    orphaned_files: int = 0
    orphaned_bytes: int = 0
    #: Listed keys that no row references, found by this run.
    unreferenced_blobs: int = 0
    #: Of those, newly recorded as condemned by this run.
    condemned_blobs: int = 0
    condemned_bytes: int = 0
    #: Condemned blobs deleted (their grace period was over and they were still unreferenced).
    deleted_blobs: int = 0
    deleted_bytes: int = 0
    #: Condemned blobs that a row references again (a writer committed): kept, record dropped.
    released_blobs: int = 0
    #: Condemned blobs whose grace period is not over yet.
    waiting_blobs: int = 0
    #: Uploads killed writers left half done (local temporary files, S3 multipart uploads),
    #: discarded once untouched for longer than the grace period.
    stale_uploads: int = 0
    #: Listed names jobstore could not have written: never touched.
    foreign_objects: list[str] = field(default_factory=list)
    #: Blobs whose deletion failed (the next run retries them).
    failures: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def collect_garbage(
    store: JobStore,
    *,
    grace: timedelta | str = DEFAULT_GRACE,
    dry_run: bool = False,
    all_orphans: bool = False,
    workers: int = DEFAULT_WORKERS,
    progress: Progress = no_progress,
) -> GCReport:
    """Remove orphaned cleanup files (rows and blobs), condemn unreferenced blobs, delete those
    condemned longer than ``grace`` ago that are still unreferenced. ``dry_run`` changes nothing."""
    grace = parse_duration(grace)
    report = GCReport(dry_run=dry_run, grace=format_duration(grace))
    check_blobs_not_shared(store)
    catalog, blobs = store.maintenance_catalog, store.blob_store

    # 1. Orphaned files: rows first (one transaction), then their blobs (keys are never reused).
    orphans = orphaned_files(store, cleanup_only=not all_orphans)
    progress("orphaned files", 0, len(orphans))
    if dry_run:
        report.orphaned_files = len(orphans)
        report.orphaned_bytes = sum(orphan.size for orphan in orphans)
    elif orphans:
        ids = [orphan.id for orphan in orphans]
        deleted = catalog.delete_orphaned_files(ids)
        report.orphaned_files = len(deleted)
        report.orphaned_bytes = sum(size for _, _, size in deleted)
        outcomes = parallel_map(_delete_quietly(store), [key for _, key, _ in deleted], workers)
        report.failures += [key for key in outcomes if key]
    progress("orphaned files", len(orphans), len(orphans))

    # 2. Unreferenced blobs: listing anti-joined with the catalog.
    comparison = compare_blobs(store, progress)
    report.foreign_objects = comparison.foreign
    report.unreferenced_blobs = len(comparison.unreferenced)
    known = catalog.condemned_keys()
    new = [key for key in comparison.unreferenced if key not in known]
    sizes = parallel_map(blobs.size, new, workers)
    fresh: list[tuple[str, int | None]] = [
        (key, size) for key, size in zip(new, sizes, strict=True) if size is not None
    ]
    report.condemned_blobs = len(fresh)
    report.condemned_bytes = sum(size or 0 for _, size in fresh)
    now = catalog_now()
    cutoff = now - grace

    # 3. Condemn, release, and find what is due, in one short write transaction.
    if dry_run:
        due, report.released_blobs = catalog.plan_collection(cutoff)
        if grace == timedelta(0):
            due = due + fresh
    else:
        due, report.released_blobs = catalog.condemn_and_plan(fresh, now, cutoff)
    total_condemned = len(known) + len(fresh) - report.released_blobs
    report.waiting_blobs = max(0, total_condemned - len(due))

    # 4. Delete what is due, then forget it. A failure leaves the record for the next run.
    progress("delete blobs", 0, len(due))
    if dry_run:
        report.deleted_blobs = len(due)
        report.deleted_bytes = sum(size or 0 for _, size in due)
        return report
    failed = {key for key in parallel_map(_delete_quietly(store), [key for key, _ in due], workers) if key}
    done = [(key, size) for key, size in due if key not in failed]
    catalog.forget_condemned([key for key, _ in done])
    report.deleted_blobs = len(done)
    report.deleted_bytes = sum(size or 0 for _, size in done)
    report.failures += sorted(failed)
    progress("delete blobs", len(due), len(due))

    # 5. Half-done uploads of writers that died (never visible as keys, so never condemned).
    try:
        report.stale_uploads = blobs.remove_stale_uploads(cutoff.timestamp())
    except JobStoreError as error:
        log.warning("could not remove stale uploads (the next gc retries): %s", error)
    return report


def _delete_quietly(store: JobStore) -> Any:
    """A function deleting one blob that returns its key on failure (None on success)."""
    blobs = store.blob_store

    def delete(key: str) -> str | None:
        try:
            blobs.delete(key)
        except JobStoreError as error:
            log.warning("could not delete blob %s (the next gc retries it): %s", key, error)
            return key
        return None

    return delete
