"""``jobstore db``: schema migrations of a store's catalog."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from jobstore.catalog import Catalog
from jobstore.catalog.migrate import current_revision, has_version_table, head_revision, upgrade, upgrade_sql
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
        start = _revision_of(url)
        if start is not None and start == (head_revision() if revision == "head" else revision):
            errors.print(f"catalog {redact_url(url)} is already at revision {start}: no SQL to run.")
            return
        sys.stdout.write(upgrade_sql(url, revision, start=start))
        return
    cat = Catalog(url)
    try:
        before, after = upgrade(cat.engine, revision)
    finally:
        cat.dispose()
    console.print(f"catalog {redact_url(url)}: {before or '(empty)'} -> {after}")


def _revision_of(url: str) -> str | None:
    """The catalog's schema revision, or None if it has no jobstore schema yet."""
    cat = Catalog(url)
    try:
        with cat.engine.connect() as connection:
            return current_revision(connection) if has_version_table(connection) else None
    finally:
        cat.dispose()


@db_app.command("current")
def db_current(locator: LocatorArgument, catalog: CatalogOption = None) -> None:
    """Print the catalog's schema revision and this code's head revision."""
    revision = _revision_of(_catalog_url(locator, catalog))
    console.print(f"current: {revision or '(none)'}  head: {head_revision()}")


@db_app.command("check")
def db_check(locator: LocatorArgument, catalog: CatalogOption = None) -> None:
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
