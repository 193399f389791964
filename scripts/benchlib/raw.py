"""Floors to compare against: the same work done with the standard library only.

``RawSqliteStore`` issues the statements a SQL job catalog needs through ``sqlite3`` directly
(WAL, ``synchronous=NORMAL``, one-row autocommit transactions, one ``BEGIN IMMEDIATE`` transaction
for ``batch()``, versioned ``UPDATE ... WHERE version = ?``); for small files (W7) it keeps each
file as a plain file beside the database and commits its row per operation, which is the least
work any store that records every file operation in SQLite must do. ``RawCopyStore`` stores files as plain
files in a directory with ``shutil.copyfile`` (and ``cp`` on request). Both expose the subset of the
Toil-style job store API that the workloads call, so the workloads need no special cases.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any


class RawConcurrentModification(Exception):
    """The versioned UPDATE matched no row: someone else updated the job first."""


class RawNoSuchJob(KeyError):
    pass


class RawJob:
    """The fields a job row holds; mirrors jobstore's JobDescription closely enough."""

    def __init__(self, requirements: dict[str, Any], jobName: str, unitName: str = "", **extra: Any) -> None:
        self.jobStoreID: str | None = None
        self.version: int | None = None
        self.requirements = dict(requirements)
        self.jobName = jobName
        self.unitName = unitName
        self.remainingTryCount = 1
        self.state = "pending"
        for name, value in extra.items():
            setattr(self, name, value)

    _CORE = ("jobStoreID", "version", "requirements", "jobName", "unitName", "remainingTryCount", "state")

    def to_json(self) -> str:
        extra = {k: v for k, v in vars(self).items() if k not in self._CORE}
        return json.dumps(
            {
                "jobStoreID": self.jobStoreID,
                "requirements": self.requirements,
                "jobName": self.jobName,
                "unitName": self.unitName,
                "remainingTryCount": self.remainingTryCount,
                "state": self.state,
                "extra": extra,
            },
            sort_keys=True,
        )

    @classmethod
    def from_row(cls, description: str, version: int) -> RawJob:
        data = json.loads(description)
        job = cls(data["requirements"], data["jobName"], data["unitName"], **data["extra"])
        job.jobStoreID = data["jobStoreID"]
        job.remainingTryCount = data["remainingTryCount"]
        job.state = data["state"]
        job.version = version
        return job


_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    name TEXT NOT NULL,
    unit_name TEXT NOT NULL,
    state TEXT NOT NULL,
    remaining_try_count INTEGER NOT NULL,
    memory INTEGER,
    cores REAL,
    disk INTEGER,
    description TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state);
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY,
    job_id TEXT,
    cleanup INTEGER NOT NULL DEFAULT 0,
    size INTEGER NOT NULL,
    blob_key TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS files_job ON files (job_id);
"""


class RawSqliteStore:
    """Job rows in SQLite through the sqlite3 module, nothing in between."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        # isolation_level=None: autocommit, so every statement outside batch() is its own commit.
        self.db = sqlite3.connect(str(self.path), isolation_level=None, timeout=60.0)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=60000")
        self.db.executescript(_SCHEMA)
        self._in_batch = False
        self.blobs = self.path.parent / "raw-sqlite-blobs"
        self.blobs.mkdir(exist_ok=True)

    # --- jobs ---------------------------------------------------------------------------------

    def assign_job_id(self, job: RawJob) -> None:
        job.jobStoreID = uuid.uuid4().hex

    def _row(self, job: RawJob) -> tuple[Any, ...]:
        req = job.requirements
        return (
            job.jobName,
            job.unitName,
            job.state,
            job.remainingTryCount,
            req.get("memory"),
            req.get("cores"),
            req.get("disk"),
            job.to_json(),
        )

    def create_job(self, job: RawJob) -> RawJob:
        if job.jobStoreID is None:
            self.assign_job_id(job)
        self.db.execute(
            "INSERT INTO jobs (id, version, name, unit_name, state, remaining_try_count, memory, cores, "
            "disk, description, created, updated) "
            "VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?, ?, julianday('now'), julianday('now'))",
            (job.jobStoreID, *self._row(job)),
        )
        job.version = 1
        return job

    def load_job(self, job_id: str) -> RawJob:
        row = self.db.execute("SELECT description, version FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise RawNoSuchJob(job_id)
        return RawJob.from_row(row[0], row[1])

    def update_job(self, job: RawJob) -> None:
        cur = self.db.execute(
            "UPDATE jobs SET name = ?, unit_name = ?, state = ?, remaining_try_count = ?, memory = ?, "
            "cores = ?, disk = ?, description = ?, version = version + 1, updated = julianday('now') "
            "WHERE id = ? AND version = ?",
            (*self._row(job), job.jobStoreID, job.version),
        )
        if cur.rowcount != 1:
            raise RawConcurrentModification(job.jobStoreID)
        assert job.version is not None
        job.version += 1

    def delete_job(self, job_id: str) -> None:
        self.db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def jobs(self) -> Iterator[RawJob]:
        for description, version in self.db.execute("SELECT description, version FROM jobs"):
            yield RawJob.from_row(description, version)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # --- small files (W7): a plain file per blob, its row committed per operation -------------

    def write_file(self, local_path: str, job_id: str | None = None, cleanup: bool = False) -> str:
        file_id = uuid.uuid4().hex
        blob = self.blobs / file_id
        shutil.copyfile(local_path, blob)
        self.db.execute(
            "INSERT INTO files (id, job_id, cleanup, size, blob_key, version, created) "
            "VALUES (?, ?, ?, ?, ?, 1, julianday('now'))",
            (file_id, job_id, int(cleanup), blob.stat().st_size, file_id),
        )
        return file_id

    def _blob_of(self, file_id: str) -> Path:
        row = self.db.execute("SELECT blob_key FROM files WHERE id = ?", (file_id,)).fetchone()
        if row is None:
            raise FileNotFoundError(file_id)
        return self.blobs / row[0]

    def read_file(self, file_id: str, local_path: str, symlink: bool = False) -> None:
        blob = self._blob_of(file_id)
        try:
            os.link(blob, local_path)  # the immutable blob, shared: what both stores do on one file system
        except OSError as error:
            if error.errno != errno.EXDEV:
                raise
            shutil.copyfile(blob, local_path)

    def delete_file(self, file_id: str) -> None:
        row = self.db.execute("DELETE FROM files WHERE id = ? RETURNING blob_key", (file_id,)).fetchone()
        if row is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.blobs / row[0])

    # --- maintenance (W9) ---------------------------------------------------------------------

    def populate_file_rows(self, job_ids: list[str], rows: int, orphan_fraction: float) -> int:
        """Insert ``rows`` file rows; about ``orphan_fraction`` of them name a job that does not exist."""
        orphans = int(rows * orphan_fraction)
        self.db.execute("BEGIN IMMEDIATE")
        self.db.executemany(
            "INSERT INTO files (id, job_id, cleanup, size, blob_key, version, created) VALUES (?, ?, 0, ?, ?, 1, 0)",
            (
                (
                    f"f{i:09d}",
                    f"missing-{i}" if i < orphans else job_ids[i % len(job_ids)],
                    4096 + i % 1000,
                    f"blobs/{i:09d}",
                )
                for i in range(rows)
            ),
        )
        self.db.execute("COMMIT")
        return orphans

    def orphaned_file_ids(self) -> list[str]:
        return [
            row[0]
            for row in self.db.execute(
                "SELECT f.id FROM files f LEFT JOIN jobs j ON j.id = f.job_id "
                "WHERE f.job_id IS NOT NULL AND j.id IS NULL"
            )
        ]

    def stats(self) -> dict[str, Any]:
        jobs_by_state = dict(self.db.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall())
        files, size = self.db.execute("SELECT count(*), coalesce(sum(size), 0) FROM files").fetchone()
        return {"jobs": jobs_by_state, "files": files, "bytes": size}

    def destroy(self) -> None:
        self.db.close()
        shutil.rmtree(self.blobs, ignore_errors=True)


def fastest_crc32c() -> Callable[[bytes, int], int]:
    """``extend(data, crc)`` with the fastest CRC32C at hand: what a verifying reader must at least
    add to a plain read (awscrt's, jobstore's engine for large transfers; else google-crc32c's)."""
    try:
        from awscrt.checksums import crc32c

        return lambda data, crc: int(crc32c(data, crc))
    except ImportError:
        import google_crc32c

        return lambda data, crc: int(google_crc32c.extend(crc, data))


class RawCopyStore:
    """Files as plain files in one directory: the floor for W7 and W8."""

    def __init__(self, root: Path, use_cp: bool = False) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.use_cp = use_cp

    def _copy(self, src: str | Path, dst: str | Path) -> None:
        if self.use_cp:
            subprocess.run(["cp", "--", str(src), str(dst)], check=True)
        else:
            shutil.copyfile(src, dst)

    def write_file(self, local_path: str, job_id: str | None = None, cleanup: bool = False) -> str:
        file_id = uuid.uuid4().hex
        self._copy(local_path, self.root / file_id)
        return file_id

    def read_file(self, file_id: str, local_path: str, symlink: bool = False) -> None:
        self._copy(self.root / file_id, local_path)

    def delete_file(self, file_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.root / file_id)

    @contextlib.contextmanager
    def write_file_stream(self, job_id: str | None = None, cleanup: bool = False) -> Iterator[tuple[IO[bytes], str]]:
        file_id = uuid.uuid4().hex
        with open(self.root / file_id, "wb") as handle:
            yield handle, file_id

    @contextlib.contextmanager
    def read_file_stream(self, file_id: str) -> Iterator[IO[bytes]]:
        with open(self.root / file_id, "rb") as handle:
            yield handle

    def destroy(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
