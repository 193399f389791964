"""Releasing PostgreSQL connections that sit idle, so that a worker waiting for hours holds none.

A server's connection slots (``max_connections``) are shared by every worker of every workflow on
it. A Toil worker touches the store in bursts (resume, load its job, write its files, update it)
and may then compute for hours; its connection would hold a slot all that time. One daemon thread
per process closes, every few seconds, each connection that no operation is using and that has
been idle for longer than its catalog's ``idle_timeout`` (``?idle_timeout=SECONDS`` in the catalog
URL; 60 by default, 0 to keep connections open). The next operation opens a new one.

Owners (the PostgreSQL row operations, and the catalog's SQLAlchemy pool) register here and do the
closing themselves under their own locks; this module only keeps time. Nothing here imports a
driver.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from typing import Protocol

#: The catalog URL option (seconds; 0 disables) and its default.
IDLE_TIMEOUT = "idle_timeout"
DEFAULT_IDLE_TIMEOUT_SECONDS = 60.0
#: The reaper looks this many times per timeout, so a connection is closed at most a quarter of a
#: timeout late; never more often than this many seconds.
_CHECKS_PER_TIMEOUT = 4
_SHORTEST_PERIOD = 0.2


class IdleCloser(Protocol):
    idle_timeout: float

    def close_idle(self, now: float) -> None:
        """Close what has been idle since before ``now - idle_timeout`` (``time.monotonic()``)."""


class _Reaper:
    def __init__(self) -> None:
        self._owners: weakref.WeakSet[IdleCloser] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pid = 0

    def register(self, owner: IdleCloser) -> None:
        if owner.idle_timeout <= 0:
            return
        with self._lock:
            self._owners.add(owner)
            if self._pid != os.getpid():  # first use, or a forked child: its parent's thread is gone
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="jobstore-idle-connections", daemon=True).start()
            else:
                self._wake.set()  # a shorter timeout than the others may need an earlier look

    def _period(self) -> float:
        with self._lock:
            timeouts = [owner.idle_timeout for owner in self._owners]
        return max(_SHORTEST_PERIOD, min(timeouts, default=DEFAULT_IDLE_TIMEOUT_SECONDS) / _CHECKS_PER_TIMEOUT)

    def _run(self) -> None:
        while True:
            self._wake.wait(self._period())
            self._wake.clear()
            with self._lock:
                owners = list(self._owners)
            now = time.monotonic()
            for owner in owners:
                try:
                    owner.close_idle(now)
                except Exception:  # a connection that fails to close is gone anyway
                    pass


_reaper = _Reaper()


def release_when_idle(owner: IdleCloser) -> None:
    """Have ``owner.close_idle`` called periodically while it lives (not at all for a timeout of 0)."""
    _reaper.register(owner)


def application_name() -> str:
    """What a connection opened now tells the server about its client (``pg_stat_activity``)."""
    return f"jobstore pid {os.getpid()}"


def idle_timeout_option(value: str, url: str) -> float:
    """The ``idle_timeout`` URL option in seconds; a bad value is an InvalidLocatorError."""
    from jobstore.errors import InvalidLocatorError
    from jobstore.redact import redact_url

    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0 or seconds == float("inf"):
        raise InvalidLocatorError(
            f"{IDLE_TIMEOUT}={value!r} in {redact_url(url)!r} is not valid: give the seconds after which an "
            f"idle connection is closed (default {DEFAULT_IDLE_TIMEOUT_SECONDS:.0f}), or 0 to keep connections open."
        )
    return seconds
