"""The rows the catalog hands out and takes in, as plain dataclasses.

Kept apart from ``queries`` so that code which only needs these shapes (the store, the SQLite fast
path) does not import SQLAlchemy: a Toil worker is a fresh process per job, and importing
SQLAlchemy costs it ~130 ms.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

#: The newest revision of this code's migrations. A constant, so that checking a catalog's revision
#: needs neither Alembic nor SQLAlchemy; tests/test_migrations.py checks it against the scripts.
HEAD_REVISION = "0004"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class StoreRow:
    id: int
    name: str
    blob_url: str
    workflow_id: str
    config_json: str
    created_at: datetime


@dataclass(frozen=True)
class JobRow:
    id: str
    version: int
    description: str


@dataclass(frozen=True)
class FileRow:
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


@dataclass(frozen=True)
class NewFile:
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


@dataclass(frozen=True)
class JobFields:
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
)
