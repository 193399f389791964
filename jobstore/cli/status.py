"""``jobstore status`` and ``jobstore demo``."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from jobstore.cli.common import CatalogOption, app, console
from jobstore.config import Config
from jobstore.redact import redact_url


@app.command("status")
def status(
    locator: str,
    catalog: CatalogOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Totals of a store: jobs by state, failed jobs, files and bytes, shared files, logs, orphans."""
    from jobstore.store import create_job_store

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
    table.add_row("shared files", f"{stats['shared_files']:,}")
    table.add_row("logs (unread)", f"{stats['logs']:,} ({stats['unread_logs']:,})")
    table.add_row("orphaned files (bytes)", f"{stats['orphaned_files']:,} ({stats['orphaned_bytes']:,})")
    table.add_row("condemned blobs", f"{stats['condemned_blobs']:,}")
    table.add_row("catalog", str(stats["catalog"]))
    table.add_row("blob store", redact_url(str(stats["blob_store"])))
    table.add_row("schema revision", str(stats["schema_revision"]))
    console.print(table)


@app.command("demo")
def demo(
    directory: Annotated[str, typer.Argument(help="Where the demo's store and outputs go.")] = "./jobstore-demo",
    fan_out: Annotated[int, typer.Option(help="Number of parallel jobs.")] = 8,
) -> None:
    """Run the example workflow (fan-out, combine, resume after interruption) on the embedded default."""
    from jobstore.demo import run_demo

    run_demo(directory, fan_out=fan_out, console=console)
