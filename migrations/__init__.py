"""Alembic migrations of the jobstore catalog (installed as the ``jobstore.migrations`` package)."""
