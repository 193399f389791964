"""The catalog's one retry loop, and which failures it retries, without importing SQLAlchemy.

Transient failures (SQLite busy past the timeout, PostgreSQL serialization failures and deadlocks,
dropped connections) are retried here and nowhere else. Errors arrive either from SQLAlchemy
(``DBAPIError``, wrapping the driver's exception in ``.orig``) or raw from ``sqlite3`` on the fast
path; both are classified by the same rules. SQLAlchemy is only consulted when it is already
imported: a process that never loaded it (a Toil worker on the SQLite fast path) cannot be holding
one of its exceptions.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import sys
import time
from collections.abc import Callable
from typing import TypeVar

from jobstore.errors import CatalogConnectionLimitError, CatalogError, CatalogUnavailableError
from jobstore.redact import redact_url

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How long a SQLite writer waits for the lock before SQLite reports "busy".
SQLITE_BUSY_TIMEOUT_MS = 120_000

RETRY_ATTEMPTS = 8
_PG_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01", "55P03", "57P01", "57P02", "57P03", "08000", "08003", "08006"})
_TRANSIENT_PHRASES = (
    "database is locked",
    "database is busy",
    "server closed the connection",
    "connection refused",
    "terminating connection",
    "consuming input failed",
    "the database system is",
)

#: "prepared statement ... already exists" / "... does not exist": psycopg prepared a statement on
#: one server connection and a pooler in transaction mode ran the next transaction on another.
_PREPARED_STATEMENT_CLASHES = frozenset({"42P05", "26000"})

#: A server that answers but refuses the login or the database: the same attempt fails the same way
#: (retrying would only add seconds of silence before the same answer).
_REFUSAL_PHRASES = (
    "password authentication failed",
    "authentication failed",
    "no pg_hba.conf entry",
    "does not exist",
    "permission denied",
)

#: The server or the role has no connection slot free (SQLSTATE 53300, which libpq reports at
#: connect time without its code). Slots free up as other clients finish, so this is waited out
#: for longer than other transient failures before it is explained.
_CONNECTION_LIMIT_PHRASES = (
    "too many clients already",
    "remaining connection slots are reserved",
    "too many connections for role",
    "too many connections for database",
)
_CONNECTION_LIMIT_SQLSTATE = "53300"
#: How long an operation waits for a connection slot, in seconds.
CONNECTION_LIMIT_WAIT_SECONDS = 60.0


def is_catalog_error(error: BaseException) -> bool:
    """A database failure (as opposed to a bug or a failure of our own code)."""
    if isinstance(error, sqlite3.Error):
        return True
    for module_name, class_name in (("sqlalchemy.exc", "DBAPIError"), ("psycopg", "Error")):
        module = sys.modules.get(module_name)
        kind = getattr(module, class_name, None) if module is not None else None
        if kind is not None and isinstance(error, kind):
            return True
    return False


def _driver_error(error: BaseException) -> BaseException:
    return getattr(error, "orig", None) or error


def is_connection_limit(error: BaseException) -> bool:
    """True when a PostgreSQL server refused a new connection for want of a free slot."""
    original = _driver_error(error)
    if getattr(original, "sqlstate", None) == _CONNECTION_LIMIT_SQLSTATE:
        return True
    text = str(original).lower()
    return "psycopg" in type(original).__module__ and any(phrase in text for phrase in _CONNECTION_LIMIT_PHRASES)


def is_refusal(error: BaseException) -> bool:
    """True when a PostgreSQL server answered but refused the login (user, password, database)."""
    original = _driver_error(error)
    if getattr(original, "sqlstate", None) in _PREPARED_STATEMENT_CLASHES:
        return False  # "prepared statement ... does not exist" is not about the login
    text = str(original).lower()
    return "psycopg" in type(original).__module__ and any(phrase in text for phrase in _REFUSAL_PHRASES)


def is_transient(error: BaseException) -> bool:
    """True for failures that a fresh attempt of the same transaction can cure."""
    if getattr(error, "connection_invalidated", False):
        return True
    if not is_catalog_error(error):
        return False
    original = _driver_error(error)
    if isinstance(original, sqlite3.Error) and not isinstance(original, sqlite3.OperationalError):
        return False  # integrity, programming and data errors do not cure themselves
    if is_refusal(error):
        return False
    if getattr(original, "broken", False) or type(original).__name__ in ("OperationalError", "InterfaceError"):
        if "psycopg" in type(original).__module__ and getattr(original, "sqlstate", None) is None:
            return True  # psycopg lost its connection (server restarted, network): a new one will do
    if getattr(original, "sqlstate", None) in _PG_RETRYABLE_SQLSTATES:
        return True
    text = str(original).lower()
    return any(phrase in text for phrase in _TRANSIENT_PHRASES)


def run_with_retries(where: str, work: Callable[[], T], *, describe: str) -> T:
    """Run ``work`` (one whole transaction), retrying transient failures with jittered backoff.

    ``where`` names the catalog in messages (already redacted). ``work`` must be safe to run again
    from the start: it opens its own transaction each time.
    """
    delay = 0.05
    attempt = 0
    waiting_for_a_slot_since: float | None = None
    while True:
        attempt += 1
        try:
            return work()
        except Exception as error:
            if not is_catalog_error(error):
                raise
            original = _driver_error(error)
            if is_connection_limit(error):
                now = time.monotonic()
                if waiting_for_a_slot_since is None:
                    waiting_for_a_slot_since = now
                if now - waiting_for_a_slot_since >= CONNECTION_LIMIT_WAIT_SECONDS:
                    raise CatalogConnectionLimitError(
                        f"The catalog ({where}) had no free connection for {CONNECTION_LIMIT_WAIT_SECONDS:.0f} s "
                        f"while trying to {describe}: {' '.join(str(original).split())[:200]}. Every process "
                        "holds one connection per thread that uses the store: put PgBouncer in front of the "
                        "server (add ?prepare_threshold=none to the catalog URL), raise the server's "
                        "max_connections, or run fewer workers at once. Nothing was committed."
                    ) from None
                log.info("catalog has no free connection while trying to %s; waiting", describe)
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 2.0)
                attempt -= 1  # waiting for a slot does not use up the retries of other failures
                continue
            if getattr(original, "sqlstate", None) in _PREPARED_STATEMENT_CLASHES:
                raise CatalogError(
                    f"The catalog ({where}) lost a prepared statement while trying to {describe}: "
                    f"{redact_url(str(original)).strip()[:200]}. This happens behind a connection pooler in "
                    "transaction mode (PgBouncer): add ?prepare_threshold=none to the catalog URL, or set "
                    "max_prepared_statements in PgBouncer 1.21 or later. Nothing was committed."
                ) from None
            if is_refusal(error):
                reason = " ".join(redact_url(str(original)).split())[:300]
                raise CatalogError(
                    f"The catalog ({where}) refused the login: {reason}. Check the user, the password "
                    "(PGPASSWORD or ~/.pgpass), the database name and the server's pg_hba.conf."
                ) from None
            if not is_transient(error):
                # Callers see our errors, never a driver's: disk full, read-only database, a
                # damaged file. Nothing was committed.
                raise CatalogError(
                    f"The catalog ({where}) refused to {describe}: {type(original).__name__}: "
                    f"{redact_url(str(original)).strip()[:300]}. Nothing was committed. If its disk is full or "
                    "read-only, fix that and retry; otherwise check it with `jobstore db check LOCATOR`."
                ) from error
            if attempt == RETRY_ATTEMPTS:
                raise CatalogUnavailableError(
                    f"The catalog ({where}) failed {attempt} times while trying to {describe}: "
                    f"{type(original).__name__}. Check that the database server is running and reachable."
                ) from None
            log.info("transient catalog failure while trying to %s (attempt %d): %s", describe, attempt, original)
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 2.0)
