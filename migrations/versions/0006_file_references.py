"""Reference imports: a file row may name a source it reads from instead of a blob it owns.

``files.reference`` holds the JSON fingerprint of the source (its URL, size, and mtime + inode +
device for a local file or ETag / generation for an object) for a file imported with
``mode="reference"``; NULL for every file whose bytes the store owns, which is every row written
before this revision. Such a row's ``blob_key`` is a ``ref/`` key that no blob store holds, so no
blob deletion can reach the source.

The column is nullable and has no default: adding it changes the table's definition only, on
SQLite and PostgreSQL alike (no rewrite of existing rows).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("files", sa.Column("reference", sa.Text(), nullable=True))


def downgrade() -> None:
    # Without the column a reference would read as a file whose blob is missing, so the downgrade
    # refuses rather than lose or corrupt those rows.
    count = op.get_bind().execute(sa.text("SELECT count(*) FROM files WHERE reference IS NOT NULL")).scalar_one()
    if count:
        raise RuntimeError(
            f"{count} files are reference imports, which revision 0005 cannot represent. Copy the store "
            "with `jobstore copy --materialize-references` or delete those files, then downgrade."
        )
    op.drop_column("files", "reference")
