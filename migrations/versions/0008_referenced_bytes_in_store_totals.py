"""``report_store_totals`` shows reference imports apart: ``referenced_files`` and
``referenced_bytes`` (files whose ``reference`` is set, revision 0006, whose bytes the blob store
does not hold), so that ``bytes - referenced_bytes`` is what the store holds. The view is replaced
whole; every column it had keeps its name, type and meaning.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import importlib

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

STORE_TOTALS = """
    SELECT s.id AS store_id,
           s.name AS store_name,
           s.workflow_id AS workflow_id,
           s.blob_url AS blob_url,
           s.created_at AS created_at,
           (SELECT COUNT(*) FROM jobs j WHERE j.store_id = s.id) AS jobs,
           (SELECT COUNT(*) FROM jobs j WHERE j.store_id = s.id
              AND (j.state = 'failed' OR (j.remaining_tries <= 0 AND j.state <> 'completed'))) AS failed_jobs,
           (SELECT COUNT(*) FROM files f WHERE f.store_id = s.id) AS files,
           (SELECT COALESCE(SUM(f.size), 0) FROM files f WHERE f.store_id = s.id) AS bytes,
           (SELECT COUNT(*) FROM files f WHERE f.store_id = s.id AND f.shared_name IS NOT NULL) AS shared_files,
           (SELECT COUNT(*) FROM logs l WHERE l.store_id = s.id) AS logs,
           (SELECT COUNT(*) FROM logs l WHERE l.store_id = s.id AND NOT l.is_read) AS unread_logs,
           (SELECT COUNT(*) FROM files f WHERE f.store_id = s.id AND f.job_id IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM jobs o
                                WHERE o.store_id = f.store_id AND o.id = f.job_id)) AS orphaned_files,
           (SELECT COALESCE(SUM(f.size), 0) FROM files f WHERE f.store_id = s.id AND f.job_id IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM jobs o
                                WHERE o.store_id = f.store_id AND o.id = f.job_id)) AS orphaned_bytes,
           (SELECT COUNT(*) FROM condemned_blobs c WHERE c.store_id = s.id) AS condemned_blobs,
           (SELECT COUNT(*) FROM files f WHERE f.store_id = s.id AND f.reference IS NOT NULL) AS referenced_files,
           (SELECT COALESCE(SUM(f.size), 0) FROM files f
              WHERE f.store_id = s.id AND f.reference IS NOT NULL) AS referenced_bytes
    FROM stores s
"""


def upgrade() -> None:
    op.execute("DROP VIEW IF EXISTS report_store_totals")
    op.execute(f"CREATE VIEW report_store_totals AS {STORE_TOTALS.strip()}")


def downgrade() -> None:
    # The definition revision 0002 created (its module is the frozen source of it).
    previous = importlib.import_module("jobstore.migrations.versions.0002_reporting_views").VIEWS
    op.execute("DROP VIEW IF EXISTS report_store_totals")
    op.execute(f"CREATE VIEW report_store_totals AS {previous['report_store_totals'].strip()}")
