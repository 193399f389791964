"""The example workflow behind ``jobstore demo``: small, but everything a real engine does.

A fan-out of jobs reads a shared input imported from a file: URL, each writes an output file
associated with its job, and a final job combines them and exports the result. Every step commits
to the store before the next starts, so the workflow can be killed at any moment and run again:
it resumes from the store and redoes no committed work. It ends by printing a summary read from
the catalog with SQL.

Set ``JOBSTORE_DEMO_KILL_AFTER=N`` to make the process SIGKILL itself after N work steps (the tests
use it to prove resumption).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from jobstore.config import Config
from jobstore.errors import NoSuchJobStoreException
from jobstore.job import JobDescription
from jobstore.store import FileJobStore

INPUT_NAME = "input.txt"
RESULT_NAME = "word-counts.txt"
_KILL_ENV = "JOBSTORE_DEMO_KILL_AFTER"


def _make_input(path: Path) -> None:
    words = ["genome", "read", "align", "variant", "sample", "quality", "contig", "index"]
    lines = [" ".join(words[(i * 7 + j) % len(words)] for j in range(5 + i % 7)) for i in range(400)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


class _Steps:
    """Counts work steps, and kills the process after N of them when asked to (for tests)."""

    def __init__(self) -> None:
        limit = os.environ.get(_KILL_ENV)
        self.limit = int(limit) if limit else None
        self.done = 0

    def step(self) -> None:
        self.done += 1
        if self.limit is not None and self.done >= self.limit:
            os.kill(os.getpid(), signal.SIGKILL)


def open_or_create(store_dir: Path) -> tuple[FileJobStore, bool]:
    store = FileJobStore(f"file:{store_dir}")
    try:
        store.resume()
        return store, True
    except NoSuchJobStoreException:
        store.initialize(Config())
        return store, False


def run_demo(directory: str, *, fan_out: int = 8, console: Console | None = None, pause: float = 0.0) -> Path:
    """Run (or resume) the demo workflow in ``directory``; return the exported result's path."""
    console = console or Console()
    base = Path(directory).resolve()
    base.mkdir(parents=True, exist_ok=True)
    input_path = base / INPUT_NAME
    if not input_path.exists():
        _make_input(input_path)
    store, resumed = open_or_create(base / "store")
    console.print(f"{'Resuming' if resumed else 'Starting'} the demo workflow in {base}/store")
    steps = _Steps()

    if not store.shared_file_exists("input"):
        store.import_file(input_path.as_uri(), shared_file_name="input")
        steps.step()

    # The plan: one root job that records the fan-out, created once.
    plan_id = _plan(store, fan_out)
    plan = store.load_job(plan_id)
    with store.read_shared_file_stream("input", encoding="utf-8") as handle:
        lines = handle.read().splitlines()

    for index, job_id in enumerate(plan.children):
        job = store.load_job(job_id)
        if job.state == "completed":
            continue
        job.state = "running"
        job.attempts += 1
        store.update_job(job)
        counts: dict[str, int] = {}
        for line in lines[index::fan_out]:
            for word in line.split():
                counts[word] = counts.get(word, 0) + 1
        with store.write_file_stream(job_id, cleanup=False, basename=f"counts-{index}.tsv", encoding="utf-8") as (
            out,
            file_id,
        ):
            for word, count in sorted(counts.items()):
                out.write(f"{word}\t{count}\n")
        job.output = file_id
        job.state = "completed"
        store.update_job(job)
        console.print(f"  job {index + 1}/{fan_out} counted {sum(counts.values())} words")
        time.sleep(pause)
        steps.step()

    combine = store.load_job(plan.combine)
    result_path = base / RESULT_NAME
    if combine.state != "completed":
        totals: dict[str, int] = {}
        for job_id in plan.children:
            with store.read_file_stream(store.load_job(job_id).output, encoding="utf-8") as handle:
                for row in handle:
                    word, count = row.rstrip("\n").split("\t")
                    totals[word] = totals.get(word, 0) + int(count)
        with store.write_file_stream(combine.jobStoreID, basename=RESULT_NAME, encoding="utf-8") as (
            out,
            result_id,
        ):
            for word, count in sorted(totals.items(), key=lambda item: (-item[1], item[0])):
                out.write(f"{word}\t{count}\n")
        store.export_file(result_id, result_path.as_uri())
        combine.output = result_id
        combine.attempts += 1
        combine.state = "completed"
        store.update_job(combine)
        steps.step()

    _print_summary(store, console)
    console.print(f"Result exported to {result_path}")
    store.close()
    return result_path


def _plan(store: FileJobStore, fan_out: int) -> str:
    """Create the plan and its jobs in one batch, once; later runs find it as a shared file."""
    if store.shared_file_exists("plan-id"):
        with store.read_shared_file_stream("plan-id", encoding="utf-8") as handle:
            return str(handle.read())
    with store.batch():
        children = [
            store.create_job(
                JobDescription({"memory": 2**28, "cores": 1, "disk": 2**20}, "count", f"chunk-{i}", attempts=0)
            )
            for i in range(fan_out)
        ]
        combine = store.create_job(
            JobDescription({"memory": 2**28, "cores": 1, "disk": 2**20}, "combine", "all", attempts=0)
        )
        plan = store.create_job(
            JobDescription(
                {},
                "plan",
                "word-count",
                state="completed",
                children=[c.jobStoreID for c in children],
                combine=combine.jobStoreID,
            )
        )
        assert plan.jobStoreID is not None
        with store.write_shared_file_stream("plan-id", encoding="utf-8") as handle:
            handle.write(plan.jobStoreID)
    return plan.jobStoreID


def _print_summary(store: FileJobStore, console: Console) -> None:
    table = Table(title="Jobs, from the catalog (one SQL join of jobs and files)")
    for column in ("job", "unit", "state", "files", "bytes"):
        table.add_column(column, justify="right" if column in ("files", "bytes") else "left")
    for job_id, name, state, file_count, size in store.job_file_summary():
        unit = store.load_job(job_id).unitName
        table.add_row(name, unit, state, str(file_count), f"{size:,}")
    console.print(table)
    stats = store.stats()
    console.print(
        f"{stats['jobs']} jobs ({stats['jobs_by_state']}), {stats['files']} files, {stats['bytes']:,} bytes, "
        f"{stats['shared_files']} shared files"
    )
