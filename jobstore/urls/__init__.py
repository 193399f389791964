"""Import and export by URL: read a source as a verified stream, write a destination atomically.

The store calls two functions and needs to know nothing about transports::

    with open_source("https://example.org/data.csv") as source:
        ...copy source.stream into a blob...   # TransferIntegrityError if it arrives short
    write_to_url("ftp://user:pw@host/out/data.csv", reader, size)

Schemes: ``file://`` (and bare absolute paths), ``http://``, ``https://``, ``ftp://``, ``s3://`` and
``gs://`` (the last two with the store's Config for endpoint and credentials); more plug in through
:func:`register_scheme`. Every failure is a :class:`~jobstore.errors.URLAccessError`
subclass (``URLNotFoundError``, ``URLForbiddenError``, ``TransferIntegrityError``) or
``UnsupportedURLError``, and its message names the URL with any password masked.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from jobstore.providers.local import local_path_of
from jobstore.urls.base import CHUNK_SIZE, ChecksumHint, UrlHandler, UrlSource, basename_of
from jobstore.urls.registry import handler_for, register_scheme, scheme_of, supported_schemes

if TYPE_CHECKING:
    from jobstore.config import Config

__all__ = [
    "CHUNK_SIZE",
    "ChecksumHint",
    "UrlHandler",
    "UrlSource",
    "handler_for",
    "open_source",
    "register_scheme",
    "scheme_of",
    "supported_schemes",
    "url_basename",
    "write_to_url",
]


def url_basename(url: str) -> str | None:
    """The last segment of the path ``url`` names (what an imported file is called), or None.

    ``file:`` and ``http(s)``/``ftp`` paths are percent-decoded; ``s3://`` keys and ``gs://`` names
    are taken literally, as their own tools take them.
    """
    scheme = scheme_of(url)
    if scheme == "file":
        path = local_path_of(url)
    elif scheme in ("s3", "gs"):
        path = url.split("://", 1)[1].partition("/")[2]
    else:
        path = unquote(urlsplit(url).path)
    return basename_of(path)


@contextmanager
def open_source(url: str, config: Config | None = None) -> Iterator[UrlSource]:
    """Open ``url`` for reading; the connection is released when the ``with`` block ends.

    Read ``source.stream`` to its end: only then has the length (and any enforced checksum) been
    verified. Leaving the block early is allowed and simply abandons the transfer.
    """
    with handler_for(url, config).open_source(url) as source:
        yield source


def write_to_url(
    url: str,
    reader: IO[bytes],
    size: int | None,
    *,
    executable: bool = False,
    http_method: str = "POST",
    config: Config | None = None,
) -> None:
    """Write exactly ``size`` bytes read from ``reader`` to ``url`` (``size=None``: until EOF).

    ``file://`` creates missing parent directories and replaces the destination atomically (a
    temporary name in the same directory, then a rename), with the executable bit if asked.
    ``ftp://`` uploads to a temporary name and renames it where the server allows renames.
    ``http(s)://`` sends the bytes as the body of a POST or PUT (``http_method``); redirects are not
    followed, because a streamed body cannot be sent twice.
    """
    handler_for(url, config).write(url, reader, size, executable=executable, http_method=http_method)
