"""The job store Toil runs on: Toil's ``AbstractJobStore`` over a jobstore ``JobStore``.

Toil reaches this class through the locator prefix ``jobstore:`` (see ``jobstore.toil.plugin`` and
the ``.pth`` hook installed with the ``toil`` extra): ``--jobStore jobstore:file:/data/wf`` or
``--jobStore jobstore:sql:postgresql+psycopg://host/db#wf``. Everything after the prefix is an
ordinary jobstore locator.

What lives where:

* **Jobs.** Toil requires its ``JobDescription`` objects to round-trip exactly, and they are only
  defined as pickles. Each job row of the catalog holds the pickle (base64, the ``toilPickle``
  attribute of the stored description) *and* the reporting columns extracted from it: job name,
  unit name, remaining tries, memory/cores/disk and a state (``pending`` until the job's body has
  run, ``completed`` once it has run and the job only waits for its successors, ``failed`` when no
  tries are left). This adapter is the only code in jobstore that ever unpickles; a catalog used
  with it must be writable only by people you would let run code on your workers (as with Toil's
  own stores, whose job files are pickles too).
* **Job IDs** come with a placeholder row (state ``assigned``), because Toil writes a job's files
  (its pickled body, with ``cleanup=True``) *before* it creates the job, and jobstore only
  associates files with jobs that have a row. ``assign_job_id`` itself writes nothing: the
  placeholder is written before the store's next other operation (so the files find their row),
  and a ``create_job`` that comes first writes the job outright, one commit instead of two.
  Placeholders are invisible to Toil: ``job_exists`` is False, ``load_job`` raises, ``jobs()``
  skips them. This mirrors Toil's FileJobStore, whose ``assign_job_id`` creates the job directory.
* **Updates** overwrite (no compare-and-set): Toil's contract has no version for ``update_job``,
  and Toil never lets two processes update one job at once (a worker updates the job it runs; the
  leader updates it only after the worker has finished). Toil's own ``_job_version`` still travels
  inside the pickle.
* **Files, shared files, logs, public URLs and import/export** are the jobstore store's,
  unchanged: file IDs are its 32-hex IDs (which survive ``FileID.pack()``), logs are delivered
  exactly once. ``batch()`` saves the jobs created inside it together, in one transaction
  (``JobStore.save_jobs``); see :meth:`ToilJobStore.batch`.
* **Hinted files** (Toil 9.5+ ``hints=``) get readable, low-entropy IDs such as
  ``sample1.align.files.out.bam`` (hints and basename joined by dots, a slot number when the name
  is taken), claimed atomically in the catalog so two nodes never get the same one, and never
  reused after deletion (a deleted hinted file leaves a tombstone shared file,
  ``toil-hint-deleted.<...>``).
"""

from __future__ import annotations

import base64
import logging
import os
import pickle
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any, NamedTuple, NoReturn
from urllib.parse import urlparse

from toil.fileStores import FileID  # type: ignore[import-untyped]
from toil.jobStores.abstractJobStore import (  # type: ignore[import-untyped]
    AbstractJobStore,
    HintedJobStore,
)
from toil.jobStores.abstractJobStore import (
    ConcurrentFileModificationException as ToilConcurrentModification,
)
from toil.jobStores.abstractJobStore import (
    JobStoreExistsException as ToilJobStoreExists,
)
from toil.jobStores.abstractJobStore import (
    NoSuchFileException as ToilNoSuchFile,
)
from toil.jobStores.abstractJobStore import (
    NoSuchJobException as ToilNoSuchJob,
)
from toil.jobStores.abstractJobStore import (
    NoSuchJobStoreException as ToilNoSuchJobStore,
)

from jobstore.config import Config as StoreConfig
from jobstore.errors import (
    ConcurrentFileModificationException,
    InvalidArgumentError,
    JobStoreError,
    JobStoreExistsException,
    NoSuchFileException,
    NoSuchJobException,
    NoSuchJobStoreException,
    UnsafeLocationError,
    UnsupportedURLError,
    URLNotFoundError,
)
from jobstore.job import JobDescription as StoredDescription
from jobstore.lease import DEFAULT_LEASE_SECONDS
from jobstore.store import JobStore, create_job_store

# Toil runs its leader, workers and utilities at INFO: keep Alembic's INFO lines (schema
# creation, upgrades) out of Toil's output.
if logging.getLogger("alembic").level == logging.NOTSET:
    logging.getLogger("alembic").setLevel(logging.WARNING)

#: The locator prefix Toil knows this job store by: ``--jobStore jobstore:LOCATOR``.
PREFIX = "jobstore"

#: Environment variables read when a Toil workflow creates its store (``initialize``).
BLOB_STORE_ENV_VAR = "JOBSTORE_BLOB_STORE"
SETTINGS_ENV_VAR = "JOBSTORE_SETTINGS"
#: Set to 1 for a leader that must take the store over from a live lease (logged).
TAKE_OVER_ENV_VAR = "JOBSTORE_TAKE_OVER_LEASE"
#: The leader lease's length in seconds (default jobstore.lease.DEFAULT_LEASE_SECONDS).
LEASE_SECONDS_ENV_VAR = "JOBSTORE_LEASE_SECONDS"
#: ``WORKFLOW_ID:ATTEMPT``: the leader's fencing token, which ``get_env`` hands to the workers it
#: starts; a worker's writes are refused once another leader took the workflow over.
LEASE_ATTEMPT_ENV_VAR = "JOBSTORE_LEASE_ATTEMPT"

#: The stored description's attribute that holds Toil's pickled JobDescription (base64).
PICKLE_ATTRIBUTE = "toilPickle"

#: Reporting state of a job whose ID was assigned but which Toil has not created yet.
ASSIGNED_STATE = "assigned"

#: Shared files holding Toil's own bookkeeping (config.pickle, rootJobStoreID, pid.log, ...) need
#: no special treatment; hinted-file tombstones are shared files with this prefix.
TOMBSTONE_PREFIX = "toil-hint-deleted."

_UNSAFE_BASENAME = re.compile(r"[^A-Za-z0-9_.-]+")
_DOTS = re.compile(r"\.{2,}")
_MAX_HINTS_LENGTH = 64
_MAX_BASENAME_LENGTH = 48


def settings_from_environment(base: StoreConfig | None = None, locator: str | None = None) -> StoreConfig:
    """jobstore settings for a store Toil creates: ``JOBSTORE_SETTINGS`` (a JSON object of
    ``jobstore.Config`` attributes, e.g. ``{"awsEndpointURL": "..."}``) and
    ``JOBSTORE_BLOB_STORE`` (the blob URL of a ``sql:`` store), over ``base``.

    Toil's command line cannot carry jobstore's settings, so they come from the environment; the
    store records them (secrets excepted), so workers and later runs resume from the locator alone.
    """
    import json

    settings = StoreConfig(**vars(base)) if base is not None else StoreConfig()
    text = os.environ.get(SETTINGS_ENV_VAR)
    if text:
        try:
            values = json.loads(text)
        except ValueError as error:
            raise JobStoreError(f"{SETTINGS_ENV_VAR} must hold a JSON object of jobstore settings: {error}") from None
        if not isinstance(values, dict):
            raise JobStoreError(f"{SETTINGS_ENV_VAR} must hold a JSON object, not {type(values).__name__}.")
        for name, value in values.items():
            setattr(settings, name, value)
    from jobstore.locator import parse_locator

    blob_url = os.environ.get(BLOB_STORE_ENV_VAR)
    if blob_url and settings.blobStore is None and not (locator and parse_locator(locator).blob_url):
        # A default for sql: locators only: a locator that names its blobs would refuse it.
        settings.blobStore = blob_url
    return settings


class _PendingClaim(NamedTuple):
    """What a hinted slot claim needs besides the path (HintedJobStore's hooks take only a path)."""

    job_id: str | None
    cleanup: bool
    basename: str


def _flat_id(path: str) -> str:
    """A hint-tree path (``a/b/files/0/x.txt``) as a jobstore file ID (``a.b.files.0.x.txt``)."""
    return path.replace("/", ".")


def _tombstone_name(path: str) -> str:
    return TOMBSTONE_PREFIX + _flat_id(path)


def _clean_basename(name: str | None) -> str:
    """A basename safe inside a file ID: letters, digits, '_', '-', single dots; never empty."""
    cleaned = _DOTS.sub(".", _UNSAFE_BASENAME.sub("_", name or "")).strip(".")[-_MAX_BASENAME_LENGTH:]
    cleaned = cleaned.lstrip("._-")
    return cleaned or "file"


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return max(0, int(value))


class ToilJobStore(AbstractJobStore, HintedJobStore):  # type: ignore[misc]
    """Toil's job store interface over a jobstore store (SQL catalog + blob store).

    Args:
        locator: a jobstore locator (what follows ``jobstore:`` in Toil's ``--jobStore``).
        settings: jobstore settings used when the store is created (blob URL of a ``sql:`` store,
            S3 endpoint, ...); by default they come from the environment
            (:func:`settings_from_environment`). Ignored by ``resume`` except for secrets.
    """

    def __init__(self, locator: str, settings: StoreConfig | None = None) -> None:
        super().__init__(locator)
        self._jobstore: JobStore = create_job_store(locator)
        self._settings = settings
        self._toil_config: Any = None
        self._claim = threading.local()
        #: Per thread: the job descriptions collected inside ``batch()``, by job ID (a job's
        #: creation replaces its placeholder), each with whether its row is new (its ID was
        #: assigned and its placeholder never written).
        self._batched = threading.local()
        #: Placeholders of the IDs ``assign_job_id`` gave out outside ``batch()`` whose rows are
        #: not written yet, of every thread; the lock keeps a placeholder from being written over
        #: its job (a creation takes its placeholder out under it).
        self._unwritten: dict[str, StoredDescription] = {}
        self._unwritten_lock = threading.Lock()

    @property
    def _store(self) -> JobStore:
        """The jobstore store; job creations collected by ``batch()`` are saved before any other
        use, so every operation sees them (reads, files written for a new job, ...); so are the
        placeholders of assigned IDs."""
        if self._unwritten:
            self._write_placeholders()
        if getattr(self._batched, "jobs", None):
            self._save_batched()
        return self._jobstore

    def _write_placeholders(self) -> None:
        with self._unwritten_lock:
            placeholders = list(self._unwritten.values())
            self._unwritten.clear()  # written or failed: a failure surfaces once, here
            if placeholders:
                self._write_jobs([(placeholder, True) for placeholder in placeholders])

    def _save_batched(self) -> None:
        jobs, self._batched.jobs = self._batched.jobs, {}
        self._write_jobs(list(jobs.values()))

    def _write_jobs(self, jobs: list[tuple[StoredDescription, bool]]) -> None:
        """Write jobs in one transaction: new rows as one insert, the others overwritten."""
        existing = [stored for stored, new in jobs if not new]
        with self._translated(), self._jobstore.batch():
            for stored, new in jobs:
                if new:
                    self._jobstore.create_job(stored)
            if existing:
                self._jobstore.save_jobs(existing)

    def __repr__(self) -> str:
        from jobstore.redact import redact_url

        return f"ToilJobStore({redact_url(self.locator)})"

    @property
    def store(self) -> JobStore:
        """The jobstore store underneath (for SQL reporting and maintenance)."""
        return self._store

    # --- errors ------------------------------------------------------------------------------

    def _toil_error(self, error: JobStoreError, subject: object = None) -> BaseException:
        """Toil's exception for one of ours (Toil's callers catch its own types)."""
        translated: BaseException = error
        if isinstance(error, NoSuchJobException):
            translated = ToilNoSuchJob(str(subject if subject is not None else error.job_id))
        elif isinstance(error, NoSuchFileException):
            translated = ToilNoSuchFile(str(subject if subject is not None else error.file_id), None, str(error))
        elif isinstance(error, ConcurrentFileModificationException):
            translated = ToilConcurrentModification(str(subject if subject is not None else error.object_id))
        elif isinstance(error, NoSuchJobStoreException):
            translated = ToilNoSuchJobStore(self.locator, PREFIX)
        elif isinstance(error, JobStoreExistsException):
            translated = ToilJobStoreExists(self.locator, PREFIX)
        return translated

    def _raise(self, error: JobStoreError, subject: object = None) -> NoReturn:
        translated = self._toil_error(error, subject)
        if translated is error:
            raise error
        raise translated from error

    @contextmanager
    def _translated(self, subject: object = None) -> Iterator[None]:
        try:
            yield
        except JobStoreError as error:
            self._raise(error, subject)

    # --- life cycle --------------------------------------------------------------------------

    @property
    def config(self) -> Any:
        """The Toil ``Config`` of the workflow (pickled in the shared file ``config.pickle``)."""
        if self._toil_config is None:
            raise AttributeError("The job store has no Toil config yet: call initialize(config) or resume().")
        return self._toil_config

    def _store_settings(self, toil_config: Any | None) -> StoreConfig:
        settings = settings_from_environment(self._settings, self.locator)
        if toil_config is not None:
            key_file = getattr(toil_config, "sseKey", None)
            if key_file and settings.sseKeyFile is None and settings.sseKey is None:
                settings.sseKeyFile = key_file
        return settings

    def initialize(self, config: Any) -> None:
        """Create the store and record Toil's config in it (with a fresh workflow ID, as Toil does)."""
        if config.workflowID is not None:
            raise ValueError("Toil's Config.workflowID must be None before initialize(); the job store assigns it.")
        workflow_id = str(uuid.uuid4())
        settings = self._store_settings(config)
        settings.workflowID = workflow_id
        with self._translated():
            self._store.initialize(settings)
        config.workflowID = workflow_id
        self._toil_config = config
        self.write_config()

    def write_config(self) -> None:
        with self.write_shared_file_stream("config.pickle", encrypted=False) as handle:
            pickle.dump(self.config, handle, pickle.HIGHEST_PROTOCOL)

    def resume(self) -> None:
        """Open the store from its locator alone and load Toil's config from it."""
        settings = self._store_settings(None)
        with self._translated():
            self._store.resume(settings)
        try:
            with self.read_shared_file_stream("config.pickle") as handle:
                config = pickle.loads(handle.read())
        except ToilNoSuchFile:
            raise ToilNoSuchJobStore(self.locator, PREFIX) from None
        if config.workflowID is None:
            raise JobStoreError(f"The Toil config stored in {self.locator!r} has no workflow ID; the store is damaged.")
        self._toil_config = config
        self._fence_to_leader_attempt()

    def _fence_to_leader_attempt(self) -> None:
        """A worker started by a leader that holds the lease writes only while that leader does."""
        token = os.environ.get(LEASE_ATTEMPT_ENV_VAR, "").strip()
        if not token:
            return
        workflow_id, _, attempt = token.rpartition(":")
        if not workflow_id or not attempt.isdigit() or int(attempt) < 1:
            raise InvalidArgumentError(
                f"{LEASE_ATTEMPT_ENV_VAR}={token!r} is not WORKFLOW_ID:ATTEMPT (what the leader's get_env() sets); "
                "unset it, or start the worker from the leader."
            )
        if workflow_id == self._store.config.workflowID:  # a token of another workflow is not ours to check
            with self._translated():
                self._store.require_lease_attempt(int(attempt))

    def write_leader_pid(self) -> None:
        """Toil's leader calls this first when it starts or restarts a workflow (workers never do):
        the moment to become the store's only leader. A second leader (a ``--restart`` while the
        workflow still runs) fails here with LeaseHeldError naming the first; one whose process is
        gone is replaced at once on its own host, after its lease expires elsewhere.
        ``JOBSTORE_TAKE_OVER_LEASE=1`` takes over a live lease; ``JOBSTORE_LEASE_SECONDS`` sets its
        length."""
        take_over = os.environ.get(TAKE_OVER_ENV_VAR, "").strip().lower() in ("1", "true", "yes")
        seconds = float(os.environ.get(LEASE_SECONDS_ENV_VAR) or DEFAULT_LEASE_SECONDS)
        with self._translated():
            self._store.acquire_leader_lease(take_over=take_over, seconds=seconds)
        super().write_leader_pid()

    def destroy(self) -> None:
        """Delete the store's rows and blobs (idempotent, also for a store that was never opened)."""
        with self._translated():
            self._store.destroy()

    def get_env(self) -> dict[str, str]:
        """Environment a worker needs to reach this store: jobstore's variables, where set, and
        the leader's fencing token (``JOBSTORE_LEASE_ATTEMPT``) once it holds the lease."""
        names = ("JOBSTORE_CATALOG", BLOB_STORE_ENV_VAR, SETTINGS_ENV_VAR)
        env = {name: os.environ[name] for name in names if os.environ.get(name)}
        lease = self._store.current_leader_lease
        if lease is not None:
            env[LEASE_ATTEMPT_ENV_VAR] = f"{self._store.config.workflowID}:{lease.attempt}"
        return env

    def default_caching(self) -> bool:
        """Like Toil's FileJobStore, prefer no caching when the blobs are on a local file system."""
        from jobstore.locator import parse_locator

        blob_url = parse_locator(self.locator).blob_url or settings_from_environment(self._settings).blobStore
        return not (blob_url or "file:").startswith("file:")

    # --- jobs --------------------------------------------------------------------------------

    def _reporting_fields(self, job_description: Any) -> StoredDescription:
        """Our stored description for a Toil JobDescription: the pickle plus reporting columns."""
        if job_description.jobStoreID is None:
            raise ValueError(f"{job_description} has no job ID: call assign_job_id first.")
        requirements: dict[str, Any] = {}
        for name in ("memory", "cores", "disk"):
            try:
                value = getattr(job_description, name)
            except AttributeError:
                value = getattr(self._toil_config, "default" + name.capitalize(), None)
            if name == "cores":
                requirements[name] = float(value) if isinstance(value, int | float) and value >= 0 else None
            else:
                requirements[name] = _int_or_none(value)
        try:
            tries = int(job_description.remainingTryCount)
        except AttributeError:
            tries = int(getattr(self._toil_config, "retryCount", 0)) + 1
        if tries <= 0:
            state = "failed"
        elif job_description.has_body():
            state = "pending"
        else:
            state = "completed"
        stored = StoredDescription(
            requirements,
            jobName=str(job_description.jobName)[:255],
            unitName=str(job_description.unitName or "")[:255],
            remainingTryCount=tries,
            state=state,
        )
        stored.jobStoreID = str(job_description.jobStoreID)
        stored.toilKind = type(job_description).__name__
        stored.toilVersion = int(getattr(job_description, "_job_version", 0))
        stored.toilPickle = base64.b64encode(pickle.dumps(job_description, pickle.HIGHEST_PROTOCOL)).decode("ascii")
        return stored

    def _toil_description(self, stored: StoredDescription) -> Any:
        job = pickle.loads(base64.b64decode(stored.toilPickle))
        job.assignConfig(self.config)
        return job

    @staticmethod
    def _is_toil_job(stored: StoredDescription) -> bool:
        return isinstance(getattr(stored, PICKLE_ATTRIBUTE, None), str)

    def assign_job_id(self, job_description: Any) -> None:
        """Give the job a fresh ID and a placeholder row (written before the store's next other
        operation, or inside ``batch()`` with the batch), so files can be written for it at once."""
        placeholder = StoredDescription({}, jobName=str(job_description.jobName)[:255], state=ASSIGNED_STATE)
        placeholder.unitName = str(job_description.unitName or "")[:255]
        self._jobstore.assign_job_id(placeholder)
        job_id = str(placeholder.jobStoreID)
        collected = getattr(self._batched, "jobs", None)
        if collected is not None:
            collected[job_id] = (placeholder, True)
        else:
            with self._unwritten_lock:
                self._unwritten[job_id] = placeholder
        job_description.jobStoreID = job_id

    def create_job(self, job_description: Any) -> Any:
        """Store a new job (filling its placeholder row); calls Toil's ``pre_update_hook``.

        Inside ``batch()`` the job is collected and saved with the batch's other creations in one
        transaction (before the next other operation, or at the end of the block).
        """
        job_description.pre_update_hook()
        stored = self._reporting_fields(job_description)
        job_id = str(stored.jobStoreID)
        with self._unwritten_lock:
            unwritten = self._unwritten.pop(job_id, None) is not None
        collected = getattr(self._batched, "jobs", None)
        if collected is not None:
            new = unwritten or collected.get(job_id, (None, False))[1]
            collected[job_id] = (stored, new)
            return job_description
        with self._translated(job_id):
            if unwritten:  # its placeholder was never written: no row to fill
                self._jobstore.create_job(stored)
                return job_description
            try:
                self._store.update_job(stored)
            except NoSuchJobException:
                # No placeholder (an ID assigned by other means): create the row outright.
                self._store.create_job(stored)
        return job_description

    def _load_stored(self, job_id: str) -> StoredDescription | None:
        try:
            stored = self._store.load_job(str(job_id))
        except NoSuchJobException:
            return None
        return stored if self._is_toil_job(stored) else None

    def job_exists(self, job_id: str) -> bool:
        return self._load_stored(job_id) is not None

    def load_job(self, job_id: str) -> Any:
        stored = self._load_stored(job_id)
        if stored is None:
            raise ToilNoSuchJob(str(job_id))
        return self._toil_description(stored)

    def update_job(self, job_description: Any) -> None:
        """Overwrite the stored job (Toil's leader and the worker running the job never update it
        at the same time, so there is no compare-and-set; see the module docstring)."""
        job_description.pre_update_hook()
        stored = self._reporting_fields(job_description)
        with self._translated(job_description.jobStoreID):
            self._store.update_job(stored)

    def delete_job(self, job_id: str) -> None:
        """Delete the job and its ``cleanup=True`` files. Idempotent."""
        with self._translated(job_id):
            self._store.delete_job(str(job_id))

    def jobs(self) -> Iterator[Any]:
        for stored in self._store.jobs():
            if self._is_toil_job(stored):
                yield self._toil_description(stored)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """The job creations inside the block commit together, in one catalog transaction.

        Toil only creates jobs inside ``batch()`` (a job's new children and successors). They are
        collected and saved at the end of the block by ``JobStore.save_jobs``, one transaction
        that on SQLite takes the fast path; if the block raises, none is saved. Any other
        operation inside the block first saves the creations collected so far (it may need them,
        e.g. to write a file for a new job) and then commits on its own, as on Toil's
        FileJobStore, whose ``batch()`` does nothing.
        """
        if getattr(self._batched, "jobs", None) is not None:
            yield  # nested: the outer block saves
            return
        self._batched.jobs = {}
        try:
            yield
            if self._batched.jobs:
                self._save_batched()
        finally:
            self._batched.jobs = None

    # --- hinted file IDs (HintedJobStore's hint tree, in the catalog) -------------------------

    def _sanitize_hint(self, hint: str, safe: str = "_-", max_length: int = 40) -> str:
        # No dots inside a component (they separate components in the flat ID) and no leading
        # '_'/'-' (IDs start with a letter or digit).
        cleaned = str(super()._sanitize_hint(hint, safe=safe.replace(".", ""), max_length=max_length))
        cleaned = cleaned.lstrip("_-")
        return "" if cleaned in self._BANNED_HINTS else cleaned

    def _hinted_path(self, hints: list[str] | None, job_id: str | None, cleanup: bool, basename: str) -> str | None:
        """Claim a hinted slot and return its path, or None when the hints sanitize to nothing."""
        hints_text = str(self.hints_to_string(hints, separator="/", max_length=_MAX_HINTS_LENGTH, safe="_-"))
        if not hints_text:
            return None
        self._claim.pending = _PendingClaim(None if job_id is None else str(job_id), cleanup, basename)
        try:
            return str(self.claim_hinted_slot(hints_text, _clean_basename(basename)))
        finally:
            self._claim.pending = None

    def _hint_tree_put_if_absent(self, path: str) -> bool:
        """Claim a file slot: insert an empty file row with the slot's ID, unless it is taken."""
        if f"/{self._HINT_FILES_DIR}/" not in path:
            # A tombstone: an empty shared file (re-writing an existing one is harmless).
            existed = self._store.shared_file_exists(_tombstone_name(path))
            with self._store.write_shared_file_stream(_tombstone_name(path)):
                pass
            return not existed
        pending: _PendingClaim | None = getattr(self._claim, "pending", None)
        if pending is None:
            pending = _PendingClaim(None, False, path.rsplit("/", 1)[-1])
        with self._translated(pending.job_id):
            return self._store.claim_file_id(
                _flat_id(path), pending.job_id, cleanup=pending.cleanup, basename=pending.basename
            )

    def _hint_tree_exists(self, path: str) -> bool:
        if f"/{self._HINT_FILES_DIR}/" in path:
            return self._store.file_exists(_flat_id(path))
        return self._store.shared_file_exists(_tombstone_name(path))

    def _hint_tree_delete(self, path: str) -> None:
        self._store.delete_file(_flat_id(path))

    def _delete_hinted(self, file_id: str) -> None:
        """Tombstone a hinted file's slot (so its ID is never issued again), then delete it."""
        files_marker = f".{self._HINT_FILES_DIR}."
        tombstone = file_id.replace(files_marker, f".{self._HINT_DELETED_DIR}.", 1)
        with self._store.write_shared_file_stream(TOMBSTONE_PREFIX + tombstone):
            pass
        self._store.delete_file(file_id)

    @staticmethod
    def _is_hinted(file_id: str) -> bool:
        return f".{HintedJobStore._HINT_FILES_DIR}." in file_id

    # --- files -------------------------------------------------------------------------------

    def write_file(
        self, local_path: str, job_id: str | None = None, cleanup: bool = False, hints: list[str] | None = None
    ) -> str:
        owner = None if job_id is None else str(job_id)
        with self._translated(owner):
            if hints:
                path = self._hinted_path(hints, owner, cleanup, os.path.basename(local_path))
                if path is not None:
                    file_id = _flat_id(path)
                    try:
                        self._store.update_file(file_id, local_path)
                    except BaseException:
                        self._delete_hinted(file_id)
                        raise
                    return file_id
            if os.path.exists(local_path) and not os.path.isfile(local_path) and not os.path.isdir(local_path):
                # A device or FIFO (Toil's tests store /dev/null): jobstore stores regular files
                # only, so read it as a stream, as Toil's FileJobStore does by copying.
                with (
                    open(local_path, "rb") as source,
                    self._store.write_file_stream(owner, cleanup, basename=os.path.basename(local_path)) as (
                        handle,
                        file_id,
                    ),
                ):
                    while chunk := source.read(1024 * 1024):
                        handle.write(chunk)
                return file_id
            return self._store.write_file(local_path, owner, cleanup)

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
        owner = None if job_id is None else str(job_id)
        path = None
        if hints:
            with self._translated(owner):
                path = self._hinted_path(hints, owner, cleanup, basename or "stream")
        if path is None:
            with (
                self._translated(owner),
                self._store.write_file_stream(owner, cleanup, basename=basename, encoding=encoding, errors=errors) as (
                    handle,
                    file_id,
                ),
            ):
                yield handle, file_id
            return
        file_id = _flat_id(path)
        try:
            with self._translated(file_id), self._store.update_file_stream(file_id, encoding, errors) as handle:
                yield handle, file_id
        except BaseException:
            self._delete_hinted(file_id)
            raise

    def get_empty_file_store_id(
        self,
        job_id: str | None = None,
        cleanup: bool = False,
        basename: str | None = None,
        hints: list[str] | None = None,
    ) -> str:
        with self.write_file_stream(job_id, cleanup, hints=hints, basename=basename) as (_, file_id):
            pass
        return file_id

    def read_file(self, file_id: str, local_path: str, symlink: bool = False) -> None:
        """As FileJobStore: a reference import is handed out as a symbolic link to its source when
        the caller accepts one and ``symlink_job_store_reads`` is on (after its fingerprint matched)."""
        link = symlink and bool(getattr(self._toil_config, "symlink_job_store_reads", True))
        with self._translated(file_id):
            self._store.read_file(str(file_id), local_path, symlink=link)

    @contextmanager
    def read_file_stream(
        self, file_id: str, encoding: str | None = None, errors: str | None = None
    ) -> Iterator[IO[Any]]:
        with self._translated(file_id), self._store.read_file_stream(str(file_id), encoding, errors) as handle:
            yield handle

    def update_file(self, file_id: str, local_path: str) -> None:
        with self._translated(file_id):
            self._store.update_file(str(file_id), local_path)

    @contextmanager
    def update_file_stream(
        self, file_id: str, encoding: str | None = None, errors: str | None = None
    ) -> Iterator[IO[Any]]:
        with self._translated(file_id), self._store.update_file_stream(str(file_id), encoding, errors) as handle:
            yield handle

    def delete_file(self, file_id: str) -> None:
        """Delete a file. Idempotent. A hinted file's ID is tombstoned first, never to be reused."""
        file_id = str(file_id)
        with self._translated(file_id):
            if self._is_hinted(file_id) and self._store.file_exists(file_id):
                self._delete_hinted(file_id)
            else:
                self._store.delete_file(file_id)

    def file_exists(self, file_id: str) -> bool:
        with self._translated(file_id):
            return self._store.file_exists(str(file_id))

    def get_file_size(self, file_id: str) -> int:
        with self._translated(file_id):
            return self._store.get_file_size(str(file_id))

    # --- shared files ------------------------------------------------------------------------

    @contextmanager
    def write_shared_file_stream(
        self,
        shared_file_name: str,
        encrypted: bool | None = None,
        encoding: str | None = None,
        errors: str | None = None,
    ) -> Iterator[IO[Any]]:
        self._requireValidSharedFileName(shared_file_name)
        with (
            self._translated(shared_file_name),
            self._store.write_shared_file_stream(shared_file_name, encrypted, encoding, errors) as handle,
        ):
            yield handle

    @contextmanager
    def read_shared_file_stream(
        self, shared_file_name: str, encoding: str | None = None, errors: str | None = None
    ) -> Iterator[IO[Any]]:
        self._requireValidSharedFileName(shared_file_name)
        with (
            self._translated(shared_file_name),
            self._store.read_shared_file_stream(shared_file_name, encoding, errors) as handle,
        ):
            yield handle

    # --- logs --------------------------------------------------------------------------------

    def write_logs(self, msg: str | bytes) -> None:
        with self._translated():
            self._store.write_logs(msg)

    def read_logs(self, callback: Callable[..., Any], read_all: bool = False) -> int:
        """Deliver each unread message once (claimed atomically), plus the read ones if ``read_all``."""
        with self._translated():
            return self._store.read_logs(callback, read_all)

    # --- URLs --------------------------------------------------------------------------------

    def get_public_url(self, file_name: str) -> str:
        """A URL ``urllib`` can fetch: ``file://`` on a local blob store, presigned on S3/GCS."""
        with self._translated(file_name):
            return self._store.get_public_url(str(file_name))

    def get_shared_public_url(self, shared_file_name: str) -> str:
        with self._translated(shared_file_name):
            return self._store.get_shared_public_url(shared_file_name)

    def import_file(
        self,
        src_uri: str,
        shared_file_name: str | None = None,
        hardlink: bool = False,
        symlink: bool = True,
    ) -> FileID | None:
        """Import with jobstore's URL handlers (file, http(s), ftp, s3, gs); other schemes go
        through Toil's. Returns a ``FileID`` carrying size and executable flag, as Toil expects.

        ``ftp:`` URLs go through Toil's client: jobstore's checks sizes with ``SIZE`` (RFC 3659),
        which minimal servers such as the one Toil's own tests use do not implement.

        Local files are imported by reference where FileJobStore would symlink them (Toil's
        ``symlinkImports``, on by default, and a caller that accepts links: ``symlink`` and not
        ``hardlink``): instant, and unlike a symlink every read checks the source is unchanged.
        """
        scheme = urlparse(src_uri).scheme.lower()
        if scheme == "ftp":
            return super().import_file(src_uri, shared_file_name, hardlink, symlink)
        linked = symlink and not hardlink and bool(getattr(self._toil_config, "symlinkImports", True))
        mode = "reference" if linked and scheme in ("", "file") else "copy"
        try:
            with self._translated():
                file_id = self._import(src_uri, shared_file_name, mode)
        except UnsupportedURLError:
            return super().import_file(src_uri, shared_file_name, hardlink, symlink)
        except URLNotFoundError as error:
            raise FileNotFoundError(str(error)) from error
        if file_id is None:
            return None
        row = self._store.file_info(file_id)
        return FileID(file_id, row.size, row.executable)

    def _import(self, src_uri: str, shared_file_name: str | None, mode: str) -> str | None:
        try:
            return self._store.import_file(src_uri, shared_file_name, mode=mode)
        except UnsafeLocationError:
            if mode != "reference":
                raise
            # A file inside a job store's tree cannot be referenced (that store may delete it): copy it.
            return self._store.import_file(src_uri, shared_file_name, mode="copy")

    def export_file(self, file_id: str, dst_uri: str) -> None:
        """Export with jobstore's URL handlers (bytes verified as they go); other schemes via Toil."""
        from toil.common import Toil  # type: ignore[import-untyped]

        dst_uri = Toil.normalize_uri(dst_uri)
        try:
            with self._translated(file_id):
                self._store.export_file(str(file_id), dst_uri)
        except UnsupportedURLError:
            super().export_file(file_id, dst_uri)
