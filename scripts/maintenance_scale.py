"""Time orphan detection, stats and the blob-listing anti-joins over 1,000,000 file rows (SQLite).

    python scripts/maintenance_scale.py [--files 1000000] [--jobs 10000] [--orphan-fraction 0.1] [--dir DIR]

Fills a fresh file: store's catalog with file rows fast (the maintenance interface's bulk insert, the
one ``jobstore copy`` uses, 50,000 rows per transaction), deletes a fraction of the owning jobs so
their files become orphans, then times:

* ``JobStore.orphaned_file_ids()`` (one anti-join),
* ``JobStore.stats()`` (the report_store_totals view),
* the gc/fsck comparison of a blob listing with the catalog: every key loaded into the temporary
  table, then both anti-joins (listing minus rows, rows minus listing). The "listing" is the rows'
  keys with 1% removed and 1% foreign keys added, so both directions find something; no blobs are
  written (listing a real bucket is I/O, not catalog work).

Prints one line per measurement (seconds) and checks every answer against what was inserted.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jobstore import Config, FileJobStore, JobDescription


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--orphan-fraction", type=float, default=0.1)
    parser.add_argument("--dir", default=None, help="where the store goes (default: a temporary directory)")
    args = parser.parse_args()
    base = Path(args.dir or tempfile.mkdtemp(prefix="jobstore-scale-"))
    store = FileJobStore(f"file:{base / 'store'}")
    store.initialize(Config())
    rows = store.maintenance_catalog

    started = time.perf_counter()
    job_ids = [uuid.uuid4().hex for _ in range(args.jobs)]
    with store.batch():
        for job_id in job_ids:
            description = JobDescription({}, "scale")
            description.jobStoreID = job_id
            store.create_job(description)
    now = datetime.now(UTC)
    keys = []
    batch: list[dict[str, Any]] = []
    for index in range(args.files):
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
            }
        )
        if len(batch) == 50_000:
            rows.insert_file_rows(batch)
            batch = []
    rows.insert_file_rows(batch)
    doomed_jobs = job_ids[: int(len(job_ids) * args.orphan_fraction)]
    with store.batch():
        for job_id in doomed_jobs:
            store.delete_job(job_id)
    expected_orphans = sum(1 for index in range(args.files) if index % len(job_ids) < len(doomed_jobs))
    print(f"filled {args.files:,} file rows, {args.jobs:,} jobs in {time.perf_counter() - started:.1f} s ({base})")

    started = time.perf_counter()
    orphans = store.orphaned_file_ids()
    print(f"orphaned_file_ids: {len(orphans):,} orphans in {time.perf_counter() - started:.2f} s")
    assert len(orphans) == expected_orphans, (len(orphans), expected_orphans)

    started = time.perf_counter()
    stats = store.stats()
    print(
        f"stats(): {time.perf_counter() - started:.2f} s "
        f"({stats['files']:,} files, {stats['orphaned_files']:,} orphans)"
    )
    assert stats["files"] == args.files and stats["orphaned_files"] == expected_orphans

    rng = random.Random(1)
    missing = set(rng.sample(keys, len(keys) // 100))
    listing = [key for key in keys if key not in missing] + [f"x/extra.{n:08x}" for n in range(len(keys) // 100)]
    started = time.perf_counter()
    unreferenced_keys, absent_rows = rows.compare_listing(listing)
    unreferenced, absent = len(unreferenced_keys), len(absent_rows)
    elapsed = time.perf_counter() - started
    print(f"listing vs catalog anti-joins: {unreferenced:,} unreferenced, {absent:,} missing in {elapsed:.2f} s")
    assert unreferenced == len(keys) // 100 and absent == len(missing)
    store.close()


if __name__ == "__main__":
    main()
