"""The ``jobstore`` command.

Exit codes: 0 success, 1 the command ran and found a problem (e.g. ``db check`` on an outdated
catalog), 2 bad usage or input (malformed locator, missing store). Expected errors print one line,
never a traceback.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from jobstore.catalog import Catalog
from jobstore.catalog.migrate import current_revision, has_version_table, head_revision, upgrade, upgrade_sql
from jobstore.config import Config
from jobstore.errors import JobStoreError, SchemaVersionError
from jobstore.locator import parse_locator
from jobstore.redact import redact_url

app = typer.Typer(help="Keep, inspect and maintain jobstore job stores.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Schema migrations of a store's catalog.", no_args_is_help=True)
app.add_typer(db_app, name="db")

console = Console()
errors = Console(stderr=True)

CatalogOption = Annotated[
    str | None,
    typer.Option("--catalog", help="Catalog URL for locators that do not imply one (aws:, gce:, google:)."),
]


def _catalog_url(locator: str, catalog: str | None) -> str:
    location = parse_locator(locator)
    url = location.catalog_url or catalog or Config().catalog_url()
    if url is None:
        raise typer.BadParameter(
            f"{locator!r} does not say where its catalog is; pass --catalog URL or set JOBSTORE_CATALOG."
        )
    return url


@db_app.command("upgrade")
def db_upgrade(
    locator: str,
    catalog: CatalogOption = None,
    sql: Annotated[bool, typer.Option("--sql", help="Print the SQL for review instead of running it.")] = False,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Upgrade the catalog's schema to this jobstore's revision (safe to run concurrently)."""
    url = _catalog_url(locator, catalog)
    if sql:
        sys.stdout.write(upgrade_sql(url, revision))
        return
    cat = Catalog(url)
    try:
        before, after = upgrade(cat.engine, revision)
    finally:
        cat.dispose()
    console.print(f"catalog {redact_url(url)}: {before or '(empty)'} -> {after}")


@db_app.command("current")
def db_current(locator: str, catalog: CatalogOption = None) -> None:
    """Print the catalog's schema revision and this code's head revision."""
    url = _catalog_url(locator, catalog)
    cat = Catalog(url)
    try:
        with cat.engine.connect() as connection:
            revision = current_revision(connection) if has_version_table(connection) else None
    finally:
        cat.dispose()
    console.print(f"current: {revision or '(none)'}  head: {head_revision()}")


@db_app.command("check")
def db_check(locator: str, catalog: CatalogOption = None) -> None:
    """Exit 0 if the catalog is at this code's head revision, 1 otherwise (with the fix)."""
    url = _catalog_url(locator, catalog)
    cat = Catalog(url)
    try:
        state = cat.schema_state(locator)
    except SchemaVersionError as error:
        errors.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None
    finally:
        cat.dispose()
    if state == "fresh":
        errors.print(f"The catalog holds no jobstore schema yet. Create it with: jobstore db upgrade {locator}")
        raise typer.Exit(1)
    console.print(f"catalog is at head revision {head_revision()}")


@app.command("status")
def status(
    locator: str,
    catalog: CatalogOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Totals of a store: jobs by state, files and bytes, shared files, unread logs, orphans."""
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
    for key in ("jobs", "failed_jobs", "files", "bytes", "shared_files", "unread_logs", "orphaned_files"):
        table.add_row(key.replace("_", " "), f"{stats[key]:,}")
    for state, count in sorted(stats["jobs_by_state"].items()):
        table.add_row(f"jobs {state}", f"{count:,}")
    table.add_row("catalog", str(stats["catalog"]))
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


def main() -> None:
    """Entry point: expected errors become one red line and exit status 2."""
    try:
        app(standalone_mode=False)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        errors.print("aborted")
        sys.exit(130)
    except JobStoreError as error:
        errors.print(f"[red]error:[/red] {redact_url(str(error))}")
        sys.exit(2)
    except Exception as error:  # click's usage errors
        import click

        if isinstance(error, click.ClickException):
            error.show()
            sys.exit(error.exit_code)
        raise
