"""Config: the settings a job store is created with.

An attribute bag in the style of Toil's ``Config``: every attribute has a default. Setting an
option jobstore does not know (a typo such as ``retrycount``), or a value of the wrong type or out
of range (``durability="bogus"``), raises :class:`~jobstore.errors.InvalidConfigError` naming the
valid options or values, so a setting never silently has no effect. Names starting with ``_`` are
private to the program: allowed, never persisted. Options found in a stored config that this
version does not know (written by a newer jobstore) are kept and persisted again, never dropped.
Secrets (``sseKey`` when it is a key rather than a KMS alias, passwords inside ``catalog``) are
masked in ``repr`` and never persisted.
"""

from __future__ import annotations

import json
import os
from typing import Any

from jobstore.errors import InvalidConfigError
from jobstore.redact import redact_url, unmaskable_url_problem

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
        dirMode: permissions of every directory a local blob store creates (its root, ``.tmp``
            and the fan-out directories), applied exactly with chmod whatever the umask; it must
            include ``0o700`` (the store itself must enter and write them).
        fileMode: recorded but not applied: catalog files are always ``0600`` and blobs ``0400``
            (``0500`` executable), see docs/SECURITY.md.
        verifyReads: checksum every ``read_file`` from a local blob store, hard links included (it
            then reads each file once; without it a hard link is checked by size only, while a
            copy or a stream is always checksummed as it is read).
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
        self.verifyReads: bool = False
        self._unknown: dict[str, Any] = {}
        for name, value in settings.items():
            setattr(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("_"):
            check_option(name, value)
        super().__setattr__(name, value)

    # --- persistence -------------------------------------------------------------------------

    def to_json(self) -> str:
        """The persistable settings as JSON: secrets and non-JSON values are left out."""
        persisted: dict[str, Any] = dict(self._unknown)
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
        """A stored config. Options this version does not know are kept aside (and persisted
        again by ``to_json``): a store written by a newer jobstore loses nothing by being opened."""
        stored = json.loads(text)
        config = cls(**{name: value for name, value in stored.items() if name in OPTIONS})
        config._unknown = {name: value for name, value in stored.items() if name not in OPTIONS}
        return config

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


# --- validation ------------------------------------------------------------------------------------

_OPTIONAL_TEXT = (str, type(None))
_OPTIONAL_INT = (int, type(None))

#: Every option and the types it accepts (bool is refused wherever int is meant, see below).
OPTIONS: dict[str, tuple[type, ...]] = {
    "jobStore": _OPTIONAL_TEXT,
    "workflowID": _OPTIONAL_TEXT,
    "catalog": _OPTIONAL_TEXT,
    "blobStore": _OPTIONAL_TEXT,
    "retryCount": (int,),
    "sseKey": (str, bytes, type(None)),
    "sseKeyFile": _OPTIONAL_TEXT,
    "awsRegion": _OPTIONAL_TEXT,
    "awsEndpointURL": _OPTIONAL_TEXT,
    "awsCredentials": _OPTIONAL_TEXT,
    "googleCredentials": _OPTIONAL_TEXT,
    "googleProject": _OPTIONAL_TEXT,
    "googleRegion": _OPTIONAL_TEXT,
    "s3PartSize": _OPTIONAL_INT,
    "s3Concurrency": _OPTIONAL_INT,
    "awsMaxAttempts": _OPTIONAL_INT,
    "googleChunkSize": _OPTIONAL_INT,
    "googleRetryTimeout": (int, float, type(None)),
    "publicUrlExpiry": (int,),
    "durability": (str,),
    "poolSize": (int,),
    "fileMode": (int,),
    "dirMode": (int,),
    "exportRoots": (list, type(None)),
    "verifyReads": (bool,),
}

DURABILITY_LEVELS = ("normal", "full")
MAX_PUBLIC_URL_EXPIRY = 7 * 24 * 3600
#: Integer options and their ranges (inclusive). The upper bounds keep values inside what the
#: libraries they reach accept, so a huge int is refused here, not as an OverflowError there.
#: (s3PartSize and googleChunkSize are checked by the providers, with the services' own rules.)
_INT_RANGES = {
    "retryCount": (0, 2**31 - 1),
    "s3Concurrency": (1, 1024),
    "awsMaxAttempts": (1, 100),
    "publicUrlExpiry": (1, MAX_PUBLIC_URL_EXPIRY),
    "poolSize": (1, 1000),
    "fileMode": (0, 0o777),
    "dirMode": (0o700, 0o777),
}


def check_option(name: str, value: Any) -> None:
    """Raise InvalidConfigError unless ``name`` is a Config option and ``value`` fits it."""
    accepted = OPTIONS.get(name)
    if accepted is None:
        raise InvalidConfigError(
            f"{name!r} is not a jobstore Config option. Valid options: {', '.join(sorted(OPTIONS))}."
        )
    if not isinstance(value, accepted) or (isinstance(value, bool) and bool not in accepted):
        names = " or ".join("None" if kind is type(None) else kind.__name__ for kind in accepted)
        raise InvalidConfigError(f"Config.{name} must be {names}, not {type(value).__name__} {_shown(name, value)}.")
    if name == "durability" and value not in DURABILITY_LEVELS:
        raise InvalidConfigError(
            f"Config.durability is {_shown(name, value)}; valid values: {', '.join(map(repr, DURABILITY_LEVELS))}."
        )
    if isinstance(value, str) and "\x00" in value:
        raise InvalidConfigError(f"Config.{name} contains a NUL character, which no path, URL or name may hold.")
    if name == "catalog" and isinstance(value, str):
        problem = unmaskable_url_problem(value)
        if problem is not None:
            # As for sql: locators (not echoed: the password could not be masked).
            raise InvalidConfigError(f"Config.catalog ({value.partition(':')[0][:40]}://...) {problem}.")
    if name in _INT_RANGES and isinstance(value, int):
        low, high = _INT_RANGES[name]
        if not low <= value <= high or (name == "dirMode" and value & 0o700 != 0o700):
            mode = name.endswith("Mode")
            shown = oct(value) if mode and abs(value) < 2**64 else _shown(name, value)
            bounds = f"{oct(low)} to {oct(high)}" if mode else f"{low} to {high}"
            rule = " and include 0o700 (the store enters and writes its own directories)" if name == "dirMode" else ""
            raise InvalidConfigError(f"Config.{name} is {shown}; it must be from {bounds}{rule}.")
    if name == "exportRoots" and value is not None and not all(isinstance(root, str) for root in value):
        raise InvalidConfigError("Config.exportRoots must be a list of directory paths (str), or None.")


def _shown(name: str, value: Any) -> str:
    """The value for a message: never a secret's, never a huge int's full digits."""
    if name in SECRET_ATTRIBUTES:
        return "(hidden)"
    if isinstance(value, int) and value.bit_length() > 64:
        return f"(an int of {value.bit_length()} bits)"
    text = repr(redact_url(value) if isinstance(value, str) else value)
    return text if len(text) <= 80 else text[:80] + "..."
