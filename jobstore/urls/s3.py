"""``s3://BUCKET/KEY`` URLs, through boto3, with the store's S3 settings.

The endpoint, region, credentials and retry policy come from the Config the store was opened with
(``awsEndpointURL``, ``awsRegion``, ``awsCredentials``, ``awsMaxAttempts``), through the same client
construction as the S3 blob store (:func:`jobstore.providers.s3.client_for`), so importing from a bucket
needs nothing a store on that server does not already have. Keys are taken literally, as the AWS
CLI takes them: ``s3://b/a%20b`` names the key ``a%20b``.

Reads are one streamed GetObject. What it declares is verified at the end: the length
(Content-Length; botocore also refuses a short body) and a full-object checksum where the object has
one: CRC32C or CRC32 (``ChecksumMode=ENABLED``), else the ETag when it is an MD5 by S3's rules (a
single-part object without SSE-KMS or SSE-C). Writes go through boto3's transfer manager (one
PutObject, or a multipart upload of parts of ``s3PartSize`` that is aborted on failure), so the
object appears complete or not at all, and may replace an existing one. S3 has no executable bit.

Retries are botocore's (``standard`` mode: throttling, 5xx and connection errors, with backoff).
Errors are translated by :func:`jobstore.providers.s3.translate_s3_error` and re-typed as URL errors
here; 404 and 403 get messages in terms of the URL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any, NoReturn

from boto3.s3.transfer import TransferConfig
from botocore import exceptions as botocore_errors

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
from jobstore.providers import s3 as s3_provider
from jobstore.redact import redact_url
from jobstore.urls.base import ChecksumHint, ExactReader, UrlHandler, UrlSource, VerifyingReader, basename_of

_MD5_ETAG = re.compile(r'^"?([0-9a-fA-F]{32})"?$')
#: Errors of a body that stopped or arrived damaged: the copy is incomplete, not the URL wrong.
_BROKEN_BODY: tuple[type[BaseException], ...] = (
    botocore_errors.IncompleteReadError,
    botocore_errors.ResponseStreamingError,
    botocore_errors.FlexibleChecksumError,
)


def parse_s3_url(url: str) -> tuple[str, str]:
    """(bucket, key) of ``s3://BUCKET/KEY``; refuses URLs that name no object."""
    if not url.lower().startswith("s3://"):
        raise UnsupportedURLError(f"{redact_url(url)!r} is not an s3:// URL.")
    bucket, _, key = url[len("s3://") :].partition("/")
    if not bucket or "@" in bucket or ":" in bucket:
        raise UnsupportedURLError(
            f"{redact_url(url)!r} names no bucket (or has a user or port in it); write s3://BUCKET/KEY and "
            "set the endpoint and credentials in the store's Config (awsEndpointURL, awsCredentials)."
        )
    if not key or key.endswith("/"):
        raise URLAccessError(
            f"{redact_url(url)} names a bucket or a prefix (a directory), not an object; give the URL of an object."
        )
    return bucket, key


class S3Handler(UrlHandler):
    """S3 and S3-compatible servers, with the store's endpoint and credentials."""

    schemes = ("s3",)

    def _client(self) -> tuple[Any, str | None]:
        return s3_provider.client_for(self.config or Config())

    @contextmanager
    def open_source(self, url: str) -> Iterator[UrlSource]:
        bucket, key = parse_s3_url(url)
        client, endpoint = self._client()
        try:
            response = client.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        except s3_provider.PROVIDER_ERRORS as error:
            if _status_of(error) == 404 and _is_prefix(client, bucket, key):
                raise URLAccessError(
                    f"{redact_url(url)} is a prefix (a directory) in the bucket; import its objects one by one."
                ) from error
            _raise_url_error(url, "read it", error, endpoint)
        body = response["Body"]
        size = int(response["ContentLength"])
        checksum = declared_checksum(response)

        def read(n: int) -> bytes:
            try:
                data: bytes = body.read(n)
            except s3_provider.PROVIDER_ERRORS as error:
                _raise_url_error(url, "read it", error, endpoint)
            return data

        raw = VerifyingReader(read, what=redact_url(url), size=size, checksum=checksum, on_close=body.close)
        source = UrlSource(
            url=redact_url(url),
            raw=raw,
            size=size,
            basename=basename_of(key),
            checksum=checksum,
            fingerprint=_fingerprint_of(response),
        )
        try:
            yield source
        finally:
            source.close()

    def fingerprint(self, url: str) -> dict[str, Any]:
        """Size, ETag and (in a versioned bucket) version ID, from one HeadObject."""
        bucket, key = parse_s3_url(url)
        client, endpoint = self._client()
        try:
            response = client.head_object(Bucket=bucket, Key=key)
        except s3_provider.PROVIDER_ERRORS as error:
            _raise_url_error(url, "look at it", error, endpoint)
        return _fingerprint_of(response)

    def write(
        self,
        url: str,
        reader: IO[bytes],
        size: int | None,
        *,
        executable: bool = False,
        http_method: str = "POST",
    ) -> None:
        bucket, key = parse_s3_url(url)
        client, endpoint = self._client()
        body = ExactReader(reader, size, redact_url(url))
        try:
            client.upload_fileobj(
                body,
                bucket,
                key,
                ExtraArgs={"ContentType": "application/octet-stream"},
                Config=self._transfer_config(size),
            )
        except Exception as error:
            if body.failure is not None:  # the data to send failed, not S3
                raise body.failure from None
            if isinstance(error, JobStoreError):
                raise
            _raise_url_error(url, "upload it", error, endpoint)

    def _transfer_config(self, size: int | None) -> TransferConfig:
        config = self.config or Config()
        part = int(getattr(config, "s3PartSize", None) or s3_provider.DEFAULT_PART_SIZE)
        if size is not None:  # room for the file within S3's 10,000 parts
            part = min(s3_provider.MAX_PART_SIZE, max(part, -(-size // (s3_provider.MAX_PARTS - 100))))
        concurrency = max(1, int(getattr(config, "s3Concurrency", None) or s3_provider.DEFAULT_CONCURRENCY))
        transfer = TransferConfig(
            multipart_threshold=part,
            multipart_chunksize=part,
            max_concurrency=concurrency,
            preferred_transfer_client="classic",
        )
        transfer.max_in_memory_upload_chunks = concurrency + 1  # memory: about (concurrency + 1) parts
        return transfer

    def __repr__(self) -> str:
        return "<S3Handler>"


def _fingerprint_of(response: dict[str, Any]) -> dict[str, Any]:
    """An overwrite gives the object a new ETag (and a new version ID where versioning is on)."""
    found: dict[str, Any] = {"size": int(response["ContentLength"]), "etag": str(response.get("ETag", ""))}
    if response.get("VersionId") not in (None, "null"):
        found["version_id"] = str(response["VersionId"])
    return found


def declared_checksum(response: dict[str, Any]) -> ChecksumHint | None:
    """The full-object checksum a GetObject/HeadObject response declares, or None.

    CRC32C or CRC32 when present and not composite (a multipart object's ``...-N`` values are
    checksums of part checksums); else the ETag, which S3 defines as the MD5 of the bytes for a
    single-part object stored without SSE-KMS or SSE-C.
    """
    for field, algorithm in (("ChecksumCRC32C", "crc32c"), ("ChecksumCRC32", "crc32")):
        value = response.get(field)
        if value and "-" not in value and response.get("ChecksumType") != "COMPOSITE":
            return ChecksumHint(algorithm, f"{s3_provider.crc_from_base64(value):08x}", f"S3 {field}", enforced=True)
    match = _MD5_ETAG.match(str(response.get("ETag", "")))
    plain = response.get("ServerSideEncryption") in (None, "AES256") and not response.get("SSECustomerAlgorithm")
    if match and plain:
        return ChecksumHint("md5", match[1].lower(), "ETag", enforced=True)
    return None


def _status_of(error: BaseException) -> int | None:
    if isinstance(error, botocore_errors.ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return status if isinstance(status, int) else None
    return None


def _is_prefix(client: Any, bucket: str, key: str) -> bool:
    """True if objects exist under ``key/`` (the URL names a "directory")."""
    try:
        listing = client.list_objects_v2(Bucket=bucket, Prefix=key.rstrip("/") + "/", MaxKeys=1)
    except s3_provider.PROVIDER_ERRORS:
        return False
    return bool(listing.get("KeyCount") or listing.get("Contents"))


def _raise_url_error(url: str, action: str, error: BaseException, endpoint: str | None) -> NoReturn:
    """Re-type the shared S3 translation of ``error`` (the blob store's too) as a URL error naming ``url``."""
    where = redact_url(url)
    if isinstance(error, _BROKEN_BODY):
        raise TransferIntegrityError(
            f"{where}: the transfer broke off or arrived damaged ({type(error).__name__}: {error}). "
            "The copy is incomplete; retry the transfer."
        ) from error
    said = ""
    if isinstance(error, botocore_errors.ClientError):
        info = error.response.get("Error", {})
        said = f" (S3 said {info.get('Code') or _status_of(error)}: {info.get('Message') or 'no message'})"
        if str(info.get("Code")) in ("PreconditionFailed", "412"):
            raise TransferIntegrityError(f"{where} changed during the transfer{said}; retry it.") from error
    translated = s3_provider.translate_s3_error(
        error, action=action, location=where, endpoint=endpoint, customer_key=False
    )
    if isinstance(translated, BlobNotFoundError):
        what = "bucket" if "NoSuchBucket" in said else "object"
        raise URLNotFoundError(f"{where}: cannot {action}: no such {what}{said}.") from error
    if isinstance(translated, BlobAccessDeniedError | EncryptionKeyError):
        raise URLForbiddenError(
            f"{where}: cannot {action}: access denied{said}. The store's S3 credentials are used "
            "(Config.awsCredentials, or boto3's usual chain); check they may use this bucket."
        ) from error
    if isinstance(translated, ChecksumMismatchError):
        raise TransferIntegrityError(str(translated)) from error
    raise URLAccessError(str(translated)) from error
