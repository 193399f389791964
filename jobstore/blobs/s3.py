"""Blobs in an S3 bucket (AWS or any S3-compatible server), under ``s3://BUCKET/PREFIX``.

Why it looks the way it does:

* **Create-only everywhere.** Blob keys are never reused, so every write carries
  ``If-None-Match: *``: a single ``PutObject`` and ``CompleteMultipartUpload`` alike. The header is
  added by a botocore event hook on this store's own client, not by each call site, because
  boto3's transfer manager (``put_file``) does not accept ``IfNoneMatch`` among its ``ExtraArgs``;
  the hook covers its ``PutObject`` and ``CompleteMultipartUpload`` calls too. A conflict is a
  ``BlobExistsError``.
* **Bounded memory.** ``open_write`` streams: bytes are cut into parts (8 MiB by default) that are
  uploaded by a few threads while the caller keeps writing; at most ``concurrency`` parts are in
  flight plus one being filled, whatever the file size. A blob of at most one part is sent with a
  single ``PutObject`` carrying its CRC32C, which S3 checks against the bytes it received.
* **Nothing half-written.** A failed or aborted writer aborts its multipart upload, so neither an
  object nor a pending upload (which S3 would bill for) is left behind. ``destroy`` also aborts
  pending uploads under the prefix.
* **One translation of provider errors** (:func:`jobstore.providers.s3.translate_s3_error`, shared
  with ``s3://`` URLs), so the store layer only ever sees ``jobstore.errors`` and every message says
  what to check.
* **Retries are botocore's** (retry mode ``standard``), not a loop of ours; the client is made by
  :func:`jobstore.providers.s3.make_client` from the settings below.

Optional Config attributes (besides ``awsRegion``, ``awsEndpointURL``, ``awsCredentials``,
``sseKey`` / ``sseKeyFile``): ``s3PartSize`` (bytes, at least 5 MiB), ``s3Concurrency`` (parts in
flight per write) and ``awsMaxAttempts`` (botocore's attempts per request, retries included).
"""

from __future__ import annotations

import errno
import io
import logging
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Any, BinaryIO, cast
from urllib.parse import urlsplit

from boto3.s3.transfer import TransferConfig, create_transfer_manager
from botocore import exceptions as botocore_errors

from jobstore.blobs.base import (
    CHUNK_SIZE,
    BlobInfo,
    BlobSink,
    BlobStore,
    ImportedBlob,
    check_key,
    local_temp_path,
)
from jobstore.blobs.checksum import (
    RunningChecksum,
    checksum_of_bytes,
    crc32c_base64,
    format_checksum,
    verify,
)
from jobstore.config import Config
from jobstore.encryption import is_kms_alias
from jobstore.errors import (
    BlobNotFoundError,
    BlobStoreError,
    InvalidLocatorError,
    JobStoreError,
    PublicURLError,
    TransferIntegrityError,
)
from jobstore.locator import validate_prefix, validate_s3_bucket
from jobstore.providers.s3 import (
    MAX_PART_SIZE,
    MAX_PARTS,
    MIB,
    PRECONDITION_CODES,
    PROVIDER_ERRORS,
    concurrency_setting,
    crc_from_base64,
    endpoint_setting,
    make_client,
    max_attempts_setting,
    part_size_setting,
    region_setting,
    translate_s3_error,
)
from jobstore.redact import redact_url

log = logging.getLogger(__name__)

#: SigV4 presigned URLs are valid for at most seven days.
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
#: Streaming writes double the part size every this many parts, so a stream of unknown length
#: (up to terabytes) never runs into S3's 10,000-part limit.
PARTS_PER_SIZE_STEP = 1000


# --- the store ----------------------------------------------------------------------------------


class S3BlobStore(BlobStore):
    """Blobs at ``PREFIX/KEY`` in an S3 bucket, written create-only and streamed both ways."""

    #: Keys per ListObjectsV2 page (S3's maximum is 1000); tests lower it to exercise paging.
    list_page_size = 1000
    #: Keys per DeleteObjects request (S3's maximum is 1000).
    delete_batch_size = 1000

    def __init__(
        self,
        bucket: str,
        prefix: str,
        config: Config,
        *,
        part_size: int | None = None,
        concurrency: int | None = None,
        max_attempts: int | None = None,
    ) -> None:
        """Describe the store; no network call happens until it is used.

        ``part_size``, ``concurrency`` and ``max_attempts`` default to the Config attributes
        ``s3PartSize``, ``s3Concurrency`` and ``awsMaxAttempts``, then to the module defaults.
        """
        url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        validate_s3_bucket(bucket, url)
        self.bucket = bucket
        self.prefix = validate_prefix(prefix, url)
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.part_size = part_size_setting(config, part_size)
        self.concurrency = concurrency_setting(config, concurrency)
        self.max_attempts = max_attempts_setting(config, max_attempts)
        self.region = region_setting(config)
        self.endpoint_url = endpoint_setting(config)
        self._credentials_file = config.awsCredentials

        customer_key = config.customer_key()
        kms_key = _kms_key(config)
        #: Sent on every request that touches object bytes (GET, HEAD, UploadPart, Complete).
        self._sse_c: dict[str, Any] = (
            {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": customer_key} if customer_key else {}
        )
        #: Sent when an object is created (PutObject, CreateMultipartUpload).
        self._sse_create: dict[str, Any] = dict(self._sse_c)
        if kms_key and not customer_key:
            self._sse_create = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key}
        self.encrypted = bool(customer_key or kms_key)

        self._client_lock = threading.Lock()
        self._client_instance: Any = None

    @classmethod
    def from_url(cls, url: str, config: Config) -> S3BlobStore:
        """The store at ``s3://BUCKET`` or ``s3://BUCKET/PREFIX`` (checked before any network call)."""
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise InvalidLocatorError(f"{url!r} is not an S3 URL; expected s3://BUCKET or s3://BUCKET/PREFIX.")
        if parts.query or parts.fragment or "@" in parts.netloc or ":" in parts.netloc:
            raise InvalidLocatorError(
                f"{redact_url(url)!r} has a query, fragment, user or port; expected s3://BUCKET/PREFIX "
                "(set the endpoint with Config.awsEndpointURL)."
            )
        return cls(parts.netloc, parts.path.lstrip("/"), config)

    def __repr__(self) -> str:
        return f"S3BlobStore({self.url!r}, endpoint={self.endpoint_url!r}, encrypted={self.encrypted})"

    # --- the client -------------------------------------------------------------------------------

    @property
    def _client(self) -> Any:
        """The boto3 client, made on first use (boto3 clients are thread-safe; sessions are not)."""
        if self._client_instance is None:
            with self._client_lock:
                if self._client_instance is None:
                    self._client_instance = self._make_client()
        return self._client_instance

    def _make_client(self, *, create_only: bool = True) -> Any:
        """A client with this store's credentials, endpoint and retries; ``create_only`` adds the
        If-None-Match hook that blob writes need."""
        return make_client(
            region=self.region,
            endpoint_url=self.endpoint_url,
            credentials_file=self._credentials_file,
            max_attempts=self.max_attempts,
            concurrency=self.concurrency,
            create_only=create_only,
        )

    def _full_key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _location(self, key: str | None = None) -> str:
        return f"s3://{self.bucket}/{self._full_key(key)}" if key else self.url

    @contextmanager
    def _translated(self, action: str, key: str | None = None) -> Iterator[None]:
        """Turn provider errors raised inside the block into jobstore errors."""
        try:
            yield
        except JobStoreError:
            raise
        except PROVIDER_ERRORS as error:
            raise translate_s3_error(
                error,
                action=action,
                location=self._location(key),
                endpoint=self.endpoint_url,
                customer_key=bool(self._sse_c),
            ) from error

    def _transfer_config(self, size: int | None = None) -> TransferConfig:
        chunk = self.part_size
        if size is not None:
            # Grow parts for huge files so they fit in S3's 10,000 parts (with some room to spare).
            chunk = min(MAX_PART_SIZE, max(chunk, -(-size // (MAX_PARTS - 100))))
        config = TransferConfig(
            multipart_threshold=chunk,
            multipart_chunksize=chunk,
            max_concurrency=self.concurrency,
            num_download_attempts=self.max_attempts,
            # "classic" keeps the transfer on this client, so the create-only hook applies
            # (the CRT transfer client, if awscrt is installed, would bypass it).
            preferred_transfer_client="classic",
        )
        # Parts read from the stream and held in memory at once (s3transfer's default is 10).
        config.max_in_memory_upload_chunks = self.concurrency + 1
        return config

    # --- the container ----------------------------------------------------------------------------

    def create(self, owner: str | None = None) -> None:
        if self.container_exists():
            return
        arguments: dict[str, Any] = {"Bucket": self.bucket}
        if self.region != "us-east-1":
            arguments["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            with self._translated("create the bucket for"):
                self._client.create_bucket(**arguments)
        except BlobStoreError as error:
            cause = error.__cause__
            if isinstance(cause, botocore_errors.ClientError) and _error_code(cause) == "BucketAlreadyOwnedByYou":
                return  # created concurrently by another process of ours
            raise

    def container_exists(self) -> bool:
        try:
            with self._translated("look up the bucket of"):
                self._client.head_bucket(Bucket=self.bucket)
        except BlobNotFoundError:
            return False
        return True

    def destroy(self, *, final: bool = True) -> None:
        """Delete every object and abort every pending upload under this store's prefix.

        Only this prefix is touched (keys are listed with ``PREFIX/``), so stores sharing a bucket
        under other prefixes survive. The bucket itself is left in place: it may hold other stores
        and other people's data. A missing bucket means there is nothing to destroy.
        """
        del final  # a bucket prefix has no marker to keep
        try:
            batch: list[dict[str, str]] = []
            for full_key in self._list_full_keys(self._scope()):
                batch.append({"Key": full_key})
                if len(batch) == self.delete_batch_size:
                    self._delete_batch(batch)
                    batch = []
            if batch:
                self._delete_batch(batch)
            self._abort_pending_uploads()
        except BlobNotFoundError:
            if self.container_exists():
                raise

    def _scope(self) -> str:
        return f"{self.prefix}/" if self.prefix else ""

    def _delete_batch(self, batch: list[dict[str, str]]) -> None:
        with self._translated("delete objects under"):
            response = self._client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        failures = response.get("Errors") or []
        if failures:
            first = failures[0]
            raise BlobStoreError(
                f"Could not delete {len(failures)} objects under {self.url}; the first, "
                f"{first.get('Key')!r}, failed with {first.get('Code')}: {first.get('Message')}. "
                "Check that the credentials may delete objects (s3:DeleteObject), then destroy again."
            )

    def remove_stale_uploads(self, older_than: float) -> int:
        """Abort multipart uploads under this prefix begun before ``older_than`` (a Unix time)."""
        return self._abort_pending_uploads(older_than)

    def _abort_pending_uploads(self, older_than: float | None = None) -> int:
        aborted = 0
        with self._translated("list pending uploads under"):
            paginator = self._client.get_paginator("list_multipart_uploads")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._scope()):
                for upload in page.get("Uploads") or []:
                    if older_than is not None and upload["Initiated"].timestamp() >= older_than:
                        continue  # possibly a live writer's upload
                    aborted += 1
                    try:
                        self._client.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                    except botocore_errors.ClientError as error:
                        if _error_code(error) != "NoSuchUpload":  # finished or aborted meanwhile
                            raise
        return aborted

    # --- keys ---------------------------------------------------------------------------------------

    def _list_full_keys(self, scope: str) -> Iterator[str]:
        with self._translated("list"):
            paginator = self._client.get_paginator("list_objects_v2")
            pages = paginator.paginate(
                Bucket=self.bucket, Prefix=scope, PaginationConfig={"PageSize": self.list_page_size}
            )
            for page in pages:
                for entry in page.get("Contents") or []:
                    yield entry["Key"]

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        """Keys under this store whose names start with ``prefix`` (a plain string prefix)."""
        scope = self._scope()
        for full_key in self._list_full_keys(scope + prefix):
            yield full_key[len(scope) :]

    def delete(self, key: str) -> None:
        check_key(key)
        try:
            with self._translated("delete", key):
                self._client.delete_object(Bucket=self.bucket, Key=self._full_key(key))
        except BlobNotFoundError:
            pass  # no bucket, no object: deleting is idempotent

    def _head(self, key: str) -> dict[str, Any] | None:
        check_key(key)
        try:
            with self._translated("check", key):
                response: dict[str, Any] = self._client.head_object(
                    Bucket=self.bucket, Key=self._full_key(key), **self._sse_c
                )
        except BlobNotFoundError:
            return None
        return response

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def size(self, key: str) -> int | None:
        head = self._head(key)
        return None if head is None else int(head["ContentLength"])

    def public_url(self, key: str, expires_in: int) -> str:
        """A presigned (SigV4) GET URL, valid ``expires_in`` seconds (at most seven days)."""
        check_key(key)
        if self._sse_c:
            raise PublicURLError(
                f"No public URL can be made for {self._location(key)}: it is encrypted with a customer "
                "key (SSE-C), and S3 serves such objects only to requests that send the key in headers, "
                "which a plain URL cannot carry. Read it through jobstore instead, or use a store "
                "without SSE-C (or with SSE-KMS) for files that must be shared by URL."
            )
        if not 1 <= expires_in <= MAX_PRESIGN_SECONDS:
            raise PublicURLError(
                f"A presigned S3 URL must expire within 1 to {MAX_PRESIGN_SECONDS} seconds (seven days); "
                f"{expires_in} was asked for."
            )
        try:
            with self._translated("make a presigned URL for", key):
                url: str = self._client.generate_presigned_url(
                    "get_object",
                    Params={"Bucket": self.bucket, "Key": self._full_key(key)},
                    ExpiresIn=expires_in,
                )
        except BlobStoreError as error:
            raise PublicURLError(f"{error} A presigned URL is signed with the store's credentials.") from error
        return url

    # --- writing ------------------------------------------------------------------------------------

    def _open_sink(self, key: str) -> BlobSink:
        return _S3Sink(self, key)

    def put_file(self, key: str, local_path: str) -> BlobInfo:
        """Upload a local file with boto3's transfer manager (parallel parts), create-only.

        The file is handed to the transfer manager as a non-seekable stream that computes size and
        CRC32C as s3transfer reads it; s3transfer reads a non-seekable stream exactly once, in
        order, and retries from its in-memory copy of each part, so the checksum costs no extra
        pass over the file. ``IfNoneMatch`` is not an allowed ExtraArg of s3transfer, so the
        client's create-only hook adds it to the PutObject / CompleteMultipartUpload it sends.
        On failure s3transfer aborts its multipart upload.
        """
        check_key(key)
        with open(local_path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size < self.part_size:
                # One part's worth: a single PutObject (with the CRC32C S3 verifies) costs a third of
                # the transfer manager's set-up for the many small files workflows write.
                data = handle.read(self.part_size)
                info = BlobInfo(len(data), checksum_of_bytes(data))
                self._put_object(key, data, info)
                return info
            reader = _ChecksummingReader(handle)
            with (
                self._translated("write", key),
                create_transfer_manager(self._client, self._transfer_config(size)) as manager,
            ):
                manager.upload(reader, self.bucket, self._full_key(key), extra_args=dict(self._sse_create)).result()
        return BlobInfo(reader.checksum.size, reader.checksum.hexdigest())

    def _put_object(self, key: str, data: bytes, info: BlobInfo) -> None:
        """One create-only PutObject, with the CRC32C S3 checks against what it received."""
        with self._translated("write", key):
            self._client.put_object(
                Bucket=self.bucket,
                Key=self._full_key(key),
                Body=data,
                IfNoneMatch="*",
                ChecksumCRC32C=crc32c_base64(info.checksum),
                **self._sse_create,
            )

    def _start_multipart(self, key: str) -> str:
        with self._translated("start a multipart upload of", key):
            response = self._client.create_multipart_upload(
                Bucket=self.bucket, Key=self._full_key(key), **self._sse_create
            )
        return str(response["UploadId"])

    def _upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> dict[str, Any]:
        """Upload one part (runs in a writer's thread pool); errors are translated by the caller."""
        response = self._client.upload_part(
            Bucket=self.bucket,
            Key=self._full_key(key),
            UploadId=upload_id,
            PartNumber=number,
            Body=data,
            **self._sse_c,
        )
        return {"PartNumber": number, "ETag": response["ETag"]}

    def _complete_multipart(self, key: str, upload_id: str, parts: list[dict[str, Any]]) -> None:
        with self._translated("write", key):
            self._client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self._full_key(key),
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                IfNoneMatch="*",
                **self._sse_c,
            )

    def _abort_multipart(self, key: str, upload_id: str) -> None:
        """Abort a multipart upload; a failure is logged (``abort`` must not raise)."""
        try:
            with self._translated("abort the multipart upload of", key):
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=self._full_key(key), UploadId=upload_id)
        except BlobNotFoundError:
            pass
        except BlobStoreError as error:
            if _error_code(error.__cause__) == "NoSuchUpload":
                return
            log.warning("%s The pending upload is removed by the next `destroy` or a lifecycle rule.", error)

    # --- reading ------------------------------------------------------------------------------------

    def _open_source(self, key: str) -> BinaryIO:
        with self._translated("read", key):
            response = self._client.get_object(Bucket=self.bucket, Key=self._full_key(key), **self._sse_c)
        return cast(BinaryIO, _S3ObjectReader(response["Body"], self, key))

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
        """Download with the transfer manager (parallel ranged GETs) to a temp file, verify, rename.

        Parts arrive out of order, so size and CRC32C are checked in a second pass over the local
        temp file (fast: it is in the page cache) before the rename makes it visible.
        """
        check_key(key)
        temp = local_temp_path(local_path)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o755 if executable else 0o644)
        try:
            with os.fdopen(fd, "wb") as out:
                with (
                    self._translated("download", key),
                    create_transfer_manager(self._client, self._transfer_config()) as manager,
                ):
                    manager.download(self.bucket, self._full_key(key), out, extra_args=dict(self._sse_c)).result()
            if expected is not None:
                _verify_local_file(temp, expected, what or self._location(key))
            os.replace(temp, local_path)
        except BaseException:
            try:
                os.unlink(temp)
            except OSError as error:
                if error.errno != errno.ENOENT:
                    log.warning("Could not remove the temporary file %s: %s", temp, error)
            raise

    # --- same-backend fast path -----------------------------------------------------------------

    #: Objects above this size are copied part by part (UploadPartCopy): one CopyObject copies at
    #: most 5 GiB. Tests lower it (with ``copy_part_size``) to exercise the multipart copy.
    copy_part_threshold = MAX_PART_SIZE
    #: Size of each UploadPartCopy range (grown so that an object fits in 10,000 parts).
    copy_part_size = 1024 * MIB

    def import_from_url(self, url: str, key: str) -> ImportedBlob | None:
        """Server-side copy of ``s3://BUCKET/KEY`` into this store (CopyObject / UploadPartCopy).

        The URL is read with this store's client, so source and destination are always on the same
        endpoint with the same credentials: the bytes never leave the server. Not applicable (None)
        to other schemes, to stores with a customer key (SSE-C: the source would have to be read
        with a key it was not written with) and to sources that cannot be inspected (HEAD fails:
        the streamed path then reports the error with the URL's own vocabulary).

        The copy is pinned to the ETag seen by the HEAD (``CopySourceIfMatch``), so the size we
        record is the size of what was copied. The CRC32C comes, cheapest first, from the copy's
        response (S3 computes it when asked with ``ChecksumAlgorithm=CRC32C``), from the source's
        full-object CRC32C (objects jobstore wrote carry one), from the per-part CRC32Cs of a
        multipart copy combined arithmetically, and only failing all that from reading the new
        object once (SeaweedFS ignores ``ChecksumAlgorithm`` on CopyObject, so a copy of an object
        written without a CRC32C costs one read there).
        """
        source = _s3_object_of(url)
        if source is None or self._sse_c:
            return None
        bucket, source_key = source
        try:
            head = self._client.head_object(Bucket=bucket, Key=source_key, ChecksumMode="ENABLED")
        except PROVIDER_ERRORS:
            return None
        size = int(head["ContentLength"])
        copy_source = {"Bucket": bucket, "Key": source_key}
        etag = str(head["ETag"])
        try:
            if size > self.copy_part_threshold:
                checksum = self._copy_in_parts(key, copy_source, etag, size, url)
            else:
                checksum = self._copy_whole(key, copy_source, etag, url)
            checksum = checksum or _full_object_crc32c(head)
            if checksum is None:
                checksum = self._read_checksum(key, size)
        except BaseException:
            self._delete_quietly(key)
            raise
        return ImportedBlob(size, checksum)

    def _copy_whole(self, key: str, copy_source: dict[str, str], etag: str, url: str) -> str | None:
        """One CopyObject; the new object's CRC32C if the server reports one."""
        with self._copy_translated(key, url):
            response = self._client.copy_object(
                Bucket=self.bucket,
                Key=self._full_key(key),
                CopySource=copy_source,
                CopySourceIfMatch=etag,
                ChecksumAlgorithm="CRC32C",
                **self._sse_create,
            )
        return _full_object_crc32c(response.get("CopyObjectResult") or {})

    def _copy_in_parts(self, key: str, copy_source: dict[str, str], etag: str, size: int, url: str) -> str | None:
        """A multipart upload whose parts are UploadPartCopy ranges, a few in flight at once.

        Returns the whole object's CRC32C combined from the parts' CRC32Cs, or None if the server
        did not report them all.
        """
        part_size = min(MAX_PART_SIZE, max(self.copy_part_size, -(-size // MAX_PARTS)))
        ranges = [(start, min(start + part_size, size) - 1) for start in range(0, size, part_size)]
        with self._translated("start a multipart copy into", key):
            upload_id = str(
                self._client.create_multipart_upload(
                    Bucket=self.bucket, Key=self._full_key(key), ChecksumAlgorithm="CRC32C", **self._sse_create
                )["UploadId"]
            )

        def copy_part(number: int, first: int, last: int) -> dict[str, Any]:
            result = self._client.upload_part_copy(
                Bucket=self.bucket,
                Key=self._full_key(key),
                UploadId=upload_id,
                PartNumber=number,
                CopySource=copy_source,
                CopySourceIfMatch=etag,
                CopySourceRange=f"bytes={first}-{last}",
            )["CopyPartResult"]
            part = {"PartNumber": number, "ETag": result["ETag"]}
            if result.get("ChecksumCRC32C"):
                part["ChecksumCRC32C"] = result["ChecksumCRC32C"]
            return part

        try:
            with (
                self._copy_translated(key, url),
                ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="jobstore-s3-copy") as pool,
            ):
                futures = [pool.submit(copy_part, n, first, last) for n, (first, last) in enumerate(ranges, 1)]
                parts = [future.result() for future in futures]
            self._complete_multipart(key, upload_id, parts)
        except BaseException:
            self._abort_multipart(key, upload_id)
            raise
        if not all("ChecksumCRC32C" in part for part in parts):
            return None
        crc = 0
        for part, (first, last) in zip(parts, ranges, strict=True):
            crc = crc32c_combine(crc, crc_from_base64(part["ChecksumCRC32C"]), last - first + 1)
        return format_checksum(crc)

    @contextmanager
    def _copy_translated(self, key: str, url: str) -> Iterator[None]:
        """Like ``_translated``, but a failed CopySourceIfMatch means the source changed meanwhile."""
        try:
            with self._translated(f"copy {redact_url(url)} into", key):
                yield
        except BlobStoreError as error:
            if _error_code(error.__cause__) in PRECONDITION_CODES:
                raise TransferIntegrityError(
                    f"{redact_url(url)} changed while it was being copied into {self._location(key)}; "
                    "nothing was stored. Import it again."
                ) from error
            raise

    def _read_checksum(self, key: str, size: int) -> str:
        """Read a freshly copied object once for its CRC32C, checking its size on the way."""
        checksum = RunningChecksum()
        with self._open_source(key) as stream:
            while chunk := stream.read(CHUNK_SIZE):
                checksum.update(chunk)
        verify(size, None, checksum, self._location(key))
        return checksum.hexdigest()

    def _delete_quietly(self, key: str) -> None:
        try:
            self.delete(key)
        except BlobStoreError as error:
            log.warning("Could not remove %s after a failed copy (gc will): %s", self._location(key), error)


def _error_code(error: BaseException | None) -> str:
    if isinstance(error, botocore_errors.ClientError):
        return str(error.response.get("Error", {}).get("Code", ""))
    return ""


def _s3_object_of(url: str) -> tuple[str, str] | None:
    """(bucket, key) of an ``s3://BUCKET/KEY`` URL naming an object (taken literally, as the AWS CLI
    does: no percent-decoding), or None for anything else (the streamed path reports what is wrong)."""
    if not url.lower().startswith("s3://"):
        return None
    bucket, _, key = url[len("s3://") :].partition("/")
    if not bucket or not key or key.endswith("/"):
        return None
    return bucket, key


def _full_object_crc32c(response: dict[str, Any]) -> str | None:
    """Our ``crc32c:hex`` from a response's ChecksumCRC32C, if it is a full-object one.

    A composite checksum of a multipart object (``...==-3``, or ChecksumType COMPOSITE) is a
    checksum of the parts' checksums, not of the bytes, and is ignored.
    """
    value = response.get("ChecksumCRC32C")
    if not value or "-" in value or response.get("ChecksumType") == "COMPOSITE":
        return None
    return format_checksum(crc_from_base64(value))


def _gf2_times(matrix: list[int], vector: int) -> int:
    """Multiply a 32x32 GF(2) matrix (one int per column) by a 32-bit vector."""
    total = 0
    column = 0
    while vector:
        if vector & 1:
            total ^= matrix[column]
        vector >>= 1
        column += 1
    return total


def _gf2_square(matrix: list[int]) -> list[int]:
    return [_gf2_times(matrix, matrix[column]) for column in range(32)]


def crc32c_combine(crc_a: int, crc_b: int, length_b: int) -> int:
    """The CRC32C of A+B from the CRC32Cs of A and B and the length of B, in O(log length_b).

    Appending n zero bytes to a message multiplies its CRC register by x^(8n) modulo the CRC
    polynomial, a linear map over GF(2): the operator for one zero bit is built from the reflected
    Castagnoli polynomial, squared up to one byte, and applied for each set bit of ``length_b``
    while being squared again. This is what lets a multipart copy record the CRC32C of an object
    of terabytes from its parts' CRC32Cs without reading a byte of it.
    """
    if length_b <= 0:
        return crc_a
    odd = [0x82F63B78] + [1 << bit for bit in range(31)]  # one zero bit
    even = _gf2_square(odd)  # two zero bits
    odd = _gf2_square(even)  # four zero bits
    while True:
        even = _gf2_square(odd)  # 8, 32, 128... zero bits
        if length_b & 1:
            crc_a = _gf2_times(even, crc_a)
        length_b >>= 1
        if not length_b:
            break
        odd = _gf2_square(even)
        if length_b & 1:
            crc_a = _gf2_times(odd, crc_a)
        length_b >>= 1
        if not length_b:
            break
    return crc_a ^ crc_b


def _kms_key(config: Config) -> str | None:
    """The KMS key reference from Config.sseKey or Config.sseKeyFile, if that is what they hold."""
    if is_kms_alias(config.sseKey):
        return cast(str, config.sseKey)
    if config.sseKey is None and config.sseKeyFile:
        try:
            with open(os.path.expanduser(config.sseKeyFile), encoding="utf-8", errors="replace") as handle:
                text = handle.read().strip()
        except OSError:
            return None  # customer_key() has already reported an unreadable file
        if is_kms_alias(text):
            return text
    return None


def _verify_local_file(path: str, expected: BlobInfo, what: str) -> None:
    checksum = RunningChecksum()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            checksum.update(chunk)
    verify(expected.size, expected.checksum, checksum, what)


class _ChecksummingReader:
    """A non-seekable view of a file that checksums what is read (for the transfer manager)."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self.checksum = RunningChecksum()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, size: int = -1) -> bytes:
        # s3transfer cuts parts by read(part_size): return full parts unless at the end.
        data = self._handle.read(size) if size is None or size < 0 else self._read_fully(size)
        if data:
            self.checksum.update(data)
        return data

    def _read_fully(self, size: int) -> bytes:
        chunks: list[bytes] = []
        wanted = size
        while wanted > 0:
            chunk = self._handle.read(wanted)
            if not chunk:
                break
            chunks.append(chunk)
            wanted -= len(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class _S3ObjectReader(io.RawIOBase):
    """A GetObject body as a raw stream whose errors are jobstore errors.

    Closing it early closes the HTTP response instead of draining it, so a partial read does
    not hang on a large object.
    """

    def __init__(self, body: Any, store: S3BlobStore, key: str) -> None:
        super().__init__()
        self._body = body
        self._store = store
        self._key = key

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        with self._store._translated("read", self._key):
            data: bytes = self._body.read() if size is None or size < 0 else self._body.read(size)
        return data

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            try:
                self._body.close()
            finally:
                super().close()


class _S3Sink(BlobSink):
    """A streaming, create-only write: one PutObject if small, else a multipart upload.

    Full parts go to a small thread pool as soon as they are complete; when ``concurrency`` parts
    are in flight, ``write`` waits for one to finish, which bounds memory. A part is only sent once
    more bytes follow it, so a blob of exactly one part is still a single PutObject.
    """

    def __init__(self, store: S3BlobStore, key: str) -> None:
        self._store = store
        self._key = key
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._futures: list[Future[dict[str, Any]]] = []
        self._executor: ThreadPoolExecutor | None = None
        self._finished = False

    def _next_part_size(self) -> int:
        step = len(self._futures) // PARTS_PER_SIZE_STEP
        return min(MAX_PART_SIZE, self._store.part_size << step)

    def write(self, data: bytes) -> None:
        if self._finished:
            raise BlobStoreError(f"{self._store._location(self._key)} was already committed or aborted.")
        self._buffer += data
        while len(self._buffer) > self._next_part_size():
            size = self._next_part_size()
            with memoryview(self._buffer) as view:
                part = bytes(view[:size])  # one copy, no intermediate bytearray
            del self._buffer[:size]
            self._send_part(part)

    def _send_part(self, part: bytes) -> None:
        if self._upload_id is None:
            self._upload_id = self._store._start_multipart(self._key)
            self._executor = ThreadPoolExecutor(
                max_workers=self._store.concurrency, thread_name_prefix="jobstore-s3-part"
            )
        self._raise_failed_parts()
        in_flight = [future for future in self._futures if not future.done()]
        if len(in_flight) >= self._store.concurrency:
            wait(in_flight, return_when=FIRST_COMPLETED)
            self._raise_failed_parts()
        if len(self._futures) >= MAX_PARTS:
            raise BlobStoreError(f"{self._store._location(self._key)} would need more than {MAX_PARTS} parts.")
        assert self._executor is not None
        upload: Callable[..., dict[str, Any]] = self._store._upload_part
        self._futures.append(self._executor.submit(upload, self._key, self._upload_id, len(self._futures) + 1, part))

    def _raise_failed_parts(self) -> None:
        for future in self._futures:
            if future.done() and future.exception() is not None:
                with self._store._translated("write", self._key):
                    future.result()

    def commit(self, info: BlobInfo) -> None:
        if self._upload_id is None:
            self._finished = True
            self._store._put_object(self._key, bytes(self._buffer), info)
            self._buffer = bytearray()
            return
        if self._buffer:
            self._send_part(bytes(self._buffer))
            self._buffer = bytearray()
        wait(self._futures)
        self._raise_failed_parts()
        parts = [future.result() for future in self._futures]
        self._finished = True
        self._shutdown()
        self._store._complete_multipart(self._key, self._upload_id, parts)

    def abort(self) -> None:
        self._finished = True
        self._buffer = bytearray()
        try:
            for future in self._futures:
                future.cancel()
            self._shutdown()
            if self._upload_id is not None:
                self._store._abort_multipart(self._key, self._upload_id)
        except Exception as error:  # abort must not raise; the original error matters more
            log.warning("Aborting the write of %s failed: %s", self._store._location(self._key), error)

    def _shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
