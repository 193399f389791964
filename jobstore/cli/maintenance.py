"""``jobstore gc``, ``fsck``, ``copy``, ``prune`` and ``destroy``: keeping stores healthy.

Exit codes follow the CLI's rules: 0 done (or nothing wrong), 1 the command ran and found a
problem (fsck found damage it did not repair, a copy failed its verification, destroy was declined),
2 bad usage or input. Reports go to stdout (``--json`` for machines); progress bars and diagnostics
to stderr, so ``--json`` output stays parseable.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from jobstore.cli.common import CatalogOption, LocatorArgument, app, console, errors, preflight
from jobstore.config import Config
from jobstore.errors import InvalidLocatorError, StoreBeingDestroyedError
from jobstore.redact import redact_url
from jobstore.store import JobStore, create_job_store

JsonOption = Annotated[bool, typer.Option("--json", help="Print the report as JSON (for scripts).")]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Report what would be done; change nothing.")]


def open_store(locator: str, catalog: str | None) -> JobStore:
    """Resume an existing store (never create one): a typo must not make a new, empty store."""
    preflight(locator, catalog)
    store = create_job_store(locator)
    store.resume(Config(catalog=catalog) if catalog else None)
    return store


@contextmanager
def progress_bars(enabled: bool = True) -> Iterator[Any]:
    """A ``progress(stage, done, total)`` callback drawing rich bars on stderr (nothing when not a terminal)."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
        disable=not enabled or not errors.is_terminal,
    ) as bars:
        tasks: dict[str, Any] = {}

        def report(stage: str, done: int, total: int | None) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task(stage, total=total)
            bars.update(tasks[stage], completed=done, total=total)

        yield report


def _emit(as_json: bool, data: dict[str, Any], title: str, rows: list[tuple[str, str]]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
        return
    table = Table(title=title)
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)


def _bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{count:,} B" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{count:,} B"


@app.command("gc")
def gc_command(
    locator: LocatorArgument,
    catalog: CatalogOption = None,
    dry_run: DryRunOption = False,
    grace: Annotated[
        str,
        typer.Option(
            "--grace", help="Delete unreferenced blobs only after they stayed so for this long (30m, 12h, 7d)."
        ),
    ] = "1h",
    all_orphans: Annotated[
        bool,
        typer.Option(
            "--all-orphans",
            help="Also remove orphaned files written with cleanup=False (they outlive their job by design).",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Remove orphaned cleanup files and, in two phases, blobs that no row references."""
    from jobstore.maintenance import collect_garbage, parse_duration

    grace_period = parse_duration(grace)
    store = open_store(locator, catalog)
    try:
        with progress_bars() as progress:
            report = collect_garbage(
                store, grace=grace_period, dry_run=dry_run, all_orphans=all_orphans, progress=progress
            )
    finally:
        store.close()
    verb = "would remove" if dry_run else "removed"
    _emit(
        as_json,
        report.to_dict(),
        f"jobstore gc {redact_url(locator)}{' (dry run)' if dry_run else ''}",
        [
            (f"orphaned files {verb}", f"{report.orphaned_files:,} ({_bytes(report.orphaned_bytes)})"),
            ("unreferenced blobs found", f"{report.unreferenced_blobs:,}"),
            ("newly condemned", f"{report.condemned_blobs:,} ({_bytes(report.condemned_bytes)})"),
            (
                f"condemned blobs {'to delete' if dry_run else 'deleted'}",
                f"{report.deleted_blobs:,} ({_bytes(report.deleted_bytes)})",
            ),
            ("waiting for the grace period", f"{report.waiting_blobs:,} (grace {report.grace})"),
            ("claimed again by a row", f"{report.released_blobs:,}"),
            ("foreign objects (left alone)", f"{len(report.foreign_objects):,}"),
            ("deletions that failed", f"{len(report.failures):,}"),
        ],
    )


@app.command("fsck")
def fsck_command(
    locator: LocatorArgument,
    catalog: CatalogOption = None,
    verify_checksums: Annotated[
        bool, typer.Option("--verify-checksums", help="Read every blob and compare its checksum (slow).")
    ] = False,
    repair: Annotated[bool, typer.Option("--repair", help="Fix what can be fixed without losing data.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Check rows against blobs: missing, extra, resized or corrupted blobs; orphaned cleanup files.

    Exit status 0 when nothing is wrong (or everything wrong was repaired), 1 otherwise.
    """
    from jobstore.maintenance import fsck

    store = open_store(locator, catalog)
    try:
        with progress_bars() as progress:
            report = fsck(store, verify_checksums=verify_checksums, repair=repair, progress=progress)
    finally:
        store.close()
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n")
    else:
        _print_fsck(locator, report)
    if not report.ok:
        raise typer.Exit(1)


def _print_fsck(locator: str, report: Any) -> None:
    console.print(
        f"checked {report.checked_files:,} files and {report.listed_blobs:,} blobs"
        f"{' (checksums verified)' if report.verified_checksums else ''} of {redact_url(locator)}"
    )
    for name, value in report.notes.items():
        if value:
            console.print(f"note: {name.replace('_', ' ')}: {value:,}")
    if not report.problems:
        console.print("[green]no problems found[/green]")
        return
    table = Table(title=f"{len(report.problems)} problems")
    for column in ("problem", "file or blob", "detail", "action"):
        table.add_column(column)
    for problem in report.problems:
        action = ("[green]repaired:[/green] " if problem.repaired else "") + problem.action
        table.add_row(problem.kind, problem.subject, problem.detail, action)
    console.print(table)


def _settings(pairs: list[str]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator or not name:
            raise InvalidLocatorError(f"--dst-set takes NAME=VALUE (a Config attribute), not {pair!r}.")
        settings[name] = value
    return settings


@app.command("copy")
def copy_command(
    source: Annotated[str, typer.Argument(metavar="SRC", help="LOCATOR of the store to copy (see `jobstore --help`).")],
    destination: Annotated[
        str, typer.Argument(metavar="DST", help="LOCATOR of the copy (created, or resumed if interrupted).")
    ],
    catalog: CatalogOption = None,
    dst_catalog: Annotated[
        str | None, typer.Option("--dst-catalog", help="Catalog URL of the destination, if its locator implies none.")
    ] = None,
    dst_blob_store: Annotated[
        str | None,
        typer.Option("--dst-blob-store", help="Blob store URL of a sql: destination (file://, s3://, gs://)."),
    ] = None,
    dst_set: Annotated[
        list[str] | None, typer.Option("--dst-set", help="NAME=VALUE Config setting of the destination (repeatable).")
    ] = None,
    verify: Annotated[
        bool, typer.Option("--verify/--no-verify", help="Read every copied blob back at the end.")
    ] = True,
    materialize_references: Annotated[
        bool,
        typer.Option(
            "--materialize-references",
            help="Copy the sources of reference imports into the destination's blob store (default: keep "
            "them as references to the same sources).",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Copy a store to another backend with the same job and file IDs (resumable; verified)."""
    from jobstore.maintenance import copy_store, destination_config, open_destination

    settings = _settings(dst_set or [])
    src = open_store(source, catalog)
    try:
        config = destination_config(src, catalog=dst_catalog, blobStore=dst_blob_store, **settings)
        preflight(destination, dst_catalog)
        dst = open_destination(destination, config)
        try:
            with progress_bars() as progress:
                report = copy_store(
                    src, dst, verify=verify, materialize_references=materialize_references, progress=progress
                )
        finally:
            dst.close()
    finally:
        src.close()
    _emit(
        as_json,
        report.to_dict(),
        f"jobstore copy {redact_url(source)} -> {redact_url(destination)}",
        [
            ("jobs", f"{report.jobs:,}"),
            ("files copied", f"{report.files:,} ({_bytes(report.bytes)})"),
            ("files already copied", f"{report.files_already_there:,}"),
            ("logs", f"{report.logs:,}"),
            ("blobs verified", f"{report.verified:,}" if verify else "skipped"),
            ("problems", f"{len(report.problems):,}"),
        ],
    )
    for problem in report.problems:
        errors.print(f"[red]problem:[/red] {problem}")
    if not report.ok:
        raise typer.Exit(1)


@app.command("prune")
def prune_command(
    locator: LocatorArgument,
    older_than: Annotated[
        str, typer.Option("--older-than", help="Prune jobs not updated for this long (30m, 12h, 7d, 2w).")
    ],
    state: Annotated[
        list[str] | None,
        typer.Option("--state", help="Job state to prune (repeatable; default completed; 'any' for every state)."),
    ] = None,
    all_files: Annotated[
        bool, typer.Option("--all-files", help="Delete every file the pruned jobs owned, not only cleanup files.")
    ] = False,
    keep_logs: Annotated[bool, typer.Option("--keep-logs", help="Do not prune old read logs.")] = False,
    catalog: CatalogOption = None,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """Retention: delete old jobs with their files and blobs, and old read logs."""
    from jobstore.maintenance import parse_duration, prune

    age = parse_duration(older_than)
    states = state or ["completed"]
    chosen = None if "any" in states else states
    store = open_store(locator, catalog)
    try:
        with progress_bars() as progress:
            report = prune(
                store, age, states=chosen, all_files=all_files, logs=not keep_logs, dry_run=dry_run, progress=progress
            )
    finally:
        store.close()
    verb = "would delete" if dry_run else "deleted"
    _emit(
        as_json,
        report.to_dict(),
        f"jobstore prune {redact_url(locator)}{' (dry run)' if dry_run else ''}",
        [
            ("older than", report.older_than),
            ("states", ", ".join(report.states) if report.states else "any"),
            (f"jobs {verb}", f"{report.jobs:,}"),
            (f"files {verb}", f"{report.files:,} ({_bytes(report.bytes)})"),
            (f"read logs {verb}", f"{report.logs:,}"),
        ],
    )


@app.command("destroy")
def destroy_command(
    locator: LocatorArgument,
    catalog: CatalogOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a store: its rows and its blobs, and nothing else of the catalog or the bucket."""
    from jobstore.maintenance.orphans import check_blobs_not_shared

    try:
        store = open_store(locator, catalog)
    except StoreBeingDestroyedError:
        # An earlier destroy was interrupted after it marked the store: finish it (nothing of the
        # store is usable any more, so there is nothing left to confirm).
        create_job_store(locator).destroy(Config(catalog=catalog) if catalog else None)
        console.print(f"finished destroying {redact_url(locator)} (an earlier destroy was interrupted)")
        return
    try:
        stats = store.stats()
        check_blobs_not_shared(store)
    except BaseException:
        store.close()
        raise
    summary = (
        f"store {stats['store']!r} at {redact_url(locator)}: {stats['jobs']:,} jobs, {stats['files']:,} files "
        f"({_bytes(stats['bytes'])}), blobs in {redact_url(stats['blob_store'])}"
    )
    if not yes:
        errors.print(f"This deletes {summary}.")
        if not typer.confirm("Destroy it?", default=False, err=True):
            store.close()
            errors.print("not destroyed")
            raise typer.Exit(1)
    store.destroy()
    console.print(f"destroyed {summary}")
