"""The SQL catalog: engine ownership, transactions with retries, the schema gate.

``Catalog`` is the only object above this package that touches the database. The store asks it for
a transaction (``read`` / ``write``) and gets a :class:`CatalogTx` whose methods are the queries.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from jobstore.catalog.direct import DirectCatalog, DirectPostgres, DirectSQLite
from jobstore.catalog.location import dialect_name, postgres_connect_args, sqlite_path
from jobstore.catalog.retry import SQLITE_BUSY_TIMEOUT_MS, is_transient, run_with_retries
from jobstore.catalog.rows import HEAD_REVISION, FileRow, JobFields, NewFile, StoreRow
from jobstore.catalog.sqlite_file import prepare_sqlite_file
from jobstore.errors import CatalogError, CatalogUnavailableError
from jobstore.redact import redact_url

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.engine import Connection

    from jobstore.catalog.migrate import SchemaState
    from jobstore.catalog.queries import CatalogTx


def __getattr__(name: str) -> Any:
    # CatalogTx lives with the queries, which import SQLAlchemy: loaded on first use only.
    if name == "CatalogTx":
        from jobstore.catalog.queries import CatalogTx

        return CatalogTx
    raise AttributeError(name)


__all__ = ["Catalog", "CatalogTx", "FileRow", "JobFields", "NewFile", "StoreRow"]

T = TypeVar("T")


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
        #: The fast path for single-row operations (DirectSQLite or DirectPostgres). On SQLite it
        #: needs no SQLAlchemy: the engine is only made when an operation off the fast path needs it.
        self.direct: DirectCatalog
        database = sqlite_path(url)
        if database is not None:
            self.direct = DirectSQLite(
                database,
                synchronous="FULL" if durability == "full" else "NORMAL",
                busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS,
            )
        else:
            # A plain PostgreSQL URL is parsed here and the engine made on first use, as on SQLite;
            # anything else goes through SQLAlchemy's parser now, which validates it.
            arguments = postgres_connect_args(url) if importlib.util.find_spec("psycopg") else None
            if arguments is None:
                arguments = _psycopg_connect_args(self._make_engines())
            self.direct = DirectPostgres(arguments)

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
        self.direct.close()
        if self._engine is not None:
            self._engine.dispose()

    def run_direct(self, work: Callable[[], T], *, describe: str) -> T:
        """Run a fast-path operation with the catalog's one retry policy."""
        return run_with_retries(self.where, work, describe=describe)

    # --- schema ------------------------------------------------------------------------------

    def schema_state(self, where: str) -> SchemaState:
        from jobstore.catalog.migrate import schema_state

        with self._read_engine.connect() as connection:
            return schema_state(connection, where)

    def create_schema_if_fresh(self, where: str, store_name: str = "") -> StoreRow | None:
        """Create the schema of a new catalog through the migrations; refuse an outdated one.
        Returns the row of the store named ``store_name`` if the catalog holds one already.

        A new SQLite file gets the migrations' result replayed from a snapshot instead (the same
        objects, checked by tests/test_sqlite_schema.py), without loading Alembic; a catalog
        already at the head revision is recognised, and the store looked up, by one fast-path
        query (one round trip for the next store of a shared PostgreSQL database)."""
        direct = self.direct
        if isinstance(direct, DirectSQLite):
            directory = os.path.dirname(os.path.abspath(direct.path))
            if not os.path.isdir(directory):
                raise CatalogError(
                    f"The SQLite catalog {direct.path!r} cannot be created: its directory {directory!r} does not "
                    "exist. Create the directory first (a file: locator creates its own)."
                )
            prepare_sqlite_file(direct.path)  # as the engine would: no network file system, mode 0600
            if self.run_direct(direct.create_schema_if_empty, describe="create the catalog's schema"):
                return None  # it held nothing, so no store
        # Anything not at this code's revision takes the full check, which raises the right error.
        revision, found = self.run_direct(
            lambda: direct.revision_and_store(store_name), describe="check the catalog's schema"
        )
        if revision == HEAD_REVISION:
            return found
        if self.schema_state(where) == "fresh":
            from jobstore.catalog.migrate import upgrade

            upgrade(self.engine)
        # Another process may have created it concurrently, or it may be outdated: check again.
        self.schema_state(where)
        return self.run_direct(lambda: direct.revision_and_store(store_name)[1], describe="look up the store")

    # --- transactions ------------------------------------------------------------------------

    def read(self, store_id: int, work: Callable[[CatalogTx], T], *, describe: str) -> T:
        """Run ``work`` in a read transaction (a consistent snapshot), retrying transient failures."""

        from jobstore.catalog.queries import CatalogTx

        def attempt() -> T:
            with self._read_engine.connect() as connection, connection.begin():
                return work(CatalogTx(connection, store_id))

        return run_with_retries(self.where, attempt, describe=describe)

    def write(self, store_id: int, work: Callable[[CatalogTx], T], *, describe: str) -> T:
        """Run ``work`` in a write transaction, committed on return, retrying transient failures."""

        from jobstore.catalog.queries import CatalogTx

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

    @contextmanager
    def open_transaction(self, store_id: int) -> Iterator[CatalogTx]:
        """One explicit write transaction spanning many operations (``batch()``). Not retried:
        the caller's whole batch either commits or raises (a CatalogError for database failures,
        never the driver's exception)."""
        from sqlalchemy.exc import DBAPIError

        from jobstore.catalog.queries import CatalogTx

        try:
            with self.engine.begin() as connection:
                yield CatalogTx(connection, store_id)
        except DBAPIError as error:
            kind = CatalogUnavailableError if is_transient(error) else CatalogError
            raise kind(
                f"The catalog ({redact_url(self.engine.url.render_as_string(hide_password=True))}) failed during "
                f"a batch: {type(error.orig).__name__}: {redact_url(str(error.orig)).strip()[:300]}. Nothing "
                "of the batch was committed; run it again (once the database is reachable)."
            ) from error


def _psycopg_connect_args(engine: Engine) -> dict[str, Any]:
    """psycopg.connect() arguments for the engine's URL (pool options already removed)."""
    url = engine.url
    arguments: dict[str, Any] = url.translate_connect_args(username="user", database="dbname")
    arguments.update({key: value for key, value in url.query.items() if isinstance(value, str)})
    arguments.setdefault("connect_timeout", 10)
    return arguments
