"""Google Cloud Storage blob store: ``gs://BUCKET`` or ``gs://BUCKET/PREFIX``.

Blobs live at ``PREFIX/KEY`` in the bucket. The client, the retry policy and the one function that
turns every provider exception into a ``jobstore.errors`` exception
(:func:`jobstore.providers.gcs.translate_gcs_error`) are shared with ``gs://`` URLs and live in
:mod:`jobstore.providers.gcs`; everything else that talks to google-cloud-storage is here.

How the promises of ``blobs/base.py`` are kept on GCS:

* **Create-only.** Every new object is written with ``ifGenerationMatch=0``: GCS refuses (412) to
  finalize it if anything exists at the name, which we report as ``BlobExistsError``. The
  precondition also makes the upload idempotent, so google-api-core's ``Retry`` may resend it; if a
  resend finds an object with exactly our size and CRC32C, it found our own first attempt (keys are
  random and never reused) and the write counts as done.
* **Streaming, bounded memory.** A blob no larger than one chunk is sent in one multipart request.
  A larger one goes through a resumable upload session fed chunk by chunk as the caller writes, so
  at most about one chunk (``Config.googleChunkSize``, default 8 MiB) is held in memory.
* **Nothing half-written is visible.** A resumable session only creates the object when its final
  chunk is sent, which happens in ``commit()`` alone. ``abort()`` just abandons the session (GCS
  discards unfinished sessions after a week); it makes no network call, so it cannot fail or hang.
* **Checksums.** Our CRC32C travels with the object (object metadata on single-request and
  ``put_file`` uploads, the ``X-Goog-Hash`` of the final chunk on streamed ones), so GCS rejects
  bytes damaged in transit. After every upload the size and CRC32C GCS reports are compared with
  what we computed, and reads are verified by the base class (streams) or here (``get_file``).
* **Encryption.** With a customer key (``Config.sseKey`` / ``sseKeyFile``, 32 bytes) every media
  request carries it (``x-goog-encryption-*`` headers; CSEK). The key comes from Config, so a
  process that resumes the store elsewhere uses the same key.
* **Retries.** google-api-core ``Retry`` (the library's ``DEFAULT_RETRY`` predicate: 408, 429, 5xx,
  connection resets, timeouts), bounded by ``Config.googleRetryTimeout`` seconds (default 120).

Settings read from Config: ``googleCredentials`` (service-account JSON file), ``googleProject``,
and, optional: ``googleChunkSize`` (bytes, a multiple of 256 KiB), ``googleRetryTimeout``
(seconds), ``googleRegion`` (location of a bucket ``create()`` makes). With the environment
variable ``STORAGE_EMULATOR_HOST`` set, the store talks to that emulator with anonymous
credentials and ignores ``googleCredentials``.
"""

from __future__ import annotations

import base64
import datetime
import io
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any, BinaryIO, cast
from urllib.parse import urlsplit

from google.api_core import exceptions as api_exceptions
from google.cloud.storage.fileio import BlobReader
from google.cloud.storage.retry import DEFAULT_RETRY

from jobstore.blobs.base import (
    CHUNK_SIZE,
    BlobInfo,
    BlobSink,
    BlobStore,
    ImportedBlob,
    check_key,
    local_temp_path,
)
from jobstore.blobs.checksum import RunningChecksum, crc32c_base64, format_checksum, verify
from jobstore.config import Config
from jobstore.encryption import is_kms_alias
from jobstore.errors import (
    BlobAccessDeniedError,
    BlobExistsError,
    BlobStoreError,
    ChecksumMismatchError,
    EncryptionKeyError,
    InvalidLocatorError,
    PublicURLError,
    TransferIntegrityError,
)
from jobstore.locator import validate_gcs_bucket, validate_prefix
from jobstore.providers import gcs as gcs_provider

#: Longest lifetime of a V4 signed URL that GCS accepts (7 days).
MAX_SIGNED_URL_SECONDS = 7 * 24 * 3600
_CONTENT_TYPE = "application/octet-stream"
#: Names per listing request (GCS's maximum); the iterator follows page tokens.
LIST_PAGE_SIZE = 1000
#: Concurrent deletes in destroy(); below urllib3's default pool of 10 connections per host.
_DELETE_WORKERS = 8


class GCSBlobStore(BlobStore):
    """Blobs in a GCS bucket, under an optional prefix."""

    def __init__(
        self,
        bucket: str,
        prefix: str,
        config: Config,
        *,
        client: Any = None,
        credentials: Any = None,
    ) -> None:
        """Use ``from_url`` normally; ``client`` / ``credentials`` let callers inject their own.

        The bucket name and prefix are validated first, so a typo fails before any network call.
        """
        url = f"gs://{bucket}/{prefix}" if prefix else f"gs://{bucket}"
        validate_gcs_bucket(bucket, url)
        self.prefix = validate_prefix(prefix, url)
        if "//" in self.prefix:
            raise InvalidLocatorError(
                f"The prefix {prefix!r} in {url!r} has an empty part ('//'); write it with single slashes."
            )
        self.bucket_name = bucket
        self.url = f"gs://{bucket}/{self.prefix}" if self.prefix else f"gs://{bucket}"
        self._object_prefix = f"{self.prefix}/" if self.prefix else ""
        self._chunk_size = gcs_provider.chunk_size_setting(config)
        retry_timeout = float(getattr(config, "googleRetryTimeout", None) or gcs_provider.DEFAULT_RETRY_TIMEOUT)
        self.retry_timeout = retry_timeout
        self._retry = DEFAULT_RETRY.with_timeout(retry_timeout)
        self._region: str | None = getattr(config, "googleRegion", None)
        self._customer_key = _customer_key_setting(config)
        self.encrypted = self._customer_key is not None
        self.emulated = bool(os.environ.get(gcs_provider.EMULATOR_ENV_VAR))
        if client is None:
            with gcs_provider.translated("connect to", self.url, gcs_provider.endpoint_in_use()):
                client, credentials = gcs_provider.make_client(config, credentials)
        self._client = client
        self._credentials = credentials if credentials is not None else getattr(client, "_credentials", None)
        self._bucket = client.bucket(bucket)
        self.endpoint = gcs_provider.endpoint_in_use()

    @classmethod
    def from_url(cls, url: str, config: Config) -> GCSBlobStore:
        """The store at ``gs://BUCKET`` or ``gs://BUCKET/PREFIX``; names are checked before any I/O."""
        parts = urlsplit(url)
        if parts.scheme != "gs" or not parts.netloc or parts.query or parts.fragment:
            raise InvalidLocatorError(
                f"{url!r} is not a GCS blob store URL; expected gs://BUCKET or gs://BUCKET/PREFIX "
                "(no query or fragment)."
            )
        validate_gcs_bucket(parts.netloc, url)
        prefix = validate_prefix(parts.path[1:], url)  # path is "" or "/PREFIX"
        return cls(parts.netloc, prefix, config)

    def __repr__(self) -> str:
        return f"GCSBlobStore({self.url!r}, encrypted={self.encrypted})"

    # --- names --------------------------------------------------------------------------------

    def object_name(self, key: str) -> str:
        """The GCS object name of ``key``."""
        return self._object_prefix + key

    def _media_blob(self, key: str, *, chunked: bool = False) -> Any:
        """A handle for reading or writing bytes, carrying the customer key.

        ``chunked`` sets our chunk size on the handle, which the library then uses for resumable
        uploads (so ``put_file`` holds one chunk, not its 100 MiB default) but also for downloads,
        which it would split into ranged requests: downloads want a handle without it.
        """
        return self._bucket.blob(
            self.object_name(key),
            chunk_size=self._chunk_size if chunked else None,
            encryption_key=self._customer_key,
        )

    def _metadata_blob(self, key: str) -> Any:
        """A handle for metadata calls (exists, size, delete), which need no customer key."""
        return self._bucket.blob(self.object_name(key))

    def _translated(self, action: str, target: str, **hints: str) -> AbstractContextManager[None]:
        return gcs_provider.translated(action, target, self.endpoint, retry_timeout=self.retry_timeout, **hints)

    # --- the container ------------------------------------------------------------------------

    def create(self, owner: str | None = None) -> None:
        """Create the bucket unless it exists. Idempotent, also against a concurrent creator."""
        with self._translated("create the bucket", self.bucket_name):
            if self._bucket.exists(retry=self._retry):
                return
            try:
                self._client.create_bucket(self._bucket, location=self._region, retry=self._retry)
            except api_exceptions.Conflict:
                # Someone created it between our check and our request: fine if it is reachable by
                # us, otherwise the name belongs to another project (exists() then says Forbidden).
                if not self._bucket.exists(retry=self._retry):
                    raise BlobAccessDeniedError(
                        f"The bucket name {self.bucket_name!r} is taken by another project. "
                        "Bucket names are global: choose another one."
                    ) from None

    def container_exists(self) -> bool:
        with self._translated("check the bucket", self.bucket_name):
            return bool(self._bucket.exists(retry=self._retry))

    def destroy(self, *, final: bool = True) -> None:
        """Delete every object under this store's prefix; objects outside it are never touched.

        The bucket itself stays (it may hold other stores, and may not be ours to delete); a store
        without a prefix therefore empties the whole bucket.
        """
        del final  # a bucket prefix has no marker to keep
        with self._translated("check the bucket", self.bucket_name):
            if not self._bucket.exists(retry=self._retry):
                return
        # GCS has no bulk delete in the JSON API (batch requests aside, which emulators lack):
        # a few deletes in flight at once make a store of many small blobs go in reasonable time.
        with ThreadPoolExecutor(max_workers=_DELETE_WORKERS) as pool:
            for _ in pool.map(self.delete, self.list_keys()):
                pass

    # --- writing ------------------------------------------------------------------------------

    def _open_sink(self, key: str) -> BlobSink:
        return _GCSSink(self, key)

    def put_file(self, key: str, local_path: str) -> BlobInfo:
        """Upload a local file create-only, with our CRC32C in the object metadata.

        The library sends it in one request or as a resumable upload with a known size, reading the
        file chunk by chunk; checksumming it first lets GCS itself reject a mismatch (for example
        a file modified during the upload).
        """
        check_key(key)
        with open(local_path, "rb") as source:
            checksum = RunningChecksum()
            while chunk := source.read(CHUNK_SIZE):
                checksum.update(chunk)
        info = BlobInfo(checksum.size, checksum.hexdigest())
        blob = self._media_blob(key, chunked=True)
        blob.crc32c = crc32c_base64(info.checksum)
        with self._translated("upload", self._describe(key), exists=_EXISTS_HINT, missing=_MISSING_BUCKET_HINT):
            try:
                blob.upload_from_filename(
                    local_path,
                    content_type=_CONTENT_TYPE,
                    if_generation_match=0,
                    checksum=None,
                    crc32c_checksum_value=crc32c_base64(info.checksum),
                    retry=self._retry,
                )
            except api_exceptions.PreconditionFailed:
                if self._holds(key, info):
                    return info
                raise
        self._check_stored(key, blob, info)
        return info

    def _upload_small(self, key: str, data: bytes, info: BlobInfo) -> None:
        """One multipart request, create-only, with our CRC32C in the metadata for GCS to check."""
        blob = self._media_blob(key)
        blob.crc32c = crc32c_base64(info.checksum)
        with self._translated("upload", self._describe(key), exists=_EXISTS_HINT, missing=_MISSING_BUCKET_HINT):
            try:
                blob.upload_from_file(
                    io.BytesIO(data),
                    size=len(data),
                    content_type=_CONTENT_TYPE,
                    if_generation_match=0,
                    checksum=None,
                    retry=self._retry,
                )
            except api_exceptions.PreconditionFailed:
                if self._holds(key, info):
                    return
                raise
        self._check_stored(key, blob, info)

    def _start_resumable(self, key: str) -> gcs_provider.FinalizeOnlyWriter:
        """A resumable upload of ``key``; nothing is sent until the first full chunk."""
        return gcs_provider.FinalizeOnlyWriter(
            self._media_blob(key),
            chunk_size=self._chunk_size,
            retry=self._retry,
            content_type=_CONTENT_TYPE,
            if_generation_match=0,
            checksum="crc32c",
        )

    def _holds(self, key: str, info: BlobInfo) -> bool:
        """True if ``key`` holds exactly ``info`` (a retried create meeting its own first attempt)."""
        with self._translated("check", self._describe(key)):
            blob = self._bucket.get_blob(self.object_name(key), retry=self._retry)
        return blob is not None and blob.size == info.size and blob.crc32c == crc32c_base64(info.checksum)

    def _check_stored(self, key: str, blob: Any, info: BlobInfo) -> None:
        """Compare what GCS stored (``blob``'s properties, after an upload) with what we sent.

        A mismatch means bytes changed between our checksum and the wire; the object is deleted so
        that nothing wrong stays behind, and the write fails.
        """
        if blob.size is None or blob.crc32c is None:
            with self._translated("check", self._describe(key)):
                blob.reload(retry=self._retry)
        expected = crc32c_base64(info.checksum)
        if blob.size != info.size or blob.crc32c != expected:
            self.delete(key)
            raise ChecksumMismatchError(
                f"{self._describe(key)}: GCS stored {blob.size} bytes with CRC32C {blob.crc32c}, but "
                f"{info.size} bytes with CRC32C {expected} were sent. The upload was removed; retry it "
                "(if the source is a local file, make sure nothing modifies it during the write)."
            )

    # --- reading ------------------------------------------------------------------------------

    def _open_source(self, key: str) -> BinaryIO:
        """Ranged reads of one chunk at a time, pinned to the generation found at open."""
        blob = self._media_blob(key)
        with self._translated("open", self._describe(key)):
            blob.reload(retry=self._retry)  # BlobNotFoundError now rather than at the first read
        reader = BlobReader(blob, chunk_size=self._chunk_size, retry=self._retry, raw_download=True)
        return cast(BinaryIO, _TranslatingReader(reader, self, key, int(blob.size or 0)))

    def get_file(
        self,
        key: str,
        local_path: str,
        expected: BlobInfo | None,
        *,
        executable: bool = False,
        allow_link: bool = False,
        what: str = "",
    ) -> None:
        """Download in one streamed request (resumed from its offset on retries), verify, rename.

        The library checks GCS's CRC32C of the whole object; we check the recorded size and
        checksum as the bytes land, before the temporary file is renamed into place.
        """
        check_key(key)
        blob = self._media_blob(key)
        temp = local_temp_path(local_path)
        mode = 0o755 if executable else 0o644
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            with os.fdopen(fd, "wb") as out:
                target = _ChecksummingFile(out)
                with self._translated("download", what or self._describe(key)):
                    blob.download_to_file(target, raw_download=True, checksum="crc32c", retry=self._retry)
            if expected is not None:
                verify(expected.size, expected.checksum, target.checksum, what or self._describe(key))
            os.replace(temp, local_path)
        except BaseException:
            try:
                os.unlink(temp)
            except OSError:
                pass
            raise

    # --- keys ---------------------------------------------------------------------------------

    def delete(self, key: str) -> None:
        check_key(key)
        with self._translated("delete", self._describe(key)):
            try:
                self._metadata_blob(key).delete(retry=self._retry)
            except api_exceptions.NotFound:
                pass  # already gone (possibly by our own first, retried, attempt)

    def exists(self, key: str) -> bool:
        check_key(key)
        with self._translated("check", self._describe(key)):
            return bool(self._metadata_blob(key).exists(retry=self._retry))

    def size(self, key: str) -> int | None:
        check_key(key)
        with self._translated("check the size of", self._describe(key)):
            blob = self._bucket.get_blob(self.object_name(key), retry=self._retry)
        return None if blob is None else int(blob.size)

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        """Keys under this store whose name starts with ``prefix`` (a plain string prefix)."""
        start = len(self._object_prefix)
        with self._translated("list", f"{self.url}/{prefix}", missing=_MISSING_BUCKET_HINT):
            pages = self._client.list_blobs(
                self.bucket_name,
                prefix=self._object_prefix + prefix,
                fields="items(name),nextPageToken",
                page_size=LIST_PAGE_SIZE,
                retry=self._retry,
            )
            for blob in pages:
                yield blob.name[start:]

    # --- sharing ------------------------------------------------------------------------------

    def public_url(self, key: str, expires_in: int) -> str:
        """A V4 signed GET URL, valid ``expires_in`` seconds, when our credentials can sign.

        Service-account keys sign locally; other Google credentials that know their service
        account (GCE, workload identity) sign through the IAM signBlob API. Anonymous credentials
        (the emulator) cannot sign, and objects under a customer key cannot be fetched without that
        key: both raise PublicURLError rather than hand out a URL that does not work.
        """
        check_key(key)
        if not 0 < expires_in <= MAX_SIGNED_URL_SECONDS:
            raise PublicURLError(
                f"A GCS signed URL can live 1 to {MAX_SIGNED_URL_SECONDS} seconds (7 days); {expires_in} was asked for."
            )
        if self.encrypted:
            raise PublicURLError(
                f"{self._describe(key)} is encrypted with a customer-supplied key; GCS serves it only "
                "to requests that carry the key, so a URL alone cannot give access. Export the file "
                "instead (export_file), or use a store without Config.sseKey."
            )
        from google.auth.credentials import AnonymousCredentials, Signing

        credentials = self._credentials
        signing: dict[str, Any] = {}
        if credentials is None or isinstance(credentials, AnonymousCredentials):
            raise PublicURLError(
                f"Cannot sign a URL for {self._describe(key)}: this store uses anonymous credentials"
                f"{' (STORAGE_EMULATOR_HOST is set)' if self.emulated else ''}. Signed URLs need a "
                "service-account key file (Config.googleCredentials) or service-account credentials "
                "allowed to call IAM signBlob (roles/iam.serviceAccountTokenCreator)."
            )
        if not isinstance(credentials, Signing):
            email = getattr(credentials, "service_account_email", None)
            if not email or email == "default":
                with self._translated("refresh the credentials for", self._describe(key)):
                    _refresh(credentials)
                email = getattr(credentials, "service_account_email", None)
            if not email or email == "default":
                raise PublicURLError(
                    f"Cannot sign a URL for {self._describe(key)}: the credentials in use "
                    f"({type(credentials).__name__}) belong to no service account. Use a "
                    "service-account key file (Config.googleCredentials) or run as a service account."
                )
            with self._translated("refresh the credentials for", self._describe(key)):
                if not credentials.valid:
                    _refresh(credentials)
            signing = {"service_account_email": email, "access_token": credentials.token}
        with self._translated("sign a URL for", self._describe(key)):
            url = self._metadata_blob(key).generate_signed_url(
                version="v4",
                expiration=datetime.timedelta(seconds=expires_in),
                method="GET",
                credentials=credentials if not signing else None,
                **signing,
            )
        return str(url)

    def _describe(self, key: str) -> str:
        return f"gs://{self.bucket_name}/{self.object_name(key)}"

    # --- same-backend fast path ---------------------------------------------------------------

    def import_from_url(self, url: str, key: str) -> ImportedBlob | None:
        """Server-side copy of ``gs://BUCKET/NAME`` into this store (the rewrite API).

        The URL is read with this store's client, so the copy never leaves GCS (or the emulator).
        The source generation seen first is pinned (``ifSourceGenerationMatch``) and the new object
        is created only if nothing is at the key (``ifGenerationMatch=0``); a large or
        cross-location copy takes several rewrite calls, each resuming with the token of the last.
        GCS keeps a CRC32C for every object, so the checksum is recorded without reading a byte, and
        the copy's size and CRC32C are compared with the source's. A customer key on the store
        applies to the new object as for every other write.

        Returns None for other schemes and for sources whose metadata cannot be read (the streamed
        path then reports the error with the URL's own vocabulary).
        """
        source = _gcs_object_of(url)
        if source is None:
            return None
        bucket_name, name = source
        try:
            found = self._client.bucket(bucket_name).get_blob(name, retry=self._retry)
        except Exception as error:
            if gcs_provider.translate_gcs_error(error, "check", url, self.endpoint) is None:
                raise
            return None
        if found is None or found.crc32c is None or found.size is None:
            return None
        pinned = self._client.bucket(bucket_name).blob(name, generation=found.generation)
        target = self._media_blob(key)
        where = f"copy {url} into {self._describe(key)}"
        try:
            try:
                with self._translated(where, self._describe(key), exists=_EXISTS_HINT):
                    token, _, _ = target.rewrite(
                        pinned, if_generation_match=0, if_source_generation_match=found.generation, retry=self._retry
                    )
                    while token is not None:
                        token, _, _ = target.rewrite(
                            pinned,
                            token=token,
                            if_generation_match=0,
                            if_source_generation_match=found.generation,
                            retry=self._retry,
                        )
            except BlobExistsError as error:
                if not self._source_changed(pinned, found.generation):
                    raise
                raise TransferIntegrityError(
                    f"{url} changed while it was being copied into {self._describe(key)}; nothing was "
                    "stored. Import it again."
                ) from error
            if target.size != found.size or target.crc32c != found.crc32c:
                raise ChecksumMismatchError(
                    f"{self._describe(key)}: the copy of {url} has {target.size} bytes with CRC32C "
                    f"{target.crc32c}, but the source has {found.size} bytes with CRC32C {found.crc32c}. "
                    "Nothing was stored; import it again."
                )
        except BaseException:
            try:
                self.delete(key)
            except BlobStoreError:
                pass  # garbage collection removes it
            raise
        digest = int.from_bytes(base64.b64decode(found.crc32c), "big")
        return ImportedBlob(int(found.size), format_checksum(digest))

    def _source_changed(self, pinned: Any, generation: int) -> bool:
        """True if the pinned source generation is gone (replaced or deleted) since the copy began."""
        try:
            current = self._client.bucket(pinned.bucket.name).get_blob(pinned.name, retry=self._retry)
        except Exception:
            return False
        return current is None or current.generation != generation


# --- streaming writes ------------------------------------------------------------------------------


class _GCSSink(BlobSink):
    """Collects up to one chunk; beyond that, streams through a resumable upload session."""

    def __init__(self, store: GCSBlobStore, key: str) -> None:
        self._store = store
        self._key = key
        self._pending = bytearray()
        self._writer: gcs_provider.FinalizeOnlyWriter | None = None

    def write(self, data: bytes | bytearray) -> None:
        store = self._store
        if self._writer is None:
            self._pending += data
            if len(self._pending) <= store._chunk_size:
                return
            self._writer = store._start_resumable(self._key)
            data, self._pending = self._pending, bytearray()  # handed over without a copy
        view = memoryview(data)
        with store._translated("upload", store._describe(self._key), missing=_LOST_SESSION_HINT):
            # Slices of one chunk keep the writer's buffer at about one chunk whatever the caller
            # hands us at once.
            for start in range(0, len(view), store._chunk_size):
                self._writer.write(view[start : start + store._chunk_size])

    def commit(self, info: BlobInfo) -> None:
        store = self._store
        if self._writer is None:
            data, self._pending = bytes(self._pending), bytearray()
            store._upload_small(self._key, data, info)
            return
        writer, self._writer = self._writer, None
        with store._translated("upload", store._describe(self._key), exists=_EXISTS_HINT, missing=_LOST_SESSION_HINT):
            writer.finalize()
        # BlobWriter does not keep the final response: read back what GCS stored.
        store._check_stored(self._key, store._metadata_blob(self._key), info)

    def abort(self) -> None:
        # Never finalized, the session leaves nothing at the key; no network call, so no failure.
        self._pending = bytearray()
        self._writer = None


# --- reading -----------------------------------------------------------------------------------


class _TranslatingReader(io.RawIOBase):
    """A BlobReader whose errors arrive as jobstore errors (the base class reads it lazily).

    It stops at the size found at open (the generation is pinned, so the size cannot change):
    BlobReader alone finds the end by asking for the range after it, a request that costs a round
    trip and that GCS answers with 416, after which the emulator closes the connection.
    """

    def __init__(self, reader: Any, store: GCSBlobStore, key: str, size: int) -> None:
        super().__init__()
        self._reader = reader
        self._store = store
        self._key = key
        self._remaining = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), self._remaining)
        if wanted == 0:
            return 0
        with self._store._translated("read", self._store._describe(self._key)):
            data: bytes = self._reader.read(wanted)
        view[: len(data)] = data
        self._remaining -= len(data)
        return len(data)

    def close(self) -> None:
        try:
            self._reader.close()
        finally:
            super().close()


class _ChecksummingFile:
    """A write-only file that checksums what the library downloads into it."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.checksum = RunningChecksum()

    def write(self, data: bytes) -> int:
        chunk = bytes(data)
        self.checksum.update(chunk)
        return self._out.write(chunk)


# --- names and settings (the client's are in jobstore.providers.gcs) ------------------------------


def _gcs_object_of(url: str) -> tuple[str, str] | None:
    """(bucket, name) of a ``gs://BUCKET/NAME`` URL naming an object (taken literally, as gsutil
    does), or None for anything else (the streamed path reports what is wrong)."""
    if not url.lower().startswith("gs://"):
        return None
    bucket, _, name = url[len("gs://") :].partition("/")
    if not bucket or not name or name.endswith("/"):
        return None
    return bucket, name


def _customer_key_setting(config: Config) -> bytes | None:
    if is_kms_alias(config.sseKey):
        raise EncryptionKeyError(
            f"Config.sseKey={config.sseKey!r} names an AWS KMS key, which Google Cloud Storage "
            "cannot use. For GCS give a 32-byte customer-supplied key (Config.sseKey or sseKeyFile), "
            "or none."
        )
    return config.customer_key()


def _refresh(credentials: Any) -> None:
    from google.auth.transport.requests import Request

    credentials.refresh(Request())


# --- advice in messages ------------------------------------------------------------------------

_EXISTS_HINT = (
    "an object already exists there and writes are create-only. Keys are never reused, so another "
    "writer (or a copy of this store) wrote it; run `jobstore fsck` if this repeats."
)
_LOST_SESSION_HINT = (
    "the bucket is gone or the resumable upload session expired; check that the store still "
    "exists (create() it again if it was deleted), then retry the write."
)
_MISSING_BUCKET_HINT = "the bucket does not exist; create the store first (initialize / create())."
