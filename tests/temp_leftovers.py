"""Names what a test run left in the system's temporary directory.

Fixtures remove what they make (server directories, sockets, Toil's message-bus files go to
directories pytest owns), so anything new in ``tempfile.gettempdir()`` at the end of a session is a
leak: the summary lists it so that the next run does not silently add to it. pytest's own
``pytest-of-*`` root is excluded; its retention is set in ``pyproject.toml``.
"""

from __future__ import annotations

import os
import tempfile

import pytest

_STASH_KEY = pytest.StashKey[frozenset[str]]()


def _entries(directory: str) -> frozenset[str]:
    try:
        return frozenset(name for name in os.listdir(directory) if not name.startswith("pytest-of-"))
    except OSError:
        return frozenset()


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_STASH_KEY] = _entries(tempfile.gettempdir())


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    before = config.stash.get(_STASH_KEY, None)
    if before is None:
        return
    directory = tempfile.gettempdir()
    left = sorted(_entries(directory) - before)
    if left:
        shown = ", ".join(left[:10]) + (f" and {len(left) - 10} more" if len(left) > 10 else "")
        terminalreporter.write_line(f"this run left {len(left)} entries in {directory}: {shown}", yellow=True)
