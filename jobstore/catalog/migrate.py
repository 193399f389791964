"""Alembic glue and the schema-version gate.

Migrations ship inside the package (``jobstore.migrations``) and are addressed by package path,
never by the working directory, so an installed jobstore can always upgrade its catalog. Opening a
catalog compares its revision with the head revision of this code and fails with the exact command
that fixes it (MLflow's pattern).
"""

from __future__ import annotations

import io
from contextlib import contextmanager
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Engine, column, inspect, select, table, text
from sqlalchemy.engine import Connection

from jobstore.catalog.rows import HEAD_REVISION
from jobstore.catalog.schema import VERSION_TABLE
from jobstore.errors import SchemaTooNewError, SchemaTooOldError

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

#: The head revision of this code's migrations. Opening a store compares the catalog with it, and
#: every worker process opens a store, so the comparison must not import Alembic and parse every
#: migration script (~100 ms). tests/test_migrations.py checks it equals the scripts' one head.

_VERSION = table(VERSION_TABLE, column("version_num"))

#: Key of the PostgreSQL advisory lock held while migrating, so concurrent upgrades serialise.
_ADVISORY_LOCK_KEY = 0x6A6F6273  # "jobs"

SchemaState = Literal["fresh", "current"]


def migrations_directory() -> str:
    """The directory of the migration scripts, wherever jobstore is installed."""
    return str(resources.files("jobstore.migrations"))


def alembic_config(connection: Connection | None = None, *, output: io.StringIO | None = None) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig(output_buffer=output) if output is not None else AlembicConfig()
    config.set_main_option("script_location", migrations_directory())
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision of this code's migrations (there is exactly one head)."""
    return HEAD_REVISION


def script_heads() -> list[str]:
    """The heads according to the migration scripts themselves (loads Alembic)."""
    from alembic.script import ScriptDirectory

    return list(ScriptDirectory.from_config(alembic_config()).get_heads())


@lru_cache(maxsize=1)
def known_revisions() -> frozenset[str]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return frozenset(rev.revision for rev in script.walk_revisions())


def current_revision(connection: Connection) -> str | None:
    """The catalog's revision, or None if jobstore's schema has never been created in it."""
    return connection.execute(select(_VERSION.c.version_num)).scalar()


def has_version_table(connection: Connection) -> bool:
    return inspect(connection).has_table(VERSION_TABLE)


def schema_state(connection: Connection, where: str) -> SchemaState:
    """'fresh' (no jobstore schema yet) or 'current'; raise if the revision differs from the head."""
    if not has_version_table(connection):
        return "fresh"
    revision = current_revision(connection)
    if revision is None:
        return "fresh"
    head = head_revision()
    if revision == head:
        return "current"
    if revision in known_revisions():
        raise SchemaTooOldError(
            f"The catalog of {where} is at schema revision {revision}, older than this jobstore's "
            f"{head}. Upgrade it with: jobstore db upgrade {where}"
        )
    raise SchemaTooNewError(
        f"The catalog of {where} is at schema revision {revision}, which this jobstore does not know "
        f"(its newest is {head}): it was upgraded by a newer jobstore. Upgrade jobstore "
        "(pip install -U jobstore) on this machine."
    )


@contextmanager
def _migration_lock(connection: Connection) -> Any:
    """Serialise concurrent migrations: an advisory lock on PostgreSQL, the write lock on SQLite."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
    yield


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Bring the catalog to ``revision``; safe when several processes do it at once.

    Returns (revision before, revision after). On SQLite the transaction begins IMMEDIATE (our
    engine's policy), so a second process waits and then finds the work done; on PostgreSQL an
    advisory transaction lock does the same.
    """
    with engine.begin() as connection:
        with _migration_lock(connection):
            before = current_revision(connection) if has_version_table(connection) else None
            if connection.dialect.name == "sqlite":
                # Table rebuilds in batch mode must not trip over foreign keys midway.
                connection.exec_driver_sql("PRAGMA defer_foreign_keys=ON")
            from alembic import command

            command.upgrade(alembic_config(connection), revision)
            after = current_revision(connection)
    return before, after or ""


def upgrade_sql(url: str, revision: str = "head", start: str | None = None) -> str:
    """The SQL an upgrade would run (offline mode), for a DBA to review instead of applying it."""
    output = io.StringIO()
    config = alembic_config(output=output)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    target = f"{start}:{revision}" if start else revision
    from alembic import command

    command.upgrade(config, target, sql=True)
    return output.getvalue()
