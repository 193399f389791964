"""Scheme -> handler class, imported on first use.

Handlers are named by ``"module:Class"`` strings so that importing jobstore never imports requests,
ftplib, boto3 or google-cloud-storage: only the scheme a URL actually uses pays for its library.
The s3 and gs handlers are registered the same way; when their library (boto3,
google-cloud-storage) is absent, using the scheme raises MissingDependencyError naming the extra.
"""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from jobstore.errors import MissingDependencyError, UnsupportedURLError
from jobstore.redact import redact_url
from jobstore.urls.base import UrlHandler

if TYPE_CHECKING:
    from jobstore.config import Config

_HANDLERS: dict[str, str | type[UrlHandler]] = {
    "file": "jobstore.urls.local:FileHandler",
    "http": "jobstore.urls.web:HttpHandler",
    "https": "jobstore.urls.web:HttpHandler",
    "ftp": "jobstore.urls.ftp:FtpHandler",
    "s3": "jobstore.urls.s3:S3Handler",
    "gs": "jobstore.urls.gcs:GcsHandler",
}
#: The optional dependency (extra) each scheme's library comes from.
_EXTRAS = {
    "s3": ("boto3", "s3", "Import and export by s3:// URL"),
    "gs": ("google-cloud-storage", "gcs", "Import and export by gs:// URL"),
}
_lock = threading.Lock()


def register_scheme(scheme: str, handler: str | type[UrlHandler]) -> None:
    """Serve ``scheme`` with ``handler``: a UrlHandler subclass or a lazy ``"module:Class"`` name."""
    with _lock:
        _HANDLERS[scheme.lower()] = handler


def supported_schemes() -> tuple[str, ...]:
    """The schemes import and export accept, sorted (plus bare absolute paths, read as file://)."""
    return tuple(sorted(_HANDLERS))


def scheme_of(url: str) -> str:
    """The URL's scheme, lower-cased; ``"file"`` for a bare absolute path.

    Refuses what no handler should ever see: non-strings, control characters (a CR/LF in an FTP
    path would be a second command), relative paths (relative to what? the worker's directory
    differs from the leader's) and unknown schemes (``javascript:``, ``data:``, typos).
    """
    if not isinstance(url, str) or not url:
        raise UnsupportedURLError(f"{url!r} is not a URL: give a non-empty string such as file:///path.")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise UnsupportedURLError(
            f"{redact_url(url)!r} contains control characters (newline, tab, NUL...); "
            "percent-encode them if they are really part of the name."
        )
    if url.startswith("/"):
        return "file"
    scheme = urlsplit(url).scheme.lower()
    if not scheme:
        raise UnsupportedURLError(
            f"{redact_url(url)!r} is a relative path, not a URL. Give an absolute path or a URL "
            f"with one of the schemes {', '.join(supported_schemes())}."
        )
    if scheme not in _HANDLERS:
        raise UnsupportedURLError(
            f"{redact_url(url)!r} has the scheme {scheme!r}, which jobstore cannot import from or export to. "
            f"Supported schemes: {', '.join(supported_schemes())} (and bare absolute paths)."
        )
    return scheme


def handler_for(url: str, config: Config | None = None) -> UrlHandler:
    """A fresh handler for ``url``'s scheme (its module is imported now if it was not yet)."""
    scheme = scheme_of(url)
    with _lock:
        entry = _HANDLERS[scheme]
    if isinstance(entry, str):
        module_name, _, class_name = entry.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            if scheme not in _EXTRAS or not _missing_library(error):
                raise
            raise MissingDependencyError(*_EXTRAS[scheme]) from error
        cls = getattr(module, class_name)
        if not (isinstance(cls, type) and issubclass(cls, UrlHandler)):
            raise TypeError(f"{entry} (registered for {scheme}://) is not a UrlHandler subclass.")
        with _lock:
            _HANDLERS[scheme] = cls
        entry = cls
    return entry(config)


def _missing_library(error: ImportError) -> bool:
    """True if ``error`` is about a third-party library, not a broken jobstore module."""
    return not (error.name or "").startswith("jobstore")
