"""Locator strings -> where a store's catalog and blobs live. Pure parsing, no I/O.

=============================== ========================================= ============================
locator                         catalog                                   blobs
=============================== ========================================= ============================
``file:/path`` or ``/path``     SQLite file ``/path/catalog.sqlite``      ``/path/blobs``
``aws:REGION:BUCKET[:PREFIX]``  ``Config.catalog`` / ``JOBSTORE_CATALOG``  ``s3://BUCKET/PREFIX``
``gce:REGION:BUCKET[:PREFIX]``  as above                                  ``gs://BUCKET/PREFIX``
``google:PROJECT:PREFIX``       as above                                  ``gs://PREFIX`` (Toil's form)
``sql:URL#NAME``                ``URL`` (any SQLAlchemy URL)              read from the catalog
=============================== ========================================= ============================

``sql:`` locators let a worker on another machine resume a store from one string: the blob URL was
recorded in the catalog when the store was initialized (from ``Config.blobStore``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import quote

from jobstore.errors import InvalidLocatorError
from jobstore.redact import redact_url, unmaskable_url_problem

#: Store names inside a catalog (the ``#NAME`` of ``sql:`` locators).
STORE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_AWS_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d{1,2}$")
_GCE_REGION = re.compile(r"^[a-z]+(-[a-z]+)*\d*$")
_GCP_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_GCS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
_PREFIX = re.compile(r"^[A-Za-z0-9._/-]*$")
_SQL_DIALECTS = ("sqlite", "postgresql")

SQLITE_CATALOG_NAME = "catalog.sqlite"
LOCAL_BLOB_DIR = "blobs"
DEFAULT_STORE_NAME = "default"


@dataclass(frozen=True)
class StoreLocation:
    """What a locator says about a store.

    ``catalog_url`` is None when the catalog must come from Config or the environment;
    ``blob_url`` is None when it is recorded in the catalog (``sql:`` locators).
    """

    kind: str
    locator: str
    store_name: str
    catalog_url: str | None
    blob_url: str | None
    region: str | None = None
    project: str | None = None

    def __repr__(self) -> str:
        return (
            f"StoreLocation(kind={self.kind!r}, locator={redact_url(self.locator)!r}, "
            f"store_name={self.store_name!r}, catalog_url="
            f"{redact_url(self.catalog_url) if self.catalog_url else None!r}, blob_url={self.blob_url!r})"
        )


def parse_locator(locator: object) -> StoreLocation:
    """Parse a locator string; raise InvalidLocatorError saying what is wrong and what is expected."""
    if not isinstance(locator, str):
        raise InvalidLocatorError(
            f"A job store locator must be a str, not {type(locator).__name__}. "
            "Examples: 'file:/data/store', 'aws:us-east-1:bucket:prefix', 'sql:postgresql+psycopg://host/db#name'."
        )
    if not locator.strip():
        raise InvalidLocatorError(
            "The job store locator is empty. Give a directory (file:/path) or one of the forms "
            "aws:REGION:BUCKET:PREFIX, gce:REGION:BUCKET:PREFIX, google:PROJECT:PREFIX, sql:URL#NAME."
        )
    if "\x00" in locator:
        raise InvalidLocatorError("The job store locator contains a NUL character, which no path or URL may hold.")
    try:
        locator.encode("utf-8")
    except UnicodeEncodeError as error:
        # A lone surrogate (e.g. from a file name that is not UTF-8) can be neither a catalog URL
        # nor a path SQLite opens; refused here rather than as UnicodeEncodeError deep inside.
        raise InvalidLocatorError(
            f"The job store locator holds {locator[error.start]!r} at position {error.start}, which is "
            "not valid Unicode text (a lone surrogate). Use a locator that is valid UTF-8."
        ) from None
    if locator[0] in "/." or ":" not in locator:
        return _parse_file(locator, locator)
    kind, rest = locator.split(":", 1)
    if kind == "file":
        return _parse_file(rest, locator)
    if kind == "aws":
        return _parse_aws(rest, locator)
    if kind == "gce":
        return _parse_gce(rest, locator)
    if kind == "google":
        return _parse_google(rest, locator)
    if kind == "sql":
        return _parse_sql(rest, locator)
    raise InvalidLocatorError(
        f"Unknown job store type {kind!r} in locator {redact_url(locator)!r}. Supported: "
        "file:/path (or a bare path), aws:REGION:BUCKET[:PREFIX], gce:REGION:BUCKET[:PREFIX], "
        "google:PROJECT:PREFIX, sql:URL#NAME."
    )


def _parse_file(path: str, locator: str) -> StoreLocation:
    if path.startswith("//"):
        # file:///abs/path (URL form) is accepted as well as file:/abs/path. Only the host is
        # parsed: the rest stays literal ('#', '?' and '%' are not URL syntax here, see below).
        host, slash, rest = path[2:].partition("/")
        if host not in ("", "localhost"):
            raise InvalidLocatorError(
                f"File locator {locator!r} names the host {host!r}; only local directories "
                "can hold a file: store. Use file:/path."
            )
        path = slash + rest
    if not path:
        raise InvalidLocatorError(f"File locator {locator!r} has no directory. Use file:/path/to/store.")
    directory = os.path.abspath(os.path.expanduser(path))
    _check_path_length(directory, locator)
    # The path is literal: '#', '?' and '%' name themselves. The URLs derived from it are
    # percent-encoded so that the parsers reading them (SQLAlchemy, urlsplit + unquote) give back
    # exactly this directory; unencoded, 'D/run#1' and 'D/run#2' would share the blobs of 'D/run'.
    return StoreLocation(
        kind="file",
        locator=f"file:{directory}",
        store_name=DEFAULT_STORE_NAME,
        catalog_url=f"sqlite:///{quote(os.path.join(directory, SQLITE_CATALOG_NAME))}",
        blob_url=f"file://{quote(os.path.join(directory, LOCAL_BLOB_DIR))}",
    )


#: Limits of Linux file systems (NAME_MAX, PATH_MAX), checked here so a long path is a typed
#: error at parse time rather than an ENAMETOOLONG from whichever call first touches it.
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4095 - len("/" + LOCAL_BLOB_DIR + "/f/ab/" + "x" * 64)


def _check_path_length(directory: str, locator: str) -> None:
    encoded = os.fsencode(directory)
    longest = max((len(part) for part in encoded.split(b"/")), default=0)
    if longest > MAX_NAME_BYTES or len(encoded) > MAX_PATH_BYTES:
        raise InvalidLocatorError(
            f"The directory of {locator[:80]!r}... is too long for the file system: a path component "
            f"may have at most {MAX_NAME_BYTES} bytes and the whole path at most {MAX_PATH_BYTES} "
            "(room is kept for the store's own files). Choose a shorter directory."
        )


def _split_cloud(rest: str, locator: str, form: str) -> tuple[str, str, str]:
    parts = rest.split(":", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise InvalidLocatorError(f"Locator {locator!r} is missing parts; expected {form}.")
    prefix = parts[2] if len(parts) == 3 else ""
    return parts[0], parts[1], prefix


def validate_prefix(prefix: str, locator: str) -> str:
    """Check a key prefix: relative, no '..' segments, safe characters. Returns it without slashes at the ends."""
    if not _PREFIX.fullmatch(prefix) or prefix.startswith("/") or ".." in prefix.split("/"):
        raise InvalidLocatorError(
            f"The prefix {prefix!r} in {locator!r} is not allowed: use letters, digits, '.', '_', '-' "
            "and '/' between parts, with no '..' and no leading '/'."
        )
    return prefix.strip("/")


def validate_s3_bucket(bucket: str, locator: str) -> None:
    """S3's bucket naming rules, checked before any network call."""
    if not _S3_BUCKET.fullmatch(bucket) or ".." in bucket or _is_ip_address(bucket):
        raise InvalidLocatorError(
            f"{bucket!r} in {locator!r} is not a valid S3 bucket name: 3-63 characters of lowercase "
            "letters, digits, '.' and '-', starting and ending with a letter or digit, not an IP address."
        )


def validate_gcs_bucket(bucket: str, locator: str) -> None:
    """GCS's bucket naming rules, checked before any network call."""
    if (
        not _GCS_BUCKET.fullmatch(bucket)
        or ".." in bucket
        or _is_ip_address(bucket)
        or bucket.startswith("goog")
        or ("." not in bucket and len(bucket) > 63)
    ):
        raise InvalidLocatorError(
            f"{bucket!r} in {locator!r} is not a valid GCS bucket name: 3-63 characters of lowercase "
            "letters, digits, '-', '_' and '.', starting and ending with a letter or digit, not "
            "starting with 'goog'."
        )


def _is_ip_address(name: str) -> bool:
    # Imported here: only aws: locators need it, and every Toil worker (a process per job) would
    # otherwise pay ~1.5 ms to import it while resuming a file: or sql: store.
    import ipaddress

    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _parse_aws(rest: str, locator: str) -> StoreLocation:
    region, bucket, prefix = _split_cloud(rest, locator, "aws:REGION:BUCKET[:PREFIX]")
    if not _AWS_REGION.fullmatch(region):
        raise InvalidLocatorError(f"{region!r} in {locator!r} is not an AWS region (for example us-east-1, eu-west-2).")
    validate_s3_bucket(bucket, locator)
    prefix = validate_prefix(prefix, locator)
    blob_url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
    return StoreLocation("aws", locator, blob_url, None, blob_url, region=region)


def _parse_gce(rest: str, locator: str) -> StoreLocation:
    region, bucket, prefix = _split_cloud(rest, locator, "gce:REGION:BUCKET[:PREFIX]")
    if not _GCE_REGION.fullmatch(region):
        raise InvalidLocatorError(f"{region!r} in {locator!r} is not a Google Cloud region (for example us-central1).")
    validate_gcs_bucket(bucket, locator)
    prefix = validate_prefix(prefix, locator)
    blob_url = f"gs://{bucket}/{prefix}" if prefix else f"gs://{bucket}"
    return StoreLocation("google", locator, blob_url, None, blob_url, region=region)


def _parse_google(rest: str, locator: str) -> StoreLocation:
    parts = rest.split(":")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise InvalidLocatorError(
            f"Locator {locator!r} must have the form google:PROJECT:PREFIX "
            "(Toil's form: the bucket is named after PREFIX)."
        )
    project, bucket = parts
    if not _GCP_PROJECT.fullmatch(project):
        raise InvalidLocatorError(
            f"{project!r} in {locator!r} is not a Google Cloud project ID "
            "(6-30 lowercase letters, digits and hyphens, starting with a letter)."
        )
    validate_gcs_bucket(bucket, locator)
    blob_url = f"gs://{bucket}"
    return StoreLocation("google", locator, blob_url, None, blob_url, project=project)


def _parse_sql(rest: str, locator: str) -> StoreLocation:
    # The last '#' separates the store name, which cannot hold one; a '#' inside the URL (in a
    # password, say) must be percent-encoded as %23, or it would be read as the separator.
    url, separator, name = rest.rpartition("#")
    if not separator:
        url, name = rest, ""
    name = name or DEFAULT_STORE_NAME
    problem = unmaskable_url_problem(url)
    if problem is not None:
        # Checked first and not echoed: such a URL's password cannot be masked reliably.
        raise InvalidLocatorError(
            f"The catalog URL of the sql: locator ({url.partition(':')[0][:40]}://...) {problem}."
        )
    shown = redact_url(locator)
    if not url:
        raise InvalidLocatorError(
            f"Locator {shown!r} has no database URL; expected sql:URL#NAME, for example "
            "sql:postgresql+psycopg://user@host/db#my-workflow."
        )
    if not STORE_NAME_PATTERN.fullmatch(name):
        # Not echoed when it holds URL syntax: it may be the tail of a password with a raw '#'.
        quoted = repr(name) if re.fullmatch(r"[A-Za-z0-9._-]*", name) else "after the last '#'"
        raise InvalidLocatorError(
            f"The store name {quoted} in {shown!r} is not allowed: 1-128 letters, digits, '.', '_' or "
            "'-', starting with a letter or digit. A '#' inside the catalog URL must be written %23."
        )
    dialect = url.split(":", 1)[0].split("+", 1)[0]
    if "://" not in url or dialect not in _SQL_DIALECTS:
        raise InvalidLocatorError(
            f"{redact_url(url)!r} in {shown!r} is not a supported catalog URL; use a SQLAlchemy URL "
            "starting with sqlite:/// or postgresql+psycopg://."
        )
    return StoreLocation("sql", locator, name, url, None)
