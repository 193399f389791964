"""A test server that dies mid-run fails the next test that needs it at once, and every later one.

Without this, a PostgreSQL server that crashed in the middle of a session made each later test
retry its connection for seconds and fail on its own (one run: 50 minutes, 427 failures, and the
cause nowhere). Each server object keeps a :class:`Lifeline`; its accessors (``url``,
``config()``, ...) call ``check()``, and each service module's ``pytest_runtest_setup`` hook calls
:func:`fail_if_dead` for the tests that request the session's server. The first check that finds
the server gone reads the end of its log once and keeps the message; every check after that
raises the same message without waiting for anything.

The session's server is **not** restarted: a server that died is a bug to look at (its log is
quoted in the message), and a restart would hide it. A test that stops the server on purpose
(``stop()``) is not a death, and a ``start()`` after a death gives a new, healthy lifeline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable
from typing import Protocol

import pytest

#: How many lines of a server's log a death message quotes.
LOG_LINES = 20


class ServerDied(RuntimeError):
    """A test server that was running has exited without being asked to."""


def log_tail(path: str | os.PathLike[str], lines: int = LOG_LINES) -> str:
    """The last ``lines`` lines of a log file, or a note that there is none."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode(errors="replace")
    except OSError as error:
        return f"(no log: {error})"
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else "(the log is empty)"


def describe_exit(returncode: int) -> str:
    """``status 1`` or ``killed by SIGKILL``."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"status {returncode}"


class Lifeline:
    """Whether one server is still there; remembers the first death it saw.

    ``current()`` gives the server's process or thread (None while it is stopped on purpose or not
    started); ``death(of)`` says why that process or thread is gone, or None while it runs.
    """

    def __init__(self, current: Callable[[], object | None], death: Callable[[object], str | None]) -> None:
        self._current = current
        self._death = death
        self._verdict: tuple[object, str] | None = None

    def check(self) -> None:
        """Raise :class:`ServerDied` if the server died; a no-op while it runs or is stopped."""
        current = self._current()
        if current is None:
            return
        if self._verdict is not None and self._verdict[0] is current:
            raise ServerDied(self._verdict[1])
        message = self._death(current)
        if message is None:
            return
        self._verdict = (current, message)
        raise ServerDied(message)

    @property
    def dead(self) -> bool:
        try:
            self.check()
        except ServerDied:
            return True
        return False


def process_lifeline(
    name: str,
    process: Callable[[], subprocess.Popen[bytes] | None],
    log_path: Callable[[], str | os.PathLike[str]],
) -> Lifeline:
    """The lifeline of a server run as a subprocess (its log file is quoted when it dies)."""

    def death(current: object) -> str | None:
        assert isinstance(current, subprocess.Popen)
        code = current.poll()
        if code is None:
            return None
        path = log_path()
        return (
            f"the {name} test server (pid {current.pid}) exited: {describe_exit(code)}; "
            f"the last lines of its log ({path}):\n{log_tail(path)}"
        )

    return Lifeline(process, death)


def thread_lifeline(
    name: str, thread: Callable[[], threading.Thread | None], error: Callable[[], BaseException | None]
) -> Lifeline:
    """The lifeline of a server run in a thread of the test process (its exception is quoted)."""

    def death(current: object) -> str | None:
        assert isinstance(current, threading.Thread)
        if current.is_alive():
            return None
        raised = error()
        why = f"{type(raised).__name__}: {raised}" if raised is not None else "its thread returned"
        return f"the {name} test server (thread {current.name}) stopped: {why}"

    return Lifeline(thread, death)


class _HasLifeline(Protocol):
    lifeline: Lifeline


def fail_if_dead(item: pytest.Item, fixture: str, server: _HasLifeline | None) -> None:
    """For ``pytest_runtest_setup``: fail ``item`` at once if it needs ``fixture`` and it is dead."""
    if server is None or fixture not in getattr(item, "fixturenames", ()):
        return
    try:
        server.lifeline.check()
    except ServerDied as died:
        message = str(died)
    else:
        return
    pytest.fail(message, pytrace=False)  # outside the except: no "during handling" chain in the report
