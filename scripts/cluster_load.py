"""Hundreds of worker processes on one PostgreSQL store, directly and through PgBouncer.

    python scripts/cluster_load.py --workers 200 --json load.json

Each worker is a process of its own, as Toil starts one per job. All of them wait at a barrier,
then do a Toil worker's operations at once: open and resume the store from its locator, load their
job, write a file for it and read it back, save the job with two new children (``save_jobs``),
update it, add one to a counter job shared with other workers (``modify_job``: a lost update shows
as a wrong total), delete one child and write a log line. Meanwhile the leader polls ``jobs()``
and claims the logs. At the end the store is checked: every worker's job, child, file and counter
increment is there, every log line was read exactly once, and no worker saw an error.

Two runs by default, each on its own new PostgreSQL server started here (the test suite's
recipe): ``direct``, with the server's ``max_connections`` below the worker count, so that workers
wait for a slot; and ``pgbouncer``, with the suite's PgBouncer in transaction mode in front of it
(pool of 20, catalog URL with ``prepare_threshold=none``). Prints operations/s, p50/p99 latency per
operation and the most server connections held at once (sampled every 50 ms), and exits non-zero
if any check failed. ``tests/test_cluster_load.py`` runs a small one of each in the suite.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from jobstore import Config, JobDescription, create_job_store  # noqa: E402
from tests.services.pgbouncer import PgBouncerServer  # noqa: E402
from tests.services.postgres import PostgresServer  # noqa: E402

#: Workers that share one counter job: enough contention for optimistic updates to retry.
COUNTER_SHARDS = 10
MODIFY_ATTEMPTS = 500


@dataclass
class LoadResult:
    via: str
    workers: int
    max_connections: int | None
    pool_size: int | None
    wall_seconds: float = 0.0
    operations: int = 0
    operations_per_second: float = 0.0
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    max_server_connections: int = 0
    max_client_connections: int = 0
    leader_polls: int = 0
    worker_errors: list[str] = field(default_factory=list)
    check_failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.worker_errors and not self.check_failures


def _worker(
    index: int,
    locator: str,
    job_id: str,
    counter_id: str,
    scratch: str,
    barrier: Any,
    results: Any,
) -> None:
    timings: dict[str, list[float]] = {}

    def timed(name: str, operation: Any, *args: Any) -> Any:
        started = time.perf_counter()
        value = operation(*args)
        timings.setdefault(name, []).append(time.perf_counter() - started)
        return value

    outcome: dict[str, Any] = {"index": index, "timings": timings, "error": None}
    try:
        payload = f"worker {index} payload\n".encode() * 64
        source = os.path.join(scratch, f"in-{index}")
        with open(source, "wb") as out:
            out.write(payload)
        barrier.wait(300)
        store = create_job_store(locator)
        timed("resume", store.resume)
        job = timed("load_job", store.load_job, job_id)
        file_id = timed("write_file", store.write_file, source, job_id)

        def read_back() -> bytes:
            with store.read_file_stream(file_id) as stream:
                return bytes(stream.read())

        if timed("read_file", read_back) != payload:
            raise AssertionError(f"worker {index} read back other bytes than it wrote")
        children = [JobDescription(jobName=f"child-{index}-{n}", parent=index) for n in range(2)]
        for child in children:
            store.assign_job_id(child)
        job.state = "running"
        timed("save_jobs", store.save_jobs, [job, *children])
        job = store.load_job(job_id)
        job.state = "completed"
        job.result = index
        job.children = [child.jobStoreID for child in children]
        timed("update_job", store.update_job, job)

        def increment(counter: JobDescription) -> None:
            counter.count += 1

        timed("modify_job", lambda: store.modify_job(counter_id, increment, max_attempts=MODIFY_ATTEMPTS))
        timed("delete_job", store.delete_job, children[0].jobStoreID)
        timed("write_logs", store.write_logs, f"worker {index} done")
        outcome["file_id"] = file_id
        store.close()
    except BaseException:
        outcome["error"] = f"worker {index}: {traceback.format_exc(limit=6)}"
    results.put(outcome)


class _ConnectionSampler:
    """The most connections held at once, sampled from the server (and PgBouncer's console)."""

    def __init__(self, postgres: PostgresServer, pgbouncer: PgBouncerServer | None) -> None:
        # Opened before the workers start, so that a full server cannot refuse the sampler.
        self._server = psycopg.connect(postgres.dsn, autocommit=True)
        self._console = (
            psycopg.connect(pgbouncer.admin_dsn, autocommit=True, prepare_threshold=None) if pgbouncer else None
        )
        self.max_server = 0
        self.max_clients = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _ConnectionSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._server.close()
        if self._console is not None:
            self._console.close()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            row = self._server.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
            ).fetchone()
            self.max_server = max(self.max_server, int(row[0]) if row else 0)
            if self._console is not None:
                cursor = self._console.cursor()
                cursor.execute("SHOW CLIENTS")
                self.max_clients = max(self.max_clients, len(cursor.fetchall()))


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    if not ordered:
        return {}

    def at(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000

    return {"count": len(ordered), "p50": at(0.50), "p99": at(0.99), "mean": statistics.fmean(ordered) * 1000}


@contextlib.contextmanager
def _servers(via: str, max_connections: int | None, pool_size: int) -> Iterator[tuple[PostgresServer, Any, str]]:
    with contextlib.ExitStack() as stack:
        postgres = stack.enter_context(PostgresServer(max_connections=max_connections or 200))
        if via == "pgbouncer":
            pgbouncer = stack.enter_context(PgBouncerServer(postgres, pool_size=pool_size, max_client_conn=5000))
            yield postgres, pgbouncer, f"{pgbouncer.url}?prepare_threshold=none"
        else:
            yield postgres, None, postgres.url


def run_load(
    via: str, workers: int, *, max_connections: int | None = None, pool_size: int = 20, scratch: str | None = None
) -> LoadResult:
    """One run; ``max_connections`` defaults to half the workers on a direct run."""
    if via == "direct" and max_connections is None:
        max_connections = max(5, workers // 2)
    result = LoadResult(
        via, workers, max_connections if via == "direct" else None, pool_size if via == "pgbouncer" else None
    )
    context = multiprocessing.get_context("fork")  # as cheap as a process can start; imports are shared
    with (
        tempfile.TemporaryDirectory(prefix="jobstore-load-", dir=scratch) as directory,
        _servers(via, max_connections if via == "direct" else None, pool_size) as (postgres, pgbouncer, catalog_url),
    ):
        leader = create_job_store(f"sql:{catalog_url}#load-{uuid.uuid4().hex[:8]}")
        leader.initialize(Config(blobStore=f"file://{directory}/blobs"))
        jobs = [JobDescription(jobName=f"job-{index}") for index in range(workers)]
        for job in jobs:
            leader.assign_job_id(job)
        counters = [JobDescription(jobName=f"counter-{shard}", count=0) for shard in range(COUNTER_SHARDS)]
        for counter in counters:
            leader.assign_job_id(counter)
        leader.save_jobs([*jobs, *counters])
        barrier = context.Barrier(workers + 1)
        results = context.Queue()
        processes = [
            context.Process(
                target=_worker,
                args=(
                    index,
                    leader.locator,
                    jobs[index].jobStoreID,
                    counters[index % COUNTER_SHARDS].jobStoreID,
                    directory,
                    barrier,
                    results,
                ),
            )
            for index in range(workers)
        ]
        for process in processes:
            process.start()
        logs: list[str] = []
        outcomes: list[dict[str, Any]] = []
        with _ConnectionSampler(postgres, pgbouncer) as sampler:
            barrier.wait(300)
            started = time.perf_counter()
            while len(outcomes) < workers:
                with contextlib.suppress(Exception):
                    while True:
                        outcomes.append(results.get(timeout=0.01))
                list(leader.jobs())
                leader.read_logs(lambda stream: logs.append(stream.read().decode()))
                result.leader_polls += 1
                if not any(process.is_alive() for process in processes) and results.empty():
                    break
            result.wall_seconds = time.perf_counter() - started
        for process in processes:
            process.join(60)
        leader.read_logs(lambda stream: logs.append(stream.read().decode()))
        result.max_server_connections = sampler.max_server
        result.max_client_connections = sampler.max_clients
        timings: dict[str, list[float]] = {}
        for outcome in outcomes:
            if outcome["error"]:
                result.worker_errors.append(outcome["error"])
            for name, samples in outcome["timings"].items():
                timings.setdefault(name, []).extend(samples)
        if len(outcomes) != workers:
            result.worker_errors.append(f"{workers - len(outcomes)} workers reported nothing (crashed?)")
        result.operations = sum(len(samples) for samples in timings.values())
        result.operations_per_second = result.operations / result.wall_seconds if result.wall_seconds else 0.0
        result.latency_ms = {name: _percentiles(samples) for name, samples in sorted(timings.items())}
        result.check_failures = _check(leader, jobs, counters, logs, outcomes, workers)
        leader.close()
    return result


def _check(
    leader: Any,
    jobs: list[JobDescription],
    counters: list[JobDescription],
    logs: list[str],
    outcomes: list[dict[str, Any]],
    workers: int,
) -> list[str]:
    failures: list[str] = []
    expected_logs = sorted(f"worker {index} done" for index in range(workers))
    if sorted(logs) != expected_logs:
        duplicates = len(logs) - len(set(logs))
        failures.append(f"logs: {len(logs)} read ({duplicates} duplicates), {workers} written")
    stored = {job.jobStoreID: job for job in leader.jobs()}
    for index, job in enumerate(jobs):
        found = stored.get(job.jobStoreID)
        if found is None or found.state != "completed" or getattr(found, "result", None) != index:
            failures.append(f"job {index}: its update was lost ({found!r})")
            continue
        deleted, kept = found.children  # the worker deletes its first child
        if deleted in stored or kept not in stored or stored[kept].jobName != f"child-{index}-1":
            failures.append(
                f"job {index}: children wrong (deleted one still there: {deleted in stored}, "
                f"kept one there: {kept in stored})"
            )
    total = 0
    for shard, counter in enumerate(counters):
        count = int(stored[counter.jobStoreID].count)
        expected = len(range(shard, workers, COUNTER_SHARDS))
        total += count
        if count != expected:
            failures.append(f"counter {shard}: {count}, expected {expected} (lost or doubled increments)")
    if len(stored) != workers + workers + COUNTER_SHARDS:
        failures.append(f"{len(stored)} jobs stored, expected {2 * workers + COUNTER_SHARDS}")
    for outcome in outcomes:
        if "file_id" in outcome and not leader.file_exists(outcome["file_id"]):
            failures.append(f"worker {outcome['index']}: its file is gone")
    return failures


def _print(result: LoadResult) -> None:
    limit = f"max_connections={result.max_connections}" if result.via == "direct" else f"pool={result.pool_size}"
    print(
        f"\n{result.via} ({limit}): {result.workers} workers, {result.operations} operations in "
        f"{result.wall_seconds:.2f} s = {result.operations_per_second:,.0f} ops/s; "
        f"most server connections {result.max_server_connections}"
        + (f", most PgBouncer clients {result.max_client_connections}" if result.via == "pgbouncer" else "")
        + f"; leader polls {result.leader_polls}"
    )
    print(f"  {'operation':<12} {'count':>6} {'p50 ms':>9} {'p99 ms':>9}")
    for name, figures in result.latency_ms.items():
        print(f"  {name:<12} {int(figures['count']):>6} {figures['p50']:>9.1f} {figures['p99']:>9.1f}")
    for line in result.worker_errors[:5] + result.check_failures[:20]:
        print(f"  FAILED: {line}")
    print("  checks: " + ("all passed" if result.ok else "FAILED"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=200)
    parser.add_argument("--via", default="direct,pgbouncer", help="comma-separated: direct, pgbouncer")
    parser.add_argument("--max-connections", type=int, default=None, help="direct run [default workers/2]")
    parser.add_argument("--pool-size", type=int, default=20, help="PgBouncer's default_pool_size")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    results = []
    for via in args.via.split(","):
        result = run_load(via, args.workers, max_connections=args.max_connections, pool_size=args.pool_size)
        _print(result)
        results.append(result)
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
