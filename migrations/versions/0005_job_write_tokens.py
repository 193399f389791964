"""A token in each job row naming the write that produced it, so that a retried write recognises
its own commit.

When the reply to a committed ``update_job`` is lost (a PostgreSQL connection dropped between the
commit and its acknowledgement), the catalog's retry loop runs the compare-and-set again and finds
the version moved on. Until this revision the store could not tell its own committed update from
another writer's (comparing the descriptions merges two read-modify-writes that computed the same
value: a lost update) and reported a conflict although the update had committed. Every job write
now stores a random 63-bit token unique to that call; a retry that finds its own token knows the
write committed. ``create_job``'s retry uses it too (it compared descriptions before).

The column is nullable and has no default: rows written before the upgrade keep NULL, which no
write's token equals. Adding it is a change of the table's definition only on both SQLite and
PostgreSQL (no rewrite of existing rows).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("write_token", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "write_token")
