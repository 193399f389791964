"""The lease's attempt becomes part of a key, so that fenced writes can lock it cheaply.

A write of a process that carries a fencing token reads its store's lease row inside the write's
transaction. On PostgreSQL it locks that row ``FOR KEY SHARE``: a takeover (which changes
``attempt``) must then wait for the write to commit, and every write that starts after the
takeover sees the new attempt. PostgreSQL only lets a key-share lock block an update of columns
in a unique index, so ``(store_id, attempt)`` gets one; a heartbeat's renewal (``expires_at``
only) still never waits for a write. A new index: nothing existing is rewritten.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("uq_leases_store_id_attempt", "leases", ["store_id", "attempt"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_leases_store_id_attempt", table_name="leases")
