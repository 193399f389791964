"""The rows the catalog hands out and takes in, as named tuples.

Kept apart from ``queries`` so that code which only needs these shapes (the store, the SQLite fast
path) does not import SQLAlchemy: a Toil worker is a fresh process per job, and importing
SQLAlchemy costs it ~130 ms. Named tuples rather than frozen dataclasses for the same reason:
immutable records either way, but a frozen dataclass costs ~0.8 ms to create at import (it
generates and compiles its methods) against ~0.25 ms, and these five were a quarter of the
~17 ms a Toil worker spent importing jobstore.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

#: The newest revision of this code's migrations. A constant, so that checking a catalog's revision
#: needs neither Alembic nor SQLAlchemy; tests/test_migrations.py checks it against the scripts.
HEAD_REVISION = "0009"


def utc_now() -> datetime:
    return datetime.now(UTC)


class StoreRow(NamedTuple):
    id: int
    name: str
    blob_url: str
    workflow_id: str
    config_json: str
    created_at: datetime
    #: ``destroy()`` has begun (the lease is at DESTROYED_ATTEMPT): the store only awaits its end.
    being_destroyed: bool = False


#: The leader lease's attempt once ``destroy()`` has begun: above any real attempt, never expiring,
#: so that every fenced write of every earlier attempt is refused and no leader can take it.
DESTROYED_ATTEMPT = 2**62


class FileRow(NamedTuple):
    id: str
    version: int
    job_id: str | None
    cleanup: bool
    shared_name: str | None
    basename: str | None
    size: int
    checksum: str
    blob_key: str
    executable: bool
    encrypted: bool
    source_url: str | None
    created_at: datetime
    updated_at: datetime
    #: The source's fingerprint (JSON) when the file is a reference import, else None.
    reference: str | None = None


class LeaseRow(NamedTuple):
    """A store's leader lease as the catalog holds it."""

    attempt: int
    holder: str
    acquired_at: datetime
    expires_at: datetime


class NewFile(NamedTuple):
    """What the store knows about a file when it commits its first version."""

    id: str
    job_id: str | None
    cleanup: bool
    shared_name: str | None
    basename: str | None
    size: int
    checksum: str
    blob_key: str
    executable: bool
    encrypted: bool
    source_url: str | None = None
    reference: str | None = None


class JobFields(NamedTuple):
    """The columns of a job row that the store fills from a JobDescription."""

    id: str
    name: str
    unit_name: str
    state: str
    remaining_tries: int
    memory: int | None
    cores: float | None
    disk: int | None
    description: str
    #: Random, unique to the call that writes these fields: a retried write that finds its own
    #: token in the row knows its first attempt committed (migration 0005). 0 means none.
    write_token: int = 0

    def as_params(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name[:255],
            "unit_name": self.unit_name[:255],
            "state": self.state[:32],
            "remaining_tries": self.remaining_tries,
            "memory": self.memory,
            "cores": self.cores,
            "disk": self.disk,
            "description": self.description,
            "write_token": self.write_token or None,
        }


JOB_FIELD_NAMES = (
    "id",
    "name",
    "unit_name",
    "state",
    "remaining_tries",
    "memory",
    "cores",
    "disk",
    "description",
    "write_token",
)
