"""Runs the ``jobstore`` command: imports every subcommand and turns expected errors into one line."""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from jobstore.cli import db, maintenance, status, transfer  # noqa: F401  (registers the subcommands)
from jobstore.cli.common import app, errors
from jobstore.cli.messages import in_cli_words
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
        # A question (destroy's "Destroy it?") that got Ctrl-C, or no answer at all (end of input).
        cause = abort.__cause__ or abort.__context__
        if isinstance(cause, EOFError):
            errors.print()  # the question's line has no end of its own
            errors.print("[red]error:[/red] no answer (standard input ended); pass --yes to skip the question.")
            sys.exit(2)
        raise KeyboardInterrupt from None  # jobstore.cli.main prints the one line for it
    except JobStoreError as error:
        text = in_cli_words(redact_url(str(error)))
        errors.print(f"[red]error:[/red] {escape(text)}", highlight=False)
        sys.exit(2)
    except Exception as error:
        # Usage errors: click's ClickException, which typer vendors as typer._click since 0.29
        # (and click itself need not be installed), so it is recognised by what it can do. One
        # line, like every other error, with the command whose --help explains the usage.
        message, exit_code = getattr(error, "format_message", None), getattr(error, "exit_code", None)
        if callable(message) and isinstance(exit_code, int):
            context = getattr(error, "ctx", None)
            command = getattr(context, "command_path", "jobstore") or "jobstore"
            text = " ".join(str(message()).split())
            errors.print(f"[red]error:[/red] {escape(text)} (see `{escape(command)} --help`)", highlight=False)
            sys.exit(exit_code)
        raise
