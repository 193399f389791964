"""Google Cloud Storage blob store: ``gs://BUCKET`` or ``gs://BUCKET/PREFIX``.

Blobs live at ``PREFIX/KEY`` in the bucket. Everything that talks to google-cloud-storage is in
this module, and every provider exception is turned into a ``jobstore.errors`` exception by one
function, :func:`translate_gcs_error`.

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
import http.client
import io
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from typing import Any, BinaryIO, cast
from urllib.parse import urlsplit

from google.api_core import exceptions as api_exceptions
from google.cloud import storage
from google.cloud.storage.fileio import BlobReader, BlobWriter
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
    BlobNotFoundError,
    BlobStorageFullError,
    BlobStoreError,
    ChecksumMismatchError,
    EncryptionKeyError,
    InvalidLocatorError,
    JobStoreError,
    PublicURLError,
    TransferIntegrityError,
)
from jobstore.locator import validate_gcs_bucket, validate_prefix

#: GCS requires resumable-upload chunks to be multiples of this.
CHUNK_GRANULARITY = 256 * 1024
#: Default chunk for resumable uploads and ranged reads: few requests, modest memory.
DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024
#: Default retry budget in seconds (google-api-core's own default).
DEFAULT_RETRY_TIMEOUT = 120.0
#: Longest lifetime of a V4 signed URL that GCS accepts (7 days).
MAX_SIGNED_URL_SECONDS = 7 * 24 * 3600
EMULATOR_ENV_VAR = "STORAGE_EMULATOR_HOST"
_SCOPES = ("https://www.googleapis.com/auth/devstorage.read_write",)
_CONTENT_TYPE = "application/octet-stream"
_PUBLIC_ENDPOINT = "https://storage.googleapis.com"
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
        self._chunk_size = _chunk_size_setting(config)
        retry_timeout = float(getattr(config, "googleRetryTimeout", None) or DEFAULT_RETRY_TIMEOUT)
        self.retry_timeout = retry_timeout
        self._retry = DEFAULT_RETRY.with_timeout(retry_timeout)
        self._region: str | None = getattr(config, "googleRegion", None)
        self._customer_key = _customer_key_setting(config)
        self.encrypted = self._customer_key is not None
        self.emulated = bool(os.environ.get(EMULATOR_ENV_VAR))
        if client is None:
            with _translated("connect to", self.url, _endpoint()):
                client, credentials = _make_client(config, credentials)
        self._client = client
        self._credentials = credentials if credentials is not None else getattr(client, "_credentials", None)
        self._bucket = client.bucket(bucket)
        self.endpoint = _endpoint()

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
        return _translated(action, target, self.endpoint, retry_timeout=self.retry_timeout, **hints)

    # --- the container ------------------------------------------------------------------------

    def create(self) -> None:
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

    def destroy(self) -> None:
        """Delete every object under this store's prefix; objects outside it are never touched.

        The bucket itself stays (it may hold other stores, and may not be ours to delete); a store
        without a prefix therefore empties the whole bucket.
        """
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

    def _start_resumable(self, key: str) -> _ResumableWriter:
        """A resumable upload of ``key``; nothing is sent until the first full chunk."""
        return _ResumableWriter(
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
            if translate_gcs_error(error, "check", url, self.endpoint) is None:
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


class _ResumableWriter(BlobWriter):  # type: ignore[misc]
    """The library's resumable writer, changed so that only ``finalize()`` can complete the upload.

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


#: Public name of the writer that only ``finalize()`` completes, for URL exports to gs://.
FinalizeOnlyWriter = _ResumableWriter


class _GCSSink(BlobSink):
    """Collects up to one chunk; beyond that, streams through a resumable upload session."""

    def __init__(self, store: GCSBlobStore, key: str) -> None:
        self._store = store
        self._key = key
        self._pending = bytearray()
        self._writer: _ResumableWriter | None = None

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


# --- client and settings ----------------------------------------------------------------------


def client_for(config: Config) -> Any:
    """A storage client for any object (URL import/export), made from ``config`` as a store's is
    (the emulator from STORAGE_EMULATOR_HOST, Config.googleCredentials, or application defaults)."""
    with _translated("connect to", "Google Cloud Storage", _endpoint()):
        return _make_client(config)[0]


def retry_for(config: Config) -> Any:
    """The google-api-core Retry a store on ``config`` uses (bounded by Config.googleRetryTimeout)."""
    return DEFAULT_RETRY.with_timeout(float(getattr(config, "googleRetryTimeout", None) or DEFAULT_RETRY_TIMEOUT))


def chunk_size_for(config: Config) -> int:
    """The resumable-upload chunk a store on ``config`` uses (Config.googleChunkSize, validated)."""
    return _chunk_size_setting(config)


def _gcs_object_of(url: str) -> tuple[str, str] | None:
    """(bucket, name) of a ``gs://BUCKET/NAME`` URL naming an object (taken literally, as gsutil
    does), or None for anything else (the streamed path reports what is wrong)."""
    if not url.lower().startswith("gs://"):
        return None
    bucket, _, name = url[len("gs://") :].partition("/")
    if not bucket or not name or name.endswith("/"):
        return None
    return bucket, name


def _endpoint() -> str:
    return os.environ.get(EMULATOR_ENV_VAR) or _PUBLIC_ENDPOINT


def _make_client(config: Config, credentials: Any = None) -> tuple[Any, Any]:
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


def _refresh(credentials: Any) -> None:
    from google.auth.transport.requests import Request

    credentials.refresh(Request())


def _chunk_size_setting(config: Config) -> int:
    value = getattr(config, "googleChunkSize", None) or DEFAULT_CHUNK_SIZE
    if not isinstance(value, int) or value <= 0 or value % CHUNK_GRANULARITY:
        raise InvalidLocatorError(
            f"Config.googleChunkSize={value!r} is not usable: GCS resumable uploads need a positive "
            f"multiple of {CHUNK_GRANULARITY} bytes (256 KiB); the default is {DEFAULT_CHUNK_SIZE}."
        )
    return value


def _customer_key_setting(config: Config) -> bytes | None:
    if is_kms_alias(config.sseKey):
        raise EncryptionKeyError(
            f"Config.sseKey={config.sseKey!r} names an AWS KMS key, which Google Cloud Storage "
            "cannot use. For GCS give a 32-byte customer-supplied key (Config.sseKey or sseKeyFile), "
            "or none."
        )
    return config.customer_key()


# --- the one place where provider errors become ours --------------------------------------------

_EXISTS_HINT = (
    "an object already exists there and writes are create-only. Keys are never reused, so another "
    "writer (or a copy of this store) wrote it; run `jobstore fsck` if this repeats."
)
_LOST_SESSION_HINT = (
    "the bucket is gone or the resumable upload session expired; check that the store still "
    "exists (create() it again if it was deleted), then retry the write."
)
_MISSING_BUCKET_HINT = "the bucket does not exist; create the store first (initialize / create())."


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
def _translated(
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
        translated = translate_gcs_error(
            error, action, target, endpoint, retry_timeout=retry_timeout, missing=missing, exists=exists
        )
        if translated is None:
            raise
        raise translated from error
