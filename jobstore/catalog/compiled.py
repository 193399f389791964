"""Statements compiled for a driver: SQL text, parameter order, and value conversions.

``compile_fast_path.py`` compiles every statement of ``queries.py`` per dialect into the generated
``sqlite_statements.py`` and ``postgres_statements.py``, recording each bind and result conversion
as a kind (``datetime``, ``boolean``, ``float``, ``binary``); this module implements those kinds per
driver and turns a generated entry into a :class:`Statement` that ``operations.py`` executes on the
driver's own connection. It does not import SQLAlchemy: a Toil worker that only runs these
statements on SQLite never pays for that import.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any


def _datetime_to_sql(value: datetime) -> str:
    # SQLAlchemy's SQLite DATETIME storage format, so both paths write identical text.
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d} "
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}"
    )


#: The SQLite conversions compile_fast_path records for column types (checked against SQLAlchemy's own
#: processors by tests/test_sqlite_statements.py).
SQLITE_BIND_CONVERSIONS: dict[str, Callable[[Any], Any]] = {
    "datetime": _datetime_to_sql,
    "boolean": int,
    "float": float,
    "binary": bytes,
}
SQLITE_RESULT_CONVERSIONS: dict[str, Callable[[Any], Any]] = {
    "datetime": datetime.fromisoformat,
    "boolean": bool,
    "float": float,
    "binary": bytes,
}


class Statement:
    """One compiled statement: SQL text, parameter order and bind/result conversions for a driver."""

    __slots__ = ("bindings", "defaults", "names", "processors", "result_processors", "sql")

    def __init__(
        self,
        spec: dict[str, Any],
        bind_conversions: dict[str, Callable[[Any], Any]],
        result_conversions: dict[str, Callable[[Any], Any]],
    ) -> None:
        self.sql: str = spec["sql"]
        self.names: tuple[str, ...] = tuple(spec["names"])
        self.processors = tuple(None if kind is None else bind_conversions[kind] for kind in spec["bind"])
        self.defaults: dict[str, Any] = dict(spec["defaults"])
        self.result_processors = tuple(None if kind is None else result_conversions[kind] for kind in spec["result"])
        self.bindings = tuple(zip(self.names, self.processors, strict=True))

    def parameters(self, values: dict[str, Any]) -> list[Any]:
        # A plain loop: this runs for every statement, where nested generators are measurably slower.
        defaults = self.defaults
        bound = []
        for name, processor in self.bindings:
            value = values[name] if name in values else defaults[name]
            bound.append(value if processor is None or value is None else processor(value))
        return bound

    def parameter_rows(self, rows: Sequence[dict[str, Any]], common: dict[str, Any]) -> list[list[Any]]:
        """``parameters`` of many rows for an executemany; ``common``'s values are the same in
        every row, so they are converted once (a batch's two timestamps)."""
        shared = {}
        for name, processor in self.bindings:
            if name in common:
                value = common[name]
                shared[name] = value if processor is None or value is None else processor(value)
        defaults = self.defaults
        bound_rows = []
        for values in rows:
            bound = []
            for name, processor in self.bindings:
                if name in shared:
                    bound.append(shared[name])
                    continue
                value = values[name] if name in values else defaults[name]
                bound.append(value if processor is None or value is None else processor(value))
            bound_rows.append(bound)
        return bound_rows

    def convert(self, row: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(
            value if processor is None or value is None else processor(value)
            for value, processor in zip(row, self.result_processors, strict=False)
        )


#: psycopg converts datetimes itself; these are what it leaves to us.
POSTGRES_CONVERSIONS: dict[str, Callable[[Any], Any]] = {"boolean": bool, "float": float, "binary": bytes}
