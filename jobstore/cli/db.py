"""``jobstore db``: schema migrations of a store's catalog."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from jobstore.catalog.admin import check_schema, head_revision, schema_revision, upgrade_schema, upgrade_script
from jobstore.cli.common import CatalogOption, LocatorArgument, app, console, errors
from jobstore.cli.common import catalog_url_for as _catalog_url
from jobstore.errors import SchemaVersionError
from jobstore.redact import redact_url

db_app = typer.Typer(help="Schema migrations of a store's catalog.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(
    locator: LocatorArgument,
    catalog: CatalogOption = None,
    sql: Annotated[bool, typer.Option("--sql", help="Print the SQL for review instead of running it.")] = False,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Upgrade the catalog's schema to this jobstore's revision (safe to run concurrently)."""
    url = _catalog_url(locator, catalog)
    if sql:
        # Only what is pending: from the catalog's revision on (the whole schema for an empty one).
        start = schema_revision(url, missing_is_empty=True)
        if start is not None and start == (head_revision() if revision == "head" else revision):
            errors.print(f"catalog {redact_url(url)} is already at revision {start}: no SQL to run.")
            return
        sys.stdout.write(upgrade_script(url, revision, start=start))
        return
    before, after = upgrade_schema(url, revision)
    console.print(f"catalog {redact_url(url)}: {before or '(empty)'} -> {after}")


@db_app.command("current")
def db_current(locator: LocatorArgument, catalog: CatalogOption = None) -> None:
    """Print the catalog's schema revision and this code's head revision."""
    revision = schema_revision(_catalog_url(locator, catalog))
    console.print(f"current: {revision or '(none)'}  head: {head_revision()}")


@db_app.command("check")
def db_check(locator: LocatorArgument, catalog: CatalogOption = None) -> None:
    """Exit 0 if the catalog is at this code's head revision, 1 otherwise (with the fix)."""
    url = _catalog_url(locator, catalog)
    try:
        state = check_schema(url, locator)
    except SchemaVersionError as error:
        errors.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None
    if state == "fresh":
        errors.print(f"The catalog holds no jobstore schema yet. Create it with: jobstore db upgrade {locator}")
        raise typer.Exit(1)
    console.print(f"catalog is at head revision {head_revision()}")
