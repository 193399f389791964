"""Row-version compare-and-set under real contention: 8 processes x 500 read-modify-write cycles on a
handful of shared jobs, on SQLite and on PostgreSQL. The final counters must equal the number of
successful updates (no lost update), and no driver error may reach the caller."""

from __future__ import annotations

import multiprocessing
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from jobstore import ConcurrentFileModificationException, Config, JobDescription, create_job_store

PROCESSES = 8
CYCLES = int(os.environ.get("JOBSTORE_CONTENTION_CYCLES", "500"))
SHARED_JOBS = 4


def _worker(locator: str, job_ids: list[str], seed: int, start: Any, queue: Any) -> None:
    try:
        store = create_job_store(locator)
        store.resume()
        start.wait()
        successes = conflicts = 0
        for cycle in range(CYCLES):
            job = store.load_job(job_ids[(seed + cycle) % len(job_ids)])
            job.counter += 1
            try:
                store.update_job(job)
                successes += 1
            except ConcurrentFileModificationException:
                conflicts += 1
        store.close()
        queue.put(("ok", successes, conflicts))
    except BaseException as error:  # reported to the parent
        queue.put(("error", repr(error), 0))


@pytest.fixture(params=["sqlite", "postgres"])
def locator(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"file:{tmp_path}/store"
    server = request.getfixturevalue("postgres_server")
    return f"sql:{server.url}#contention-{uuid.uuid4().hex[:8]}"


def test_no_lost_updates_under_contention(locator: str, tmp_path: Path) -> None:
    store = create_job_store(locator)
    # A file: locator keeps its blobs in its directory; only sql: takes them from Config.blobStore.
    store.initialize(Config(blobStore=f"file://{tmp_path}/blobs") if locator.startswith("sql:") else Config())
    job_ids = [store.create(JobDescription(jobName=f"shared{i}", counter=0)).jobStoreID for i in range(SHARED_JOBS)]
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    start = context.Event()
    processes = [
        context.Process(target=_worker, args=(locator, job_ids, seed, start, queue)) for seed in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    began = time.monotonic()
    start.set()
    results = [queue.get(timeout=600) for _ in processes]
    elapsed = time.monotonic() - began
    for process in processes:
        process.join(60)
    errors = [result for result in results if result[0] != "ok"]
    assert errors == [], errors
    successes = sum(result[1] for result in results)
    conflicts = sum(result[2] for result in results)
    assert successes + conflicts == PROCESSES * CYCLES
    assert sum(store.load_job(job_id).counter for job_id in job_ids) == successes
    assert all(store.load_job(job_id).version == 1 + store.load_job(job_id).counter for job_id in job_ids)
    print(f"{locator.split(':')[0]}: {successes} updates, {conflicts} conflicts, {successes / elapsed:.0f} updates/s")
    store.close()
