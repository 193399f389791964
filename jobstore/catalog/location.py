"""Which database a catalog URL names, answered without importing SQLAlchemy when the URL is a
plain SQLite file (the embedded default, and every Toil worker's catalog)."""

from __future__ import annotations

import os
from urllib.parse import unquote

_SQLITE_PREFIXES = ("sqlite:///", "sqlite+pysqlite:///")


def sqlite_path(url: str) -> str | None:
    """The database file of a SQLite URL, or None for another dialect or an in-memory database."""
    for prefix in _SQLITE_PREFIXES:
        if url.startswith(prefix) and "?" not in url:
            path = unquote(url[len(prefix) :])
            return None if path in ("", ":memory:") else os.path.abspath(path)
    if not url.lower().startswith("sqlite"):
        return None
    from jobstore.catalog.engine import parse_catalog_url  # other spellings: SQLAlchemy's parser

    parsed = parse_catalog_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return os.path.abspath(str(parsed.database))


def dialect_name(url: str) -> str:
    """``sqlite`` or ``postgresql`` (validated properly when the engine is made)."""
    return "sqlite" if url.lower().startswith("sqlite") else "postgresql"
