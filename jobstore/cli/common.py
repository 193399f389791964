"""What every subcommand shares: the Typer app, consoles, common options, locator helpers."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console

from jobstore.catalog.engine import sqlite_path
from jobstore.config import Config
from jobstore.errors import NoSuchJobStoreException
from jobstore.locator import parse_locator

app = typer.Typer(help="Keep, inspect and maintain jobstore job stores.", no_args_is_help=True, add_completion=False)

#: Data goes to stdout, diagnostics to stderr.
console = Console()
#: soft_wrap: an error is one line however long (rich would otherwise break it at the width, 80
#: columns when stderr is not a terminal), so that scripts and `2>&1 | tail -1` see all of it.
errors = Console(stderr=True, soft_wrap=True)

CatalogOption = Annotated[
    str | None,
    typer.Option("--catalog", help="Catalog URL for locators that do not imply one (aws:, gce:, google:)."),
]


def catalog_url_for(locator: str, catalog: str | None) -> str:
    """The catalog URL a locator implies, or the --catalog option / JOBSTORE_CATALOG."""
    location = parse_locator(locator)
    url = location.catalog_url or catalog or Config().catalog_url()
    if url is None:
        raise typer.BadParameter(
            f"{locator!r} does not say where its catalog is; pass --catalog URL or set JOBSTORE_CATALOG."
        )
    database = sqlite_path(url)
    if location.kind == "file" and database is not None and not os.path.isfile(database):
        # Never create an empty catalog file where a store was expected.
        raise NoSuchJobStoreException(locator, f"There is no catalog at {database}.")
    return url
