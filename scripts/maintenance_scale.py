"""Time status, reports, orphan detection and the gc/fsck listing comparison over a big store.

    python scripts/maintenance_scale.py [--jobs 10000] [--files 1000000] [--catalog sqlite,postgres]
    python scripts/maintenance_scale.py --jobs 1000000 --files 3000000 --catalog sqlite,postgres

For each catalog (SQLite: a ``file:`` store; PostgreSQL: a store in a database of a server started
here with the test suite's recipe, on 127.0.0.1), fills a fresh store fast: jobs through
``batch()`` (50,000 per transaction), file rows through the maintenance interface's bulk insert
(the one ``jobstore copy`` uses, 50,000 rows per transaction), and deletes a fraction of the jobs
so that their files become orphans. Then times:

* ``jobstore status LOCATOR --json``: the whole command, a fresh process;
* each reporting view of docs/REPORTING.md for the store (all rows fetched);
* ``JobStore.orphaned_file_ids()`` (one anti-join) and ``JobStore.stats()``;
* the gc/fsck comparison of a blob listing with the catalog: every key loaded into the temporary
  table, then both anti-joins (listing minus rows, rows minus listing). The "listing" is the rows'
  keys with 1% removed and 1% foreign keys added, so both directions find something; no blobs are
  written (listing a real bucket is I/O, not catalog work).

Prints one line per measurement (seconds) and checks every answer against what was inserted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from jobstore import Config, JobDescription, JobStore, create_job_store  # noqa: E402

CHUNK = 50_000
REPORT_VIEWS = (
    "report_store_totals",
    "report_job_counts",
    "report_failed_jobs",
    "report_job_files",
    "report_orphaned_files",
)


@contextlib.contextmanager
def _store(catalog: str, base: Path) -> Iterator[JobStore]:
    if catalog == "sqlite":
        store = create_job_store(f"file:{base / 'store'}")
        store.initialize(Config())
        yield store
        store.close()
        return
    from tests.services.postgres import PostgresServer

    with PostgresServer() as server:
        url = server.new_database("scale")
        store = create_job_store(f"sql:{url}#scale")
        store.initialize(Config(blobStore=f"file://{base / 'blobs'}"))
        yield store
        store.close()


def _timed(label: str, work: Any) -> Any:
    started = time.perf_counter()
    result = work()
    print(f"  {label}: {time.perf_counter() - started:.2f} s")
    return result


def _fill(store: JobStore, jobs: int, files: int, orphan_fraction: float) -> tuple[list[str], int]:
    started = time.perf_counter()
    job_ids = [uuid.uuid4().hex for _ in range(jobs)]
    states = ("completed", "running", "pending", "failed")
    for offset in range(0, jobs, CHUNK):
        with store.batch():
            for index, job_id in enumerate(job_ids[offset : offset + CHUNK], start=offset):
                description = JobDescription({}, "scale", state=states[index % len(states)])
                description.jobStoreID = job_id
                store.create_job(description)
    rows = store.maintenance_catalog
    now = datetime.now(UTC)
    keys = []
    batch: list[dict[str, Any]] = []
    for index in range(files):
        file_id = uuid.uuid4().hex
        key = f"f/{file_id[:2]}/{file_id}.{index:08x}"
        keys.append(key)
        batch.append(
            {
                "id": file_id,
                "version": 1,
                "job_id": job_ids[index % len(job_ids)],
                # no cleanup files: deleting their jobs below must leave every file behind, orphaned
                "cleanup": False,
                "shared_name": None,
                "basename": None,
                "size": 1000,
                "checksum": "crc32c:00000000",
                "blob_key": key,
                "executable": False,
                "encrypted": False,
                "source_url": None,
                "created_at": now,
                "updated_at": now,
                "reference": None,
            }
        )
        if len(batch) == CHUNK:
            rows.insert_file_rows(batch)
            batch = []
    rows.insert_file_rows(batch)
    doomed = job_ids[: int(len(job_ids) * orphan_fraction)]
    for offset in range(0, len(doomed), CHUNK):
        with store.batch():
            for job_id in doomed[offset : offset + CHUNK]:
                store.delete_job(job_id)
    expected_orphans = sum(1 for index in range(files) if index % len(job_ids) < len(doomed))
    # What autovacuum does within a minute of a burst like this (and `jobstore copy` at its end):
    # without it PostgreSQL's planner sees near-empty tables and picks a quadratic anti-join.
    rows.refresh_statistics()
    print(f"  filled {jobs:,} jobs and {files:,} file rows in {time.perf_counter() - started:.1f} s")
    return keys, expected_orphans


def measure(catalog: str, jobs: int, files: int, orphan_fraction: float, base: Path) -> None:
    print(f"{catalog}:")
    with _store(catalog, base) as store:
        keys, expected_orphans = _fill(store, jobs, files, orphan_fraction)
        live_jobs = jobs - int(jobs * orphan_fraction)

        status = _timed(
            "jobstore status --json (a new process)",
            lambda: subprocess.run(
                [sys.executable, "-m", "jobstore", "status", store.locator, "--json"],
                capture_output=True,
                text=True,
                check=True,
            ),
        )
        reported = json.loads(status.stdout)
        assert reported["jobs"] == live_jobs and reported["files"] == files, reported

        for view in REPORT_VIEWS:

            def read_view(view: str = view) -> int:
                with store.catalog.engine.connect() as connection:
                    # A fixed view name from the tuple above; the store is a bound parameter.
                    query = text(f"SELECT * FROM {view} WHERE store_id = :sid")  # noqa: S608
                    return len(connection.execute(query, {"sid": store.store_id}).fetchall())

            count = _timed(f"SELECT * FROM {view} (this store)", read_view)  # noqa: S608
            print(f"    {count:,} rows")

        orphans = _timed("orphaned_file_ids()", store.orphaned_file_ids)
        assert len(orphans) == expected_orphans, (len(orphans), expected_orphans)
        stats = _timed("stats()", store.stats)
        assert stats["files"] == files and stats["orphaned_files"] == expected_orphans

        rng = random.Random(1)
        missing = set(rng.sample(keys, len(keys) // 100))
        listing = [key for key in keys if key not in missing] + [f"x/extra.{n:08x}" for n in range(len(keys) // 100)]
        unreferenced, absent = _timed(
            f"gc/fsck planning: a {len(listing):,}-key listing against the rows",
            lambda: store.maintenance_catalog.compare_listing(listing),
        )
        assert len(unreferenced) == len(keys) // 100 and len(absent) == len(missing)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--orphan-fraction", type=float, default=0.1)
    parser.add_argument("--catalog", default="sqlite", help="comma-separated: sqlite, postgres")
    parser.add_argument("--dir", default=None, help="where the stores go (default: a temporary directory)")
    args = parser.parse_args()
    for catalog in args.catalog.split(","):
        with tempfile.TemporaryDirectory(prefix="jobstore-scale-", dir=args.dir) as base:
            measure(catalog, args.jobs, args.files, args.orphan_fraction, Path(base))


if __name__ == "__main__":
    main()
