"""``jobstore status`` and ``jobstore demo``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from jobstore.cli.common import CatalogOption, LocatorArgument, app, console, preflight
from jobstore.cli.interrupt import interrupted
from jobstore.config import Config
from jobstore.demo import DEFAULT_FAN_OUT, DEFAULT_PACE, MAX_FAN_OUT
from jobstore.redact import redact_url


@app.command("status")
def status(
    locator: LocatorArgument,
    catalog: CatalogOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Totals of a store: jobs by state, failed jobs, files and bytes, shared files, logs, orphans."""
    from jobstore.store import create_job_store

    preflight(locator, catalog)
    store = create_job_store(locator)
    store.resume(Config(catalog=catalog) if catalog else None)
    try:
        stats = store.stats()
    finally:
        store.close()
    if as_json:
        sys.stdout.write(json.dumps(stats, indent=2, sort_keys=True) + "\n")
        return
    _print_stats(locator, stats)


def _print_stats(locator: str, stats: dict[str, Any]) -> None:
    table = Table(title=f"jobstore {redact_url(locator)}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("jobs", f"{stats['jobs']:,}")
    for state, count in sorted(stats["jobs_by_state"].items()):
        table.add_row(f"  {state}", f"{count:,}")
    table.add_row("failed jobs", f"{stats['failed_jobs']:,}")
    table.add_row("files", f"{stats['files']:,}")
    table.add_row("bytes", f"{stats['bytes']:,}")
    table.add_row("referenced files (bytes)", f"{stats['referenced_files']:,} ({stats['referenced_bytes']:,})")
    table.add_row("shared files", f"{stats['shared_files']:,}")
    table.add_row("logs (unread)", f"{stats['logs']:,} ({stats['unread_logs']:,})")
    table.add_row("orphaned files (bytes)", f"{stats['orphaned_files']:,} ({stats['orphaned_bytes']:,})")
    table.add_row("condemned blobs", f"{stats['condemned_blobs']:,}")
    table.add_row("catalog", str(stats["catalog"]))
    table.add_row("blob store", redact_url(str(stats["blob_store"])))
    table.add_row("schema revision", str(stats["schema_revision"]))
    table.add_row("leader", _leader_text(stats.get("leader")))
    console.print(table)


def _leader_text(leader: dict[str, Any] | None) -> str:
    if leader is None:
        return "none yet"
    holder = leader["holder"]
    state = "live until" if leader["live"] else "expired"
    return (
        f"pid {holder.get('pid')} on {holder.get('host')}, attempt {leader['attempt']} ({state} {leader['expires_at']})"
    )


@app.command("demo")
def demo(
    directory: Annotated[
        Path,
        typer.Argument(
            help="Where the demo's store (DIR/store), input and result go; created if missing. "
            "Run the command again on the same directory to resume an interrupted run.",
            show_default=True,
        ),
    ] = Path("./jobstore-demo"),
    fan_out: Annotated[
        int | None,
        typer.Option(
            help=f"Number of counting jobs (1-{MAX_FAN_OUT}; default {DEFAULT_FAN_OUT}). A resume keeps the "
            "fan-out the run was started with; a different one is refused.",
            show_default=False,
        ),
    ] = None,
    pace: Annotated[
        float,
        typer.Option(help="Seconds of simulated work per job, so that there is time to interrupt it; 0 for none."),
    ] = DEFAULT_PACE,
) -> None:
    """Run the example workflow (fan-out, combine, resume after interruption) on the embedded default.

    Interrupt it (Ctrl-C, or kill -9) and run it again: it resumes from the store without redoing
    committed work, and its result and summary are those of an uninterrupted run.
    """
    from jobstore.demo import run_demo

    try:
        run_demo(directory, fan_out=fan_out, pace=pace, console=console)
    except KeyboardInterrupt:
        # Here, not in jobstore.cli.main: typer turns a KeyboardInterrupt into a silent exit 130.
        interrupted(f"run `jobstore demo {directory}` again to resume")
