"""Engines and transaction policy: SQLite pragmas, PostgreSQL pooling, and the one retry loop.

SQLite (Prefect's recipe): WAL, ``foreign_keys=ON``, a long ``busy_timeout``, and write transactions
begun with ``BEGIN IMMEDIATE``, because a deferred read-then-write transaction fails at once under
contention whatever the timeout. Reads use a plain deferred ``BEGIN`` so they never queue behind a
writer (WAL gives them a snapshot).

PostgreSQL: a pooled engine; a restarted server costs one retried transaction (the dead
connections are invalidated and replaced), not a dead workflow.

Transient failures (SQLite busy past the timeout, PostgreSQL serialization failures and deadlocks,
dropped connections) are retried in exactly one place: :func:`run_with_retries`.
"""

from __future__ import annotations

import logging
import os
import time
import weakref
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry

from jobstore.catalog.idle import DEFAULT_IDLE_TIMEOUT_SECONDS, IDLE_TIMEOUT, application_name, release_when_idle
from jobstore.catalog.location import PREPARE_THRESHOLD, jobstore_options, parse_catalog_url, sqlite_path
from jobstore.catalog.retry import SQLITE_BUSY_TIMEOUT_MS, is_transient, run_with_retries
from jobstore.catalog.sqlite_file import prepare_sqlite_file
from jobstore.catalog.sqlite_pragmas import connection_pragmas
from jobstore.errors import (
    InvalidLocatorError,
    MissingDependencyError,
)
from jobstore.redact import redact_url

__all__ = [
    "READ_ONLY",
    "SQLITE_BUSY_TIMEOUT_MS",
    "is_transient",
    "make_engine",
    "parse_catalog_url",
    "run_with_retries",
    "sqlite_path",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


#: Execution option that marks a connection as read-only, so its transactions begin deferred.
READ_ONLY = "jobstore_read_only"


def make_engine(url: str, *, durability: str = "normal", pool_size: int = 5) -> Engine:
    """Create the engine for a catalog URL, with our dialect policy applied."""
    parsed = parse_catalog_url(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            return _make_sqlite_engine(parsed, durability)
        if parsed.get_backend_name() == "postgresql":
            return _make_postgres_engine(parsed, pool_size)
    except (SQLAlchemyError, ImportError) as error:
        # An unknown driver ("postgresql+nosuch") or option: the URL is what is wrong.
        raise InvalidLocatorError(
            f"Catalog URL {redact_url(url)!r} cannot be used: {error}. Use sqlite:///path or "
            "postgresql+psycopg://user@host:port/database (pip install 'jobstore[postgres]')."
        ) from None
    raise InvalidLocatorError(
        f"Catalog URL {redact_url(url)!r} uses the {parsed.get_backend_name()!r} database; "
        "jobstore supports sqlite and postgresql."
    )


def _make_sqlite_engine(url: URL, durability: str) -> Engine:
    if url.database in (None, "", ":memory:"):
        raise InvalidLocatorError("An in-memory SQLite catalog cannot be shared or resumed; give a file path.")
    prepare_sqlite_file(os.path.abspath(str(url.database)))
    synchronous = "FULL" if durability == "full" else "NORMAL"
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Let us issue BEGIN ourselves (the driver's implicit BEGIN is always deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in connection_pragmas(synchronous=synchronous, busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _make_postgres_engine(url: URL, pool_size: int) -> Engine:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise MissingDependencyError("psycopg", "postgres", "A PostgreSQL catalog") from None
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    # A pool size in the URL (?pool_size=N) wins over Config.poolSize: one string can then carry a
    # small pool for workers and a larger one for the leader.
    if "pool_size" in url.query:
        try:
            pool_size = int(str(url.query["pool_size"]))
        except ValueError:
            raise InvalidLocatorError(
                f"pool_size in {redact_url(url.render_as_string(hide_password=True))!r} must be an integer."
            ) from None
        url = url.difference_update_query(["pool_size"])
    if pool_size < 1:
        raise InvalidLocatorError(f"The catalog pool size must be at least 1, not {pool_size}.")
    options = jobstore_options(url.query, url.render_as_string(hide_password=True))
    url = url.difference_update_query(list(options))
    connect_args: dict[str, Any] = {"connect_timeout": 10}
    if PREPARE_THRESHOLD in options:  # psycopg's keyword, not a libpq connection-string option
        connect_args[PREPARE_THRESHOLD] = options[PREPARE_THRESHOLD]
    idle_timeout = float(options.get(IDLE_TIMEOUT, DEFAULT_IDLE_TIMEOUT_SECONDS))
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        # No pool_pre_ping: it costs a round trip on every checkout. A connection that died with a
        # restarted server fails its first statement instead; SQLAlchemy then invalidates the pool
        # and run_with_retries runs the whole transaction again on a fresh connection.
        pool_recycle=3600,
        connect_args=connect_args,
    )

    @event.listens_for(engine, "do_connect")
    def _name_the_client(_dialect: Any, _record: Any, _args: Any, kwargs: dict[str, Any]) -> None:
        kwargs.setdefault("application_name", application_name())  # the pid at connect time

    _PoolIdleCloser(engine, idle_timeout).register()
    return engine


class _PoolIdleCloser:
    """Closes the engine pool's idle connections once none has been checked out for
    ``idle_timeout`` seconds (see ``idle.py``); checked-out connections are never touched."""

    def __init__(self, engine: Engine, idle_timeout: float) -> None:
        self.idle_timeout = idle_timeout
        self._engine = weakref.ref(engine)
        self._last_used = time.monotonic()
        event.listen(engine, "checkin", self._touch)
        event.listen(engine, "checkout", self._touch)

    def register(self) -> None:
        release_when_idle(self)

    def _touch(self, *_args: Any) -> None:
        self._last_used = time.monotonic()

    def close_idle(self, now: float) -> None:
        engine = self._engine()
        if engine is None or now - self._last_used < self.idle_timeout:
            return
        pool = engine.pool
        if pool.checkedout() == 0 and pool.checkedin() > 0:  # type: ignore[attr-defined]
            pool.dispose()  # closes the checked-in connections; the pool opens new ones on demand
