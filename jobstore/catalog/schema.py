"""The catalog's tables: one MetaData, with a naming convention so migrations name things stably.

This module is the schema's single source of truth. Alembic's first revision creates exactly these
tables, and a test checks that a database built by the migrations matches this metadata.
The tables and their columns are documented for SQL users in docs/REPORTING.md.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Our Alembic version table has its own name so jobstore can share a database with other
#: Alembic users.
VERSION_TABLE = "jobstore_alembic_version"

metadata = MetaData(naming_convention=NAMING_CONVENTION)

ID_LENGTH = 128
KEY_LENGTH = 512

#: One row per job store. A catalog may hold many (one PostgreSQL database serves every workflow of
#: a lab); a file: store's SQLite catalog holds exactly one, named "default".
stores = Table(
    "stores",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False),
    Column("blob_url", Text, nullable=False),
    Column("workflow_id", String(64), nullable=False),
    Column("config_json", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("name"),
)

#: Job descriptions. The JSON in ``description`` is the whole description; the other columns are
#: copies of its reporting fields so that SQL can filter and group without parsing JSON.
jobs = Table(
    "jobs",
    metadata,
    Column("store_id", Integer, ForeignKey("stores.id", ondelete="CASCADE"), primary_key=True),
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("name", String(255), nullable=False),
    Column("unit_name", String(255), nullable=False),
    Column("state", String(32), nullable=False),
    Column("remaining_tries", Integer, nullable=False),
    Column("memory", BigInteger, nullable=True),
    Column("cores", Float, nullable=True),
    Column("disk", BigInteger, nullable=True),
    Column("description", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Random, set by every write of the row and unique to that call, so that a write retried after
    # its reply was lost recognises its own commit (migration 0005). NULL in rows written before.
    Column("write_token", BigInteger, nullable=True),
    Index(None, "store_id", "state"),
)

#: Files, shared files included. ``job_id`` deliberately has no foreign key: a file may outlive its
#: job, and such orphans are found by one anti-join against ``jobs``.
files = Table(
    "files",
    metadata,
    Column("store_id", Integer, ForeignKey("stores.id", ondelete="CASCADE"), primary_key=True),
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("job_id", String(ID_LENGTH), nullable=True),
    Column("cleanup", Boolean, nullable=False, server_default=false()),
    Column("shared_name", String(255), nullable=True),
    Column("basename", String(255), nullable=True),
    Column("size", BigInteger, nullable=False),
    Column("checksum", String(64), nullable=False),
    Column("blob_key", String(KEY_LENGTH), nullable=False),
    Column("executable", Boolean, nullable=False, server_default=false()),
    Column("encrypted", Boolean, nullable=False, server_default=false()),
    Column("source_url", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # NULL for a file whose bytes the store owns. For a reference import (migration 0006) the JSON
    # fingerprint of the source it reads from (URL, size, mtime/inode or ETag/generation): the
    # store owns no blob then, and blob_key is a "ref/" key no blob store ever holds.
    Column("reference", Text, nullable=True),
    # Unique among the rows that have a shared name: most rows (job files) have none and need no
    # entry in this index (revision 0003: one B-tree less to update per job file write or delete).
    Index(
        "uq_files_store_id_shared_name",
        "store_id",
        "shared_name",
        unique=True,
        sqlite_where=text("shared_name IS NOT NULL"),
        postgresql_where=text("shared_name IS NOT NULL"),
    ),
    Index(None, "store_id", "job_id"),
    # No index on blob_key (dropped by 0003): gc and fsck ask about blob keys with set operations.
)

#: Worker logs (Toil's "stats and logging" messages), delivered once to ``read_logs``.
logs = Table(
    "logs",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("store_id", Integer, ForeignKey("stores.id", ondelete="CASCADE"), nullable=False),
    Column("message", LargeBinary, nullable=False),
    Column("is_read", Boolean, nullable=False, server_default=false()),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index(None, "store_id", "is_read", "seq"),
)

#: Blob keys awaiting deletion: garbage collection records a blob here first and deletes it only
#: after a grace period, and only if no row references it by then.
condemned_blobs = Table(
    "condemned_blobs",
    metadata,
    Column("store_id", Integer, ForeignKey("stores.id", ondelete="CASCADE"), primary_key=True),
    Column("blob_key", String(KEY_LENGTH), primary_key=True),
    Column("size", BigInteger, nullable=True),
    Column("condemned_at", DateTime(timezone=True), nullable=False),
)


#: The leader lease of each store (migration 0007): at most one leader at a time. ``attempt`` only
#: grows (each acquisition or takeover adds one), so it is the fencing token; ``expires_at`` is
#: pushed forward by the holder's heartbeat, and a lease past it may be taken by anyone.
leases = Table(
    "leases",
    metadata,
    Column("store_id", Integer, ForeignKey("stores.id", ondelete="CASCADE"), primary_key=True),
    Column("attempt", BigInteger, nullable=False),
    # JSON: host, pid, user, started (the process's start), nonce (unique to one acquisition).
    Column("holder", Text, nullable=False),
    Column("acquired_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    # Migration 0009: a key over the attempt, so that a fenced write's FOR KEY SHARE lock blocks a
    # takeover (a new attempt) but not a renewal (a new expiry) on PostgreSQL.
    Index("uq_leases_store_id_attempt", "store_id", "attempt", unique=True),
)
