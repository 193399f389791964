"""Many processes on one store; a writer killed mid-work; the example workflow resumed after a kill."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

from jobstore import ConcurrentFileModificationException, JobDescription, create_job_store
from tests.conftest import Backend

PROCESSES = 8
CYCLES = 60


def _hammer(locator: str, catalog: str | None, job_ids: list[str], file_id: str, seed: int, queue) -> None:  # type: ignore[no-untyped-def]
    """Creates, CAS updates and file writes from one process; reports counts or the error."""
    from jobstore import Config

    try:
        store = create_job_store(locator)
        store.resume(Config(catalog=catalog) if catalog else None)
        successes = 0
        conflicts = 0
        for cycle in range(CYCLES):
            job_id = job_ids[(seed + cycle) % len(job_ids)]
            job = store.load_job(job_id)
            job.counter += 1
            try:
                store.update_job(job)
                successes += 1
            except ConcurrentFileModificationException:
                conflicts += 1
            store.create_job(JobDescription(jobName=f"p{seed}"))
            with store.write_file_stream(job_id) as (handle, _):
                handle.write(os.urandom(512))
            try:
                with store.update_file_stream(file_id) as handle:
                    handle.write(f"{seed}:{cycle}".encode())
            except ConcurrentFileModificationException:
                conflicts += 1
        store.close()
        queue.put(("ok", successes, conflicts))
    except BaseException as error:  # reported to the parent
        queue.put(("error", repr(error), 0))


def test_eight_processes_hammering_one_store(backend: Backend) -> None:
    store = backend.new_store()
    job_ids = [store.create(JobDescription(jobName=f"shared{i}", counter=0)).jobStoreID for i in range(4)]
    with store.write_file_stream() as (handle, file_id):
        handle.write(b"start")
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [
        context.Process(target=_hammer, args=(store.locator, store.config.catalog, job_ids, file_id, seed, queue))
        for seed in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    results = [queue.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(60)
    errors = [r for r in results if r[0] != "ok"]
    assert errors == [], errors  # in particular, no "database is locked"
    successes = sum(r[1] for r in results)
    counters = sum(store.load_job(job_id).counter for job_id in job_ids)
    assert counters == successes  # no lost update
    assert store.stats()["jobs"] == len(job_ids) + PROCESSES * CYCLES
    with store.read_file_stream(file_id) as handle:
        assert handle.read()  # readable and verified


def _killed_writer(locator: str, ready) -> None:  # type: ignore[no-untyped-def]
    store = create_job_store(locator)
    store.resume()
    ready.set()
    i = 0
    while True:
        job = store.create(JobDescription(jobName="w", n=i))
        with store.write_file_stream(job.jobStoreID) as (handle, _):
            handle.write(os.urandom(64 * 1024))
        job.n += 1
        store.update_job(job)
        with store.write_shared_file_stream("progress") as handle:
            handle.write(str(i).encode())
        i += 1


def test_catalog_left_by_a_killed_writer(tmp_path: Path) -> None:
    from jobstore import Config, FileJobStore

    store = FileJobStore(f"file:{tmp_path}/wf")
    store.initialize(Config())
    context = multiprocessing.get_context("spawn")
    for _ in range(3):
        ready = context.Event()
        writer = context.Process(target=_killed_writer, args=(store.locator, ready))
        writer.start()
        assert ready.wait(60)
        time.sleep(0.4)
        os.kill(writer.pid, signal.SIGKILL)  # type: ignore[arg-type]
        writer.join()
        reopened = FileJobStore(store.locator)
        reopened.resume()
        # Every committed row points at complete, verifiable bytes.
        for file_id in reopened.get_all_file_ids():
            with reopened.read_file_stream(file_id) as handle:
                handle.read()
        for job in reopened.jobs():
            if job.jobName == "w":
                assert job.n >= 0
        with reopened.read_shared_file_stream("progress") as handle:
            int(handle.read())
        reopened.create(JobDescription(jobName="after-crash"))  # still writable
        reopened.close()
