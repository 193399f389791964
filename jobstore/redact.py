"""Masking of secrets in URLs, so passwords never reach logs, messages, repr() or the catalog.

Every spelling libpq, SQLAlchemy and the object stores accept is covered:

* ``scheme://user:password@host`` where the password is percent-encoded or holds a raw ``/``,
  ``:`` or ``@`` (SQLAlchemy ends a password at the first ``@``, urllib at the last; the mask
  reaches the last ``@`` of the URL so no tail of the secret is left whichever parser reads it);
* secret query parameters (``?password=``, ``&sslpassword=``, S3 / GCS signatures and tokens),
  whatever the case of the key and even when the key itself is percent-encoded (``pass%77ord``:
  SQLAlchemy decodes keys, so libpq would receive ``password``);
* libpq keyword/value strings (``host=db password=secret``, also ``password='quoted value'``).

Over-masking is preferred to leaking: a URL whose path holds an ``@`` after a ``host:port`` is
shown with the port and path masked.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

MASK = "***"

#: user, ':' and a password reaching the last '@' before whitespace or a quote. The user may hold
#: an '@' (SQLAlchemy's parser allows it: ``me@example.com:pw@host``).
_USERINFO_PASSWORD = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^:/\s'\"]*):(?P<pw>[^\s'\"]*)@")

#: One query parameter: separator, key, value (up to the next parameter, fragment, space or quote).
_QUERY_PARAMETER = re.compile(r"(?P<sep>[?&;])(?P<key>[^=&;#\s'\"]+)=(?P<value>[^&;#\s'\"]*)")

#: Query keys whose values are secrets (compared after percent-decoding, case-insensitively).
SECRET_QUERY_KEYS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "sslpassword",
        "secret",
        "token",
        "access_token",
        "aws_secret_access_key",
        "aws_session_token",
        "x-amz-signature",
        "x-amz-security-token",
        "x-amz-credential",
        "x-goog-signature",
        "x-goog-credential",
        "signature",
        "sig",
    }
)

#: libpq keyword/value connection strings: ``password=...`` at the start or after whitespace.
_KEYWORD_PASSWORD = re.compile(
    r"(?P<lead>(?:^|(?<=[\s(,]))(?:ssl)?password\s*=\s*)(?P<value>'(?:[^'\\]|\\.)*'|[^\s'\",)]*)",
    re.IGNORECASE,
)


def _mask_parameter(match: re.Match[str]) -> str:
    if unquote_plus(match["key"]).strip().lower() in SECRET_QUERY_KEYS:
        return f"{match['sep']}{match['key']}={MASK}"
    return match[0]


def redact_url(url: str) -> str:
    """Return ``url`` with every secret replaced by ``***``.

    Works on a single URL and on any text that merely contains URLs (an exception message, a
    locator with a ``sql:`` prefix, a libpq connection string).
    """
    text = _USERINFO_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", url)
    text = _QUERY_PARAMETER.sub(_mask_parameter, text)
    return _KEYWORD_PASSWORD.sub(lambda m: f"{m['lead']}{MASK}", text)


def unmaskable_url_problem(url: str) -> str | None:
    """Why a catalog URL could leak its password even through :func:`redact_url`, or None.

    Whitespace or a quote ends the URL for any reader of a message, so the mask would stop short;
    a second raw ``@`` before the query makes SQLAlchemy read the password's tail as the host
    name, which the driver then prints in its errors ("failed to resolve host 'tail@db'"), where
    no URL is left to recognise. Such URLs are refused (by the locator parser and Config) with
    this text; the fix is always to percent-encode.
    """
    if any(character.isspace() or character in "'\";" for character in url):
        return "contains whitespace, quotes or semicolons; percent-encode them in passwords and names (a space is %20)"
    authority = url.partition("://")[2].partition("?")[0]
    if authority.count("@") > 1:
        return "has more than one '@' before its query; percent-encode an '@' in a user name or password as %40"
    return None
