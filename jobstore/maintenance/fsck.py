"""fsck: is every row's blob there, intact, and every blob accounted for?

Checks, in one pass over the listing and the rows:

* ``missing_blob``: a file row whose blob is not in the blob store (``shared_file_missing_blob``
  for shared files: a name that points nowhere);
* ``size_mismatch`` / ``checksum_mismatch``: the blob differs from what was recorded (checksums
  only with ``verify_checksums``, which reads every byte);
* ``unreferenced_blob``: a blob no row references (an interrupted write, or damage);
* ``orphaned_cleanup_file``: a file written with ``cleanup=True`` whose job is gone;
* ``invalid_blob_key``: a row whose key jobstore could never have written (a tampered row);
* ``foreign_object``: something in the blob store's prefix that jobstore did not write;
* ``reference_changed`` / ``reference_missing``: the source of a reference import was rewritten or
  replaced (its fingerprint, or with ``verify_checksums`` its recorded CRC32C, differs) or is gone.
  Reads of such a file fail until the source is restored; jobstore never touches the source.

``repair`` fixes what can be fixed without losing data: orphaned cleanup files are deleted (rows and
blobs: they were due to go with their job), unreferenced blobs are condemned so that ``gc`` deletes
them after its grace period. Missing or damaged blobs cannot be recreated; their rows are left as
they are and reported, so no record of what was lost disappears.

Run it on a quiescent store: a writer between its upload and its commit owns a blob that no row
references yet, which fsck would report (and repair would condemn, harmlessly: gc's grace period
protects it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from jobstore.blobs.maintenance import BlobInfo, check_key, drain
from jobstore.catalog.maintenance import FileCheckRow, catalog_now
from jobstore.errors import (
    BlobNotFoundError,
    ChecksumMismatchError,
    JobStoreError,
    ReferenceChangedError,
    UnsafeLocationError,
)
from jobstore.maintenance.orphans import (
    DEFAULT_WORKERS,
    check_blobs_not_shared,
    compare_blobs,
    orphaned_files,
    parallel_map,
)
from jobstore.maintenance.progress import Progress, no_progress
from jobstore.store import JobStore

#: Rows per page when walking the catalog.
PAGE = 2000


@dataclass
class Problem:
    """One thing wrong with the store."""

    kind: str
    #: The file ID, or the blob key for blob-level problems.
    subject: str
    detail: str
    repaired: bool = False
    #: What repair did, or what the operator can do.
    action: str = ""


@dataclass
class FsckReport:
    problems: list[Problem] = field(default_factory=list)
    checked_files: int = 0
    listed_blobs: int = 0
    verified_checksums: bool = False
    repair: bool = False
    #: Facts that are not problems: orphaned files kept by design, blobs awaiting gc.
    notes: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong, or everything wrong was repaired."""
        return all(problem.repaired for problem in self.problems)

    def counts(self) -> dict[str, int]:
        counted: dict[str, int] = {}
        for problem in self.problems:
            counted[problem.kind] = counted.get(problem.kind, 0) + 1
        return counted

    def to_dict(self) -> dict[str, Any]:
        result = asdict(self)
        result["ok"] = self.ok
        result["counts"] = self.counts()
        return result


def fsck(
    store: JobStore,
    *,
    verify_checksums: bool = False,
    repair: bool = False,
    workers: int = DEFAULT_WORKERS,
    progress: Progress = no_progress,
) -> FsckReport:
    """Check a store's rows against its blobs; with ``repair``, fix what is safe to fix."""
    report = FsckReport(verified_checksums=verify_checksums, repair=repair)
    check_blobs_not_shared(store)
    catalog, blobs = store.maintenance_catalog, store.blob_store

    comparison = compare_blobs(store, progress)
    report.listed_blobs = comparison.listed
    # A row committed after the listing is not missing: look again at those few keys.
    missing_ids = set()
    for row in comparison.missing:
        try:
            if blobs.exists(row.blob_key):
                continue
        except UnsafeLocationError:
            continue  # reported as invalid_blob_key below
        missing_ids.add(row.id)
        shared = row.shared_name is not None
        report.problems.append(
            Problem(
                "shared_file_missing_blob" if shared else "missing_blob",
                row.id,
                f"{'shared file ' + repr(row.shared_name) if shared else 'file'} has no blob at {row.blob_key!r} "
                f"({row.size} bytes recorded)",
                action="cannot be recreated: restore the blob from a backup, or delete the file",
            )
        )

    # Walk every row: key syntax, then size (and checksum) of the blobs that are there.
    after = ""
    while True:
        page = catalog.file_check_page(after, PAGE)
        if not page:
            break
        after = page[-1].id
        report.checked_files += len(page)
        present: list[FileCheckRow] = []
        for row in page:
            try:
                check_key(row.blob_key)
            except UnsafeLocationError:
                report.problems.append(
                    Problem(
                        "invalid_blob_key",
                        row.id,
                        f"the row's blob key {row.blob_key!r} is not one jobstore writes (a tampered row)",
                        action="delete the file, or restore the catalog from a backup",
                    )
                )
                continue
            if row.id not in missing_ids:
                present.append(row)
        for found in parallel_map(lambda row: _check_row(store, row, verify_checksums), present, workers):
            if found is not None:
                report.problems.append(found)
        progress("check files", report.checked_files, None)

    # Cleanup files whose job is gone; orphans kept by design are a note, not a problem.
    cleanup_orphans = orphaned_files(store, cleanup_only=True)
    all_orphans = catalog.count_orphaned_files()
    report.notes["orphaned_files_kept"] = all_orphans[0] - len(cleanup_orphans)
    for orphan in cleanup_orphans:
        report.problems.append(
            Problem(
                "orphaned_cleanup_file",
                orphan.id,
                f"written with cleanup=True for job {orphan.job_id}, which no longer exists ({orphan.size} bytes)",
                action="delete it (jobstore fsck --repair, or jobstore gc)",
            )
        )

    condemned = catalog.condemned_keys()
    unreferenced = [key for key in comparison.unreferenced if key not in condemned]
    report.notes["blobs_awaiting_gc"] = len(comparison.unreferenced) - len(unreferenced)
    for key in unreferenced:
        report.problems.append(
            Problem(
                "unreferenced_blob",
                key,
                "no file row references this blob (an interrupted write, or a deleted row)",
                action="condemn it so that jobstore gc deletes it after its grace period",
            )
        )
    for name in comparison.foreign:
        report.problems.append(
            Problem(
                "foreign_object",
                name,
                "an object in the store's blob prefix that jobstore did not write",
                action="move it out of the store's prefix; jobstore never deletes it",
            )
        )
    if repair:
        _repair(store, report, unreferenced, workers)
    return report


def _check_row(store: JobStore, row: FileCheckRow, verify_checksum: bool) -> Problem | None:
    return (
        _check_blob(store, row, verify_checksum)
        if row.reference is None
        else _check_reference(store, row, verify_checksum)
    )


def _check_reference(store: JobStore, row: FileCheckRow, verify_checksum: bool) -> Problem | None:
    """Is the source still the one imported? (a stat or a HEAD; with a recorded checksum and
    ``verify_checksum``, one read of the source)."""
    try:
        store.verify_reference(row.id, read=verify_checksum and bool(row.checksum))
    except ReferenceChangedError as error:
        gone = "no longer exists" in str(error)
        return Problem(
            "reference_missing" if gone else "reference_changed",
            row.id,
            str(error).split(" jobstore never")[0].split(" Restore the")[0],
            action="restore the source, or delete the file (jobstore never changes a reference's source)",
        )
    except JobStoreError as error:
        return Problem("unreadable_reference", row.id, str(error), action="check access to the source")
    return None


def _check_blob(store: JobStore, row: FileCheckRow, verify_checksum: bool) -> Problem | None:
    blobs = store.blob_store
    try:
        size = blobs.size(row.blob_key)
    except JobStoreError as error:
        return Problem("unreadable_blob", row.id, f"{row.blob_key!r}: {error}", action="check the blob store")
    if size is None:
        return None  # vanished since the listing: a concurrent delete, not damage
    if size != row.size:
        return Problem(
            "size_mismatch",
            row.id,
            f"blob {row.blob_key!r} holds {size} bytes, the row records {row.size}",
            action="cannot be repaired: restore the blob from a backup, or delete the file",
        )
    if not verify_checksum:
        return None
    try:
        with blobs.open_read(row.blob_key, BlobInfo(row.size, row.checksum), f"file {row.id}") as reader:
            drain(reader)
    except ChecksumMismatchError as error:
        return Problem(
            "checksum_mismatch",
            row.id,
            str(error).split(" The stored copy")[0],
            action="cannot be repaired: restore the blob from a backup, or delete the file",
        )
    except BlobNotFoundError:
        return None
    return None


def _repair(store: JobStore, report: FsckReport, unreferenced: list[str], workers: int) -> None:
    catalog, blobs = store.maintenance_catalog, store.blob_store
    by_kind: dict[str, list[Problem]] = {}
    for problem in report.problems:
        by_kind.setdefault(problem.kind, []).append(problem)

    cleanup = by_kind.get("orphaned_cleanup_file", [])
    if cleanup:
        ids = [problem.subject for problem in cleanup]
        deleted = catalog.delete_orphaned_files(ids)
        gone = {file_id for file_id, _, _ in deleted}
        parallel_map(_quiet_delete(store), [key for _, key, _ in deleted], workers)
        for problem in cleanup:
            if problem.subject in gone:
                problem.repaired = True
                problem.action = "deleted the row and its blob"

    if unreferenced:
        sizes = parallel_map(blobs.size, unreferenced, workers)
        catalog.condemn(list(zip(unreferenced, sizes, strict=True)), catalog_now())
        for problem in by_kind.get("unreferenced_blob", []):
            problem.repaired = True
            problem.action = "condemned: jobstore gc deletes it after its grace period unless a row claims it"


def _quiet_delete(store: JobStore) -> Any:
    def delete(key: str) -> None:
        try:
            store.blob_store.delete(key)
        except JobStoreError:
            pass  # unreferenced now: gc finds it

    return delete
