"""What every subcommand shares: the Typer app, consoles, common options, locator helpers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from jobstore.catalog.admin import sqlite_database
from jobstore.cli.messages import check_reachable
from jobstore.config import Config
from jobstore.errors import NoSuchJobStoreException
from jobstore.locator import parse_locator

#: Shown by `jobstore --help`: what LOCATOR means and which environment variables are read.
HELP = (
    "Keep, inspect and maintain jobstore job stores."
    "\n\n"
    "LOCATOR names a store: a directory (a relative or absolute path, or file:/path: the catalog is "
    "DIR/catalog.sqlite, the blobs DIR/blobs); sql:URL#NAME (a SQLAlchemy catalog URL such as "
    "postgresql+psycopg://user@host/db, and the store's name in it); aws:REGION:BUCKET[:PREFIX] or "
    "gce:REGION:BUCKET[:PREFIX] / google:PROJECT:PREFIX (blobs in S3 or GCS; the catalog from --catalog)."
    "\n\n"
    "Environment: JOBSTORE_CATALOG is the catalog URL when the locator names none and --catalog is not given; "
    "JOBSTORE_BLOB_STORE is the blob store URL (file://, s3://, gs://) of a new sql: store; PGPASSWORD or "
    "~/.pgpass keep PostgreSQL passwords out of URLs; AWS_* and GOOGLE_APPLICATION_CREDENTIALS are read by the S3"
    " and GCS clients as usual."
    "\n\n"
    "Exit status: 0 done, 1 a problem was found, 2 bad input (one line on stderr), 130 interrupted."
)

app = typer.Typer(help=HELP, no_args_is_help=True, add_completion=False)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("jobstore")
        except PackageNotFoundError:  # a checkout on sys.path, never installed
            number = "(not installed)"
        typer.echo(f"jobstore {number}")
        raise typer.Exit()


@app.callback()
def _options(
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print jobstore's version and exit."),
    ] = False,
) -> None:
    """Options of `jobstore` itself (the help text is HELP, above)."""


#: Data goes to stdout, diagnostics to stderr.
console = Console()
#: soft_wrap: an error is one line however long (rich would otherwise break it at the width, 80
#: columns when stderr is not a terminal), so that scripts and `2>&1 | tail -1` see all of it.
errors = Console(stderr=True, soft_wrap=True)

LocatorArgument = Annotated[
    str,
    typer.Argument(
        metavar="LOCATOR",
        help="The store: a directory path (relative or absolute), file:/path, sql:URL#NAME, "
        "aws:REGION:BUCKET[:PREFIX], gce:... or google:... (see `jobstore --help`).",
        show_default=False,
    ),
]

CatalogOption = Annotated[
    str | None,
    typer.Option(
        "--catalog",
        help="Catalog URL for locators that do not imply one (aws:, gce:, google:); default $JOBSTORE_CATALOG.",
    ),
]


def catalog_url_for(locator: str, catalog: str | None) -> str:
    """The catalog URL a locator implies, or the --catalog option / JOBSTORE_CATALOG."""
    location = parse_locator(locator)
    url = location.catalog_url or catalog or Config().catalog_url()
    if url is None:
        raise typer.BadParameter(
            f"{locator!r} does not say where its catalog is; pass --catalog URL or set JOBSTORE_CATALOG."
        )
    database = sqlite_database(url)
    if location.kind == "file" and database is not None and not os.path.isfile(database):
        # Never create an empty catalog file where a store was expected.
        raise NoSuchJobStoreException(locator, f"There is no catalog at {database}.")
    check_reachable(url)
    return url


def preflight(locator: str, catalog: str | None) -> None:
    """Before opening a store: fail at once, with the cause, if its catalog server is unreachable."""
    location = parse_locator(locator)
    url = location.catalog_url or catalog or Config().catalog_url()
    if url:
        check_reachable(url)


def as_url(path_or_url: str) -> str:
    """A URL as given, or a local path (relative ones included) as an absolute file: URL."""
    if "://" in path_or_url or path_or_url.startswith("file:"):
        return path_or_url
    return Path(path_or_url).expanduser().absolute().as_uri()
