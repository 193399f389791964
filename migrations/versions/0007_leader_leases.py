"""The leader lease: at most one leader per store, with a fencing token.

One row per store that a leader has ever held: ``attempt`` (grows by one with every acquisition
or takeover: the fencing token), ``holder`` (JSON: host, pid, user, process start, a nonce unique
to the acquisition), ``acquired_at`` and ``expires_at`` (pushed forward by the holder's heartbeat).
A new table: nothing existing is rewritten.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.BigInteger(), nullable=False),
        sa.Column("holder", sa.Text(), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_leases_store_id_stores"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("store_id", name=op.f("pk_leases")),
    )


def downgrade() -> None:
    op.drop_table("leases")
