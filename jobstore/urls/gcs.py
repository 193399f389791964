"""``gs://BUCKET/NAME`` URLs, through google-cloud-storage, with the store's GCS settings.

The client is built from the store's Config as the GCS blob store builds its own
(:func:`jobstore.providers.gcs.client_for`: the emulator named by ``STORAGE_EMULATOR_HOST``,
``Config.googleCredentials``, or application-default credentials), with the same retry policy
(google-api-core ``Retry``, bounded by ``Config.googleRetryTimeout``) and chunk size
(``Config.googleChunkSize``). Names are taken literally, as gsutil takes them.

Reads are ranged requests of one chunk each, pinned to the generation found when the URL was opened,
so an object replaced meanwhile cannot be mixed into the copy. GCS keeps a CRC32C of every object;
it is checked against the bytes received, along with the size. Writes are a resumable upload fed
chunk by chunk that only a complete transfer finalizes, so the object appears whole or not at all
(and may replace an existing one). GCS has no executable bit.

Errors are translated by :func:`jobstore.providers.gcs.translate_gcs_error` and re-typed as URL errors.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any, NoReturn

from google.cloud.storage.fileio import BlobReader

from jobstore.config import Config
from jobstore.errors import (
    BlobAccessDeniedError,
    BlobNotFoundError,
    ChecksumMismatchError,
    EncryptionKeyError,
    JobStoreError,
    TransferIntegrityError,
    UnsupportedURLError,
    URLAccessError,
    URLForbiddenError,
    URLNotFoundError,
)
from jobstore.providers import gcs as gcs_provider
from jobstore.redact import redact_url
from jobstore.urls.base import (
    CHUNK_SIZE,
    ChecksumHint,
    ExactReader,
    UrlHandler,
    UrlSource,
    VerifyingReader,
    basename_of,
)

_CONTENT_TYPE = "application/octet-stream"


def parse_gs_url(url: str) -> tuple[str, str]:
    """(bucket, name) of ``gs://BUCKET/NAME``; refuses URLs that name no object."""
    if not url.lower().startswith("gs://"):
        raise UnsupportedURLError(f"{redact_url(url)!r} is not a gs:// URL.")
    bucket, _, name = url[len("gs://") :].partition("/")
    if not bucket or "@" in bucket or ":" in bucket:
        raise UnsupportedURLError(f"{redact_url(url)!r} names no bucket; write gs://BUCKET/NAME.")
    if not name or name.endswith("/"):
        raise URLAccessError(
            f"{redact_url(url)} names a bucket or a prefix (a directory), not an object; give the URL of an object."
        )
    return bucket, name


class GcsHandler(UrlHandler):
    """Google Cloud Storage (or its emulator), with the store's credentials."""

    schemes = ("gs",)

    def _settings(self) -> tuple[Any, Any, int]:
        config = self.config or Config()
        return gcs_provider.client_for(config), gcs_provider.retry_for(config), gcs_provider.chunk_size_for(config)

    @contextmanager
    def open_source(self, url: str) -> Iterator[UrlSource]:
        bucket_name, name = parse_gs_url(url)
        client, retry, chunk_size = self._settings()
        bucket = client.bucket(bucket_name)
        with _translated(url, "read it"):
            blob = bucket.get_blob(name, retry=retry)  # its generation pins every later read
            if blob is None:
                if any(True for _ in client.list_blobs(bucket_name, prefix=name + "/", max_results=1, retry=retry)):
                    raise URLAccessError(
                        f"{redact_url(url)} is a prefix (a directory) in the bucket; import its objects one by one."
                    )
                raise URLNotFoundError(f"{redact_url(url)}: cannot read it: no such object in the bucket.")
        size = int(blob.size)
        checksum = None
        if blob.crc32c:
            digest = int.from_bytes(base64.b64decode(blob.crc32c), "big")
            checksum = ChecksumHint("crc32c", f"{digest:08x}", "GCS crc32c", enforced=True)
        reader = BlobReader(blob, chunk_size=chunk_size, retry=retry, raw_download=True)

        def read(n: int) -> bytes:
            try:
                with _translated(url, "read it"):
                    data: bytes = reader.read(n)
            except URLNotFoundError as error:
                raise TransferIntegrityError(
                    f"{redact_url(url)} was replaced or deleted during the transfer; retry it."
                ) from error
            return data

        raw = VerifyingReader(read, what=redact_url(url), size=size, checksum=checksum, on_close=reader.close)
        source = UrlSource(
            url=redact_url(url),
            raw=raw,
            size=size,
            basename=basename_of(name),
            checksum=checksum,
            fingerprint={"size": size, "generation": int(blob.generation)},
        )
        try:
            yield source
        finally:
            source.close()

    def fingerprint(self, url: str) -> dict[str, Any]:
        """Size and generation (every overwrite of an object makes a new generation)."""
        bucket_name, name = parse_gs_url(url)
        client, retry, _ = self._settings()
        with _translated(url, "look at it"):
            blob = client.bucket(bucket_name).get_blob(name, retry=retry)
        if blob is None:
            raise URLNotFoundError(f"{redact_url(url)}: no such object in the bucket.")
        return {"size": int(blob.size), "generation": int(blob.generation)}

    def write(
        self,
        url: str,
        reader: IO[bytes],
        size: int | None,
        *,
        executable: bool = False,
        http_method: str = "POST",
    ) -> None:
        bucket_name, name = parse_gs_url(url)
        client, retry, chunk_size = self._settings()
        blob = client.bucket(bucket_name).blob(name, chunk_size=chunk_size)
        body = ExactReader(reader, size, redact_url(url))
        writer = gcs_provider.FinalizeOnlyWriter(
            blob, chunk_size=chunk_size, retry=retry, content_type=_CONTENT_TYPE, checksum="crc32c"
        )
        # Errors of the data to send (the caller's stream) propagate as they are; an abandoned
        # writer is never finalized, so a failure leaves no object behind.
        while chunk := body.read(CHUNK_SIZE):
            with _translated(url, "upload it"):
                writer.write(chunk)
        with _translated(url, "upload it"):
            writer.finalize()  # only now does the object appear

    def __repr__(self) -> str:
        return "<GcsHandler>"


def _endpoint() -> str:
    return gcs_provider.endpoint_in_use()


@contextmanager
def _translated(url: str, action: str) -> Iterator[None]:
    """Provider errors raised inside the block become URL errors naming ``url``."""
    try:
        yield
    except JobStoreError:
        raise
    except Exception as error:
        translated = gcs_provider.translate_gcs_error(
            error, action, redact_url(url), _endpoint(), missing="check the bucket and object name."
        )
        if translated is None:
            raise
        _raise_url_error(url, action, translated, error)


def _raise_url_error(url: str, action: str, translated: JobStoreError, error: BaseException) -> NoReturn:
    where = redact_url(url)
    if isinstance(translated, BlobNotFoundError):
        raise URLNotFoundError(f"{where}: cannot {action}: no such bucket or object ({translated}).") from error
    if isinstance(translated, BlobAccessDeniedError | EncryptionKeyError):
        raise URLForbiddenError(
            f"{where}: cannot {action}: access denied. The store's Google credentials are used "
            f"(Config.googleCredentials or application defaults). {translated}"
        ) from error
    if isinstance(translated, ChecksumMismatchError):
        raise TransferIntegrityError(str(translated)) from error
    raise URLAccessError(str(translated)) from error
