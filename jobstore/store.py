"""The one job store implementation: a SQL catalog plus a blob store.

Every write follows the same order, which is what makes a crash harmless:

1. the bytes go to a fresh, never-reused blob key (create-only);
2. the catalog row that points at them is committed, in one transaction;
3. only then are blobs that no row references any more deleted.

A crash between 1 and 2 leaves an unreferenced blob (garbage collection removes it); a crash
between 2 and 3 leaves an unreferenced old blob (likewise). No crash leaves a row pointing at
missing or partial bytes. Concurrent writers are arbitrated by row versions in the catalog.

``FileJobStore``, ``AWSJobStore`` and ``GoogleJobStore`` are named front doors over the same class
that check the locator's kind; ``JobStore`` takes any locator.
"""

from __future__ import annotations

import atexit
import io
import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any, cast

from jobstore.abstract import AbstractJobStore, ByteProgress, check_shared_file_name
from jobstore.blob_lifecycle import BlobLifecycle
from jobstore.blobs import BlobInfo, BlobStore, new_key, open_blob_store
from jobstore.blobs.base import CHUNK_SIZE, REFERENCE_KEY_PREFIX, wrap_text
from jobstore.catalog import Catalog, FileRow, JobFields, NewFile
from jobstore.catalog.location import sqlite_path
from jobstore.catalog.operations import CatalogOperations
from jobstore.catalog.rows import HEAD_REVISION, utc_now
from jobstore.config import Config
from jobstore.errors import (
    ConcurrentFileModificationException,
    EncryptionKeyError,
    InvalidArgumentError,
    InvalidLocatorError,
    InvalidNameError,
    JobStoreError,
    JobStoreExistsException,
    LeaseLostError,
    NoSuchFileException,
    NoSuchJobException,
    NoSuchJobStoreException,
    PublicURLError,
    StoreBeingDestroyedError,
)
from jobstore.job import JobDescription, deserialise_description, serialise_description
from jobstore.lease import DEFAULT_LEASE_SECONDS, LeaderLease, acquire, describe_lease, new_holder
from jobstore.locator import SQLITE_CATALOG_NAME, StoreLocation, parse_locator
from jobstore.placement import (
    apply_locator_defaults,
    blob_owner,
    prepare_new_store,
    refuse_settings_the_locator_overrides,
    remove_store_directory,
    required_blob_url,
    required_catalog_url,
)
from jobstore.providers.local_target import readable_regular_file, replaceable_target
from jobstore.redact import redact_url
from jobstore.transfer import ProgressReader, copy_with_progress, put_local_file

if TYPE_CHECKING:
    from jobstore.catalog.maintenance import MaintenanceCatalog
    from jobstore.catalog.rows import LeaseRow
    from jobstore.urls.references import Reference


#: Job and file IDs: generated IDs are 32 hex digits; IDs chosen by callers must be plain tokens.
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")

#: How much of a shared file's name goes into its blob key (the key only has to be unique, which its
#: random suffix ensures; a whole 255-character name would make a file name too long for ext4).
SHARED_KEY_NAME_LENGTH = 100

#: Page size of ``jobs()`` (keyset pagination: short transactions, safe to modify while iterating).
JOBS_PAGE_SIZE = 1000

#: Lifetime of URLs from ``get_public_url`` (seconds); SigV4 allows at most 7 days.
DEFAULT_PUBLIC_URL_EXPIRY = 7 * 24 * 3600


class _FileIdTaken(JobStoreError):
    """A new file's row could not be added: its ID is in use (only caller-chosen IDs can be)."""


def new_id() -> str:
    """A fresh ID: 128 random bits as 32 hex digits (the shape of uuid4().hex, a third of the cost)."""
    return os.urandom(16).hex()


def _is_valid_id(value: object) -> bool:
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None and ".." not in value


def _new_write_token() -> int:
    """A random nonzero 63-bit token for one job write (see ``JobFields.write_token``)."""
    return (int.from_bytes(os.urandom(8), "big") >> 1) or 1


def _job_fields(job: JobDescription) -> JobFields:
    assert job.jobStoreID is not None
    description = serialise_description(job)  # validates first: a bad requirements is a TypeError
    requirements = job.requirements
    return JobFields(
        id=job.jobStoreID,
        name=job.jobName,
        unit_name=job.unitName,
        state=job.state,
        remaining_tries=job.remainingTryCount,
        memory=requirements.get("memory"),
        cores=requirements.get("cores"),
        disk=requirements.get("disk"),
        description=description,
        write_token=_new_write_token(),
    )


def _check_description(job: object) -> None:
    if not isinstance(job, JobDescription):
        raise TypeError(f"Expected a jobstore.JobDescription, got {type(job).__name__}.")


def _blob_info(row: FileRow) -> BlobInfo:
    return BlobInfo(row.size, row.checksum)


def _reference_of(row: FileRow) -> Reference:
    from jobstore.urls.references import Reference

    assert row.reference is not None
    return Reference.from_json(row.reference, row.checksum)


#: How ``import_file`` may bring a file in.
IMPORT_MODES = ("copy", "reference")


class JobStore(AbstractJobStore):
    """A job store on any catalog (SQLite, PostgreSQL) with any blob store (local, S3, GCS).

    The object is cheap to create; ``initialize`` or ``resume`` connects it. It is safe to share
    between threads: each operation takes its own pooled connection, and ``batch()`` is per thread.
    """

    #: Locator kinds this class accepts (the named front doors narrow it).
    accepted_kinds: tuple[str, ...] = ("file", "aws", "google", "sql")

    def __init__(self, locator: str) -> None:
        self._location: StoreLocation = parse_locator(locator)
        if self._location.kind not in self.accepted_kinds:
            raise InvalidLocatorError(
                f"{type(self).__name__} cannot open {redact_url(locator)!r} (a {self._location.kind} locator); "
                f"use jobstore.create_job_store(locator) or the matching class."
            )
        super().__init__(self._location.locator)
        self._config: Config | None = None
        self._catalog: Catalog | None = None
        self._blobs: BlobStore | None = None
        self._store_id: int | None = None
        self._blob_lifecycle = BlobLifecycle()
        self._lease: LeaderLease | None = None

    def __repr__(self) -> str:
        state = "open" if self._store_id is not None else "not opened"
        return f"{type(self).__name__}({redact_url(self.locator)!r}, {state})"

    # --- life cycle --------------------------------------------------------------------------

    @property
    def config(self) -> Config:
        if self._config is None:
            raise JobStoreError("The job store is not open yet: call initialize(config) or resume() first.")
        return self._config

    def initialize(self, config: Config | None = None) -> None:
        """Create the store: its catalog schema (if new), its row, its blob container."""
        config = config if config is not None else Config()
        location = self._location
        refuse_settings_the_locator_overrides(self.locator, location, config)
        catalog_url = required_catalog_url(self.locator, location, config)
        blob_url = required_blob_url(self.locator, location, config)
        prepare_new_store(location, catalog_url, config)
        apply_locator_defaults(self.locator, location, config)
        catalog = Catalog(catalog_url, durability=config.durability, pool_size=config.poolSize)
        try:
            if catalog.create_schema_if_fresh(self.locator, location.store_name) is not None:
                raise JobStoreExistsException(self.locator)
            blobs = open_blob_store(blob_url, config)
            blobs.create(blob_owner(location.store_name, config.workflowID))
            store_id = catalog.operations.create_store(
                location.store_name, blob_url, config.workflowID or "", config.to_json()
            )
            if store_id is None:
                raise JobStoreExistsException(self.locator)
        except BaseException:
            catalog.dispose()
            raise
        self._config, self._catalog, self._blobs, self._store_id = config, catalog, blobs, store_id

    def resume(self, config: Config | None = None) -> None:
        """Open an existing store from its locator alone (plus secrets, which are never stored:
        pass a Config holding them, e.g. ``sseKey``, if the store needs them). A store whose
        ``destroy()`` has begun is refused with StoreBeingDestroyedError (a NoSuchJobStoreException)."""
        self._open(config, for_destroy=False)

    def _open(self, config: Config | None, *, for_destroy: bool) -> None:
        location = self._location
        if config is not None:
            refuse_settings_the_locator_overrides(self.locator, location, config)
        catalog_url = required_catalog_url(self.locator, location, config)
        database_file = sqlite_path(catalog_url)
        if database_file is not None and not os.path.isfile(database_file):
            detail = ""
            if location.kind == "file" and os.path.isdir(os.path.dirname(database_file)):
                detail = f"The directory exists but holds no {SQLITE_CATALOG_NAME}: it is not a job store."
            raise NoSuchJobStoreException(self.locator, detail)
        catalog = Catalog(catalog_url, pool_size=config.poolSize if config else 5)
        try:
            row = catalog.find_store(self.locator, location.store_name)
            if row is None:
                raise NoSuchJobStoreException(self.locator)
            if row.being_destroyed and not for_destroy:
                raise StoreBeingDestroyedError(
                    self.locator, "Its destroy() began and did not finish: run destroy() (or `jobstore destroy`) again."
                )
            stored = Config.from_json(row.config_json)
            if config is not None:
                for name, value in vars(config).items():
                    if value is not None and name not in ("jobStore", "workflowID"):
                        setattr(stored, name, value)
            if stored.durability == "full":
                catalog.dispose()
                catalog = Catalog(catalog_url, durability="full", pool_size=stored.poolSize)
            blobs = open_blob_store(row.blob_url, stored)
            blobs.check_owner(blob_owner(location.store_name, stored.workflowID))
        except BaseException:
            catalog.dispose()
            raise
        stored.jobStore = self.locator
        self._config, self._catalog, self._blobs, self._store_id = stored, catalog, blobs, row.id

    def destroy(self, config: Config | None = None) -> None:
        """Delete this store's rows and blobs, and nothing else. Idempotent, and resumable: an
        interrupted destroy is finished by running it again. ``config``: what ``resume()`` would
        need to open the store (its catalog) when this object is not open yet.

        In this order (docs/RELIABILITY.md, "Destroy"): the store is marked as being destroyed (its
        lease moves to a final attempt, so every fenced write of every process, ``resume()`` and
        ``acquire_leader_lease()`` are refused from then on), its blobs are deleted, its rows, and
        then the blobs once more (any an unfenced writer added meanwhile)."""
        if self._store_id is None:
            try:
                self._open(config, for_destroy=True)
            except NoSuchJobStoreException:
                remove_store_directory(self._location)
                return
        catalog, blobs, store_id = self._require()
        catalog.operations.check_fence(store_id)  # a leader that lost the store destroys nothing
        blobs.check_owner(blob_owner(self._location.store_name, self.config.workflowID))
        self.release_leader_lease()
        database = sqlite_path(catalog.url)
        catalog_exists = database is None or os.path.exists(database)  # else another handle destroyed it
        if catalog_exists:
            holder = json.dumps({"destroy": new_holder()}, sort_keys=True)
            catalog.operations.mark_destroyed(store_id, holder, utc_now())
        blobs.destroy(final=False)
        if catalog_exists:
            catalog.operations.delete_store(store_id)
        blobs.destroy()  # what writers that hold no lease added between the first sweep and the rows
        catalog.dispose()
        self._catalog = self._blobs = self._store_id = None
        remove_store_directory(self._location)

    def close(self) -> None:
        """Release the leader lease, if held, and the catalog's connections (the store can be
        resumed again later)."""
        self.release_leader_lease()
        if self._catalog is not None:
            self._catalog.dispose()

    # --- plumbing ----------------------------------------------------------------------------

    def _require(self) -> tuple[Catalog, BlobStore, int]:
        if self._catalog is None or self._blobs is None or self._store_id is None:
            raise JobStoreError(
                f"The job store {redact_url(self.locator)!r} is not open: call initialize(config) or resume() first."
            )
        return self._catalog, self._blobs, self._store_id

    @property
    def blob_store(self) -> BlobStore:
        return self._require()[1]

    @property
    def catalog(self) -> Catalog:
        return self._require()[0]

    @property
    def store_id(self) -> int:
        return self._require()[2]

    @property
    def maintenance_catalog(self) -> MaintenanceCatalog:
        """This store's rows as maintenance tasks ask for them (docs/MAINTENANCE.md): one
        transaction per call, plain values in and out."""
        from jobstore.catalog.maintenance import MaintenanceCatalog  # imports SQLAlchemy: on demand

        catalog, _, store_id = self._require()
        return MaintenanceCatalog(catalog, store_id)

    def _operations(self) -> tuple[CatalogOperations, int]:
        catalog, _, store_id = self._require()
        if self._lease is not None:
            self._lease.check()  # a leader that lost its lease writes nothing more
        return catalog.operations, store_id

    # --- the leader lease --------------------------------------------------------------------

    def acquire_leader_lease(self, *, take_over: bool = False, seconds: float = DEFAULT_LEASE_SECONDS) -> LeaderLease:
        """Become the store's only leader (docs/RELIABILITY.md, "One leader per store").

        Takes the store's lease: created if there is none, taken if it expired or its holder was
        a process of this host that has exited, and with ``take_over=True`` taken from a live
        holder (logged). Raises LeaseHeldError naming the holder otherwise. A heartbeat thread
        renews it every ``seconds / 3``; from then on every write of this object is fenced (its
        transaction first checks that the lease row still holds this attempt), and raises
        LeaseLostError, committing nothing, once another leader took it over. ``close()`` (or
        ``release_leader_lease()``) lets it go. Reading the store from
        other processes (workers, ``jobstore status``) never needs the lease.
        """
        if self._lease is not None and self._lease.held:
            return self._lease
        catalog, _, store_id = self._require()
        self._lease = acquire(
            catalog.operations, store_id, redact_url(self.locator), take_over=take_over, seconds=seconds
        )
        catalog.operations.fence(store_id, self._lease.attempt)
        # A leader that exits without close() lets the lease go too (the next one need not wait).
        atexit.register(self.release_leader_lease)
        return self._lease

    def release_leader_lease(self) -> None:
        """Give the lease up at once (the next leader need not wait for it to expire)."""
        lease, self._lease = self._lease, None
        if lease is not None:
            atexit.unregister(self.release_leader_lease)
            if self._catalog is not None and self._store_id is not None:
                self._catalog.operations.fence(self._store_id, None)
            lease.release()

    def require_lease_attempt(self, attempt: int | None) -> None:
        """Write through this handle only while the store's leader lease is at ``attempt``: what a
        worker started by a leader does with the leader's ``LeaderLease.attempt`` (the fencing
        token; the Toil adapter passes it on by itself). Each write operation then runs in a
        transaction whose first statement reads the lease row, and raises LeaseLostError, writing
        nothing, once another leader has taken the store over. ``None`` stops checking. A leader's
        own writes are fenced from ``acquire_leader_lease()`` on."""
        if attempt is not None and (isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1):
            raise InvalidArgumentError(
                f"A lease attempt is a positive integer (the leader's LeaderLease.attempt), not {attempt!r}."
            )
        catalog, _, store_id = self._require()
        catalog.operations.fence(store_id, attempt)

    @property
    def current_leader_lease(self) -> LeaderLease | None:
        """The lease this handle holds (``acquire_leader_lease``), or None."""
        return self._lease if self._lease is not None and self._lease.held else None

    def leader_lease(self) -> LeaseRow | None:
        """The store's lease as the catalog records it (holder, attempt, expiry), or None."""
        catalog, _, store_id = self._require()
        return catalog.operations.get_lease(store_id)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Run the operations inside the block in one catalog transaction (all or nothing).

        Blobs written inside the block are uploaded as it runs; their rows commit at its end.
        Blobs released by deletes inside the block are deleted after the commit. Nested batches
        join the outer one. Per thread.

        ``create_job`` calls are collected and inserted together (one executemany) before the next
        catalog operation of the batch or at its end, so a duplicate ID is reported there rather
        than by the ``create_job`` call itself; the whole batch is then rolled back. The
        transaction opens at the block's first other catalog operation: a block that only creates
        jobs (what a workflow engine does with a job's new children) is one insert at its end.
        """
        catalog, blobs, store_id = self._require()
        if catalog.operations.in_batch():
            yield
            return
        with self._blob_lifecycle.batch(blobs, catalog.operations.batch(store_id)):
            yield

    def _committed(self, written: str | None, released: list[str]) -> None:
        """A row operation committed: it references ``written`` and no longer ``released``."""
        self._blob_lifecycle.committed(self._require()[1], written, released)

    def _refused(self, written: str) -> None:
        self._blob_lifecycle.refused(self._require()[1], written)

    @contextmanager
    def _refused_if_fenced_out(self, written: str) -> Iterator[None]:
        """A fenced write refused (LeaseLostError, or StoreBeingDestroyedError once destroy began)
        committed nothing, so ``written`` is garbage."""
        try:
            yield
        except (LeaseLostError, StoreBeingDestroyedError):
            self._refused(written)
            raise

    # --- jobs --------------------------------------------------------------------------------

    def assign_job_id(self, job_description: JobDescription) -> None:
        """Give the description a fresh ID (no catalog round trip: IDs are random UUIDs)."""
        job_description.jobStoreID = new_id()

    def create_job(self, job_description: JobDescription) -> JobDescription:
        """Store a new job (version 1), assigning it an ID if it has none."""
        _check_description(job_description)
        if job_description.jobStoreID is None:
            self.assign_job_id(job_description)
        elif not _is_valid_id(job_description.jobStoreID):
            raise InvalidNameError(
                f"{job_description.jobStoreID!r} is not a valid job ID: use 1-128 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit (or leave jobStoreID None to have one assigned)."
            )
        operations, store_id = self._operations()
        if not operations.create_job(store_id, _job_fields(job_description)):
            raise JobStoreError(
                f"A job with ID {job_description.jobStoreID!r} already exists in this store; "
                "use update_job to change it, or create the new job without a jobStoreID."
            )
        job_description.version = 1
        return job_description

    def job_exists(self, job_id: str) -> bool:
        if not _is_valid_id(job_id):
            return False
        operations, store_id = self._operations()
        return operations.job_exists(store_id, job_id)

    def load_job(self, job_id: str) -> JobDescription:
        if not _is_valid_id(job_id):
            raise NoSuchJobException(job_id, "That is not a job ID this store could have issued.")
        operations, store_id = self._operations()
        found = operations.get_job(store_id, job_id)
        if found is None:
            raise NoSuchJobException(job_id)
        version, text = found
        return deserialise_description(text, version)

    def update_job(self, job_description: JobDescription) -> None:
        """Store a changed description if nobody else updated it since it was loaded.

        Raises ConcurrentFileModificationException when the stored version moved on (load it again
        and re-apply the change, or use ``modify_job``). A description that never came from the
        store (``version`` None) overwrites unconditionally, as in Toil. On success the
        description's ``version`` is the new one.
        """
        _check_description(job_description)
        job_id = job_description.jobStoreID
        if job_id is None or not _is_valid_id(job_id):
            raise NoSuchJobException(job_id, "The description has no valid jobStoreID; create_job it first.")
        expected = job_description.version
        operations, store_id = self._operations()
        outcome = operations.update_job(store_id, _job_fields(job_description), expected)
        if outcome is True:
            raise ConcurrentFileModificationException(
                job_id,
                f"The stored job is newer than version {expected} that this description was loaded at.",
            )
        if outcome is False:
            raise NoSuchJobException(job_id)
        job_description.version = outcome

    def save_jobs(self, job_descriptions: list[JobDescription]) -> None:
        """Store each description, creating the job or overwriting it whatever its version, all
        in one transaction (all or nothing). IDs are assigned to descriptions without one; each
        description's ``version`` is then the stored one.

        This is how a workflow engine commits a job's new children and its own new state together
        (Toil's ``batch()`` of ``create_job`` calls); unlike ``update_job`` there is no
        compare-and-set, so use it only for jobs no other process is changing.
        """
        for description in job_descriptions:
            _check_description(description)
            if description.jobStoreID is None:
                self.assign_job_id(description)
            elif not _is_valid_id(description.jobStoreID):
                raise InvalidNameError(f"{description.jobStoreID!r} is not a valid job ID.")
        many = [_job_fields(description) for description in job_descriptions]
        if not many:
            return
        operations, store_id = self._operations()
        versions = operations.save_jobs(store_id, many)
        for description, version in zip(job_descriptions, versions, strict=True):
            description.version = version

    def delete_job(self, job_id: str) -> None:
        """Delete a job and the files written with ``cleanup=True`` for it. Idempotent."""
        if not _is_valid_id(job_id):
            return
        operations, store_id = self._operations()
        _, doomed = operations.delete_job(store_id, job_id)
        self._committed(None, doomed)

    def jobs(self) -> Iterator[JobDescription]:
        """Every job of the store, in ID order, fetched a page at a time (short transactions), so
        the caller may update or delete jobs while iterating."""
        operations, store_id = self._operations()
        after = ""
        while True:
            page = operations.job_page(store_id, after, JOBS_PAGE_SIZE)
            for _, version, text in page:
                yield deserialise_description(text, version)
            if len(page) < JOBS_PAGE_SIZE:
                return
            after = page[-1][0]

    # --- files -------------------------------------------------------------------------------

    def _check_owner(self, job_id: str | None) -> None:
        if job_id is not None and not _is_valid_id(job_id):
            raise NoSuchJobException(job_id, "Files can only be associated with jobs of this store.")

    def claim_file_id(
        self, file_id: str, job_id: str | None = None, cleanup: bool = False, basename: str | None = None
    ) -> bool:
        """Create an empty file under a caller-chosen ID, atomically, unless the ID is taken.

        True if this call created it, False if a file with that ID exists already (whoever made
        it). Engines that derive readable IDs (Toil's hinted files) claim them with this and then
        write the content with ``update_file``. Raises NoSuchJobException if ``job_id`` names no job.
        """
        if not _is_valid_id(file_id):
            raise InvalidNameError(
                f"{file_id!r} is not a valid file ID: use 1-128 letters, digits, '.', '_' or '-', starting "
                "with a letter or digit."
            )
        self._check_owner(job_id)
        blobs = self._require()[1]
        key = new_key("f", file_id[:2], file_id)
        info = blobs.put_bytes(key, b"")
        try:
            self._commit_file(file_id, key, info, job_id=job_id, cleanup=cleanup, basename=basename)
        except _FileIdTaken:
            return False
        return True

    def _commit_file(
        self,
        file_id: str,
        key: str,
        info: BlobInfo,
        *,
        job_id: str | None = None,
        cleanup: bool = False,
        basename: str | None = None,
        executable: bool = False,
        source_url: str | None = None,
        reference: str | None = None,
    ) -> None:
        """Commit the first version of a (non-shared) file whose blob ``key`` holds ``info``."""
        self._commit_new_file(
            NewFile(
                id=file_id,
                job_id=job_id,
                cleanup=cleanup and job_id is not None,
                shared_name=None,
                basename=basename[:255] if basename else None,
                size=info.size,
                checksum=info.checksum,
                blob_key=key,
                executable=executable,
                encrypted=self._require()[1].encrypted and reference is None,
                source_url=source_url,
                reference=reference,
            )
        )

    def _commit_new_file(self, new: NewFile) -> None:
        """Commit the row of a freshly written blob; delete the blob if the row cannot be added."""

        # If the commit itself fails we cannot know whether it happened, so the blob is left alone:
        # garbage collection removes it later if, and only if, no row references it.
        operations, store_id = self._operations()
        with self._refused_if_fenced_out(new.blob_key):
            problem = operations.insert_file(store_id, new)
        if problem is not None:
            self._refused(new.blob_key)
            if problem == "no job":
                raise NoSuchJobException(new.job_id, "A file can only be associated with an existing job.")
            raise _FileIdTaken(f"File ID {new.id!r} is already taken.")
        self._committed(new.blob_key, [])

    def write_file(
        self,
        local_path: str,
        job_id: str | None = None,
        cleanup: bool = False,
        hints: list[str] | None = None,
    ) -> str:
        """Store a copy of a local file; return its new file ID.

        The copy is checksummed as it is made; the file becomes visible only once complete.
        ``job_id`` associates the file with a job (which must exist); with ``cleanup=True`` the
        file is deleted when that job is deleted.
        """
        self._check_owner(job_id)
        path, executable = readable_regular_file(local_path)
        blobs = self._require()[1]
        file_id = new_id()
        key = new_key("f", file_id[:2], file_id)
        info = put_local_file(blobs, key, path)
        self._commit_file(
            file_id, key, info, job_id=job_id, cleanup=cleanup, basename=os.path.basename(path), executable=executable
        )
        return file_id

    @contextmanager
    def write_file_stream(
        self,
        job_id: str | None = None,
        cleanup: bool = False,
        hints: list[str] | None = None,
        basename: str | None = None,
        encoding: str | None = None,
        errors: str | None = None,
    ) -> Iterator[tuple[IO[Any], str]]:
        """Yield ``(handle, file_id)``; the file exists once the block exits without an exception.

        If the block raises, nothing is stored and the ID never becomes valid.
        """
        with self._new_file_stream(job_id, cleanup, basename, encoding, errors) as (stream, file_id):
            yield stream, file_id

    @contextmanager
    def _new_file_stream(
        self,
        job_id: str | None,
        cleanup: bool,
        basename: str | None,
        encoding: str | None,
        errors: str | None,
        *,
        executable: bool = False,
        source_url: str | None = None,
    ) -> Iterator[tuple[IO[Any], str]]:
        self._check_owner(job_id)
        blobs = self._require()[1]
        file_id = new_id()
        key = new_key("f", file_id[:2], file_id)
        with blobs.open_write(key) as (handle, pending):
            stream = wrap_text(handle, encoding, errors)
            yield stream, file_id  # type: ignore[misc]
            if stream is not handle and not stream.closed:
                stream.flush()
        assert pending.info is not None
        self._commit_file(
            file_id,
            key,
            pending.info,
            job_id=job_id,
            cleanup=cleanup,
            basename=basename,
            executable=executable,
            source_url=source_url,
        )

    def get_empty_file_store_id(
        self,
        job_id: str | None = None,
        cleanup: bool = False,
        basename: str | None = None,
        hints: list[str] | None = None,
    ) -> str:
        with self.write_file_stream(job_id, cleanup, basename=basename) as (_, file_id):
            pass
        return file_id

    def _file_row(self, file_id: str) -> FileRow:
        if not _is_valid_id(file_id):
            raise NoSuchFileException(file_id, "That is not a file ID this store could have issued.")
        operations, store_id = self._operations()
        row = operations.get_file(store_id, file_id)
        if row is None:
            raise NoSuchFileException(file_id)
        return row

    def read_file(self, file_id: str, local_path: str, symlink: bool = False) -> None:
        """Materialise a file at ``local_path`` (atomically: temp name, then rename).

        On a local blob store this is a hard link to the immutable, read-only blob when the paths
        share a file system (instant, like Toil's); otherwise a copy verified against the recorded
        checksum in the same pass. Do not modify the file in place afterwards (Toil's rule).
        """
        row = self._file_row(file_id)
        target = replaceable_target(local_path, "read_file")
        if row.reference is not None:
            self._read_reference(row, target, symlink)
            return
        self._require()[1].get_file(
            row.blob_key,
            target,
            _blob_info(row),
            executable=row.executable,
            allow_link=True,
            what=f"file {file_id}",
        )

    @contextmanager
    def read_file_stream(
        self, file_id: str, encoding: str | None = None, errors: str | None = None
    ) -> Iterator[IO[Any]]:
        """Yield a readable handle; reading it to the end verifies size and checksum."""
        row = self._file_row(file_id)
        with self._open_verified(row, f"file {file_id}", encoding, errors) as stream:
            yield stream

    def _read_reference(self, row: FileRow, target: str, symlink: bool) -> None:
        """A reference's source at ``target``: a symbolic link to it when the caller accepts one and
        it is a local file (as Toil's linked imports), else a copy; either only after its
        fingerprint matched."""
        from jobstore.urls import write_to_url
        from jobstore.urls.references import place_symlink

        reference = _reference_of(row)
        what = f"file {row.id}"
        if symlink and reference.is_local:
            reference.validate(self.config, what)
            place_symlink(reference, target)
            return
        with self._open_verified(row, what, None, None) as stream:
            write_to_url(target, stream, row.size, executable=row.executable)

    @contextmanager
    def _open_verified(self, row: FileRow, what: str, encoding: str | None, errors: str | None) -> Iterator[IO[Any]]:
        if row.reference is not None:
            from jobstore.urls.references import open_reference

            with open_reference(_reference_of(row), self.config, what) as source:
                yield wrap_text(source, encoding, errors)  # type: ignore[misc]
            return
        reader = self._require()[1].open_read(row.blob_key, _blob_info(row), what)
        try:
            yield wrap_text(reader, encoding, errors)  # type: ignore[misc]
        finally:
            reader.close()

    def _replace_content(self, file_id: str, key: str, info: BlobInfo, expected_version: int, **extra: Any) -> None:
        """Point a file at a freshly written blob if nobody else changed it meanwhile."""
        values = dict(size=info.size, checksum=info.checksum, blob_key=key, encrypted=self._require()[1].encrypted)
        operations, store_id = self._operations()
        with self._refused_if_fenced_out(key):  # on any other failure the new blob is left for gc
            outcome = operations.replace_file_content(store_id, file_id, expected_version, {**values, **extra})
        if outcome is False:
            self._refused(key)
            raise NoSuchFileException(file_id, "It was deleted while the update was being written.")
        if outcome is True:
            self._refused(key)
            raise ConcurrentFileModificationException(
                file_id,
                f"Another writer updated it after version {expected_version}, which this update started from.",
            )
        self._committed(key, [outcome] if isinstance(outcome, str) else [])

    def update_file(self, file_id: str, local_path: str) -> None:
        """Replace a file's content with a local file's. The first of two concurrent updates wins;
        the second raises ConcurrentFileModificationException and changes nothing."""
        row = self._file_row(file_id)
        path, executable = readable_regular_file(local_path)
        key = new_key("f", file_id[:2], file_id)
        info = put_local_file(self._require()[1], key, path)
        self._replace_content(file_id, key, info, row.version, executable=executable)

    @contextmanager
    def update_file_stream(
        self, file_id: str, encoding: str | None = None, errors: str | None = None
    ) -> Iterator[IO[Any]]:
        """Yield a handle whose contents replace the file's when the block exits normally. If the
        block raises, the old content stays."""
        row = self._file_row(file_id)
        key = new_key("f", file_id[:2], file_id)
        with self._require()[1].open_write(key) as (handle, pending):
            stream = wrap_text(handle, encoding, errors)
            yield stream  # type: ignore[misc]
            if stream is not handle and not stream.closed:
                stream.flush()
        assert pending.info is not None
        self._replace_content(file_id, key, pending.info, row.version)

    def delete_file(self, file_id: str) -> None:
        """Delete a file. Idempotent: a missing file is not an error (Toil's semantics)."""
        if not _is_valid_id(file_id):
            return
        operations, store_id = self._operations()
        key = operations.delete_file(store_id, file_id)
        if key is not None:
            self._committed(None, [key])

    def file_exists(self, file_id: str) -> bool:
        if not _is_valid_id(file_id):
            return False
        operations, store_id = self._operations()
        return operations.file_exists(store_id, file_id)

    def get_file_size(self, file_id: str) -> int:
        """The file's size in bytes, or 0 if it does not exist (Toil's semantics)."""
        if not _is_valid_id(file_id):
            return 0
        operations, store_id = self._operations()
        size = operations.file_size(store_id, file_id)
        return 0 if size is None else size

    def file_info(self, file_id: str) -> FileRow:
        """Everything the catalog records about a file (version, checksum, owner, times...)."""
        return self._file_row(file_id)

    # --- shared files ------------------------------------------------------------------------

    def shared_file_info(self, shared_file_name: str) -> FileRow:
        """What the catalog records about a shared file, its ID included (``.id``), by its name.

        Raises InvalidNameError for a name outside the shared-file rules, NoSuchFileException when
        no shared file has that name.
        """
        return self._shared_row(shared_file_name)

    @contextmanager
    def write_shared_file_stream(
        self,
        shared_file_name: str,
        encrypted: bool | None = None,
        encoding: str | None = None,
        errors: str | None = None,
    ) -> Iterator[IO[Any]]:
        """Yield a handle whose contents become the named shared file (replacing any previous
        content) when the block exits normally; if it raises, the old content stays."""
        name = check_shared_file_name(shared_file_name)
        blobs = self._require()[1]
        if encrypted and not blobs.encrypted:
            raise EncryptionKeyError(
                f"Shared file {name!r} must be encrypted, but this store has no encryption key configured "
                "(set Config.sseKey or Config.sseKeyFile)."
            )
        key = new_key("s", name[:SHARED_KEY_NAME_LENGTH])
        with blobs.open_write(key) as (handle, pending):
            stream = wrap_text(handle, encoding, errors)
            yield stream  # type: ignore[misc]
            if stream is not handle and not stream.closed:
                stream.flush()
        assert pending.info is not None
        self._commit_shared_blob(name, key, pending.info)

    def _shared_row(self, shared_file_name: str) -> FileRow:
        name = check_shared_file_name(shared_file_name)
        operations, store_id = self._operations()
        row = operations.get_shared_file(store_id, name)
        if row is None:
            raise NoSuchFileException(name, "No shared file has that name.")
        return row

    @contextmanager
    def read_shared_file_stream(
        self, shared_file_name: str, encoding: str | None = None, errors: str | None = None
    ) -> Iterator[IO[Any]]:
        row = self._shared_row(shared_file_name)
        with self._open_verified(row, f"shared file {shared_file_name!r}", encoding, errors) as stream:
            yield stream

    def shared_file_exists(self, shared_file_name: str) -> bool:
        name = check_shared_file_name(shared_file_name)
        operations, store_id = self._operations()
        return operations.get_shared_file(store_id, name) is not None

    # --- logs --------------------------------------------------------------------------------

    def write_logs(self, msg: str | bytes) -> None:
        """Store a log message for ``read_logs``."""
        if isinstance(msg, str):
            try:
                data = msg.encode("utf-8")
            except UnicodeEncodeError as error:
                raise InvalidNameError(
                    f"write_logs got text that is not valid Unicode (a lone surrogate at position {error.start}); "
                    "pass bytes, or text decoded with errors='replace'."
                ) from None
        elif isinstance(msg, bytes | bytearray):
            data = bytes(msg)
        else:
            raise TypeError(f"write_logs takes str or bytes, not {type(msg).__name__}.")
        operations, store_id = self._operations()
        operations.append_log(store_id, data)

    def read_logs(self, callback: Callable[..., Any], read_all: bool = False) -> int:
        """Call ``callback`` with a binary file object per log message (as Toil does); return the count.

        Unread messages are claimed atomically, so two concurrent readers never both receive one.
        If the callback raises, the messages not yet delivered become unread again.
        ``read_all`` first replays the messages already read.
        """
        operations, store_id = self._operations()
        replayed = 0
        if read_all:
            for _, message in operations.read_logs(store_id):
                callback(io.BytesIO(message))
                replayed += 1
        # Most polls find nothing: a read, without the write transaction (and the write lock every
        # writer waits for) that claiming takes. A message appended meanwhile waits for the next poll.
        if not operations.has_unread_logs(store_id):
            return replayed
        claimed = operations.claim_unread_logs(store_id)
        delivered = 0
        try:
            for _, message in claimed:
                callback(io.BytesIO(message))
                delivered += 1
        except BaseException:
            operations.unclaim_logs(store_id, [seq for seq, _ in claimed[delivered:]])
            raise
        return replayed + delivered

    # --- URLs --------------------------------------------------------------------------------

    def get_public_url(self, file_name: str) -> str:
        """A URL from which anyone holding it can read the file (presigned on S3/GCS, file: locally)."""
        row = self._file_row(file_name)
        if row.reference is not None:
            return self._reference_public_url(row)
        return self._require()[1].public_url(row.blob_key, self._public_url_expiry())

    def get_shared_public_url(self, shared_file_name: str) -> str:
        row = self._shared_row(shared_file_name)
        if row.reference is not None:
            return self._reference_public_url(row)
        return self._require()[1].public_url(row.blob_key, self._public_url_expiry())

    def verify_reference(self, file_id: str, *, read: bool = False) -> None:
        """Raise ReferenceChangedError if the source of the reference import ``file_id`` changed or
        vanished since its import: one stat (or HEAD request), or with ``read`` a whole read that
        also verifies a recorded checksum. A file the store owns passes (it has no source)."""
        row = self._file_row(file_id)
        if row.reference is None:
            return
        if not read:
            _reference_of(row).validate(self.config, f"file {file_id}")
            return
        with self._open_verified(row, f"file {file_id}", None, None) as stream:
            while stream.read(CHUNK_SIZE):
                pass

    def _reference_public_url(self, row: FileRow) -> str:
        """A local reference's source as a ``file:`` URL (after its fingerprint matched); an object
        reference has no URL of this store's to give, so the caller is told to use the source's."""
        reference = _reference_of(row)
        reference.validate(self.config, f"file {row.id}")
        if reference.is_local:
            from jobstore.providers.local import local_path_of

            return "file://" + local_path_of(reference.url)
        raise PublicURLError(
            f"File {row.id} is a reference to {redact_url(reference.url)}, which this store does not hold: "
            "presign that object with its own provider's tools, or import it with mode='copy'."
        )

    def _public_url_expiry(self) -> int:
        return int(self.config.publicUrlExpiry or DEFAULT_PUBLIC_URL_EXPIRY)

    def import_file(
        self,
        src_uri: str,
        shared_file_name: str | None = None,
        *,
        progress: ByteProgress | None = None,
        mode: str = "copy",
        checksum: bool = False,
    ) -> str | None:
        """Bring a file in from a URL: ``file://`` (or an absolute path), ``http(s)://``, ``ftp://``,
        ``s3://``, ``gs://`` (the last two with the store's credentials and endpoint from Config).

        Returns the new file ID, or None when ``shared_file_name`` is given (the file is then
        readable as that shared file, replacing any previous content). The source URL (password
        masked) is recorded in the catalog row.

        ``mode="copy"`` (the default) stores the bytes. A same-backend fast path is tried first
        (``BlobStore.import_from_url``: S3 CopyObject, GCS rewrite, a kernel copy between local
        files); otherwise the URL is streamed, with memory independent of its size, and what the
        source declared (length, checksum) is verified at the end: a transfer that delivers
        something else raises TransferIntegrityError and stores nothing. The size and CRC32C are
        recorded as for any write. ``progress(bytes_done, total_or_None)`` is called as bytes arrive.

        ``mode="reference"`` (``file:``, ``s3:`` and ``gs:`` sources) copies nothing: the row records
        the source's fingerprint (size and mtime + inode + device, ETag or generation), in
        constant time whatever its size, and every read of the file re-checks it, raising
        ReferenceChangedError if the source changed or vanished. ``checksum=True`` also reads the
        source once to record its CRC32C, which every whole read then verifies. jobstore never
        writes, moves or deletes a reference's source: deleting the file (``delete_file``, ``gc``,
        ``prune``, ``destroy``) forgets the row and leaves the source alone.
        """
        from jobstore.urls import open_source, scheme_of, url_basename

        if mode not in IMPORT_MODES:
            raise InvalidArgumentError(f"Import mode {mode!r} is not one of {', '.join(IMPORT_MODES)}.")
        name = check_shared_file_name(shared_file_name) if shared_file_name is not None else None
        scheme_of(src_uri)  # unknown schemes and non-URLs are refused before anything is written
        blobs = self._require()[1]
        file_id = new_id()
        source_url = redact_url(src_uri)
        if mode == "reference":
            return self._import_reference(src_uri, name, file_id, checksum)
        key = new_key("s", name[:SHARED_KEY_NAME_LENGTH]) if name is not None else new_key("f", file_id[:2], file_id)
        imported = blobs.import_from_url(src_uri, key)
        if imported is not None:
            if progress is not None:
                progress(imported.size, imported.size)
            basename, executable = url_basename(src_uri), imported.executable
            info: BlobInfo = imported
        else:
            with open_source(src_uri, self.config) as source, blobs.open_write(key) as (handle, pending):
                copy_with_progress(source.stream, handle, source.size, progress)
            assert pending.info is not None
            basename, executable, info = source.basename, source.executable, pending.info
        if name is not None:
            self._commit_shared_blob(name, key, info, executable=executable, source_url=source_url)
            return None
        self._commit_file(file_id, key, info, basename=basename, executable=executable, source_url=source_url)
        return file_id

    def _import_reference(self, src_uri: str, name: str | None, file_id: str, checksum: bool) -> str | None:
        """Record a reference to ``src_uri`` (see ``import_file``); nothing is written anywhere."""
        from jobstore.providers.local import local_path_of
        from jobstore.providers.local_target import refuse_inside_a_store
        from jobstore.urls import scheme_of, url_basename
        from jobstore.urls.references import reference_of

        if scheme_of(src_uri) == "file":
            # A store's tree is its own: a reference into one would outlive what that store deletes.
            refuse_inside_a_store(os.path.realpath(local_path_of(src_uri)), "Will not reference", "a source")
        reference, executable = reference_of(src_uri, self.config, checksum=checksum)
        key = REFERENCE_KEY_PREFIX + (name[:SHARED_KEY_NAME_LENGTH] if name is not None else file_id)
        key = new_key(key)
        info = BlobInfo(reference.size, reference.checksum)
        source_url = redact_url(src_uri)
        if name is not None:
            self._commit_shared_blob(
                name, key, info, executable=executable, source_url=source_url, reference=reference.to_json()
            )
            return None
        self._commit_file(
            file_id,
            key,
            info,
            basename=url_basename(src_uri),
            executable=executable,
            source_url=source_url,
            reference=reference.to_json(),
        )
        return file_id

    def _commit_shared_blob(
        self,
        name: str,
        key: str,
        info: BlobInfo,
        *,
        executable: bool = False,
        source_url: str | None = None,
        reference: str | None = None,
    ) -> None:
        """Point the shared file ``name`` at the written blob ``key`` (insert, or replace by CAS).

        Used by ``write_shared_file_stream`` and by imports (which also know a source URL and an
        executable bit). Last writer wins, as Toil's shared files do; a concurrent first creation
        is retried as a replacement. A failed commit leaves the blob for garbage collection.
        """
        new = NewFile(
            id=new_id(),
            job_id=None,
            cleanup=False,
            shared_name=name,
            basename=name,
            size=info.size,
            checksum=info.checksum,
            blob_key=key,
            executable=executable,
            encrypted=self._require()[1].encrypted and reference is None,
            source_url=source_url,
            reference=reference,
        )
        operations, store_id = self._operations()
        with self._refused_if_fenced_out(key):
            outcome = operations.put_shared_file(store_id, new)
        if outcome is True:
            self._refused(key)
            raise ConcurrentFileModificationException(name, "Too many concurrent writers of this shared file.")
        self._committed(key, [outcome] if isinstance(outcome, str) else [])

    def export_file(
        self,
        file_id: str,
        dst_uri: str,
        *,
        http_method: str | None = None,
        progress: ByteProgress | None = None,
    ) -> None:
        """Copy a file out to a URL: ``file://`` (parents created; temp name then rename; the
        executable bit kept), ``s3://``, ``gs://``, ``ftp://`` (where the server allows uploads) or
        ``http(s)://``.

        HTTP uploads send the bytes as the body of a POST (the seed's behaviour) or a PUT:
        ``http_method``, else ``Config.httpUploadMethod``, else POST. The bytes are verified against
        the recorded size and checksum as they go; the last of them are held back until that check
        passes, so a damaged stored copy never completes a destination. ``file://`` destinations
        must lie under ``Config.exportRoots`` when it is set (UnsafeLocationError otherwise).
        """
        from jobstore.urls import scheme_of, write_to_url
        from jobstore.urls.local import check_export_destination

        if scheme_of(dst_uri) == "file":
            check_export_destination(dst_uri, self.config.exportRoots)
        row = self._file_row(file_id)
        method = http_method or getattr(self.config, "httpUploadMethod", None) or "POST"
        with self._open_verified(row, f"file {file_id}", None, None) as stream:
            reader = stream if progress is None else cast(IO[bytes], ProgressReader(stream, row.size, progress))
            write_to_url(dst_uri, reader, row.size, executable=row.executable, http_method=method, config=self.config)

    def _import_one(
        self, url: str, shared_file_name: str | None, progress: ByteProgress | None, mode: str
    ) -> str | None:
        return self.import_file(url, shared_file_name, progress=progress, mode=mode)

    def _export_one(self, file_id: str, url: str, progress: ByteProgress | None, http_method: str | None) -> None:
        self.export_file(file_id, url, http_method=http_method, progress=progress)

    # --- maintenance -------------------------------------------------------------------------

    def get_all_file_ids(self) -> list[str]:
        """IDs of every file of the store, shared files included."""
        operations, store_id = self._operations()
        return operations.all_file_ids(store_id)

    def get_file_job_association(self, file_id: str) -> str | None:
        """The ID of the job a file was written for (which may no longer exist), or None."""
        return self._file_row(file_id).job_id

    def orphaned_file_ids(self) -> list[str]:
        """Files whose owning job no longer exists (one SQL anti-join)."""
        operations, store_id = self._operations()
        return operations.orphaned_file_ids(store_id)

    def job_file_summary(self) -> list[tuple[str, str, str, int, int]]:
        """Per job (id, name, state, files, bytes), largest first: one SQL join over the catalog."""
        operations, store_id = self._operations()
        return operations.job_file_summary(store_id)

    def stats(self) -> dict[str, Any]:
        """Totals of this store, from the reporting views in one snapshot (JSON-serialisable):
        jobs (total, by state, failed), files and bytes, shared files, logs and unread logs,
        orphaned files and bytes, condemned blobs, catalog dialect and schema revision, and the
        leader lease (``leader``: holder, attempt, times and whether it is live; None if no leader
        ever held one)."""
        stats = self.maintenance_catalog.stats()
        stats["schema_revision"] = stats["schema_revision"] or HEAD_REVISION
        lease = self.leader_lease()
        stats["leader"] = None if lease is None else describe_lease(lease)
        return stats


class FileJobStore(JobStore):
    """A job store in a local directory: SQLite catalog + local blobs (``file:/path`` or ``/path``)."""

    accepted_kinds = ("file",)


class AWSJobStore(JobStore):
    """A job store with blobs in S3 (``aws:REGION:BUCKET[:PREFIX]``; catalog from Config.catalog)."""

    accepted_kinds = ("aws",)


class GoogleJobStore(JobStore):
    """A job store with blobs in GCS (``gce:REGION:BUCKET[:PREFIX]`` or ``google:PROJECT:PREFIX``)."""

    accepted_kinds = ("google",)


def create_job_store(locator: str) -> JobStore:
    """The store object for any locator (not yet initialized or resumed)."""
    kind = parse_locator(locator).kind
    cls: type[JobStore] = {"file": FileJobStore, "aws": AWSJobStore, "google": GoogleJobStore}.get(kind, JobStore)
    return cls(locator)
