"""``http://`` and ``https://`` URLs, through requests.

Retrying is urllib3's ``Retry`` (connection failures, read failures before the body, and the
statuses 429/500/502/503/504, with exponential backoff and ``Retry-After`` honoured but capped),
not a loop of ours. Redirects are followed on reads, at most :data:`MAX_REDIRECTS` of them, so a
redirect loop ends in a clear error instead of a hang.

Uploads are different: their body is a stream that can be sent only once. They are retried only
when the connection could not be made (nothing was read from the stream yet) and never follow a
redirect; a 3xx answer is reported with its Location so the caller can export there directly.

Bodies are requested with ``Accept-Encoding: identity``: an import must store the bytes the URL
names, not a decompressed variant, and only then does ``Content-Length`` describe what arrives.
"""

from __future__ import annotations

import base64
import binascii
import inspect
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any, NoReturn
from urllib.parse import unquote, urlsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from jobstore.errors import (
    TransferIntegrityError,
    UnsupportedURLError,
    URLAccessError,
    URLForbiddenError,
    URLNotFoundError,
)
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

CONNECT_TIMEOUT = 15.0
#: Longest silence tolerated while waiting for a response or between two chunks of a body.
READ_TIMEOUT = 120.0
MAX_REDIRECTS = 10
#: Retry n sleeps about BACKOFF_FACTOR * 2**(n-1) seconds (the first retry is immediate).
BACKOFF_FACTOR = 0.5
RETRY_STATUSES = (429, 500, 502, 503, 504)
#: A Retry-After longer than this is shortened: an import should fail, not sleep for an hour.
MAX_RETRY_AFTER = 60
UPLOAD_METHODS = ("POST", "PUT")

_MD5_ETAG = re.compile(r'^"?([0-9a-fA-F]{32})"?$')


def _retry_kwargs() -> dict[str, Any]:
    # retry_after_max exists from urllib3 2.5 on; older versions keep their own (unbounded) rule.
    if "retry_after_max" in inspect.signature(Retry.__init__).parameters:
        return {"retry_after_max": MAX_RETRY_AFTER}
    return {}


def download_retry() -> Retry:
    """The retry policy of reads (GET)."""
    return Retry(
        total=8,
        connect=4,
        read=4,
        status=4,
        other=0,
        allowed_methods=frozenset({"GET", "HEAD"}),
        status_forcelist=RETRY_STATUSES,
        backoff_factor=BACKOFF_FACTOR,
        backoff_jitter=0.25,
        raise_on_status=False,  # the last answer comes back and is reported with its status
        respect_retry_after_header=True,
        **_retry_kwargs(),
    )


def upload_retry() -> Retry:
    """The retry policy of uploads: only connections that never got going (the body is untouched)."""
    return Retry(
        total=3,
        connect=3,
        read=0,
        status=0,
        other=0,
        redirect=0,
        allowed_methods=None,
        backoff_factor=BACKOFF_FACTOR,
        raise_on_status=False,
        raise_on_redirect=False,
    )


def new_session(retry: Retry) -> requests.Session:
    """A Session with ``retry`` mounted for both schemes and redirects bounded."""
    session = requests.Session()
    session.max_redirects = MAX_REDIRECTS
    adapter = HTTPAdapter(max_retries=retry, pool_connections=1, pool_maxsize=1)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _raise_request_error(url: str, action: str, error: BaseException) -> NoReturn:
    """Translate a requests/urllib3 exception: the one place this module does it."""
    where = redact_url(url)
    detail = redact_url(str(error))
    if isinstance(error, requests.TooManyRedirects):
        raise URLAccessError(
            f"{where}: cannot {action}: more than {MAX_REDIRECTS} redirects (a redirect loop?). "
            "Open the URL in a browser to see where it leads, and use the final URL."
        ) from error
    if isinstance(error, (requests.Timeout, urllib3.exceptions.TimeoutError)):
        raise URLAccessError(
            f"{where}: cannot {action}: the server did not answer in time ({detail}). Retry later."
        ) from error
    if isinstance(error, (requests.exceptions.ChunkedEncodingError, urllib3.exceptions.ProtocolError)):
        raise TransferIntegrityError(
            f"{where}: the connection broke during the transfer ({detail}). The copy is incomplete; retry the transfer."
        ) from error
    if isinstance(error, requests.exceptions.SSLError):
        raise URLAccessError(f"{where}: cannot {action}: TLS failed ({detail}).") from error
    if isinstance(error, requests.ConnectionError):
        raise URLAccessError(f"{where}: cannot {action}: could not connect, even after retries ({detail}).") from error
    if isinstance(error, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema)):
        raise UnsupportedURLError(f"{where} is not a valid URL ({detail}).") from error
    raise URLAccessError(f"{where}: cannot {action}: {detail}") from error


def _raise_for_status(url: str, action: str, response: requests.Response, *, upload_method: str = "") -> None:
    """Translate an HTTP error status into a jobstore error; return quietly for 2xx."""
    status = response.status_code
    if 200 <= status < 300:
        return
    where = redact_url(url)
    answer = f"HTTP {status} {response.reason or ''}".strip()
    if status in (401, 407):
        raise URLForbiddenError(f"{where}: cannot {action}: the server requires credentials ({answer}).")
    if status == 403:
        raise URLForbiddenError(f"{where}: cannot {action}: access is forbidden ({answer}).")
    if status in (404, 410):
        raise URLNotFoundError(f"{where}: cannot {action}: nothing is there ({answer}).")
    if upload_method and status in (405, 501):
        raise URLForbiddenError(
            f"{where}: the server does not accept uploads by {upload_method} ({answer}). "
            f"Try http_method={'PUT' if upload_method == 'POST' else 'POST'!r}, or another URL."
        )
    if upload_method and 300 <= status < 400:
        location = redact_url(response.headers.get("Location", "(no Location)"))
        raise URLAccessError(
            f"{where}: the server redirects the upload to {location} ({answer}). An upload is not re-sent "
            "to another location; export to that URL directly."
        )
    if status == 413:
        raise URLAccessError(f"{where}: cannot {action}: the server says the body is too large ({answer}).")
    if status in RETRY_STATUSES and not upload_method:
        raise URLAccessError(f"{where}: cannot {action}: the server still answered {answer} after retries.")
    raise URLAccessError(f"{where}: cannot {action}: the server answered {answer}.")


def checksum_hint(headers: Any) -> ChecksumHint | None:
    """An MD5 the response declares: ``Content-MD5`` (enforced) or an MD5-shaped strong ETag (hint)."""
    content_md5 = headers.get("Content-MD5")
    if content_md5:
        try:
            digest = base64.b64decode(content_md5.strip(), validate=True)
        except (binascii.Error, ValueError):
            digest = b""
        if len(digest) == 16:
            return ChecksumHint("md5", digest.hex(), "Content-MD5", enforced=True)
    etag = headers.get("ETag", "")
    match = _MD5_ETAG.match(etag.strip())
    if match and not etag.startswith("W/"):
        return ChecksumHint("md5", match[1].lower(), "ETag", enforced=False)
    return None


class HttpHandler(UrlHandler):
    """HTTP and HTTPS (with ``user:password@`` as Basic authentication, as requests does)."""

    schemes = ("http", "https")

    @contextmanager
    def open_source(self, url: str) -> Iterator[UrlSource]:
        self._check(url)
        session = new_session(download_retry())
        try:
            try:
                response = session.get(
                    url,
                    stream=True,
                    timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                    headers={"Accept-Encoding": "identity"},
                )
            except (requests.RequestException, urllib3.exceptions.HTTPError) as error:
                _raise_request_error(url, "read it", error)
            try:
                _raise_for_status(url, "read it", response)
                encoded = response.headers.get("Content-Encoding", "identity").lower() not in ("", "identity")
                # Content-Length counts encoded bytes: only meaningful when nothing is decoded.
                size = None if encoded else _content_length(response)
                raw_stream = response.raw

                def read(n: int) -> bytes:
                    try:
                        return raw_stream.read(n, decode_content=encoded) or b""
                    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as error:
                        _raise_request_error(url, "read it", error)

                checksum = None if encoded else checksum_hint(response.headers)
                raw = VerifyingReader(read, what=redact_url(url), size=size, checksum=checksum, on_close=response.close)
                source = UrlSource(
                    url=redact_url(url),
                    raw=raw,
                    size=size,
                    basename=basename_of(unquote(urlsplit(url).path)),
                    checksum=checksum,
                )
            except BaseException:
                response.close()
                raise
            try:
                yield source
            finally:
                source.close()
        finally:
            session.close()

    def write(
        self,
        url: str,
        reader: IO[bytes],
        size: int | None,
        *,
        executable: bool = False,
        http_method: str = "POST",
    ) -> None:
        self._check(url)
        method = http_method.upper()
        if method not in UPLOAD_METHODS:
            raise UnsupportedURLError(
                f"http_method={http_method!r} cannot upload a file; use one of {', '.join(UPLOAD_METHODS)}."
            )
        body = ExactReader(reader, size, redact_url(url))
        data: Any = body
        if size is None:
            data = _chunks(body)  # unknown size: chunked transfer encoding
        elif size == 0:
            body.read()  # proves the reader is empty (raises if not)
            data = b""  # requests would send an empty stream chunked; b"" gets Content-Length: 0
        with new_session(upload_retry()) as session:
            try:
                response = session.request(
                    method,
                    url,
                    data=data,
                    headers={"Content-Type": "application/octet-stream"},
                    timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                    allow_redirects=False,
                )
            except (requests.RequestException, urllib3.exceptions.HTTPError) as error:
                if body.failure is not None:  # the data to send failed, not the server
                    raise body.failure from None
                _raise_request_error(url, f"upload to it by {method}", error)
            with response:
                _raise_for_status(url, f"upload to it by {method}", response, upload_method=method)

    @staticmethod
    def _check(url: str) -> None:
        parts = urlsplit(url)
        if not parts.hostname:
            raise UnsupportedURLError(f"{redact_url(url)!r} names no host; write http(s)://host/path.")

    def __repr__(self) -> str:
        return "<HttpHandler>"


def _content_length(response: requests.Response) -> int | None:
    value = response.headers.get("Content-Length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def _chunks(body: ExactReader) -> Iterator[bytes]:
    while chunk := body.read(CHUNK_SIZE):
        yield chunk
