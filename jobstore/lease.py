"""The leader lease: one leader per store, and no writes from a leader that lost it.

A lease is a catalog row per store (``leases``): who holds it, an ``attempt`` number that only grows
(the fencing token) and an expiry that the holder's heartbeat thread pushes forward every third of
the lease's length. Another process may take the lease once it has expired, or at once when the
holder is a process of this host that no longer exists; taking over a live lease is explicit
(``take_over=True``) and logged.

Fencing happens in the catalog (``CatalogOperations.fence``): from ``acquire_leader_lease()`` on,
every write operation of the holder's handle checks the lease row in the transaction that writes
(a condition of its statement, or the first statement of a transaction around it) and refuses
the write with LeaseLostError unless the row still holds this attempt; on PostgreSQL the check
locks the row FOR KEY SHARE, so a takeover waits for writes in flight. No clock is trusted
for that. The time-based validity kept here (a holder counts on its lease for less than one lease
length, minus a margin, after the start of its last renewal, on its own monotonic clock; past that
the next operation renews synchronously) only makes a leader that was cut off notice early, even
before it writes.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import secrets
import socket
import threading
import time
from datetime import datetime, timedelta
from typing import Any

from jobstore.catalog.operations import CatalogOperations
from jobstore.catalog.rows import DESTROYED_ATTEMPT, LeaseRow, utc_now
from jobstore.errors import InvalidArgumentError, LeaseHeldError, LeaseLostError, StoreBeingDestroyedError

__all__ = ["DEFAULT_LEASE_SECONDS", "LeaderLease", "acquire", "describe_holder", "describe_lease"]

log = logging.getLogger(__name__)

#: A lease's length. A SIGKILLed leader's lease blocks a restart on another host for at most this.
DEFAULT_LEASE_SECONDS = 60.0
#: The part of a lease a holder does not count on (clock disagreement between hosts, latency).
SAFETY_FRACTION = 0.2


def _process_start(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux), which tells a reused
    PID from the original; None where /proc does not say."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def new_holder() -> dict[str, Any]:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        user = str(os.getuid())
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "user": user,
        "process_start": _process_start(os.getpid()),
        "nonce": secrets.token_hex(8),
    }


def describe_holder(row: LeaseRow) -> str:
    holder = json.loads(row.holder)
    return (
        f"pid {holder.get('pid')} on {holder.get('host')} (user {holder.get('user')}), leader since "
        f"{row.acquired_at.isoformat(timespec='seconds')}, attempt {row.attempt}, lease expiring "
        f"{row.expires_at.isoformat(timespec='seconds')}"
    )


def describe_lease(row: LeaseRow) -> dict[str, Any]:
    """The lease as JSON-serialisable values (``stats()``, ``jobstore status``)."""
    return {
        "attempt": row.attempt,
        "holder": json.loads(row.holder),
        "acquired_at": row.acquired_at.isoformat(),
        "expires_at": row.expires_at.isoformat(),
        "live": row.expires_at > utc_now(),
    }


def _holder_is_gone(row: LeaseRow) -> bool:
    """True when the holder was a process of this host that has exited (its PID is free, or now
    names a process that started later)."""
    holder = json.loads(row.holder)
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return False
    pid = int(holder["pid"])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    recorded = holder.get("process_start")
    return recorded is not None and _process_start(pid) not in (None, recorded)


class LeaderLease:
    """A lease this process holds; :meth:`check` before each write, :meth:`release` at the end."""

    def __init__(self, operations: CatalogOperations, store_id: int, attempt: int, seconds: float, renewed: float):
        self._operations = operations
        self._store_id = store_id
        self.attempt = attempt
        self.seconds = seconds
        self._valid_until = renewed + seconds * (1 - SAFETY_FRACTION)
        self._lost: LeaseLostError | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._heartbeat, name="jobstore-lease-heartbeat", daemon=True)
        self._thread.start()

    @property
    def held(self) -> bool:
        return self._lost is None and not self._stop.is_set()

    def check(self) -> None:
        """Return if the lease is known valid; else renew it now (LeaseLostError if it was taken)."""
        if self._lost is not None:
            raise self._lost
        if time.monotonic() < self._valid_until or self._stop.is_set():
            return
        self.renew()

    def renew(self) -> None:
        with self._lock:
            if self._lost is not None:
                raise self._lost
            started = time.monotonic()
            if self._operations.renew_lease(self._store_id, self.attempt, utc_now() + timedelta(seconds=self.seconds)):
                self._valid_until = started + self.seconds * (1 - SAFETY_FRACTION)
                return
            current = self._operations.get_lease(self._store_id)
            by = describe_holder(current) if current is not None else "nobody (the store was destroyed)"
            self._lost = LeaseLostError(
                f"This process lost the store's leader lease (attempt {self.attempt}): it is now held by {by}. "
                "Its writes are refused; stop this leader (another one runs the workflow now)."
            )
            log.error("%s", self._lost)
            raise self._lost

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                self.renew()
            except LeaseLostError:
                return
            except Exception as error:  # the catalog unreachable for now: writes will renew first
                log.warning("could not renew the leader lease (writes will retry first): %s", error)

    def release(self) -> None:
        """Stop the heartbeat and let the lease expire now, so the next leader need not wait."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        if self._lost is None:
            try:
                self._operations.renew_lease(self._store_id, self.attempt, utc_now() - timedelta(seconds=1))
            except Exception as error:
                log.warning("could not release the leader lease (it expires by itself): %s", error)


def _refuse_a_destroyed_store(current: LeaseRow | None, store_name: str) -> None:
    if current is not None and current.attempt >= DESTROYED_ATTEMPT:
        raise StoreBeingDestroyedError(store_name, "No leader can take it; run destroy again to finish it.")


def acquire(
    operations: CatalogOperations, store_id: int, store_name: str, *, take_over: bool, seconds: float
) -> LeaderLease:
    """Take the store's lease (see the module docstring); LeaseHeldError names a live holder."""
    if not 1 <= seconds <= 86400:
        raise InvalidArgumentError(f"A lease of {seconds!r} seconds is outside 1 to 86400 seconds.")
    holder = new_holder()
    holder_json = json.dumps(holder, sort_keys=True)
    current = operations.get_lease(store_id)
    _refuse_a_destroyed_store(current, store_name)
    expected = 0
    if current is not None and current.expires_at > utc_now():
        if take_over:
            log.warning("taking over the leader lease of %s from %s", store_name, describe_holder(current))
            expected = current.attempt
        elif _holder_is_gone(current):
            log.info("the leader lease of %s belongs to an exited process: %s", store_name, describe_holder(current))
            expected = current.attempt
    started = time.monotonic()
    now: datetime = utc_now()
    attempt = operations.take_lease(store_id, holder_json, now, now + timedelta(seconds=seconds), expected)
    if attempt is None:
        current = operations.get_lease(store_id)
        _refuse_a_destroyed_store(current, store_name)
        if current is not None and current.holder == holder_json:
            attempt = current.attempt  # our own acquisition, whose reply was lost
        else:
            by = describe_holder(current) if current is not None else "another process"
            raise LeaseHeldError(
                f"The job store {store_name} already has a leader: {by}. Two leaders would corrupt each "
                "other's state. If that leader is gone, wait for its lease to expire, or take the store "
                "over explicitly (acquire_leader_lease(take_over=True); for Toil, set "
                "JOBSTORE_TAKE_OVER_LEASE=1 for the restart)."
            )
    return LeaderLease(operations, store_id, attempt, seconds, started)
