"""The local file system: which path a ``file:`` URL (or a bare absolute path) names.

A pure parser (no I/O), shared by the ``file:`` URL handler (:mod:`jobstore.urls.local`) and the
local blob store's kernel-copy import (:meth:`jobstore.blobs.local.LocalBlobStore.import_from_url`).
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from jobstore.errors import UnsupportedURLError
from jobstore.redact import redact_url


def local_path_of(url: str) -> str:
    """The absolute local path ``url`` names (``file:///p``, ``file://localhost/p``, ``file:/p``, ``/p``).

    A bare path is taken literally (``#`` and ``%`` are just characters); a ``file:`` URL is
    percent-decoded, and must percent-encode ``?`` and ``#`` (otherwise they would silently cut
    the name short).
    """
    if url.startswith("/"):
        path = url
    else:
        parts = urlsplit(url)
        if parts.scheme.lower() != "file":
            raise UnsupportedURLError(f"{redact_url(url)!r} is not a file:// URL.")
        if parts.netloc not in ("", "localhost"):
            raise UnsupportedURLError(
                f"{redact_url(url)!r} names the host {parts.netloc!r}; file:// URLs must be local "
                "(file:///path or file://localhost/path)."
            )
        if parts.query or parts.fragment or url.endswith(("?", "#")):
            raise UnsupportedURLError(
                f"{url!r} has a '?' or '#' in it; in a file:// URL they must be written %3F and %23."
            )
        path = unquote(parts.path)
    if not path.startswith("/"):
        raise UnsupportedURLError(f"{url!r} does not name an absolute path; use file:///absolute/path.")
    if "\x00" in path:
        raise UnsupportedURLError(f"{url!r} contains a NUL character, which no file name may hold.")
    return path
