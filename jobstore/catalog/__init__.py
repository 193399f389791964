"""The SQL catalog: its row operations, the schema gate, and the engine for reports and maintenance.

``Catalog`` is the only object above this package that touches the database. The store runs every
row operation through ``Catalog.operations`` (``operations.py``: one implementation per operation,
on the driver's own connection, inside and outside ``batch()``). Reports and maintenance run their
queries through SQLAlchemy in ``read`` / ``write`` transactions, handed a :class:`CatalogTx` that
never leaves this package: maintenance asks ``maintenance.MaintenanceCatalog``, and ``jobstore db``
asks ``admin``.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from jobstore.catalog.location import (
    dialect_name,
    jobstore_options,
    parse_catalog_url,
    postgres_connect_args,
    sqlite_path,
)
from jobstore.catalog.operations import CatalogOperations, PostgresOperations, SQLiteOperations
from jobstore.catalog.retry import SQLITE_BUSY_TIMEOUT_MS, run_with_retries
from jobstore.catalog.rows import HEAD_REVISION, FileRow, JobFields, NewFile, StoreRow
from jobstore.catalog.sqlite_file import prepare_sqlite_file
from jobstore.errors import CatalogError, NoSuchJobStoreException
from jobstore.redact import redact_url

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.engine import Connection

    from jobstore.catalog.migrate import SchemaState


__all__ = ["Catalog", "CatalogTx", "FileRow", "JobFields", "NewFile", "StoreRow"]

T = TypeVar("T")


class CatalogTx(NamedTuple):
    """One SQLAlchemy transaction of a report or a maintenance task, and the store it is about."""

    connection: Connection
    store_id: int


class Catalog:
    """One catalog database, shared by every store whose rows it holds."""

    def __init__(self, url: str, *, durability: str = "normal", pool_size: int = 5) -> None:
        self.url = url
        self._durability = durability
        self._pool_size = pool_size
        self._engine: Engine | None = None
        self._read_engine_: Engine | None = None
        #: The catalog named in messages (password masked).
        self.where = redact_url(url)
        #: Every row operation (SQLiteOperations or PostgresOperations). On SQLite it needs no
        #: SQLAlchemy: the engine is only made when a migration, a report or maintenance needs it.
        self.operations: CatalogOperations
        database = sqlite_path(url)
        if database is not None:
            self.operations = SQLiteOperations(
                database,
                synchronous="FULL" if durability == "full" else "NORMAL",
                busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS,
            )
        else:
            # A plain PostgreSQL URL is parsed here and the engine made on first use, as on SQLite;
            # anything else goes through SQLAlchemy's parser now, which validates it.
            arguments = postgres_connect_args(url) if importlib.util.find_spec("psycopg") else None
            if arguments is None:
                arguments = _psycopg_connect_args(self._make_engines(), url)
            self.operations = PostgresOperations(arguments, self.where)

    def _make_engines(self) -> Engine:
        if self._engine is None:
            from jobstore.catalog.engine import READ_ONLY, make_engine

            engine = make_engine(self.url, durability=self._durability, pool_size=self._pool_size)
            read_options: dict[str, object] = {READ_ONLY: True}
            if engine.dialect.name == "postgresql":
                # Reads are single statements or tolerate statement-level snapshots: autocommit
                # saves the BEGIN and COMMIT round trips on every load.
                read_options["isolation_level"] = "AUTOCOMMIT"
            self._read_engine_ = engine.execution_options(**read_options)
            self._engine = engine
        return self._engine

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, made (and SQLAlchemy imported) on first use."""
        return self._make_engines()

    @property
    def _read_engine(self) -> Engine:
        self._make_engines()
        assert self._read_engine_ is not None
        return self._read_engine_

    @property
    def dialect(self) -> str:
        return dialect_name(self.url)

    def __repr__(self) -> str:
        return f"Catalog({self.where!r})"

    def dispose(self) -> None:
        self.operations.close()
        if self._engine is not None:
            self._engine.dispose()

    # --- schema ------------------------------------------------------------------------------

    def schema_state(self, where: str) -> SchemaState:
        from jobstore.catalog.migrate import schema_state

        def attempt() -> SchemaState:
            with self._read_engine.connect() as connection:
                return schema_state(connection, where)

        return run_with_retries(self.where, attempt, describe="read the schema revision")

    def create_schema_if_fresh(self, where: str, store_name: str = "") -> StoreRow | None:
        """Create the schema of a new catalog through the migrations; refuse an outdated one.
        Returns the row of the store named ``store_name`` if the catalog holds one already.

        A new SQLite file gets the migrations' result replayed from a snapshot instead (the same
        objects, checked by tests/test_sqlite_schema.py), without loading Alembic; a catalog
        already at the head revision is recognised, and the store looked up, by one query (one
        round trip for the next store of a shared PostgreSQL database)."""
        operations = self.operations
        if isinstance(operations, SQLiteOperations):
            directory = os.path.dirname(os.path.abspath(operations.path))
            if not os.path.isdir(directory):
                raise CatalogError(
                    f"The SQLite catalog {operations.path!r} cannot be created: its directory {directory!r} does "
                    "not exist. Create the directory first (a file: locator creates its own)."
                )
            prepare_sqlite_file(operations.path)  # as the engine would: no network file system, mode 0600
            if operations.create_schema_if_empty():
                return None  # it held nothing, so no store
        # Anything not at this code's revision takes the full check, which raises the right error.
        revision, found = operations.revision_and_store(store_name)
        if revision == HEAD_REVISION:
            return found
        if self.schema_state(where) == "fresh":
            from jobstore.catalog.migrate import upgrade

            run_with_retries(self.where, lambda: upgrade(self.engine), describe="create the schema")
        # Another process may have created it concurrently, or it may be outdated: check again.
        self.schema_state(where)
        return operations.revision_and_store(store_name)[1]

    def find_store(self, where: str, name: str) -> StoreRow | None:
        """The row of the store named ``name``, after checking the catalog's schema revision: on
        a catalog at this code's revision one query; a fresh, outdated or newer catalog takes the
        full check, which raises the right error."""
        revision, found = self.operations.revision_and_store(name)
        if revision == HEAD_REVISION:
            return found
        if self.schema_state(where) == "fresh":
            raise NoSuchJobStoreException(where, "Its catalog holds no jobstore schema.")
        return self.operations.revision_and_store(name)[1]

    # --- transactions ------------------------------------------------------------------------

    def read(self, store_id: int, work: Callable[[CatalogTx], T], *, describe: str) -> T:
        """Run ``work`` in a read transaction (a consistent snapshot), retrying transient failures."""

        def attempt() -> T:
            with self._read_engine.connect() as connection, connection.begin():
                return work(CatalogTx(connection, store_id))

        return run_with_retries(self.where, attempt, describe=describe)

    def write(self, store_id: int, work: Callable[[CatalogTx], T], *, describe: str) -> T:
        """Run ``work`` in a write transaction, committed on return, retrying transient failures."""

        def attempt() -> T:
            with self.engine.begin() as connection:
                return work(CatalogTx(connection, store_id))

        return run_with_retries(self.where, attempt, describe=describe)

    def run_raw(self, work: Callable[[Connection], T], *, describe: str, write: bool = True) -> T:
        """Run ``work`` on a bare connection in one transaction (store-level operations)."""

        def attempt() -> T:
            engine = self.engine if write else self._read_engine
            with engine.connect() as connection, connection.begin():
                return work(connection)

        return run_with_retries(self.where, attempt, describe=describe)


def _psycopg_connect_args(engine: Engine, catalog_url: str) -> dict[str, Any]:
    """psycopg.connect() arguments for the engine's URL (pool options already removed), with the
    ``prepare_threshold`` and ``idle_timeout`` of ``catalog_url`` (which the engine moved out of its
    URL)."""
    url = engine.url
    arguments: dict[str, Any] = url.translate_connect_args(username="user", database="dbname")
    arguments.update({key: value for key, value in url.query.items() if isinstance(value, str)})
    arguments.setdefault("connect_timeout", 10)
    arguments.update(jobstore_options(parse_catalog_url(catalog_url).query, catalog_url))
    return arguments
