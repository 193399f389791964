"""Reporting views: store totals, job counts by state, failed jobs, files per job, orphaned files.

The views are the stable reporting surface documented in docs/REPORTING.md: people query them
with SQL, and ``JobStore.stats()`` reads them, so the numbers a user computes by hand and the ones
``jobstore status`` prints come from the same definition. The SQL is written once, in the portable
subset SQLite and PostgreSQL share (booleans are tested with ``NOT column`` / ``CASE WHEN column``,
which both accept), and frozen here as migrations must be: a later change of definition is a later
revision that replaces the view.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Definitions, spelled out in full (no string assembly) so they read as the SQL they are:
# * "failed": marked failed, or out of tries without having completed:
#   (j.state = 'failed' OR (j.remaining_tries <= 0 AND j.state <> 'completed'))
# * "orphaned": a file whose owning job no longer exists (files.job_id has no foreign key on purpose):
#   f.job_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM jobs o WHERE o.store_id = f.store_id AND o.id = f.job_id)

VIEWS: dict[str, str] = {
    "report_store_totals": """
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
               (SELECT COUNT(*) FROM condemned_blobs c WHERE c.store_id = s.id) AS condemned_blobs
        FROM stores s
    """,
    "report_job_counts": """
        SELECT j.store_id AS store_id, s.name AS store_name, j.state AS state, COUNT(*) AS jobs
        FROM jobs j JOIN stores s ON s.id = j.store_id
        GROUP BY j.store_id, s.name, j.state
    """,
    "report_failed_jobs": """
        SELECT j.store_id AS store_id, s.name AS store_name, j.id AS job_id, j.name AS job_name,
               j.unit_name AS unit_name, j.state AS state, j.remaining_tries AS remaining_tries,
               j.updated_at AS updated_at
        FROM jobs j JOIN stores s ON s.id = j.store_id
        WHERE j.state = 'failed' OR (j.remaining_tries <= 0 AND j.state <> 'completed')
    """,
    "report_job_files": """
        SELECT j.store_id AS store_id, j.id AS job_id, j.name AS job_name, j.state AS state,
               COUNT(f.id) AS files, COALESCE(SUM(f.size), 0) AS bytes
        FROM jobs j LEFT JOIN files f ON f.store_id = j.store_id AND f.job_id = j.id
        GROUP BY j.store_id, j.id, j.name, j.state
    """,
    "report_orphaned_files": """
        SELECT f.store_id AS store_id, f.id AS file_id, f.job_id AS job_id, f.cleanup AS cleanup,
               f.size AS size, f.blob_key AS blob_key, f.created_at AS created_at
        FROM files f
        WHERE f.job_id IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM jobs o WHERE o.store_id = f.store_id AND o.id = f.job_id)
    """,
}


def upgrade() -> None:
    for name, body in VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {body.strip()}")


def downgrade() -> None:
    for name in reversed(list(VIEWS)):
        op.execute(f"DROP VIEW IF EXISTS {name}")
