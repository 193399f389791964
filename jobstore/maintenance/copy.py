"""Copy a whole store to another backend, keeping every job and file ID.

Any catalog to any catalog, any blob store to any blob store (SQLite + local to PostgreSQL + S3 and
back). Rows are copied whole: IDs, versions, owners, cleanup flags, shared names, checksums and
times. Blobs keep their keys and are streamed (memory does not grow with file size), and the bytes
written are checksummed on the way and compared with the recorded checksum.

The copy keeps the store's first promise: a file's blob is copied before its row is inserted, so an
interrupted copy never leaves a row without its bytes. Running it again resumes: jobs and files
already in the destination are skipped (inserts ignore existing IDs), a blob left by an interrupted
upload is replaced, and logs are copied in one transaction, so they are either all there or not.
At the end, row counts are compared and every destination blob is read back and verified.

Copy a quiescent source (no workflow running on it): rows added to the source during a copy may
or may not be included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from jobstore.blobs.maintenance import CHUNK_SIZE, REFERENCE_KEY_PREFIX, BlobInfo, drain
from jobstore.catalog.maintenance import FileCheckRow
from jobstore.config import Config
from jobstore.errors import (
    BlobExistsError,
    ChecksumMismatchError,
    JobStoreError,
    NoSuchJobStoreException,
    UnsafeLocationError,
)
from jobstore.maintenance.orphans import parallel_map
from jobstore.maintenance.progress import Progress, no_progress
from jobstore.redact import redact_url
from jobstore.store import JobStore, create_job_store

#: Rows per page: each page of files is copied (blobs in parallel), then committed in one transaction.
PAGE = 200
DEFAULT_WORKERS = 4


@dataclass
class CopyReport:
    jobs: int = 0
    files: int = 0
    bytes: int = 0
    logs: int = 0
    #: Files found already copied by an earlier, interrupted run.
    files_already_there: int = 0
    #: Destination blobs read back and verified against their checksums.
    verified: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        result = asdict(self)
        result["ok"] = self.ok
        return result


def open_destination(locator: str, config: Config | None = None) -> JobStore:
    """The destination store: resumed if it exists (an interrupted copy), created otherwise."""
    store = create_job_store(locator)
    try:
        store.resume(config)
    except NoSuchJobStoreException:
        store = create_job_store(locator)
        store.initialize(config if config is not None else Config())
    return store


def destination_config(source: JobStore, **settings: Any) -> Config:
    """A Config for the destination: the source's persisted settings, its workflow ID, ``settings`` on top."""
    config = Config.from_json(source.config.to_json())
    config.jobStore = None
    config.catalog = None
    config.blobStore = None
    for name, value in settings.items():
        setattr(config, name, value)
    return config


def copy_store(
    source: JobStore,
    destination: JobStore,
    *,
    verify: bool = True,
    materialize_references: bool = False,
    workers: int = DEFAULT_WORKERS,
    progress: Progress = no_progress,
) -> CopyReport:
    """Copy every job, file, shared file and log of ``source`` into ``destination`` (both open).

    Reference imports stay references (the row is copied, the source is not), unless
    ``materialize_references``: then each source is read (its fingerprint checked first) into a
    blob of the destination, which owns it from then on."""
    _check_distinct(source, destination)
    report = CopyReport()
    source_rows, destination_rows = source.maintenance_catalog, destination.maintenance_catalog
    totals = source_rows.row_counts()
    _claim_destination(source, destination)

    # Jobs first, so every file's owner is there when the file arrives.
    after = ""
    while True:
        page = source_rows.job_rows_page(after, 1000)
        if not page:
            break
        destination_rows.insert_job_rows(page)
        report.jobs += len(page)
        after = str(page[-1]["id"])
        progress("jobs", report.jobs, totals["jobs"])

    # Files (shared files included): blobs first, then the page's rows in one transaction.
    encrypted = destination.blob_store.encrypted
    after = ""
    done = 0
    while True:
        page = source_rows.file_rows_page(after, PAGE)
        if not page:
            break
        after = str(page[-1]["id"])
        ids = [str(row["id"]) for row in page]
        present = destination_rows.existing_file_ids(ids)
        todo = [row for row in page if row["id"] not in present]
        report.files_already_there += len(page) - len(todo)
        rows = parallel_map(lambda row: _copy_content(source, destination, row, materialize_references), todo, workers)
        rows = [{**row, "encrypted": encrypted and row["reference"] is None} for row in rows]
        destination_rows.insert_file_rows(rows)
        report.files += len(todo)
        report.bytes += sum(int(row["size"]) for row in todo)
        done += len(page)
        progress("files", done, totals["files"])

    report.logs = _copy_logs(source, destination)
    progress("logs", report.logs, totals["logs"])
    destination_rows.refresh_statistics()  # reports on the copy must not wait for autovacuum

    copied = destination_rows.row_counts()
    for what in ("jobs", "files", "logs"):
        if copied[what] != totals[what]:
            report.problems.append(f"the source has {totals[what]} {what}, the destination {copied[what]}")
    if verify:
        report.verified, failures = verify_blobs(destination, workers=workers, progress=progress)
        report.problems += failures
    return report


def verify_blobs(
    store: JobStore, *, workers: int = DEFAULT_WORKERS, progress: Progress = no_progress
) -> tuple[int, list[str]]:
    """Read every blob of ``store`` back and check it against its row; return (verified, problems)."""
    problems: list[str] = []
    verified = 0
    after = ""
    while True:
        page = store.maintenance_catalog.file_check_page(after, 1000)
        if not page:
            break
        after = page[-1].id

        def check(row: FileCheckRow) -> str | None:
            try:
                if row.reference is not None:
                    store.verify_reference(row.id)
                    return None
                with store.blob_store.open_read(
                    row.blob_key, BlobInfo(row.size, row.checksum), f"file {row.id}"
                ) as reader:
                    drain(reader)
            except JobStoreError as error:
                return str(error)
            return None

        for problem in parallel_map(check, page, workers):
            if problem is None:
                verified += 1
            else:
                problems.append(problem)
        progress("verify", verified + len(problems), None)
    return verified, problems


def _check_distinct(source: JobStore, destination: JobStore) -> None:
    if source.maintenance_catalog.same_store_as(destination.maintenance_catalog):
        raise UnsafeLocationError("The source and the destination are the same store; copy to another locator.")
    if source.blob_store.url.rstrip("/") == destination.blob_store.url.rstrip("/"):
        raise UnsafeLocationError(
            f"The source and the destination share the blob store {redact_url(source.blob_store.url)}; two stores "
            "sharing blobs would delete each other's files. Give the destination its own blob store."
        )


def _claim_destination(source: JobStore, destination: JobStore) -> None:
    """An empty destination becomes a copy of the source (its workflow ID); a non-empty one must be
    a copy of the same workflow (an interrupted copy being resumed), never an unrelated store."""
    counts = destination.maintenance_catalog.row_counts()
    source_workflow = source.config.workflowID or ""
    if any(counts.values()):
        if destination.config.workflowID != source_workflow:
            raise UnsafeLocationError(
                f"The destination {redact_url(destination.locator)} already holds another workflow's store "
                f"({destination.config.workflowID}); copy into a new locator, or destroy that store first."
            )
        return
    destination.config.workflowID = source_workflow
    config_json = destination.config.to_json()
    destination.maintenance_catalog.set_workflow_id(source_workflow, config_json)


def _copy_content(source: JobStore, destination: JobStore, row: dict[str, Any], materialize: bool) -> dict[str, Any]:
    """Copy a file's bytes; the row as the destination should hold it."""
    if row["reference"] is None:
        _copy_blob(source, destination, row)
        return row
    if not materialize:
        return row
    # The owned key keeps the reference key's unique tail, under the owned prefix ("s/" or "f/").
    owned = ("s/" if row["shared_name"] is not None else "f/") + str(row["blob_key"])[len(REFERENCE_KEY_PREFIX) :]
    with (
        source.read_file_stream(str(row["id"])) as reader,
        destination.blob_store.open_write(owned) as (handle, pending),
    ):
        while chunk := reader.read(CHUNK_SIZE):
            handle.write(chunk)
    assert pending.info is not None
    return {**row, "blob_key": owned, "checksum": pending.info.checksum, "reference": None}


def _copy_blob(source: JobStore, destination: JobStore, row: dict[str, Any]) -> None:
    """Stream one blob across, checksumming what is written; replace a leftover of an interrupted run."""
    key = str(row["blob_key"])
    expected = BlobInfo(int(row["size"]), str(row["checksum"]))
    for attempt in (1, 2):
        try:
            with (
                source.blob_store.open_read(key, expected, f"file {row['id']} of the source") as reader,
                destination.blob_store.open_write(key) as (handle, pending),
            ):
                while chunk := reader.read(CHUNK_SIZE):
                    handle.write(chunk)
            break
        except BlobExistsError:
            if attempt == 2:
                raise
            # No destination row references it yet (rows come after blobs): a leftover, safe to replace.
            destination.blob_store.delete(key)
    assert pending.info is not None
    if pending.info.checksum != expected.checksum or pending.info.size != expected.size:
        destination.blob_store.delete(key)
        raise ChecksumMismatchError(
            f"The copy of file {row['id']} has checksum {pending.info.checksum} ({pending.info.size} bytes), "
            f"not the recorded {expected.checksum} ({expected.size} bytes); run the copy again."
        )


def _copy_logs(source: JobStore, destination: JobStore) -> int:
    """All logs in one destination transaction: all or none, so a rerun knows where it stands."""
    already = destination.maintenance_catalog.row_counts()["logs"]
    if already:
        return already
    return destination.maintenance_catalog.copy_logs_from(source.maintenance_catalog)


__all__: Sequence[str] = ["CopyReport", "copy_store", "destination_config", "open_destination", "verify_blobs"]
