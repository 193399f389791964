"""Contention: 8 processes on one store, every kind of concurrent write at once, SQLite and PostgreSQL.

Each worker loops over: a job compare-and-set update, a file compare-and-set update, a shared-file
overwrite, log writes and a log read. Afterwards:

* no lost update: each job's counter, each file's and the shared file's row version equal the
  number of updates that reported success (conflicts are ConcurrentFileModificationException);
* no duplicate log delivery: every message written is delivered exactly once across all readers;
* nothing partial: every file reads back whole (self-verifying content);
* no "database is locked" or other error reaches a caller; no deadlock (every worker reports
  within a bounded time).

``JOBSTORE_RELIABILITY_CYCLES`` sets the cycles per worker (default 100).
"""

from __future__ import annotations

import multiprocessing
import os
import random
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from jobstore import ConcurrentFileModificationException, Config, JobDescription, create_job_store
from tests.reliability.crashlib import content_is_whole, make_content

PROCESSES = 8
CYCLES = int(os.environ.get("JOBSTORE_RELIABILITY_CYCLES", "100"))
SHARED_JOBS = 3
SHARED_FILES = 2
#: Generous: a worker that has not reported by then is deadlocked.
WORKER_DEADLINE = 600


def _worker(locator: str, job_ids: list[str], file_ids: list[str], seed: int, start: Any, queue: Any) -> None:
    counts: Counter[str] = Counter()
    delivered: list[str] = []
    try:
        store = create_job_store(locator)
        store.resume()
        rng = random.Random(seed)
        start.wait()
        for cycle in range(CYCLES):
            job_id = job_ids[(seed + cycle) % len(job_ids)]
            job = store.load_job(job_id)
            job.counter += 1
            try:
                store.update_job(job)
                counts[f"job:{job_id}"] += 1
            except ConcurrentFileModificationException:
                counts["conflicts"] += 1
            file_id = file_ids[(seed + cycle) % len(file_ids)]
            try:
                with store.update_file_stream(file_id) as handle:
                    handle.write(make_content(rng, rng.randrange(0, 20_000)))
                counts[f"file:{file_id}"] += 1
            except ConcurrentFileModificationException:
                counts["conflicts"] += 1
            try:
                with store.write_shared_file_stream("contended") as handle:
                    handle.write(make_content(rng, rng.randrange(0, 5_000)))
                counts["shared"] += 1
            except ConcurrentFileModificationException:
                counts["conflicts"] += 1
            for index in range(2):
                store.write_logs(f"w{seed}-{cycle}-{index}")
            store.read_logs(lambda stream: delivered.append(stream.read().decode()))
        store.close()
        queue.put(("ok", seed, dict(counts), delivered))
    except BaseException as error:  # reported to the parent, which fails the test
        queue.put(("error", seed, repr(error), delivered))


@pytest.fixture(params=["sqlite", "postgres"])
def locator(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"file:{tmp_path}/store"
    server = request.getfixturevalue("postgres_server")
    return f"sql:{server.url}#reliability-{uuid.uuid4().hex[:8]}"


def test_eight_processes_everything_at_once(locator: str, tmp_path: Path) -> None:
    store = create_job_store(locator)
    # A file: locator keeps its blobs in its directory; only sql: takes them from Config.blobStore.
    store.initialize(Config(blobStore=f"file://{tmp_path}/blobs") if locator.startswith("sql:") else Config())
    job_ids = [str(store.create(JobDescription(jobName=f"hot{i}", counter=0)).jobStoreID) for i in range(SHARED_JOBS)]
    file_ids = []
    for _ in range(SHARED_FILES):
        with store.write_file_stream() as (handle, file_id):
            handle.write(make_content(random.Random(0), 10))
        file_ids.append(file_id)
    with store.write_shared_file_stream("contended") as handle:
        handle.write(make_content(random.Random(1), 10))

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    start = context.Event()
    workers = [
        context.Process(target=_worker, args=(locator, job_ids, file_ids, seed, start, queue))
        for seed in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    start.set()
    try:
        results = [queue.get(timeout=WORKER_DEADLINE) for _ in workers]
    finally:
        for worker in workers:
            worker.join(30)
            if worker.is_alive():
                worker.kill()
    errors = [result for result in results if result[0] != "ok"]
    assert errors == [], errors  # in particular no "database is locked"

    totals: Counter[str] = Counter()
    delivered: list[str] = []
    for _, _, counts, got in results:
        totals.update(counts)
        delivered += got
    for job_id in job_ids:
        job = store.load_job(job_id)
        assert job.counter == totals[f"job:{job_id}"]  # no lost update
        assert job.version == 1 + job.counter
    for file_id in file_ids:
        assert store.file_info(file_id).version == 1 + totals[f"file:{file_id}"]
        with store.read_file_stream(file_id) as handle:
            assert content_is_whole(handle.read())
    shared = [info for info in map(store.file_info, store.get_all_file_ids()) if info.shared_name == "contended"]
    assert len(shared) == 1 and shared[0].version == 1 + totals["shared"]
    with store.read_shared_file_stream("contended") as handle:
        assert content_is_whole(handle.read())

    store.read_logs(lambda stream: delivered.append(stream.read().decode()))  # whatever is left
    written = {f"w{seed}-{cycle}-{index}" for seed in range(PROCESSES) for cycle in range(CYCLES) for index in range(2)}
    duplicates = [message for message, count in Counter(delivered).items() if count > 1]
    assert duplicates == []
    assert set(delivered) == written
    print(
        f"{locator.split(':')[0]}: {PROCESSES} processes x {CYCLES} cycles: "
        f"{sum(v for k, v in totals.items() if k.startswith('job:'))} job updates, "
        f"{sum(v for k, v in totals.items() if k.startswith('file:'))} file updates, {totals['shared']} shared "
        f"overwrites, {totals['conflicts']} conflicts, {len(written)} logs delivered once"
    )
    store.close()
