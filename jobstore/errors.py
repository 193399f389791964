"""The exception hierarchy.

Every exception jobstore raises on purpose derives from :class:`JobStoreError`. Several also derive
from a built-in (``ValueError``, ``KeyError``, ``ImportError``...) so that callers written against
plain Python conventions keep working. Every message says what was wrong and what to do about it.
"""

from __future__ import annotations

from jobstore.redact import redact_url


class JobStoreError(Exception):
    """Base class of every error jobstore raises on purpose."""


def batch_id_taken() -> JobStoreError:
    """The error of a ``batch()`` whose creations name a job that exists (whichever path inserted them)."""
    return JobStoreError(
        "A job created in this batch has an ID that already exists in the store (or twice in the "
        "batch); nothing in the batch was committed. Create jobs without a jobStoreID to get fresh IDs."
    )


# --- the names of Toil's interface -------------------------------------------------------------


class NoSuchJobException(JobStoreError, KeyError):
    """The job ID does not name a job of this store."""

    def __init__(self, job_id: object, detail: str = "") -> None:
        self.job_id = job_id
        message = f"The job {job_id!r} does not exist in this job store."
        super().__init__(f"{message} {detail}".strip())

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0])


class NoSuchFileException(JobStoreError, KeyError):
    """The file ID (or shared file name) does not name a file of this store."""

    def __init__(self, file_id: object, detail: str = "") -> None:
        self.file_id = file_id
        message = f"The file {file_id!r} does not exist in this job store."
        super().__init__(f"{message} {detail}".strip())

    def __str__(self) -> str:
        return str(self.args[0])


class ConcurrentFileModificationException(JobStoreError):
    """Another writer changed the job or file since this writer read it (its version moved on)."""

    def __init__(self, object_id: object, detail: str = "") -> None:
        self.object_id = object_id
        message = (
            f"{object_id!r} was modified concurrently by another writer. "
            "Load it again, re-apply your change and retry (see AbstractJobStore.modify_job)."
        )
        super().__init__(f"{message} {detail}".strip())


class JobStoreExistsException(JobStoreError):
    """initialize() was called on a locator where a job store already exists."""

    def __init__(self, locator: str) -> None:
        self.locator = locator
        super().__init__(
            f"The job store {redact_url(locator)!r} already exists. Call resume() to continue its workflow, "
            "or destroy it (jobstore destroy LOCATOR) to start from scratch."
        )


class LeaseHeldError(JobStoreError):
    """Another live leader holds the store's leader lease."""


class LeaseLostError(JobStoreError):
    """This process's leader lease expired and another leader took the store over: its writes
    are refused from then on."""


class NoSuchJobStoreException(JobStoreError):
    """resume() (or another call) named a job store that does not exist."""

    def __init__(self, locator: str, detail: str = "") -> None:
        self.locator = locator
        message = (
            f"The job store {redact_url(locator)!r} does not exist, so there is nothing to resume. "
            "Check the locator, or call initialize() to create it."
        )
        super().__init__(f"{message} {detail}".strip())


class StoreBeingDestroyedError(NoSuchJobStoreException):
    """``destroy()`` has begun on the store (and may have been interrupted): it refuses resume(),
    the leader lease and every fenced write; running destroy again finishes it."""

    def __init__(self, locator: str, detail: str) -> None:
        self.locator = locator
        where = f"The job store {redact_url(locator)!r}" if locator else "The job store"
        JobStoreError.__init__(self, f"{where} is being destroyed. {detail}".strip())


# --- bad input ---------------------------------------------------------------------------------


class InvalidLocatorError(JobStoreError, ValueError):
    """A locator string could not be parsed, or names something jobstore cannot use."""


class InvalidNameError(JobStoreError, ValueError):
    """A shared file name (or another user-chosen name) breaks the naming rules."""


class InvalidJobDescriptionError(JobStoreError, ValueError):
    """A JobDescription holds something that cannot be stored (too large, wrong types)."""


class JobDescriptionTypeError(InvalidJobDescriptionError, TypeError):
    """A JobDescription attribute has a type that cannot be stored (a TypeError, as Python's
    convention and Toil's callers expect, and a JobStoreError like every refusal of bad input)."""


class InvalidArgumentError(JobStoreError, ValueError):
    """An argument has a value the operation does not accept (an unknown mode, say)."""


class InvalidConfigError(JobStoreError, ValueError):
    """A Config option is unknown or has a value jobstore cannot use."""


class LocalFileError(JobStoreError, OSError):
    """A local file given to the store cannot be used (missing, a directory, unreadable)."""


class LocalFileNotFoundError(LocalFileError, FileNotFoundError):
    """The local file to store does not exist."""


class LocalIsADirectoryError(LocalFileError, IsADirectoryError):
    """A directory was given where a regular file is needed."""


class LocalPermissionError(LocalFileError, PermissionError):
    """The local file cannot be read (or the target written) with this process's permissions."""


class UnsafeLocationError(JobStoreError):
    """A path or key would escape the store, or a catalog sits on a file system that breaks SQLite."""


# --- the catalog -------------------------------------------------------------------------------


class CatalogError(JobStoreError):
    """The SQL catalog could not be used."""


class CatalogUnavailableError(CatalogError):
    """The catalog database could not be reached even after retries."""


class CatalogConnectionLimitError(CatalogUnavailableError):
    """The PostgreSQL server (or the role) had no connection slot free for as long as jobstore
    waits for one (``max_connections`` reached)."""


class SchemaVersionError(CatalogError):
    """The catalog's schema revision does not match this version of jobstore."""


class SchemaTooOldError(SchemaVersionError):
    """The catalog was created by an older jobstore and needs `jobstore db upgrade`."""


class SchemaTooNewError(SchemaVersionError):
    """The catalog was upgraded by a newer jobstore than this one."""


# --- file bytes --------------------------------------------------------------------------------


class ChecksumMismatchError(JobStoreError):
    """Bytes read back do not match the checksum recorded when they were written."""


class BlobStoreError(JobStoreError):
    """The blob store (local directory, S3, GCS) failed."""


class BlobNotFoundError(BlobStoreError):
    """A blob the catalog refers to is missing from the blob store."""


class BlobExistsError(BlobStoreError):
    """A create-only write found an object already at that key."""


class BlobAccessDeniedError(BlobStoreError):
    """The credentials in use may not perform this operation."""


class BlobStorageFullError(BlobStoreError):
    """The blob store has no room left (disk full, quota exceeded)."""


class EncryptionKeyError(BlobStoreError):
    """An encryption key is missing, malformed, or not the one the object was written with."""


class PublicURLError(JobStoreError):
    """A public URL cannot be made for this file with the configured credentials."""


# --- URLs and optional dependencies ------------------------------------------------------------


class UnsupportedURLError(JobStoreError, ValueError):
    """A URL has a scheme jobstore cannot import from or export to, or is malformed."""


class URLAccessError(JobStoreError):
    """A URL could not be read or written (not found, forbidden, server error)."""


class URLNotFoundError(URLAccessError):
    """The URL names nothing (HTTP 404, FTP 550, missing object or file)."""


class URLForbiddenError(URLAccessError):
    """The server refused access to the URL (HTTP 401/403, FTP permission denied)."""


class TransferIntegrityError(URLAccessError):
    """A transfer delivered a different length or checksum than its source declared."""


class ReferenceChangedError(URLAccessError):
    """The source of a reference import changed, or vanished, since it was imported."""


class MissingDependencyError(JobStoreError, ImportError):
    """An optional dependency (boto3, google-cloud-storage, psycopg, toil) is not installed."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{purpose} needs the '{package}' package, which is not installed. "
            f"Install it with: pip install 'jobstore[{extra}]'"
        )
