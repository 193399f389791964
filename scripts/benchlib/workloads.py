"""The workloads. Each runs inside a fresh child process against one opened store.

A workload has *cases* (most have one; W10 has one per process count), and a run of a case returns
one or more ``Metric``s (W7 and W8 time several operations separately). Only the sections inside
``Stopwatch`` are timed: creating the jobs that W2/W3/W5/W6 read, building job descriptions,
writing source files and inserting W9's rows all happen before the clock starts.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchlib.model import Metric, Params, Stopwatch, peak_rss_kib, reset_peak_rss
from benchlib.raw import fastest_crc32c
from benchlib.targets import Session, get_target

Case = dict[str, Any]
RunFn = Callable[[Session, Case, Params, Path], list[Metric]]


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    measures: str  # one sentence for the docs / --list
    run: RunFn
    cases: Callable[[Params], list[Case]] = lambda params: [{}]
    #: Leaves big files (gigabytes, in few inodes): removed right after each run even when
    #: cleanup is deferred, so that the disk does not fill.
    big_files: bool = False

    def case_label(self, case: Case) -> str:
        return ",".join(f"{k}={v}" for k, v in case.items())


# --- helpers ------------------------------------------------------------------------------------


def create_jobs(session: Session, count: int, use_batch: bool = True) -> list[str]:
    """Untimed setup: ``count`` jobs, inside one batch() when asked."""
    store = session.store
    ids: list[str] = []
    ctx = store.batch() if use_batch else contextlib.nullcontext()
    with ctx:
        for i in range(count):
            job = session.new_job(i)
            store.assign_job_id(job)
            store.create_job(job)
            ids.append(job.jobStoreID)
    return ids


def metric(name: str, sw: Stopwatch, count: float, unit: str = "ops", **extra: Any) -> Metric:
    extra.setdefault("rss_start_kib", sw.rss_start_kib)
    return Metric(name=name, seconds=sw.seconds, count=count, unit=unit, rss_kib=sw.rss_peak_kib, extra=extra)


def write_pattern(path: Path, size: int, chunk: int) -> bytes:
    """Write ``size`` bytes (a repeated random chunk) to ``path``; return the chunk."""
    block = os.urandom(min(chunk, max(size, 1)))
    with open(path, "wb") as out:
        left = size
        while left > 0:
            out.write(block[: min(left, len(block))])
            left -= len(block)
    return block


# --- W1-W6: jobs --------------------------------------------------------------------------------


def w1_create(session: Session, case: Case, p: Params, workdir: Path) -> list[Metric]:
    store = session.store
    jobs = [session.new_job(i) for i in range(p.n)]
    with Stopwatch() as sw:
        for job in jobs:
            store.assign_job_id(job)
            store.create_job(job)
    return [metric("create", sw, p.n, "jobs")]


def w2_load(session: Session, case: Case, p: Params, workdir: Path) -> list[Metric]:
    store = session.store
    ids = create_jobs(session, p.n)
    with Stopwatch() as sw:
        for job_id in ids:
            store.load_job(job_id)
    return [metric("load", sw, p.n, "jobs")]


def w3_update(session: Session, case: Case, p: Params, workdir: Path) -> list[Metric]:
    store = session.store
    ids = create_jobs(session, p.n)
    with Stopwatch() as sw:
        for job_id in ids:
            job = store.load_job(job_id)
            job.counter += 1
            job.remainingTryCount += 1
            store.update_job(job)
    return [metric("load+update", sw, p.n, "jobs")]


def w4_batch(session: Session, case: Case, p: Params, workdir: Path) -> list[Metric]:
    store = session.store
    jobs = [session.new_job(i) for i in range(p.n)]
    with Stopwatch() as sw:
        with store.batch():
            for job in jobs:
                store.assign_job_id(job)
                store.create_job(job)
    return [metric("batch create", sw, p.n, "jobs")]


def w5_iterate(session: Session, case: Case, p: Params, workdir: Path) -> list[Metric]:
    store = session.store
    create_jobs(session, p.iter_jobs)
    with Stopwatch() as sw:
        seen = sum(1 for _ in store.jobs())
    if seen != p.iter_jobs:
        raise AssertionError(f"jobs() yielded {seen} jobs, expected {p.iter_jobs}")
    return [metric("jobs()", sw, p.iter_jobs, "jobs")]


def w6_delete(session: Session, case: Case, p: Params, workdir: Path) -> list[Metric]:
    store = session.store
    ids = create_jobs(session, p.n)
    with Stopwatch() as sw:
        for job_id in ids:
            store.delete_job(job_id)
    return [metric("delete", sw, p.n, "jobs")]


# --- W7, W8: files ------------------------------------------------------------------------------


def _owner_job(session: Session) -> str | None:
    try:
        return create_jobs(session, 1, use_batch=False)[0]
    except NotImplementedError:
        return None  # raw-copy: files without jobs


def w7_small_files(session: Session, case: Case, p: Params, workdir: Path) -> list[Metric]:
    store = session.store
    owner = _owner_job(session)
    src = workdir / "small-source.bin"
    write_pattern(src, p.small_size, p.small_size)
    out = workdir / "small-out"
    out.mkdir()
    targets = [str(out / f"f{i}") for i in range(p.small_files)]
    size_bytes = p.small_files * p.small_size
    with Stopwatch() as sw_write:
        ids = [store.write_file(str(src), job_id=owner) for _ in range(p.small_files)]
    with Stopwatch() as sw_read:
        for file_id, local in zip(ids, targets, strict=True):
            store.read_file(file_id, local)
    m_write = metric("write_file", sw_write, p.small_files, "files", bytes=size_bytes)
    m_read = metric("read_file", sw_read, p.small_files, "files", bytes=size_bytes)
    with Stopwatch() as sw_delete:
        for file_id in ids:
            store.delete_file(file_id)
    return [m_write, m_read, metric("delete_file", sw_delete, p.small_files, "files")]


def _read_stream(store: Any, file_id: str, chunk: int, extend: Callable[[bytes, int], int] | None = None) -> int:
    """Read a stream to its end in ``chunk`` reads; with ``extend``, also CRC32C what passes."""
    total = crc = 0
    with store.read_file_stream(file_id) as handle:
        while True:
            data = handle.read(chunk)
            if not data:
                return total
            total += len(data)
            if extend is not None:
                crc = extend(data, crc)


def other_file_system(workdir: Path, needed: int) -> Path | None:
    """A writable directory on another file system with room for ``needed`` bytes:
    $JOBSTORE_BENCH_OTHER_FS, else /dev/shm (tmpfs); None if there is none."""
    for candidate in filter(None, [os.environ.get("JOBSTORE_BENCH_OTHER_FS"), "/dev/shm"]):
        path = Path(candidate)
        try:
            if (
                path.is_dir()
                and os.access(path, os.W_OK)
                and path.stat().st_dev != workdir.stat().st_dev
                and shutil.disk_usage(path).free > needed * 1.2
            ):
                return path
        except OSError:
            continue
    return None


def w8_big_file(session: Session, case: Case, p: Params, workdir: Path) -> list[Metric]:
    store = session.store
    src = workdir / "big-source.bin"
    block = write_pattern(src, p.big_size, p.chunk)
    out = workdir / "big-out.bin"
    metrics: list[Metric] = []

    with Stopwatch() as sw:
        file_id = store.write_file(str(src))
    metrics.append(metric("write_file", sw, p.big_size, "B"))

    with Stopwatch() as sw:
        store.read_file(file_id, str(out))
    metrics.append(metric("read_file", sw, p.big_size, "B", hardlinked=out.stat().st_nlink > 1))
    if out.stat().st_size != p.big_size:
        raise AssertionError(f"read_file produced {out.stat().st_size} bytes, expected {p.big_size}")
    out.unlink()
    src.unlink()  # keep the disk footprint at two copies

    other = other_file_system(workdir, p.big_size)
    if other is not None:  # read_file across file systems: a real copy (no link possible)
        target = other / f"jobstore-bench-{os.getpid()}.bin"
        try:
            with Stopwatch() as sw:
                store.read_file(file_id, str(target))
            if target.stat().st_size != p.big_size:
                raise AssertionError(f"read_file to {other} produced {target.stat().st_size} bytes")
        finally:
            target.unlink(missing_ok=True)
        metrics.append(metric("read_file (other FS)", sw, p.big_size, "B"))

    with Stopwatch() as sw:
        with store.write_file_stream() as (handle, stream_id):
            left = p.big_size
            while left > 0:
                handle.write(block[: min(left, len(block))])
                left -= len(block)
    metrics.append(metric("write_file_stream", sw, p.big_size, "B"))
    store.delete_file(file_id)

    with Stopwatch() as sw:
        got = _read_stream(store, stream_id, p.chunk)
    if got != p.big_size:
        raise AssertionError(f"read_file_stream yielded {got} bytes, expected {p.big_size}")
    metrics.append(metric("read_file_stream", sw, p.big_size, "B"))

    if getattr(store, "use_cp", None) is False:  # raw-copy: the floor of a verifying stream read
        extend = fastest_crc32c()
        with Stopwatch() as sw:
            got = _read_stream(store, stream_id, p.chunk, extend)
        if got != p.big_size:
            raise AssertionError(f"read_file_stream yielded {got} bytes, expected {p.big_size}")
        metrics.append(metric("read_file_stream + crc32c", sw, p.big_size, "B"))

    if getattr(store, "use_cp", None) is False:  # raw-copy: also time cp(1) for write and read
        store.use_cp = True
        src = workdir / "big-source.bin"
        write_pattern(src, p.big_size, p.chunk)
        with Stopwatch() as sw:
            cp_id = store.write_file(str(src))
        metrics.append(metric("write_file (cp)", sw, p.big_size, "B"))
        src.unlink()
        with Stopwatch() as sw:
            store.read_file(cp_id, str(out))
        metrics.append(metric("read_file (cp)", sw, p.big_size, "B"))
    return metrics


# --- W9: maintenance queries over many file rows ------------------------------------------------


def _w9_populate(
    target_name: str,
    opts: dict[str, Any],
    handle: dict[str, Any],
    job_ids: list[str],
    rows: int,
    orphan_fraction: float,
    results: Any,
) -> None:
    """W9's row loading, in a process of its own so that its memory (a big SQLite page cache,
    a million Python tuples) is not charged to the measured child."""
    try:
        session = get_target(target_name).attach(handle, opts)
        orphans = session.populate_file_rows(job_ids, rows, orphan_fraction)
        session.close(destroy=False)
        results.put({"ok": True, "orphans": orphans})
    except BaseException as exc:
        results.put({"ok": False, "error": f"{type(exc).__name__}: {exc}"})


def w9_maintenance(session: Session, case: Case, p: Params, workdir: Path) -> list[Metric]:
    store = session.store
    job_ids = create_jobs(session, p.file_jobs)
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    loader = ctx.Process(
        target=_w9_populate,
        args=(
            os.environ["BENCH_TARGET"],
            _child_opts(),
            session.handle,
            job_ids,
            p.file_rows,
            p.orphan_fraction,
            results,
        ),
    )
    loader.start()
    report = results.get(timeout=3600)
    loader.join()
    if not report["ok"]:
        raise RuntimeError(f"loading W9's file rows failed: {report['error']}")
    expected = int(report["orphans"])
    # Reports run through SQLAlchemy, which nothing else in this process has imported: the first
    # one would also pay the import and the engine's first connection (~0.15 s, once per process).
    # Measure the queries: open the read engine, untimed.
    catalog = getattr(store, "catalog", None)
    if catalog is not None:
        catalog.schema_state(store.locator)
    with Stopwatch() as sw:
        orphans = list(store.orphaned_file_ids())
    m_orphans = metric("orphaned_file_ids", sw, p.file_rows, "rows", orphans=len(orphans), expected=expected)
    if len(orphans) != expected:
        m_orphans.extra["problem"] = f"found {len(orphans)} orphans, expected {expected}"
    with Stopwatch() as sw:
        store.stats()
    return [m_orphans, metric("stats", sw, p.file_rows, "rows")]


# --- W10: concurrent load-modify-update with compare-and-swap -----------------------------------


def _w10_worker(
    target_name: str,
    opts: dict[str, Any],
    handle: dict[str, Any],
    job_ids: list[str],
    updates: int,
    offset: int,
    barrier: Any,
    results: Any,
) -> None:
    """One of W10's P processes: ``updates`` successful load-modify-updates, retrying conflicts."""
    try:
        session = get_target(target_name).attach(handle, opts)
        store, cas_errors = session.store, session.cas_errors
        successes = conflicts = 0
        reset_peak_rss()
        barrier.wait()
        start = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process of the machine
        for i in range(updates):
            job_id = job_ids[(offset + i) % len(job_ids)]
            while True:
                job = store.load_job(job_id)
                job.counter += 1
                try:
                    store.update_job(job)
                except cas_errors:
                    conflicts += 1
                    continue
                successes += 1
                break
        results.put(
            {
                "ok": True,
                "successes": successes,
                "conflicts": conflicts,
                "start": start,
                "end": time.monotonic(),
                "rss_kib": peak_rss_kib(),
            }
        )
    except BaseException as exc:
        with contextlib.suppress(Exception):
            barrier.abort()
        results.put({"ok": False, "error": f"{type(exc).__name__}: {exc}"})


def w10_cases(p: Params) -> list[Case]:
    return [{"P": procs} for procs in p.procs]


def w10_concurrent(session: Session, case: Case, p: Params, workdir: Path) -> list[Metric]:
    procs = int(case["P"])
    store = session.store
    job_ids = create_jobs(session, p.shared_jobs)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(procs + 1)
    results = ctx.Queue()
    target_name, opts = os.environ["BENCH_TARGET"], _child_opts()
    workers = [
        ctx.Process(
            target=_w10_worker,
            args=(target_name, opts, session.handle, job_ids, p.updates_per_proc, k, barrier, results),
        )
        for k in range(procs)
    ]
    for w in workers:
        w.start()
    try:
        barrier.wait(timeout=300)  # every worker has imported, attached and is ready
    except Exception:
        pass  # a worker failed before the start; its report below says why
    reports = [results.get(timeout=3600) for _ in workers]
    for w in workers:
        w.join()
    failures = [r["error"] for r in reports if not r["ok"]]
    if failures:
        raise RuntimeError("W10 worker failed: " + "; ".join(failures))
    seconds = max(r["end"] for r in reports) - min(r["start"] for r in reports)
    successes = sum(r["successes"] for r in reports)
    conflicts = sum(r["conflicts"] for r in reports)
    final = sum(store.load_job(job_id).counter for job_id in job_ids)
    sw = Stopwatch()
    sw.seconds = seconds
    sw.rss_peak_kib = max(r["rss_kib"] for r in reports)  # the workers did the work
    m = metric(
        f"P={procs} updates",
        sw,
        successes,
        "updates",
        conflicts=conflicts,
        final_counters=final,
        lost_updates=successes - final,
    )
    if final != successes:
        m.extra["problem"] = f"LOST UPDATES: counters sum to {final}, {successes} updates succeeded"
    return [m]


def w11_cases(p: Params) -> list[Case]:
    return [{"size": "1GiB"}, {"size": "10GiB"}]


def w11_reference_import(session: Session, case: Case, p: Params, workdir: Path) -> list[Metric]:
    """Import a local file without copying it (jobstore's reference mode; Toil's symlinked import
    under its default ``symlinkImports``), then read it back as a link. The source is sparse:
    neither a reference nor a symlink reads the bytes, so its size is all that matters."""
    store = session.store
    size = {"1GiB": 1024**3, "10GiB": 10 * 1024**3}[str(case["size"])]
    source = workdir / "reference-source.bin"
    with open(source, "wb") as handle:
        handle.truncate(size)
    native = type(store).__module__.startswith("jobstore.store")
    with Stopwatch() as sw:
        if native:
            file_id = store.import_file(source.as_uri(), mode="reference")
        else:  # the Toil interface: symlink=True is its default, symlinkImports the config's
            file_id = store.import_file(source.as_uri())
    imported = metric("import_file", sw, 1, "imports", bytes=size)
    out = workdir / "reference-out.bin"
    with Stopwatch() as sw:
        store.read_file(file_id, str(out), symlink=True)
    linked = metric("read_file (symlink ok)", sw, 1, "reads", symlink=out.is_symlink())
    if out.stat().st_size != size:
        raise AssertionError(f"read_file produced {out.stat().st_size} bytes, expected {size}")
    out.unlink()
    store.delete_file(file_id)
    if source.stat().st_size != size:
        raise AssertionError("deleting the imported file changed its source")
    source.unlink()
    return [imported, linked]


def _child_opts() -> dict[str, Any]:
    import json

    return dict(json.loads(os.environ.get("BENCH_OPTS", "{}")))


# --- the registry -------------------------------------------------------------------------------

WORKLOADS: dict[str, Workload] = {
    w.key: w
    for w in (
        Workload("W1", "create jobs one at a time", "assign_job_id + create_job per job, N jobs", w1_create),
        Workload("W2", "load jobs", "load_job of each of N existing jobs", w2_load),
        Workload("W3", "load-modify-update", "load_job, change two fields, update_job; N jobs", w3_update),
        Workload("W4", "create jobs in batch()", "assign_job_id + create_job for N jobs in one batch()", w4_batch),
        Workload("W5", "iterate jobs()", "one pass of jobs() over --iter-jobs existing jobs", w5_iterate),
        Workload("W6", "delete jobs", "delete_job of each of N existing jobs", w6_delete),
        Workload(
            "W7",
            "small files",
            "write_file (job-associated), read_file to a local path, delete_file "
            "of --small-files files of --small-size bytes, timed separately",
            w7_small_files,
        ),
        Workload(
            "W8",
            "big file",
            "write_file, read_file (same file system, and to another one if available), "
            "write_file_stream in --chunk chunks, read_file_stream of one --big-size file",
            w8_big_file,
            big_files=True,
        ),
        Workload(
            "W9",
            "maintenance queries",
            "orphaned_file_ids() and stats() over --file-rows file rows",
            w9_maintenance,
            big_files=True,
        ),
        Workload(
            "W10",
            "concurrent updates",
            "P processes load-modify-update --shared-jobs jobs, retrying "
            "on ConcurrentFileModificationException; checks no update is lost",
            w10_concurrent,
            w10_cases,
        ),
        Workload(
            "W11",
            "reference import",
            "import_file of a sparse 1 GiB and 10 GiB local file without copying it (jobstore: "
            'mode="reference"; Toil: symlinkImports), then read_file with symlink=True',
            w11_reference_import,
            w11_cases,
        ),
    )
}


def iter_workloads(keys: list[str]) -> Iterator[Workload]:
    for key in keys:
        try:
            yield WORKLOADS[key.upper()]
        except KeyError:
            raise SystemExit(f"unknown workload {key!r}; known: {', '.join(WORKLOADS)}") from None
