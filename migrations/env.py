"""Alembic environment for the jobstore catalog.

jobstore runs migrations programmatically (``jobstore db upgrade``, or ``initialize`` on a new
catalog) and passes an open connection in ``config.attributes["connection"]``. Running the
``alembic`` command from the repository also works: it reads ``sqlalchemy.url`` from alembic.ini or
the ``JOBSTORE_CATALOG`` environment variable.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from jobstore.catalog.schema import VERSION_TABLE, metadata

config = context.config


def _configure(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        # SQLite cannot ALTER most things in place: batch mode rebuilds tables (SQLite only).
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_offline() -> None:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("JOBSTORE_CATALOG")
    context.configure(
        url=url,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
        render_as_batch=bool(url and url.startswith("sqlite")),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("JOBSTORE_CATALOG")
    if not url:
        raise SystemExit("Set sqlalchemy.url in alembic.ini or JOBSTORE_CATALOG, or use `jobstore db upgrade`.")
    engine = create_engine(url)
    with engine.begin() as conn:
        _configure(conn)
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
