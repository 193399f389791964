"""files: two fewer index entries per job file (the shared-name rule as a partial unique index; no
index on blob_key).

Most file rows belong to jobs: they have no shared name, and nothing looks them up by blob key on a
hot path. Yet every job file's insert and delete updated two B-trees for them:

* The UNIQUE (store_id, shared_name) table constraint of 0001 kept an index entry for every row,
  NULL names included. A unique index restricted to ``shared_name IS NOT NULL`` enforces exactly
  the same rule (NULLs never conflicted) under the same name, so errors and ``ON CONFLICT DO
  NOTHING`` behave as before.
* ``ix_files_store_id_blob_key`` served only gc and fsck, which now ask their blob-key questions
  as set operations that read the store's rows once (catalog/reports.py) instead of one indexed
  probe per key.

Measured with raw SQLite (WAL, synchronous=NORMAL, one row per commit, 20,000-row table, medians of
7; the script is described in the session-3 note of issue 9): insert 67.7 -> 59.2 us with the
partial index, 45.8 us without the blob-key index as well; delete 63.6 -> 52.7 -> 42.1 us.

SQLite cannot drop a table constraint, so the table is rebuilt (Alembic's batch mode, copying from
a frozen definition so that ``db upgrade --sql`` works too). The reporting views of 0002 name
``files``; SQLite's modern ALTER TABLE RENAME re-checks every view and fails while the old table is
gone, so the rebuild runs with ``legacy_alter_table`` on, which leaves the views' text alone: they
name ``files`` and find the rebuilt table. PostgreSQL drops the constraint and the index and builds
the partial index in the same transaction (the build blocks writers to ``files`` while it runs:
plan the upgrade of a large shared catalog for a quiet moment).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

NAME = "uq_files_store_id_shared_name"
BLOB_KEY_INDEX = "ix_files_store_id_blob_key"
HAS_SHARED_NAME = "shared_name IS NOT NULL"


def _on_sqlite() -> bool:
    return bool(op.get_context().dialect.name == "sqlite")


def _files_at_0003() -> sa.Table:
    """``files`` after this revision, minus its partial index (dropped before a downgrade copies)."""
    return _files_at_0002(unique_shared_name=False, blob_key_index=False)


def _files_at_0002(unique_shared_name: bool, blob_key_index: bool = True) -> sa.Table:
    """``files`` as 0001 created it (frozen here, as migrations must be), optionally without the
    table constraint or the blob-key index. Batch mode copies from it instead of reflecting, so
    ``db upgrade --sql`` works too."""
    constraints: list[sa.SchemaItem] = [
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name="fk_files_store_id_stores", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("store_id", "id", name="pk_files"),
        sa.Index("ix_files_store_id_job_id", "store_id", "job_id"),
    ]
    if blob_key_index:
        constraints.append(sa.Index(BLOB_KEY_INDEX, "store_id", "blob_key"))
    if unique_shared_name:
        constraints.append(sa.UniqueConstraint("store_id", "shared_name", name=NAME))
    metadata = sa.MetaData()
    sa.Table("stores", metadata, sa.Column("id", sa.Integer(), primary_key=True))  # the foreign key's target
    return sa.Table(
        "files",
        metadata,
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=128), nullable=True),
        sa.Column("cleanup", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("shared_name", sa.String(length=255), nullable=True),
        sa.Column("basename", sa.String(length=255), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("blob_key", sa.String(length=512), nullable=False),
        sa.Column("executable", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("encrypted", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("source_url", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        *constraints,
    )


def upgrade() -> None:
    if _on_sqlite():
        op.execute("PRAGMA legacy_alter_table=ON")
        old_table = _files_at_0002(unique_shared_name=True)
        with op.batch_alter_table("files", recreate="always", copy_from=old_table) as batch_op:
            batch_op.drop_constraint(NAME, type_="unique")
            batch_op.drop_index(BLOB_KEY_INDEX)
        op.execute("PRAGMA legacy_alter_table=OFF")
    else:
        op.drop_constraint(NAME, "files", type_="unique")
        op.drop_index(BLOB_KEY_INDEX, "files")
    op.create_index(
        NAME,
        "files",
        ["store_id", "shared_name"],
        unique=True,
        sqlite_where=sa.text(HAS_SHARED_NAME),
        postgresql_where=sa.text(HAS_SHARED_NAME),
    )


def downgrade() -> None:
    op.drop_index(NAME, "files")
    if _on_sqlite():
        op.execute("PRAGMA legacy_alter_table=ON")
        with op.batch_alter_table("files", recreate="always", copy_from=_files_at_0003()) as batch_op:
            batch_op.create_unique_constraint(NAME, ["store_id", "shared_name"])
        op.execute("PRAGMA legacy_alter_table=OFF")
    else:
        op.create_unique_constraint(NAME, "files", ["store_id", "shared_name"])
    op.create_index(BLOB_KEY_INDEX, "files", ["store_id", "blob_key"])
