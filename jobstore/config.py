"""Config: the settings a job store is created with.

An attribute bag in the style of Toil's ``Config``: every attribute has a default, unknown
attributes may be added and are persisted with the store if they are JSON values. Secrets
(``sseKey`` when it is a key rather than a KMS alias, passwords inside ``catalog``) are masked in
``repr`` and never persisted.
"""

from __future__ import annotations

import json
import os
from typing import Any

from jobstore.redact import redact_url

#: Attributes that hold secrets: never persisted in the catalog, masked in repr(). (Paths of
#: credential files, such as awsCredentials or sseKeyFile, are not secrets and are persisted, so a
#: worker resuming from the locator alone finds them.)
SECRET_ATTRIBUTES = frozenset({"sseKey"})

#: Environment variable that supplies the catalog URL for locators that do not imply one.
CATALOG_ENV_VAR = "JOBSTORE_CATALOG"


class Config:
    """Settings of a job store.

    Attributes:
        jobStore: the locator string.
        workflowID: set by ``initialize`` (a fresh UUID) unless already set.
        catalog: SQLAlchemy URL of the catalog, for locators that do not imply one (``aws:``,
            ``gce:``, ``google:``). Falls back to the ``JOBSTORE_CATALOG`` environment variable.
        blobStore: blob store URL for ``sql:`` locators (``file:///dir``, ``s3://bucket/prefix``,
            ``gs://bucket/prefix``); recorded in the catalog at ``initialize``.
        retryCount: default ``remainingTryCount`` of new jobs.
        sseKey: a 32-byte customer encryption key, or a KMS alias such as ``alias/my-key``.
        sseKeyFile: a file holding the customer key (read at use; its path is persisted, its
            contents never).
        awsRegion, awsEndpointURL, awsCredentials: S3 settings (``awsEndpointURL`` for
            S3-compatible servers; ``awsCredentials`` a shared-credentials file).
        googleCredentials: path of a service-account JSON file.
        googleProject, googleRegion: GCS project, and the location of buckets ``initialize`` creates
            (filled from ``google:PROJECT:...`` / ``gce:REGION:...`` locators).
        s3PartSize, s3Concurrency, awsMaxAttempts: S3 multipart part size (bytes), parallel parts,
            and botocore's retry attempts. googleChunkSize, googleRetryTimeout: GCS resumable-upload
            chunk size (a multiple of 256 KiB) and the retry deadline in seconds.
        publicUrlExpiry: lifetime in seconds of URLs from ``get_public_url`` (at most 7 days).
        durability: ``"normal"`` (commits survive a killed process) or ``"full"`` (commits and
            blobs are fsynced and survive a power loss too).
        poolSize: size of the catalog connection pool (PostgreSQL); small for workers.
        fileMode, dirMode: permissions of local store files and directories.
        exportRoots: directories ``export_file`` may write ``file://`` destinations under (None:
            anywhere this process may write). Existing devices, FIFOs and sockets are never replaced.
    """

    def __init__(self, **settings: Any) -> None:
        self.jobStore: str | None = None
        self.workflowID: str | None = None
        self.catalog: str | None = None
        self.blobStore: str | None = None
        self.retryCount: int = 1
        self.sseKey: str | bytes | None = None
        self.sseKeyFile: str | None = None
        self.awsRegion: str | None = None
        self.awsEndpointURL: str | None = None
        self.awsCredentials: str | None = None
        self.googleCredentials: str | None = None
        self.googleProject: str | None = None
        self.googleRegion: str | None = None
        self.s3PartSize: int | None = None
        self.s3Concurrency: int | None = None
        self.awsMaxAttempts: int | None = None
        self.googleChunkSize: int | None = None
        self.googleRetryTimeout: float | None = None
        self.publicUrlExpiry: int = 7 * 24 * 3600
        self.durability: str = "normal"
        self.poolSize: int = 5
        self.fileMode: int = 0o600
        self.dirMode: int = 0o700
        self.exportRoots: list[str] | None = None
        for name, value in settings.items():
            setattr(self, name, value)

    # --- persistence -------------------------------------------------------------------------

    def to_json(self) -> str:
        """The persistable settings as JSON: secrets and non-JSON values are left out."""
        persisted: dict[str, Any] = {}
        for name, value in vars(self).items():
            if name.startswith("_") or name in SECRET_ATTRIBUTES:
                continue
            if isinstance(value, str):
                value = redact_url(value)  # the catalog URL, or a sql: locator, may carry a password
            try:
                json.dumps(value)
            except (TypeError, ValueError):
                continue
            persisted[name] = value
        return json.dumps(persisted, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Config:
        return cls(**json.loads(text))

    def catalog_url(self) -> str | None:
        """The catalog URL from this config or, failing that, the environment."""
        return self.catalog or os.environ.get(CATALOG_ENV_VAR) or None

    def customer_key(self) -> bytes | None:
        """The 32-byte customer encryption key, if one is configured (not a KMS alias)."""
        from jobstore.encryption import load_customer_key

        return load_customer_key(self.sseKey, self.sseKeyFile)

    def __repr__(self) -> str:
        shown = []
        for name, value in sorted(vars(self).items()):
            if name.startswith("_"):
                continue
            if name in SECRET_ATTRIBUTES and value is not None:
                value = "***"
            elif isinstance(value, str):
                value = redact_url(value)
            shown.append(f"{name}={value!r}")
        return f"Config({', '.join(shown)})"
