"""Which database a catalog URL names, answered without importing SQLAlchemy for the common
spellings: a plain SQLite file (the embedded default) and a plain PostgreSQL URL. Toil starts a
process per job, and SQLAlchemy's import is ~130 ms of each one's start-up.

This module sits below :mod:`jobstore.catalog.engine` (which imports it and re-exports
:func:`sqlite_path` and :func:`parse_catalog_url`) and never imports it back; SQLAlchemy itself is
imported only inside :func:`parse_catalog_url`, for the spellings the plain parsers leave alone.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from jobstore.catalog.idle import IDLE_TIMEOUT, idle_timeout_option
from jobstore.errors import InvalidLocatorError
from jobstore.redact import redact_url

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

_SQLITE_PREFIXES = ("sqlite:///", "sqlite+pysqlite:///")


def sqlite_path(url: str) -> str | None:
    """The database file of a SQLite URL, or None for another dialect or an in-memory database."""
    for prefix in _SQLITE_PREFIXES:
        if url.startswith(prefix) and "?" not in url:
            path = unquote(url[len(prefix) :])
            return None if path in ("", ":memory:") else os.path.abspath(path)
    if not url.lower().startswith("sqlite"):
        return None
    parsed = parse_catalog_url(url)  # other spellings: SQLAlchemy's parser
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return os.path.abspath(str(parsed.database))


def parse_catalog_url(url: str) -> URL:
    """SQLAlchemy's parse of a catalog URL; a malformed one is an :class:`InvalidLocatorError`.

    SQLAlchemy is imported here, on first use, never by importing this module.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url)
    except ArgumentError:
        raise InvalidLocatorError(
            f"{redact_url(url)!r} is not a valid SQLAlchemy database URL; use sqlite:///path or "
            "postgresql+psycopg://user@host:port/database."
        ) from None


def dialect_name(url: str) -> str:
    """``sqlite`` or ``postgresql`` (validated properly when the engine is made)."""
    return "sqlite" if url.lower().startswith("sqlite") else "postgresql"


_POSTGRES_SCHEMES = ("postgresql", "postgresql+psycopg")
#: user[:password]@ host (no brackets: IPv6 literals go to SQLAlchemy's parser) [:port]
_NETLOC = re.compile(r"(?:(?P<user>[^:@/]*)(?::(?P<password>[^@]*))?@)?(?P<host>[^@:/\[\]]*)(?::(?P<port>\d+))?")


#: The URL option that sets psycopg's ``prepare_threshold``: how many runs of one statement before
#: psycopg prepares it on the server. ``none`` turns server-side prepared statements off, which a
#: pooler in transaction mode (PgBouncer before 1.21, or without ``max_prepared_statements``)
#: needs: it hands each transaction to any server connection, and a statement prepared on one is
#: unknown to the next.
PREPARE_THRESHOLD = "prepare_threshold"


def prepare_threshold(value: str, url: str = "") -> int | None:
    """The ``prepare_threshold`` URL option as psycopg takes it: ``none`` or a count >= 0."""
    if value.lower() == "none":
        return None
    if value.isdigit():
        return int(value)
    where = f" in {redact_url(url)!r}" if url else ""
    raise InvalidLocatorError(
        f"{PREPARE_THRESHOLD}={value!r}{where} is not valid: give a whole number of runs before a statement is "
        f"prepared on the server (psycopg's default is 5), or {PREPARE_THRESHOLD}=none behind a pooler in "
        "transaction mode such as PgBouncer."
    )


_OPTION_READERS: dict[str, Callable[[str, str], Any]] = {
    PREPARE_THRESHOLD: prepare_threshold,
    IDLE_TIMEOUT: idle_timeout_option,
}


def jobstore_options(query: Mapping[str, Any], url: str) -> dict[str, Any]:
    """jobstore's own options found in a PostgreSQL URL's ``query`` (``prepare_threshold``,
    ``idle_timeout``), read into what psycopg and the catalog take; libpq would refuse them, so
    callers take them out of the connection string. A bad value is an InvalidLocatorError."""
    return {name: read(str(query[name]), url) for name, read in _OPTION_READERS.items() if name in query}


def postgres_connect_args(url: str) -> dict[str, Any] | None:
    """``psycopg.connect()`` keyword arguments for a plain PostgreSQL URL, or None.

    The same arguments the engine's URL gives (a test holds the two equal over many spellings),
    parsed without SQLAlchemy. ``pool_size`` is the engine's and is left out; ``prepare_threshold``
    is converted (``none`` is None) and ``idle_timeout`` (jobstore's, see ``idle.py``) made a
    number; an invalid value of either raises :class:`InvalidLocatorError`. None for anything
    unusual (another driver, repeated or invalid options, IPv6 literals): the caller then asks
    SQLAlchemy, which also reports what is wrong.
    """
    scheme, separator, _ = url.partition("://")
    if not separator or scheme not in _POSTGRES_SCHEMES:
        return None
    parts = urlsplit(url)
    netloc = _NETLOC.fullmatch(parts.netloc)
    if netloc is None or parts.fragment:
        return None
    arguments: dict[str, Any] = {}
    for name, key in (("host", "host"), ("user", "user"), ("password", "password")):
        value = netloc.group(name)
        if value:
            arguments[key] = unquote(value)
    if netloc.group("port"):
        arguments["port"] = int(netloc.group("port"))
    database = unquote(parts.path[1:]) if parts.path.startswith("/") else parts.path
    if database:
        arguments["dbname"] = database
    try:
        options = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        return None
    for key, value in options:
        if key in arguments:
            return None  # repeated (SQLAlchemy makes a list of it), or clashing with the URL's parts
        if key == "pool_size":
            if not value.isdigit() or int(value) < 1:
                return None  # invalid: the engine's parser says so
            continue
        # Read at once: an invalid value is reported even where a later option sends the URL on to
        # SQLAlchemy's parser (which drops blank values).
        arguments[key] = _OPTION_READERS[key](value, url) if key in _OPTION_READERS else value
    arguments.setdefault("connect_timeout", 10)
    return arguments
