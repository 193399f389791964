"""SQLite: fixed planner statistics, so that a query over a whole store scans its rows once.

Every index of the catalog starts with ``store_id``, and a SQLite catalog nearly always holds one
store. Without statistics SQLite's planner assumes an equality on an index's first column selects
a handful of rows, so a query such as ``stats()``'s file totals (``WHERE store_id = ?``, every
row) walked ``ix_files_store_id_job_id`` and fetched each of a million rows from the table in
job order: 2.3 s, where one scan of the table takes 0.55 s. gc's "blob keys of the store" query
took the same detour (``scripts/maintenance_scale.py``).

SQLite's documented remedy for an embedded database is to ship fixed contents for
``sqlite_stat1`` (https://sqlite.org/lang_analyze.html, "Fixed Results of ANALYZE"): the plans then
no longer depend on when, or whether, ANALYZE last ran. The figures below describe the typical
catalog, not a measured one: one store (``store_id`` selects every row), about ten files per job,
unique IDs. A user's own ``ANALYZE`` replaces them with measured ones, which plan alike for a
single-store catalog. Connections opened before the upgrade keep planning without them until
they are reopened (statistics are read when a connection loads the schema).

PostgreSQL gathers its own statistics (autovacuum's ANALYZE): nothing to do there.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

#: (table, index, stat): the row count, then the rows per distinct value of each index prefix.
#: The ``sqlite_autoindex_*`` names are those SQLite gives the primary-key indexes of 0001 and
#: 0003's rebuilt ``files``.
STATISTICS = [
    ("files", "sqlite_autoindex_files_1", "1000000 1000000 1"),
    ("files", "ix_files_store_id_job_id", "1000000 1000000 10"),
    ("files", "uq_files_store_id_shared_name", "1000 1000 1"),
    ("jobs", "sqlite_autoindex_jobs_1", "100000 100000 1"),
    ("jobs", "ix_jobs_store_id_state", "100000 100000 20000"),
    ("logs", "ix_logs_store_id_is_read_seq", "100000 100000 50000 1"),
    ("condemned_blobs", "sqlite_autoindex_condemned_blobs_1", "10000 10000 1"),
]
TABLES = sorted({table for table, _, _ in STATISTICS})

_stat1 = sa.table("sqlite_stat1", sa.column("tbl", sa.Text), sa.column("idx", sa.Text), sa.column("stat", sa.Text))


def upgrade() -> None:
    if op.get_context().dialect.name != "sqlite":
        return
    # Creates sqlite_stat1 if it does not exist yet (analysing the schema table costs nothing).
    op.execute("ANALYZE sqlite_master")
    op.execute(_stat1.delete().where(_stat1.c.tbl.in_(TABLES)))
    op.bulk_insert(_stat1, [{"tbl": table, "idx": index, "stat": stat} for table, index, stat in STATISTICS])
    # A connection reads sqlite_stat1 when it loads the schema, or after an ANALYZE: this one ran
    # the migration (and goes back to the pool), so it must read the rows just written.
    op.execute("ANALYZE sqlite_master")


def downgrade() -> None:
    if op.get_context().dialect.name != "sqlite":
        return
    op.execute(_stat1.delete().where(_stat1.c.tbl.in_(TABLES)))
    op.execute("ANALYZE sqlite_master")
