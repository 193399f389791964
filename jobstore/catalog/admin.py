"""The catalog's schema administration, by URL: what ``jobstore db`` asks of a catalog.

This is the command line's one door into the catalog package (the store is the other): revisions,
upgrades and the SQL of an upgrade. Every failure arrives as a :class:`~jobstore.errors.JobStoreError`
(the database's and Alembic's own exceptions never leave), and nothing here creates a catalog that
was not there: a SQLite URL naming a missing file is refused before anything opens it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from jobstore.catalog import Catalog
from jobstore.catalog.location import sqlite_path
from jobstore.catalog.retry import run_with_retries
from jobstore.catalog.rows import HEAD_REVISION
from jobstore.errors import CatalogError, NoSuchJobStoreException
from jobstore.redact import redact_url

if TYPE_CHECKING:
    from jobstore.catalog.migrate import SchemaState

__all__ = [
    "check_schema",
    "head_revision",
    "schema_revision",
    "sqlite_database",
    "upgrade_schema",
    "upgrade_script",
]

T = TypeVar("T")


def head_revision() -> str:
    """The newest schema revision this code's migrations know."""
    return HEAD_REVISION


def sqlite_database(url: str) -> str | None:
    """The database file of a SQLite catalog URL (absolute), or None for another dialect."""
    return sqlite_path(url)


def _refuse_missing_sqlite(url: str, where: str) -> None:
    database = sqlite_path(url)
    if database is not None and not os.path.exists(database):
        # Never create an empty catalog file where a store was expected.
        raise NoSuchJobStoreException(where, f"There is no catalog at {database}.")


def _with_catalog(url: str, work: Callable[[Catalog], T]) -> T:
    catalog = Catalog(url)
    try:
        return work(catalog)
    finally:
        catalog.dispose()


def schema_revision(url: str, *, missing_is_empty: bool = False) -> str | None:
    """The catalog's schema revision, or None if it holds no jobstore schema yet. A SQLite file
    that does not exist is refused (never created), or taken as empty with ``missing_is_empty``."""
    database = sqlite_path(url)
    if missing_is_empty and database is not None and not os.path.exists(database):
        return None
    _refuse_missing_sqlite(url, redact_url(url))

    from jobstore.catalog.migrate import current_revision, has_version_table

    def read(catalog: Catalog) -> str | None:
        def attempt() -> str | None:
            with catalog.engine.connect() as connection:
                return current_revision(connection) if has_version_table(connection) else None

        return run_with_retries(catalog.where, attempt, describe="read the schema revision")

    return _with_catalog(url, read)


def check_schema(url: str, where: str) -> SchemaState:
    """'fresh' or 'current'; raises SchemaTooOldError / SchemaTooNewError (with the fix) otherwise."""
    _refuse_missing_sqlite(url, where)
    return _with_catalog(url, lambda catalog: catalog.schema_state(where))


def upgrade_schema(url: str, revision: str = "head") -> tuple[str | None, str]:
    """Migrate the catalog to ``revision``: (revision before, revision after). Safe to run concurrently."""
    from jobstore.catalog.migrate import upgrade

    def run(catalog: Catalog) -> tuple[str | None, str]:
        return run_with_retries(
            catalog.where, lambda: _alembic(revision, lambda: upgrade(catalog.engine, revision)), describe="upgrade"
        )

    return _with_catalog(url, run)


def upgrade_script(url: str, revision: str = "head", start: str | None = None) -> str:
    """The SQL an upgrade from ``start`` (None: an empty catalog) to ``revision`` would run."""
    from jobstore.catalog.migrate import upgrade_sql

    return _alembic(revision, lambda: upgrade_sql(url, revision, start=start))


def _alembic(revision: str, work: Callable[[], T]) -> T:
    """Alembic's refusals (an unknown revision, a downgrade asked of upgrade) as a CatalogError."""
    from alembic.util.exc import CommandError

    try:
        return work()
    except CommandError as error:
        raise CatalogError(
            f"Cannot upgrade to revision {revision!r}: {error}. Use 'head' or a revision listed by "
            "`alembic history` in jobstore/migrations."
        ) from None
