"""Runs the ``jobstore`` command: imports every subcommand and turns expected errors into one line."""

from __future__ import annotations

import sys

import typer
from sqlalchemy.exc import SQLAlchemyError

from jobstore.cli import db, maintenance, status, transfer  # noqa: F401  (registers the subcommands)
from jobstore.cli.common import app, errors
from jobstore.errors import JobStoreError
from jobstore.redact import redact_url

__all__ = ["app", "run"]


def run() -> None:
    """Run the command line; expected errors become one red line and exit status 2."""
    try:
        # Without standalone mode, click returns a command's typer.Exit code instead of exiting.
        code = app(standalone_mode=False)
        if code == 130:  # typer answers a Ctrl-C inside a command with a silent Exit(130)
            raise KeyboardInterrupt
        if isinstance(code, int) and code:
            sys.exit(code)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except typer.Abort as abort:
        # Click turns a KeyboardInterrupt into Abort; jobstore.cli.main prints the one line for it.
        cause = abort.__cause__
        raise (cause if isinstance(cause, KeyboardInterrupt) else KeyboardInterrupt()) from None
    except JobStoreError as error:
        errors.print(f"[red]error:[/red] {redact_url(str(error))}")
        sys.exit(2)
    except SQLAlchemyError as error:
        # A catalog that cannot be opened or read: one line, never a traceback.
        cause = getattr(error, "orig", None) or error
        errors.print(f"[red]error:[/red] the catalog could not be used: {redact_url(str(cause)).splitlines()[0]}")
        sys.exit(2)
    except Exception as error:
        # Usage errors: click's ClickException, which typer vendors as typer._click since 0.29
        # (and click itself need not be installed), so it is recognised by what it can do.
        show, exit_code = getattr(error, "show", None), getattr(error, "exit_code", None)
        if callable(show) and isinstance(exit_code, int):
            show()
            sys.exit(exit_code)
        raise
