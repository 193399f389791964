"""Masking of secrets in URLs, so passwords never reach logs, messages or repr()."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_USERINFO_PASSWORD = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^:/@]*):(?P<pw>[^@/]*)@")


def redact_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``.

    Works on anything that looks like ``scheme://user:password@host...`` and also on strings that
    merely contain such a URL (an exception message, a locator with a ``sql:`` prefix).
    """
    return _USERINFO_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", url)


def redact_netloc(url: str) -> str:
    """Like :func:`redact_url`, for a single well-formed URL (keeps the query untouched)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
