"""How every command ends on Ctrl-C: one line and exit status 130, at any moment."""

from __future__ import annotations

import signal
import sys
from typing import NoReturn


def interrupted(why: str = "") -> NoReturn:
    """One line and exit status 130 (128 + SIGINT, what shells report for Ctrl-C)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C while exiting: no traceback
    stream = sys.__stderr__ or sys.stderr  # the real one, whatever a live display did to sys.stderr
    stream.write(f"interrupted{': ' + why if why else ''}\n")
    stream.flush()
    sys.exit(130)
