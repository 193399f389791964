"""The settings every SQLite catalog connection gets, whichever path opened it: the SQLAlchemy
engine and the fast path's sqlite3 connections must agree, or a store would behave differently
depending on which path an operation happened to take. (No SQLAlchemy import here: Toil workers
open the fast path only.)"""

from __future__ import annotations

#: Pages the write-ahead log may hold before the committing connection checkpoints it. Under
#: ``synchronous=NORMAL`` a checkpoint is where SQLite fsyncs (the WAL, then the database), so at
#: SQLite's default of 1,000 pages a job store paid two fsyncs every ~330 one-row commits; with
#: online ``discard`` on this machine's ext4 that was 15-20 us per commit on average (raw one-row
#: inserts into the files table: 56 -> 40 us; ``scripts/bench.py`` W1 create 144-160 -> 125-127 ms,
#: W6 delete 88-93 -> 78-80 ms per 2,000). The price is a WAL of up to ~40 MiB (4 KiB pages) and
#: a longer pause at each, rarer, checkpoint; commits are exactly as durable as before.
WAL_AUTOCHECKPOINT_PAGES = 10_000


def connection_pragmas(*, synchronous: str, busy_timeout_ms: int) -> tuple[str, ...]:
    """The statements to run on each new connection, in order (WAL first: the rest assume it)."""
    if synchronous not in ("NORMAL", "FULL"):
        raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
    return (
        "PRAGMA journal_mode=WAL",
        f"PRAGMA synchronous={synchronous}",
        "PRAGMA foreign_keys=ON",
        f"PRAGMA busy_timeout={int(busy_timeout_ms)}",
        f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}",
    )
