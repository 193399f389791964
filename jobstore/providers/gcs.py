"""Google Cloud Storage plumbing shared by the GCS blob store (:mod:`jobstore.blobs.gcs`) and
``gs://`` URLs (:mod:`jobstore.urls.gcs`): the one client construction (the emulator named by
``STORAGE_EMULATOR_HOST``, ``Config.googleCredentials``, or application-default credentials), the
retry policy (google-api-core ``Retry`` bounded by ``Config.googleRetryTimeout``), the chunk size
(``Config.googleChunkSize``), the resumable writer that only ``finalize()`` completes, and the one
function that turns every provider exception into a ``jobstore.errors`` exception,
:func:`translate_gcs_error`.
"""

from __future__ import annotations

import http.client
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from google.api_core import exceptions as api_exceptions
from google.cloud import storage
from google.cloud.storage.fileio import BlobWriter
from google.cloud.storage.retry import DEFAULT_RETRY

from jobstore.config import Config
from jobstore.errors import (
    BlobAccessDeniedError,
    BlobExistsError,
    BlobNotFoundError,
    BlobStorageFullError,
    BlobStoreError,
    ChecksumMismatchError,
    EncryptionKeyError,
    InvalidLocatorError,
    JobStoreError,
)

#: GCS requires resumable-upload chunks to be multiples of this.
CHUNK_GRANULARITY = 256 * 1024
#: Default chunk for resumable uploads and ranged reads: few requests, modest memory.
DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024
#: Default retry budget in seconds (google-api-core's own default).
DEFAULT_RETRY_TIMEOUT = 120.0
EMULATOR_ENV_VAR = "STORAGE_EMULATOR_HOST"
_SCOPES = ("https://www.googleapis.com/auth/devstorage.read_write",)
_PUBLIC_ENDPOINT = "https://storage.googleapis.com"


# --- client and settings ----------------------------------------------------------------------


def client_for(config: Config) -> Any:
    """A storage client for any object (URL import/export), made from ``config`` as a store's is
    (the emulator from STORAGE_EMULATOR_HOST, Config.googleCredentials, or application defaults)."""
    with translated("connect to", "Google Cloud Storage", endpoint_in_use()):
        return make_client(config)[0]


def retry_for(config: Config) -> Any:
    """The google-api-core Retry a store on ``config`` uses (bounded by Config.googleRetryTimeout)."""
    return DEFAULT_RETRY.with_timeout(float(getattr(config, "googleRetryTimeout", None) or DEFAULT_RETRY_TIMEOUT))


def chunk_size_for(config: Config) -> int:
    """The resumable-upload chunk a store on ``config`` uses (Config.googleChunkSize, validated)."""
    return chunk_size_setting(config)


def endpoint_in_use() -> str:
    """The emulator named by STORAGE_EMULATOR_HOST, else the public GCS endpoint."""
    return os.environ.get(EMULATOR_ENV_VAR) or _PUBLIC_ENDPOINT


def make_client(config: Config, credentials: Any = None) -> tuple[Any, Any]:
    """A storage client: anonymous on an emulator, else a key file, else application defaults."""
    project = config.googleProject
    if os.environ.get(EMULATOR_ENV_VAR):
        from google.auth.credentials import AnonymousCredentials

        if credentials is None:
            credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
        project = project or "test"
    elif credentials is not None:
        project = project or getattr(credentials, "project_id", None)
    elif config.googleCredentials:
        from google.oauth2 import service_account

        path = os.path.expanduser(config.googleCredentials)
        try:
            credentials = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
                path, scopes=_SCOPES
            )
        except (OSError, ValueError, KeyError) as error:
            raise BlobAccessDeniedError(
                f"Cannot load the service-account key file {config.googleCredentials!r} "
                f"(Config.googleCredentials): {error}. Give the path of a JSON key downloaded from "
                "the Google Cloud console (IAM > Service accounts > Keys)."
            ) from None
        project = project or credentials.project_id
    else:
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError

        try:
            credentials, default_project = google.auth.default(scopes=_SCOPES)
        except DefaultCredentialsError as error:
            raise BlobAccessDeniedError(
                f"No Google credentials found ({error}). Set Config.googleCredentials to a "
                "service-account JSON key file, set GOOGLE_APPLICATION_CREDENTIALS, or run "
                "`gcloud auth application-default login`."
            ) from None
        project = project or default_project
    return storage.Client(project=project, credentials=credentials), credentials


def chunk_size_setting(config: Config) -> int:
    """Config.googleChunkSize (else the default), refused unless a positive multiple of 256 KiB."""
    value = getattr(config, "googleChunkSize", None) or DEFAULT_CHUNK_SIZE
    if not isinstance(value, int) or value <= 0 or value % CHUNK_GRANULARITY:
        raise InvalidLocatorError(
            f"Config.googleChunkSize={value!r} is not usable: GCS resumable uploads need a positive "
            f"multiple of {CHUNK_GRANULARITY} bytes (256 KiB); the default is {DEFAULT_CHUNK_SIZE}."
        )
    return value


# --- streaming writes --------------------------------------------------------------------------


class FinalizeOnlyWriter(BlobWriter):  # type: ignore[misc]
    """The library's resumable writer, changed so that only ``finalize()`` can complete the upload
    (the GCS blob store's streamed writes and exports to ``gs://`` URLs).

    ``BlobWriter.close()`` sends the final chunk, and ``io.IOBase`` calls ``close()`` when the
    object is garbage-collected: an abandoned writer would publish a truncated object. Here
    ``close()`` does nothing unless ``finalize()`` asked for it.
    """

    _may_finalize = False

    def finalize(self) -> None:
        self._may_finalize = True
        super().close()

    def close(self) -> None:
        if self._may_finalize:
            super().close()


# --- the one place where provider errors become ours --------------------------------------------


def _status_of(error: BaseException) -> int | None:
    """The HTTP status of a google-api-core or google-cloud-storage media exception."""
    code = getattr(error, "code", None)
    if isinstance(code, int):
        return code
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _is_connection_error(error: BaseException) -> bool:
    import requests
    import urllib3
    from google.auth import exceptions as auth_exceptions

    connection_types: tuple[type[BaseException], ...] = (
        ConnectionError,
        requests.ConnectionError,
        requests.Timeout,
        requests.exceptions.ChunkedEncodingError,
        urllib3.exceptions.HTTPError,
        http.client.HTTPException,
        auth_exceptions.TransportError,
    )
    return isinstance(error, connection_types)


def translate_gcs_error(
    error: BaseException,
    action: str,
    target: str,
    endpoint: str = _PUBLIC_ENDPOINT,
    *,
    retry_timeout: float | None = None,
    missing: str = "",
    exists: str = "",
) -> JobStoreError | None:
    """Our exception for a google-cloud-storage / google-api-core / requests error, or None.

    ``action`` and ``target`` say what was being done ("upload", "gs://b/k"); ``missing`` and
    ``exists`` replace the default advice for a 404 and a 412 where the caller knows better.
    None means "not a provider error": the caller re-raises the original.
    """
    if isinstance(error, JobStoreError):
        return error
    from google.auth import exceptions as auth_exceptions
    from google.cloud.storage.exceptions import DataCorruption, InvalidResponse

    if isinstance(error, api_exceptions.RetryError):
        cause = error.cause
        translated = None
        if cause is not None:
            translated = translate_gcs_error(cause, action, target, endpoint, missing=missing, exists=exists)
        waited = f" after retrying for {retry_timeout:g} s" if retry_timeout else " after retrying"
        detail = str(translated) if translated is not None else str(cause or error)
        kind = type(translated) if translated is not None else BlobStoreError
        return kind(f"{detail} (gave up{waited}; Config.googleRetryTimeout sets how long to retry)")
    if isinstance(error, DataCorruption):
        return ChecksumMismatchError(
            f"{target}: the bytes transferred do not match the CRC32C GCS holds for the object "
            f"({error}). Retry; if it persists, the stored copy is damaged: run `jobstore fsck`."
        )
    if isinstance(error, auth_exceptions.RefreshError | auth_exceptions.DefaultCredentialsError):
        return BlobAccessDeniedError(
            f"Could not obtain Google credentials to {action} {target}: {error}. Check "
            "Config.googleCredentials (a service-account JSON key) or GOOGLE_APPLICATION_CREDENTIALS."
        )
    if _is_connection_error(error):
        emulator = " and STORAGE_EMULATOR_HOST (an emulator is configured)" if endpoint != _PUBLIC_ENDPOINT else ""
        return BlobStoreError(
            f"Cannot {action} {target}: the GCS endpoint {endpoint} is unreachable ({error}). "
            f"Check the network, proxies and firewall{emulator}; the operation can be retried."
        )
    if not isinstance(error, api_exceptions.GoogleAPICallError | InvalidResponse):
        return None
    status = _status_of(error)
    message = getattr(error, "message", None) or str(error)
    lowered = message.lower()
    if status == 404:
        return BlobNotFoundError(
            f"Cannot {action} {target}: not found ({message}); "
            + (missing or "it was deleted, or never written. If the catalog refers to it, run `jobstore fsck`.")
        )
    if status in (401, 403):
        return BlobAccessDeniedError(
            f"GCS refused to {action} {target} ({status}: {message}). Check that the credentials "
            "(Config.googleCredentials or the application default) belong to an account with "
            "roles/storage.objectAdmin on the bucket, and that Config.googleProject is right."
        )
    if status == 412:
        return BlobExistsError(f"Cannot {action} {target}: " + (exists or f"a precondition failed ({message})."))
    if status == 400 and ("encrypt" in lowered or "customer" in lowered or "key" in lowered):
        return EncryptionKeyError(
            f"GCS could not {action} {target} with the configured encryption key ({message}). The "
            "object was written with a different customer key or none: check Config.sseKey / "
            "sseKeyFile against the key the store was created with."
        )
    if status == 400 and ("crc32c" in lowered or "checksum" in lowered or "hash" in lowered):
        return ChecksumMismatchError(
            f"GCS rejected the bytes sent to {target}: they do not match their CRC32C ({message}). "
            "The data changed during the upload (a local file being modified?) or was damaged in "
            "transit; retry the write."
        )
    if status == 507 or (status == 429 and "quota" in lowered):
        return BlobStorageFullError(
            f"GCS refused to {action} {target}: out of quota or storage ({message}). Free space or "
            "raise the project's quota."
        )
    if status is not None and (status in (408, 429) or status >= 500):
        return BlobStoreError(
            f"GCS failed to {action} {target} ({status}: {message}) and kept failing while retried. "
            "The service may be overloaded or down; try again later."
        )
    return BlobStoreError(f"GCS refused to {action} {target} ({status}: {message}).")


@contextmanager
def translated(
    action: str,
    target: str,
    endpoint: str,
    *,
    retry_timeout: float | None = None,
    missing: str = "",
    exists: str = "",
) -> Iterator[None]:
    """Run the body, turning provider exceptions into ours (via translate_gcs_error)."""
    try:
        yield
    except JobStoreError:
        raise
    except Exception as error:
        ours = translate_gcs_error(
            error, action, target, endpoint, retry_timeout=retry_timeout, missing=missing, exists=exists
        )
        if ours is None:
            raise
        raise ours from error
