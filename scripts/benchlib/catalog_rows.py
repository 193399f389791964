"""W9's setup for jobstore: a million file rows inserted straight into the catalog tables.

Going through ``write_file`` a million times would take far longer than the queries W9 measures,
so the rows are inserted with one ``executemany`` per chunk, inside one transaction, through the
schema's own ``Table`` objects (``jobstore.catalog.schema``), so column types (timestamps,
booleans) are encoded exactly as jobstore encodes them, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

CHUNK = 50_000


def populate_jobstore_file_rows(
    store: Any, handle: dict[str, Any], job_ids: list[str], rows: int, orphan_fraction: float
) -> int:
    """Insert ``rows`` file rows into the store's catalog; return how many name a missing job."""
    from sqlalchemy import create_engine, select

    from jobstore.catalog.schema import files, stores
    from jobstore.locator import parse_locator

    location = parse_locator(handle["locator"])
    url = location.catalog_url or handle.get("catalog")
    if not url:
        raise RuntimeError(f"cannot tell the catalog URL of {handle['locator']!r}")
    engine = create_engine(url)
    orphans = int(rows * orphan_fraction)
    now = datetime.now(UTC)

    def row(i: int) -> dict[str, Any]:
        return {
            "store_id": store_id,
            "id": f"bench-file-{i:09d}",
            "version": 1,
            "job_id": f"bench-missing-job-{i}" if i < orphans else job_ids[i % len(job_ids)],
            "cleanup": False,
            "shared_name": None,
            "basename": "bench.bin",
            "size": 4096 + i % 1000,
            "checksum": "0" * 16,
            "blob_key": f"bench/{i:09d}",
            "executable": False,
            "encrypted": False,
            "source_url": None,
            "created_at": now,
            "updated_at": now,
        }

    try:
        with engine.connect() as connection:
            store_id = connection.execute(select(stores.c.id).where(stores.c.name == location.store_name)).scalar_one()
        if engine.dialect.name == "sqlite":
            _insert_sqlite(engine, files, row, rows)
        else:
            with engine.begin() as connection:
                for start in range(0, rows, CHUNK):
                    batch = [row(i) for i in range(start, min(rows, start + CHUNK))]
                    connection.execute(files.insert(), batch)
    finally:
        engine.dispose()
    return orphans


def _insert_sqlite(engine: Any, table: Any, row: Callable[[int], dict[str, Any]], rows: int) -> None:
    """sqlite3's executemany directly (several times faster than going through SQLAlchemy), with
    each value encoded by the column type's own SQLAlchemy bind processor, so the stored values are
    what jobstore itself would have written (timestamps in SQLAlchemy's SQLite text format).

    The table's secondary indexes are dropped for the load and rebuilt from the schema afterwards
    (one sort each instead of a million random B-tree inserts), and their planner statistics
    (revision 0004's ``sqlite_stat1`` rows, which DROP INDEX deletes) are put back: the result is
    the same database.
    """
    columns = list(table.columns)
    processors = [c.type.dialect_impl(engine.dialect).bind_processor(engine.dialect) for c in columns]
    names = ", ".join(c.name for c in columns)
    marks = ", ".join("?" for _ in columns)
    statement = f"INSERT INTO {table.name} ({names}) VALUES ({marks})"  # noqa: S608 -- names from the schema

    def encoded(i: int) -> tuple[Any, ...]:
        values = row(i)
        return tuple(
            p(values[c.name]) if p is not None else values[c.name] for c, p in zip(columns, processors, strict=True)
        )

    indexes = list(table.indexes)
    with engine.begin() as connection:
        statistics = connection.exec_driver_sql(
            "SELECT tbl, idx, stat FROM sqlite_stat1 WHERE tbl = ?", (table.name,)
        ).all()
        for index in indexes:
            index.drop(connection)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA cache_size=-262144")
        cursor.execute("BEGIN IMMEDIATE")
        cursor.executemany(statement, (encoded(i) for i in range(rows)))
        cursor.execute("COMMIT")
    finally:
        raw.close()
    with engine.begin() as connection:
        for index in indexes:
            index.create(connection)
        connection.exec_driver_sql("DELETE FROM sqlite_stat1 WHERE tbl = ?", (table.name,))
        for row in statistics:
            connection.exec_driver_sql("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?, ?, ?)", tuple(row))
