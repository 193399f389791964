"""The ``jobstore`` command.

Exit codes: 0 success, 1 the command ran and found a problem (e.g. ``db check`` on an outdated
catalog), 2 bad usage or input (malformed locator, missing store), 130 interrupted (Ctrl-C).
Expected errors print one line, never a traceback. Each subcommand group lives in its own module
and registers itself on ``app`` (``common.py``); ``entry.py`` runs it and turns errors into lines.

This module imports nothing heavy: ``main`` imports the commands (typer, rich, SQLAlchemy: ~0.25 s)
inside its own ``try``, so a Ctrl-C during start-up is the same one line as a Ctrl-C later.
"""

from __future__ import annotations

from typing import Any

from jobstore.cli.interrupt import interrupted

__all__ = ["app", "interrupted", "main"]


def main() -> None:
    """Entry point of the console script and of ``python -m jobstore``."""
    try:
        from jobstore.cli.entry import run

        run()
    except KeyboardInterrupt as interrupt:
        interrupted(str(interrupt))


def __getattr__(name: str) -> Any:
    """``jobstore.cli.app`` (the Typer app, for tests and embedding), imported on first use."""
    if name == "app":
        from jobstore.cli.entry import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
