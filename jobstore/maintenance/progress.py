"""How long-running maintenance reports its progress, without depending on any user interface.

Functions take an optional ``progress`` callback, called as ``progress(stage, done, total)``; the
CLI turns it into rich progress bars, tests and scripts may ignore it or record it.
"""

from __future__ import annotations

from collections.abc import Callable

#: ``progress(stage, done, total)``: ``total`` is None while unknown (e.g. while listing blobs).
Progress = Callable[[str, int, int | None], None]


def no_progress(stage: str, done: int, total: int | None) -> None:
    """The default: report nothing."""
