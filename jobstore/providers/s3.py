"""S3 plumbing shared by the S3 blob store (:mod:`jobstore.blobs.s3`) and ``s3://`` URLs
(:mod:`jobstore.urls.s3`): S3's limits and our defaults, the settings read from a Config, the one
client construction (credentials, endpoint, region, retries, timeouts), and the one translation of
boto3 / botocore / s3transfer errors into ``jobstore.errors``.

Both users get their clients here, so importing from a bucket needs nothing a store on that
server does not already have, and their errors say the same things. Retries are botocore's (retry
mode ``standard``), not a loop of ours.
"""

from __future__ import annotations

import base64
import os
from typing import Any

import boto3
import boto3.exceptions
import s3transfer.exceptions
import urllib3.exceptions
from botocore import exceptions as botocore_errors
from botocore.config import Config as BotoConfig
from botocore.credentials import SharedCredentialProvider

from jobstore.config import Config
from jobstore.errors import (
    BlobAccessDeniedError,
    BlobExistsError,
    BlobNotFoundError,
    BlobStoreError,
    EncryptionKeyError,
    InvalidConfigError,
    JobStoreError,
)
from jobstore.redact import redact_url

MIB = 1024 * 1024
#: S3's smallest allowed part (every part but the last) and its largest.
MIN_PART_SIZE = 5 * MIB
MAX_PART_SIZE = 5 * 1024 * MIB
#: S3 allows at most this many parts per multipart upload.
MAX_PARTS = 10_000
DEFAULT_PART_SIZE = 8 * MIB
#: Parts uploaded at once by one writer: memory per writer is about (concurrency + 2) x part size.
DEFAULT_CONCURRENCY = 4
#: botocore attempts per request (first try included). More than botocore's default of 3, because
#: a workflow runs for days and a brief outage should cost a delay, not a failed job.
DEFAULT_MAX_ATTEMPTS = 6
DEFAULT_REGION = "us-east-1"
ENDPOINT_ENV_VARS = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")

_NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_ACCESS_CODES = frozenset(
    {
        "AccessDenied",
        "403",
        "Forbidden",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AllAccessDisabled",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "AccountProblem",
        "InvalidSecurity",
        "RequestTimeTooSkewed",
    }
)
PRECONDITION_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})
_UNAVAILABLE_CODES = frozenset(
    {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "503", "500", "Throttling"}
)
_DIGEST_CODES = frozenset({"BadDigest", "InvalidDigest", "XAmzContentChecksumMismatch", "XAmzContentSHA256Mismatch"})
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    botocore_errors.EndpointConnectionError,
    botocore_errors.ConnectionClosedError,
    botocore_errors.ConnectTimeoutError,
    botocore_errors.ReadTimeoutError,
    botocore_errors.ResponseStreamingError,
    botocore_errors.IncompleteReadError,
    botocore_errors.ConnectionError,
    urllib3.exceptions.HTTPError,
    ConnectionError,
    TimeoutError,
)
_CREDENTIAL_ERRORS: tuple[type[BaseException], ...] = (
    botocore_errors.NoCredentialsError,
    botocore_errors.PartialCredentialsError,
    botocore_errors.CredentialRetrievalError,
)
#: Everything the provider libraries raise; local errors (a full local disk) are not in it.
_PROVIDER_ERRORS: tuple[type[BaseException], ...] = (
    botocore_errors.BotoCoreError,
    botocore_errors.ClientError,
    boto3.exceptions.Boto3Error,
    s3transfer.exceptions.RetriesExceededError,
    s3transfer.exceptions.S3UploadFailedError,
    *_CONNECTION_ERRORS,
)
#: The same, public: what a caller of a client from :func:`make_client` or :func:`client_for`
#: catches to translate.
PROVIDER_ERRORS = _PROVIDER_ERRORS
#: Actions (as named in messages) that read an object: where SSE-C key errors show up.
_READ_ACTIONS = frozenset({"read", "download", "check", "measure"})


# --- error translation: the one place provider errors become jobstore errors ---------------------


def translate_s3_error(
    error: BaseException,
    *,
    action: str,
    location: str,
    endpoint: str | None,
    customer_key: bool,
) -> JobStoreError:
    """The ``jobstore.errors`` exception for a boto3/botocore/s3transfer ``error``.

    ``action`` is a verb for the message ("write", "read", "delete"...), ``location`` the
    ``s3://`` URL concerned, ``endpoint`` the custom endpoint in use (None for AWS), and
    ``customer_key`` whether this store sends an SSE-C key (which changes what a 400/403 on a read
    means). Messages carry the S3 error code and message, never credentials or keys.
    """
    error = _innermost_provider_error(error)
    server = f" at {redact_url(endpoint)}" if endpoint else ""
    where = f"Could not {action} {location}{server}"
    if isinstance(error, botocore_errors.ClientError):
        return _translate_client_error(error, action, where, customer_key)
    if isinstance(error, _CREDENTIAL_ERRORS):
        return BlobAccessDeniedError(
            f"{where}: no usable AWS credentials ({type(error).__name__}). Set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or Config.awsCredentials (a shared-credentials file)."
        )
    if isinstance(error, _CONNECTION_ERRORS):
        return BlobStoreError(
            f"{where}: the S3 endpoint is unreachable or dropped the connection "
            f"({type(error).__name__}: {redact_url(str(error))}), even after retries. Check that the "
            "server is running and reachable, and Config.awsEndpointURL / AWS_ENDPOINT_URL."
            + (" The write was not committed; retry it." if action == "write" else "")
        )
    if isinstance(error, botocore_errors.ParamValidationError):
        return BlobStoreError(f"{where}: boto3 rejected the request parameters: {error}. This is a jobstore bug.")
    return BlobStoreError(f"{where}: {type(error).__name__}: {redact_url(str(error))}")


def _innermost_provider_error(error: BaseException) -> BaseException:
    """Unwrap s3transfer/boto3 wrappers (RetriesExceeded, S3UploadFailed) to the error inside."""
    seen: set[int] = set()
    while id(error) not in seen:
        seen.add(id(error))
        inner = getattr(error, "last_exception", None)
        if inner is None and isinstance(error, boto3.exceptions.Boto3Error | s3transfer.exceptions.S3UploadFailedError):
            inner = error.__cause__ or error.__context__
        if not isinstance(inner, BaseException):
            break
        error = inner
    return error


def _translate_client_error(
    error: botocore_errors.ClientError, action: str, where: str, customer_key: bool
) -> JobStoreError:
    info = error.response.get("Error", {})
    code = str(info.get("Code", ""))
    message = str(info.get("Message", "")) or "no message"
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    said = f"(S3 said {code or status}: {message})"
    reading = action in _READ_ACTIONS
    lowered = message.lower()

    if code == "NoSuchBucket":
        return BlobNotFoundError(
            f"{where}: the bucket does not exist {said}. Check the bucket name, Config.awsRegion and "
            "the endpoint, or create the job store first (initialize())."
        )
    if code in _NOT_FOUND_CODES:
        return BlobNotFoundError(
            f"{where}: no object at that key {said}. If the catalog refers to it, the blob was deleted "
            "behind jobstore's back; run `jobstore fsck`."
        )
    if code == "NoSuchUpload":
        return BlobStoreError(
            f"{where}: the multipart upload no longer exists {said}; it was aborted (a bucket "
            "lifecycle rule, or `destroy` running concurrently). Write the file again."
        )
    if code in PRECONDITION_CODES or status == 412:
        return BlobExistsError(
            f"{where}: an object already exists at that key and jobstore writes are create-only {said}. "
            "Keys are never reused, so another writer or a leftover from a copy used this key."
        )
    if code in _DIGEST_CODES:
        return BlobStoreError(
            f"{where}: S3 received bytes whose checksum differs from the one sent with them {said}: "
            "they were corrupted on the way (network, proxy, or memory). Nothing was stored; retry."
        )
    if "KMS" in code or "kms" in lowered:
        return EncryptionKeyError(
            f"{where}: the KMS key could not be used {said}. Check that Config.sseKey names a KMS key "
            "(alias/... or a key ARN) that exists in this region and that these credentials may use it "
            "(kms:GenerateDataKey, kms:Decrypt)."
        )
    if reading and (status == 400 or code in ("InvalidArgument", "InvalidRequest")):
        if customer_key:
            return EncryptionKeyError(
                f"{where}: S3 refused the customer encryption key {said}. The object was probably "
                "written without SSE-C (or with a KMS key); check Config.sseKey / sseKeyFile "
                "against the configuration this store was written with."
            )
        return EncryptionKeyError(
            f"{where}: the object is encrypted with a customer key (SSE-C) and none was given {said}. "
            "Set Config.sseKey or Config.sseKeyFile to the key the store was written with."
        )
    if reading and customer_key and status == 403 and code in ("AccessDenied", "403", "Forbidden"):
        return EncryptionKeyError(
            f"{where}: access was refused while reading with a customer key (SSE-C) {said}: the key is "
            "most likely not the one the object was written with. Check Config.sseKey / sseKeyFile "
            "(and, if the key is right, that the credentials may read this bucket)."
        )
    if "customer" in lowered and "key" in lowered:
        return EncryptionKeyError(f"{where}: {said}. Check Config.sseKey / Config.sseKeyFile.")
    if code in _ACCESS_CODES or status in (401, 403):
        return BlobAccessDeniedError(
            f"{where}: access denied {said}. Check the credentials (AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY, AWS_PROFILE or Config.awsCredentials), that they may use this "
            "bucket and prefix, and that the system clock is right."
        )
    if code == "BucketAlreadyExists":
        return BlobAccessDeniedError(
            f"{where}: the bucket name is taken by another account {said}. Bucket names are global; "
            "choose another bucket name in the locator."
        )
    if code in _UNAVAILABLE_CODES or (isinstance(status, int) and status >= 500):
        return BlobStoreError(
            f"{where}: S3 kept failing after retries {said}. The service or server is overloaded or "
            "unwell; try again later (Config.awsMaxAttempts raises the number of attempts)."
        )
    return BlobStoreError(f"{where}: S3 error {said} (HTTP {status}).")


def _no_continue_for_empty_body(request: Any, **_: Any) -> None:
    """Send an empty PUT without ``Expect: 100-continue``: some S3-compatible servers (SeaweedFS
    4.48 seen here) answer such a request twice, and the stray reply poisons the next request on
    the connection (a 60 s read timeout or a wrong answer). Waiting for "continue" before sending
    zero bytes gains nothing anyway."""
    if request.headers.get("Content-Length") == "0" and "Expect" in request.headers:
        del request.headers["Expect"]


def _create_only(params: dict[str, Any], **_: Any) -> None:
    """botocore hook: make a PutObject / CompleteMultipartUpload create-only (If-None-Match: *)."""
    params.setdefault("IfNoneMatch", "*")


# --- settings read from a Config ------------------------------------------------------------------


def part_size_setting(config: Config, part_size: int | None = None) -> int:
    """The part size: ``part_size``, else Config.s3PartSize, else the default; within S3's limits."""
    value = int(part_size or getattr(config, "s3PartSize", None) or DEFAULT_PART_SIZE)
    if not MIN_PART_SIZE <= value <= MAX_PART_SIZE:
        raise InvalidConfigError(
            f"S3 part size {value} is outside S3's limits ({MIN_PART_SIZE} to {MAX_PART_SIZE} "
            "bytes); fix Config.s3PartSize."
        )
    return value


def concurrency_setting(config: Config, concurrency: int | None = None) -> int:
    """Parts in flight per write: ``concurrency``, else Config.s3Concurrency, else the default."""
    return max(1, int(concurrency or getattr(config, "s3Concurrency", None) or DEFAULT_CONCURRENCY))


def max_attempts_setting(config: Config, max_attempts: int | None = None) -> int:
    """botocore's attempts per request: ``max_attempts``, else Config.awsMaxAttempts, else the default."""
    return max(1, int(max_attempts or getattr(config, "awsMaxAttempts", None) or DEFAULT_MAX_ATTEMPTS))


def region_setting(config: Config) -> str:
    return config.awsRegion or DEFAULT_REGION


def endpoint_setting(config: Config) -> str | None:
    """The custom endpoint (Config.awsEndpointURL, else the environment's), or None for AWS."""
    return config.awsEndpointURL or endpoint_from_environment()


def endpoint_from_environment() -> str | None:
    """The endpoint boto3 would take from the environment (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL)."""
    for name in ENDPOINT_ENV_VARS:
        value = os.environ.get(name)
        if value:
            return value
    return None


# --- the client ---------------------------------------------------------------------------------


def make_client(
    *,
    region: str,
    endpoint_url: str | None,
    credentials_file: str | None,
    max_attempts: int,
    concurrency: int,
    create_only: bool,
) -> Any:
    """A boto3 S3 client with these credentials, endpoint and retries (what a store's settings,
    read from its Config, give); ``create_only`` adds the If-None-Match hook that blob writes need
    (URL exports, which may replace, go without)."""
    session = boto3.session.Session(**explicit_credentials(credentials_file))
    options: dict[str, Any] = {
        "signature_version": "s3v4",
        "retries": {"mode": "standard", "max_attempts": max_attempts},
        "connect_timeout": 10,
        "read_timeout": 60,
        # Part uploads of several concurrent writers plus transfer-manager threads.
        "max_pool_connections": max(10, 4 * concurrency),
        "user_agent_extra": "jobstore",
    }
    if endpoint_url:
        # S3-compatible servers rarely have wildcard DNS for virtual-hosted buckets.
        options["s3"] = {"addressing_style": "path"}
    client = session.client("s3", region_name=region, endpoint_url=endpoint_url, config=BotoConfig(**options))
    if create_only:
        for operation in ("PutObject", "CompleteMultipartUpload"):
            client.meta.events.register(f"before-parameter-build.s3.{operation}", _create_only)
    client.meta.events.register("before-send.s3.PutObject", _no_continue_for_empty_body)
    return client


def explicit_credentials(path: str | None) -> dict[str, str]:
    """Keys from Config.awsCredentials (``path``), which then wins over the environment; else
    nothing, and boto3's usual chain applies."""
    if not path:
        return {}
    path = os.path.expanduser(path)
    profile = os.environ.get("AWS_PROFILE") or "default"
    if not os.path.isfile(path):
        raise BlobAccessDeniedError(
            f"The AWS credentials file {path!r} (Config.awsCredentials) does not exist; fix the path "
            "or leave the setting empty to use boto3's usual credential chain."
        )
    credentials = SharedCredentialProvider(creds_filename=path, profile_name=profile).load()
    if credentials is None:
        raise BlobAccessDeniedError(
            f"The AWS credentials file {path!r} (Config.awsCredentials) has no profile [{profile}] "
            "with aws_access_key_id and aws_secret_access_key."
        )
    explicit = {
        "aws_access_key_id": credentials.access_key,
        "aws_secret_access_key": credentials.secret_key,
    }
    if credentials.token:
        explicit["aws_session_token"] = credentials.token
    return explicit


def client_for(config: Config) -> tuple[Any, str | None]:
    """A boto3 client for any object (URL import/export) and the custom endpoint it uses (None: AWS).

    Made from ``config`` exactly as a store's client is (Config.awsCredentials, endpoint, region,
    retry mode and attempts, timeouts), without the create-only hook: an export may replace an
    object, as exporting to a local path replaces a file. A Config a store would refuse (an
    unusable s3PartSize, sseKey or sseKeyFile) is refused here too.
    """
    part_size_setting(config)
    concurrency = concurrency_setting(config)
    max_attempts = max_attempts_setting(config)
    region = region_setting(config)
    endpoint_url = endpoint_setting(config)
    config.customer_key()
    client = make_client(
        region=region,
        endpoint_url=endpoint_url,
        credentials_file=config.awsCredentials,
        max_attempts=max_attempts,
        concurrency=concurrency,
        create_only=False,
    )
    return client, endpoint_url


def crc_from_base64(base64_digest: str) -> int:
    """A CRC32C or CRC32 as S3 sends it (base64 of 4 big-endian bytes) as an integer."""
    return int.from_bytes(base64.b64decode(base64_digest), "big")
