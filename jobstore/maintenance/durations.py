"""Durations on the command line and in the API: ``7d``, ``12h``, ``30m``, ``45s``, ``2w``, ``1d12h``, ``0``."""

from __future__ import annotations

import re
from datetime import timedelta

from jobstore.errors import JobStoreError

_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class InvalidDurationError(JobStoreError, ValueError):
    """A duration string that is not a number followed by s, m, h, d or w."""


def parse_duration(text: str | timedelta) -> timedelta:
    """Parse ``7d``, ``12h``, ``30m``, ``45s``, ``2w`` or combinations such as ``1d12h``; ``0`` is zero."""
    if isinstance(text, timedelta):
        return text
    compact = text.strip().lower().replace(" ", "")
    if compact in ("0", "0s"):
        return timedelta(0)
    position = 0
    seconds = 0.0
    for match in _PART.finditer(compact):
        if match.start() != position:
            break
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position != len(compact) or not compact:
        raise InvalidDurationError(
            f"{text!r} is not a duration: use a number followed by s, m, h, d or w, such as 30m, 12h, 7d "
            "or 1d12h (0 for none)."
        )
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise InvalidDurationError(
            f"{text!r} is longer than any duration jobstore can count (at most {timedelta.max.days:,} days)."
        ) from None


def format_duration(value: timedelta) -> str:
    """The inverse of :func:`parse_duration`, in its largest exact units (``1d12h``)."""
    remaining = int(value.total_seconds())
    if remaining == 0:
        return "0"
    parts = []
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNITS[unit]
        if remaining >= size:
            parts.append(f"{remaining // size}{unit}")
            remaining %= size
    return "".join(parts)
