"""jobstore: the state of scientific workflows in a SQL catalog plus a blob store.

Public names only; see DESIGN.md section 4 for the contract.
"""

from jobstore.abstract import AbstractJobStore, TransferProgress, TransferResult
from jobstore.abstract import register_store_factory as _register_store_factory
from jobstore.config import Config
from jobstore.errors import (
    BlobAccessDeniedError,
    BlobExistsError,
    BlobNotFoundError,
    BlobStorageFullError,
    BlobStoreError,
    CatalogConnectionLimitError,
    CatalogError,
    CatalogUnavailableError,
    ChecksumMismatchError,
    ConcurrentFileModificationException,
    EncryptionKeyError,
    InvalidArgumentError,
    InvalidJobDescriptionError,
    InvalidLocatorError,
    InvalidNameError,
    JobStoreError,
    JobStoreExistsException,
    LeaseHeldError,
    LeaseLostError,
    LocalFileError,
    LocalFileNotFoundError,
    LocalIsADirectoryError,
    LocalPermissionError,
    MissingDependencyError,
    NoSuchFileException,
    NoSuchJobException,
    NoSuchJobStoreException,
    PublicURLError,
    ReferenceChangedError,
    SchemaTooNewError,
    SchemaTooOldError,
    SchemaVersionError,
    TransferIntegrityError,
    UnsafeLocationError,
    UnsupportedURLError,
    URLAccessError,
    URLForbiddenError,
    URLNotFoundError,
)
from jobstore.job import JobDescription
from jobstore.store import AWSJobStore, FileJobStore, GoogleJobStore, JobStore, create_job_store

# AbstractJobStore.createJobStore builds concrete stores, which live above it: the facade, which
# may import every layer, connects the two, so jobstore.abstract never imports jobstore.store.
_register_store_factory(create_job_store)

__version__ = "0.1.0"

__all__ = [
    "AWSJobStore",
    "AbstractJobStore",
    "BlobAccessDeniedError",
    "BlobExistsError",
    "BlobNotFoundError",
    "BlobStorageFullError",
    "BlobStoreError",
    "CatalogConnectionLimitError",
    "CatalogError",
    "CatalogUnavailableError",
    "ChecksumMismatchError",
    "ConcurrentFileModificationException",
    "Config",
    "EncryptionKeyError",
    "FileJobStore",
    "GoogleJobStore",
    "InvalidArgumentError",
    "InvalidJobDescriptionError",
    "InvalidLocatorError",
    "InvalidNameError",
    "JobDescription",
    "JobStore",
    "JobStoreError",
    "JobStoreExistsException",
    "LeaseHeldError",
    "LeaseLostError",
    "LocalFileError",
    "LocalFileNotFoundError",
    "LocalIsADirectoryError",
    "LocalPermissionError",
    "MissingDependencyError",
    "NoSuchFileException",
    "NoSuchJobException",
    "NoSuchJobStoreException",
    "PublicURLError",
    "ReferenceChangedError",
    "SchemaTooNewError",
    "SchemaTooOldError",
    "SchemaVersionError",
    "TransferIntegrityError",
    "TransferProgress",
    "TransferResult",
    "URLAccessError",
    "URLForbiddenError",
    "URLNotFoundError",
    "UnsafeLocationError",
    "UnsupportedURLError",
    "__version__",
    "create_job_store",
]
