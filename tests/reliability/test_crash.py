"""Crash consistency on every catalog x blob store combination: a writer SIGKILLed at random moments.

``JOBSTORE_CRASH_KILLS`` sets the kills per combination (default 5, to keep the suite short; the
full run, ``scripts/crash_harness.py --kills 100``, does 100 or more). See crashlib.py for what is
checked after each kill, and docs/RELIABILITY.md for the latest figures.
"""

from __future__ import annotations

import json
import os

from tests.conftest import Backend
from tests.reliability.crashlib import run_campaign

KILLS = int(os.environ.get("JOBSTORE_CRASH_KILLS", "5"))


def test_killed_writer_leaves_a_consistent_store(backend: Backend) -> None:
    store = backend.new_store()
    locator, catalog = store.locator, store.config.catalog
    store.close()
    result = run_campaign(backend.name, locator, catalog, KILLS, seed=KILLS, log=print)
    summary = result.summary()
    print(json.dumps(summary, indent=1))
    assert result.failures == [], json.dumps(summary["failures"], indent=1)
    assert len(result.records) == KILLS
