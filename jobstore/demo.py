"""The example workflow behind ``jobstore demo``: small, but everything a real engine does.

A fan-out of jobs reads a shared input imported from a file: URL, each writes an output file
associated with its job, and a final job combines them and exports the result. It ends by printing
a summary read from the catalog.

Resumable at any instant: every step commits before the next starts, and a job's output and its
completion commit together, in one ``batch()`` (a kill between the two leaves neither, never an
output whose job is still to run, which a re-run would write a second time). A re-run therefore
redoes at most the one step that was in flight, and its result and summary equal an uninterrupted
run's. The options a workflow was started with are recorded in its plan: a re-run without
``--fan-out`` continues with the recorded one and says so, and a re-run with a different one is
refused (:class:`DemoError`), since mixing two fan-outs would count some input lines twice or never.

``pace`` seconds of "work" per job (0.3 by default) make it slow enough to interrupt by hand; the
tests use 0.

Set ``JOBSTORE_DEMO_KILL_AT=N`` to make the process SIGKILL itself at its Nth step boundary (see
:class:`_Checkpoints`); the tests use it to kill the demo at every boundary and resume it.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from jobstore.config import Config
from jobstore.errors import JobStoreError, NoSuchJobStoreException
from jobstore.job import JobDescription

if TYPE_CHECKING:  # imported where used: `jobstore demo --help` need not load the store
    from jobstore.store import FileJobStore

INPUT_NAME = "input.txt"
RESULT_NAME = "word-counts.txt"
STORE_NAME = "store"
DEFAULT_FAN_OUT = 8
DEFAULT_PACE = 0.3
#: More jobs than this is no longer a demo (and each job would count almost nothing).
MAX_FAN_OUT = 400
KILL_ENV = "JOBSTORE_DEMO_KILL_AT"


class DemoError(JobStoreError):
    """The demo cannot run as asked (a bad option, a directory that is not the demo's)."""


def _make_input(path: Path) -> None:
    words = ["genome", "read", "align", "variant", "sample", "quality", "contig", "index"]
    lines = [" ".join(words[(i * 7 + j) % len(words)] for j in range(5 + i % 7)) for i in range(400)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


class _Checkpoints:
    """Numbers the step boundaries of a run; kills the process at boundary N when asked (tests).

    The boundaries, in order: plan created, input imported, and for each job that runs: started,
    output written but not committed, completed; then the combine job's three and the export.
    """

    def __init__(self) -> None:
        limit = os.environ.get(KILL_ENV)
        self.limit = int(limit) if limit else None
        self.reached = 0

    def boundary(self) -> None:
        self.reached += 1
        if self.limit is not None and self.reached >= self.limit:
            os.kill(os.getpid(), signal.SIGKILL)


def check_options(fan_out: int | None, pace: float) -> None:
    """Refuse options that cannot make a workflow, naming the option and what it accepts."""
    if fan_out is not None and not 1 <= fan_out <= MAX_FAN_OUT:
        raise DemoError(f"--fan-out must be between 1 and {MAX_FAN_OUT}, not {fan_out}.")
    if not pace >= 0:  # also refuses NaN
        raise DemoError(f"--pace must be 0 or more seconds per job, not {pace}.")


def demo_directory(directory: str | os.PathLike[str]) -> Path:
    """The demo's directory, created if missing; refused if it is a file or someone else's."""
    base = Path(directory).expanduser().absolute()
    if base.exists() and not base.is_dir():
        raise DemoError(f"{base} is not a directory; give the demo a new or empty directory (or omit it).")
    if base.is_dir() and any(base.iterdir()) and not (base / STORE_NAME).is_dir():
        raise DemoError(
            f"{base} is not empty and holds no demo store ({STORE_NAME}/); give the demo a new or empty "
            "directory, or the one an earlier `jobstore demo` used."
        )
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DemoError(f"cannot create the demo directory {base}: {error.strerror or error}.") from None
    return base


def open_or_create(store_dir: Path) -> tuple[FileJobStore, bool]:
    from jobstore.store import FileJobStore

    store = FileJobStore(f"file:{store_dir}")
    try:
        store.resume()
        return store, True
    except NoSuchJobStoreException:
        store.initialize(Config())
        return store, False


def run_demo(
    directory: str | os.PathLike[str],
    *,
    fan_out: int | None = None,
    pace: float = DEFAULT_PACE,
    console: Console | None = None,
) -> Path:
    """Run (or resume) the demo workflow in ``directory``; return the exported result's path.

    ``fan_out`` None means: the store's recorded fan-out when resuming, else ``DEFAULT_FAN_OUT``.
    """
    check_options(fan_out, pace)
    console = console or Console()
    base = demo_directory(directory)
    input_path = base / INPUT_NAME
    if not input_path.exists():
        _make_input(input_path)
    store, resumed = open_or_create(base / STORE_NAME)
    try:
        return _run(store, resumed, base, fan_out, pace, console)
    finally:
        store.close()


def _run(store: FileJobStore, resumed: bool, base: Path, fan_out: int | None, pace: float, console: Console) -> Path:
    checkpoints = _Checkpoints()
    # The plan first: it records the options, so a run killed at any later instant resumes with them.
    plan_id, created = _plan(store, fan_out if fan_out is not None else DEFAULT_FAN_OUT)
    if created:
        checkpoints.boundary()
    plan = store.load_job(plan_id)
    recorded = int(plan.fan_out)
    if fan_out is not None and fan_out != recorded:
        raise DemoError(
            f"the demo in {base} was started with --fan-out {recorded}; run it again without --fan-out "
            f"(or with --fan-out {recorded}) to resume it, or give another directory to start over."
        )
    if not store.shared_file_exists("input"):
        store.import_file((base / INPUT_NAME).as_uri(), shared_file_name="input")
        checkpoints.boundary()
    where = f"{base}/{STORE_NAME}"
    if resumed:
        kept = "" if fan_out is not None else f" (with --fan-out {recorded}, as it was started)"
        console.print(f"Resuming the demo workflow in {where}{kept}", soft_wrap=True)
    else:
        console.print(f"Starting the demo workflow in {where} (--fan-out {recorded})", soft_wrap=True)

    with store.read_shared_file_stream("input", encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    with _progress(console) as progress:
        task = progress.add_task("jobs", total=recorded + 1)
        for index, job_id in enumerate(plan.children):
            _count(store, job_id, index, lines[index::recorded], pace, checkpoints, progress)
            progress.advance(task)
        result_path = _combine(store, plan.combine, plan.children, base / RESULT_NAME, checkpoints, progress)
        progress.advance(task)

    _print_summary(store, console)
    console.print(f"Result exported to {result_path}", soft_wrap=True)
    return result_path


@contextmanager
def _progress(console: Console) -> Iterator[Progress]:
    """A live bar of jobs done (on a terminal; elsewhere rich prints it once, at the end)."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    # No redirection of sys.stdout/stderr: the CLI's one-line messages (Ctrl-C included) go to the
    # real stderr even when they are printed while the display is live.
    with Progress(*columns, console=console, transient=False, redirect_stdout=False, redirect_stderr=False) as progress:
        yield progress


def _count(
    store: FileJobStore,
    job_id: str,
    index: int,
    lines: list[str],
    pace: float,
    checkpoints: _Checkpoints,
    progress: Progress,
) -> None:
    """One counting job: skipped if completed; its output and completion commit together."""
    job = store.load_job(job_id)
    if job.state == "completed":
        return
    job.state = "running"
    job.attempts += 1
    store.update_job(job)
    checkpoints.boundary()
    time.sleep(pace)  # the "work": what makes the demo slow enough to interrupt by hand
    counts: dict[str, int] = {}
    for line in lines:
        for word in line.split():
            counts[word] = counts.get(word, 0) + 1
    with store.batch():
        with store.write_file_stream(job_id, basename=f"counts-{index}.tsv", encoding="utf-8") as (out, file_id):
            for word, count in sorted(counts.items()):
                out.write(f"{word}\t{count}\n")
        checkpoints.boundary()  # output written, not committed: a kill here leaves neither
        job.output = file_id
        job.state = "completed"
        store.update_job(job)
    checkpoints.boundary()
    progress.console.print(f"  job {index + 1} ({job.unitName}) counted {sum(counts.values())} words")


def _combine(
    store: FileJobStore,
    combine_id: str,
    children: list[str],
    result_path: Path,
    checkpoints: _Checkpoints,
    progress: Progress,
) -> Path:
    """The final job: sums the counts, then exports (again on every run: export is idempotent)."""
    combine = store.load_job(combine_id)
    if combine.state != "completed":
        combine.state = "running"
        combine.attempts += 1
        store.update_job(combine)
        checkpoints.boundary()
        totals: dict[str, int] = {}
        for job_id in children:
            with store.read_file_stream(store.load_job(job_id).output, encoding="utf-8") as handle:
                for row in handle:
                    word, count = row.rstrip("\n").split("\t")
                    totals[word] = totals.get(word, 0) + int(count)
        with store.batch():
            with store.write_file_stream(combine_id, basename=RESULT_NAME, encoding="utf-8") as (out, result_id):
                for word, count in sorted(totals.items(), key=lambda item: (-item[1], item[0])):
                    out.write(f"{word}\t{count}\n")
            checkpoints.boundary()
            combine.output = result_id
            combine.state = "completed"
            store.update_job(combine)
        checkpoints.boundary()
        progress.console.print(f"  combine summed {sum(totals.values())} words")
    store.export_file(combine.output, result_path.as_uri())
    checkpoints.boundary()
    return result_path


def _plan(store: FileJobStore, fan_out: int) -> tuple[str, bool]:
    """The plan job's ID, and whether this call created it (with its jobs, in one batch, once)."""
    if store.shared_file_exists("plan-id"):
        with store.read_shared_file_stream("plan-id", encoding="utf-8") as handle:
            return str(handle.read()), False
    requirements = {"memory": 2**28, "cores": 1, "disk": 2**20}
    with store.batch():
        children = [
            store.create_job(JobDescription(requirements, "count", f"chunk-{i}", attempts=0)) for i in range(fan_out)
        ]
        combine = store.create_job(JobDescription(requirements, "combine", "all", attempts=0))
        plan = store.create_job(
            JobDescription(
                {},
                "plan",
                "word-count",
                state="completed",
                fan_out=fan_out,
                children=[c.jobStoreID for c in children],
                combine=combine.jobStoreID,
            )
        )
        assert plan.jobStoreID is not None
        with store.write_shared_file_stream("plan-id", encoding="utf-8") as handle:
            handle.write(plan.jobStoreID)
    return plan.jobStoreID, True


#: The order of the summary's rows: the workflow's order, not the catalog's (which is by size).
_JOB_ORDER = {"plan": 0, "count": 1, "combine": 2}


def _print_summary(store: FileJobStore, console: Console) -> None:
    title = "Jobs and their files, from the catalog"
    # min_width: a title wider than the table would wrap.
    table = Table(title=title, min_width=len(title) + 4)
    for column in ("job", "unit", "state", "files", "bytes"):
        table.add_column(column, justify="right" if column in ("files", "bytes") else "left")
    rows = [
        (job_id, name, store.load_job(job_id).unitName, state, files, size)
        for job_id, name, state, files, size in store.job_file_summary()
    ]
    for _id, name, unit, state, files, size in sorted(rows, key=_summary_key):
        table.add_row(name, unit, state, str(files), f"{size:,}")
    console.print(table)
    stats = store.stats()
    by_state = ", ".join(f"{count} {state}" for state, count in sorted(stats["jobs_by_state"].items()))
    console.print(
        f"{stats['jobs']} jobs ({by_state}), {stats['files']} files, {stats['bytes']:,} bytes, "
        f"{stats['shared_files']} shared files"
    )


def _summary_key(row: tuple[str, str, str, str, int, int]) -> tuple[int, str, int, str]:
    """The workflow's order (plan, count jobs by number, combine), not the catalog's (by size)."""
    _id, name, unit, *_rest = row
    number = re.search(r"(\d+)$", unit)
    return (_JOB_ORDER.get(name, len(_JOB_ORDER)), name, int(number.group(1)) if number else -1, unit)
