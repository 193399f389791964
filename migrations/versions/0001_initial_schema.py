"""Initial schema: stores, jobs, files, logs, condemned_blobs.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-26 03:00:10.105893
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stores",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("blob_url", sa.Text(), nullable=False),
        sa.Column("workflow_id", sa.String(length=64), nullable=False),
        sa.Column("config_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stores")),
        sa.UniqueConstraint("name", name=op.f("uq_stores_name")),
    )
    op.create_table(
        "condemned_blobs",
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("blob_key", sa.String(length=512), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("condemned_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_condemned_blobs_store_id_stores"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("store_id", "blob_key", name=op.f("pk_condemned_blobs")),
    )
    op.create_table(
        "files",
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
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name=op.f("fk_files_store_id_stores"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("store_id", "id", name=op.f("pk_files")),
        sa.UniqueConstraint("store_id", "shared_name", name=op.f("uq_files_store_id_shared_name")),
    )
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_files_store_id_blob_key"), ["store_id", "blob_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_files_store_id_job_id"), ["store_id", "job_id"], unique=False)

    op.create_table(
        "jobs",
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("unit_name", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("remaining_tries", sa.Integer(), nullable=False),
        sa.Column("memory", sa.BigInteger(), nullable=True),
        sa.Column("cores", sa.Float(), nullable=True),
        sa.Column("disk", sa.BigInteger(), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name=op.f("fk_jobs_store_id_stores"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("store_id", "id", name=op.f("pk_jobs")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_jobs_store_id_state"), ["store_id", "state"], unique=False)

    op.create_table(
        "logs",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("message", sa.LargeBinary(), nullable=False),
        sa.Column("is_read", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name=op.f("fk_logs_store_id_stores"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_logs")),
    )
    with op.batch_alter_table("logs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_logs_store_id_is_read_seq"), ["store_id", "is_read", "seq"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("logs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_logs_store_id_is_read_seq"))

    op.drop_table("logs")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_store_id_state"))

    op.drop_table("jobs")
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_files_store_id_job_id"))
        batch_op.drop_index(batch_op.f("ix_files_store_id_blob_key"))

    op.drop_table("files")
    op.drop_table("condemned_blobs")
    op.drop_table("stores")
