"""Record the SQL a store's catalog operations send on this thread's driver connection (test-only).

The operations (``jobstore/catalog/operations.py``) run on one driver connection per thread; the
recorder wraps this thread's connection so that a test can count round trips or check that an
operation sent no write, on SQLite and PostgreSQL alike, without replacing any of our code.
"""

from __future__ import annotations

from typing import Any


class RecordingConnection:
    """A driver connection that records every statement sent through it."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self.sent: list[str] = []

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        self.sent.append(sql)
        return self._connection.execute(sql, *args, **kwargs)

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        return _RecordingCursor(self._connection.cursor(*args, **kwargs), self.sent)

    def transaction(self, *args: Any, **kwargs: Any) -> Any:
        self.sent.append("BEGIN")
        return self._connection.transaction(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


class _RecordingCursor:
    def __init__(self, cursor: Any, sent: list[str]) -> None:
        self._cursor = cursor
        self._sent = sent

    def executemany(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        self._sent.append(sql)
        return self._cursor.executemany(sql, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


def record_statements(store: Any) -> RecordingConnection:
    """Wrap this thread's connection of ``store``'s catalog; its ``sent`` list fills from now on."""
    operations = store.catalog.operations
    recording = RecordingConnection(operations._connection())  # test-only access
    assert operations._state.holder is not None
    operations._state.holder.connection = recording
    return recording


def writes(sent: list[str]) -> list[str]:
    """The statements of ``sent`` that write or open a write transaction."""
    return [sql for sql in sent if sql.split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE", "BEGIN")]
