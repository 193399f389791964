"""Retention: delete old jobs (and their files and blobs together) and old read logs.

A long-lived PostgreSQL catalog serves workflow after workflow; without retention its ``jobs``,
``files`` and ``logs`` tables, and the blobs behind them, only grow. ``prune`` removes jobs in the
given states that have not been updated for a while, the files that go with them, and log
messages that were read long ago. Rows are deleted first, in one transaction per batch, and the
blobs they referenced afterwards (keys are never reused, so this is the store's usual order); the
age and state of every job are re-checked by the DELETE itself, so a job updated meanwhile stays.

Which files go with a job: those written with ``cleanup=True`` (exactly what ``delete_job`` does),
or with ``all_files=True`` every file the job owned, its outputs included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from jobstore.blobs.maintenance import is_reference_key
from jobstore.catalog.maintenance import catalog_now
from jobstore.errors import JobStoreError
from jobstore.maintenance.durations import format_duration, parse_duration
from jobstore.maintenance.orphans import DEFAULT_WORKERS, parallel_map
from jobstore.maintenance.progress import Progress, no_progress
from jobstore.store import JobStore

#: Jobs per transaction.
BATCH = 500


@dataclass
class PruneReport:
    dry_run: bool
    older_than: str
    cutoff: str
    states: list[str] | None
    jobs: int = 0
    files: int = 0
    bytes: int = 0
    logs: int = 0
    failures: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def prune(
    store: JobStore,
    older_than: timedelta | str,
    *,
    states: Sequence[str] | None = ("completed",),
    all_files: bool = False,
    logs: bool = True,
    dry_run: bool = False,
    workers: int = DEFAULT_WORKERS,
    progress: Progress = no_progress,
) -> PruneReport:
    """Delete jobs in ``states`` (None: any state) not updated for ``older_than``, with their files
    and blobs, and read logs older than that. ``dry_run`` reports the same without deleting."""
    age = parse_duration(older_than)
    cutoff = catalog_now() - age
    wanted = list(states) if states else None
    report = PruneReport(dry_run, format_duration(age), cutoff.isoformat(), wanted)
    catalog = store.maintenance_catalog
    after = ""
    while True:
        ids = catalog.prunable_job_ids(cutoff, wanted, after, BATCH)
        if not ids:
            break
        after = ids[-1]
        gone, blobs = catalog.prune_jobs(ids, cutoff, wanted, all_files=all_files, dry_run=dry_run)
        if not dry_run:
            report.failures += [
                key
                for key in parallel_map(
                    _delete_quietly(store), [k for k, _ in blobs if not is_reference_key(k)], workers
                )
                if key
            ]
        report.jobs += len(gone)
        report.files += len(blobs)
        report.bytes += sum(size for _, size in blobs)
        progress("jobs", report.jobs, None)
    if logs:
        report.logs = catalog.prune_read_logs(cutoff, dry_run=dry_run)
    return report


def _delete_quietly(store: JobStore) -> Any:
    def delete(key: str) -> str | None:
        try:
            store.blob_store.delete(key)
        except JobStoreError:
            return key  # unreferenced now: gc deletes it later
        return None

    return delete
