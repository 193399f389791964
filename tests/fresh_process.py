"""Run a script in a new Python process and report what it imported of the SQLAlchemy path: the
fast path's promise is that workers and leaders never pay that import (~150 ms per process)."""

from __future__ import annotations

import json
import subprocess
import sys

_REPORT = (
    "\nimport json as _json, sys as _sys\n"
    "print(_json.dumps(sorted(m for m in _sys.modules\n"
    "    if m.split('.')[0] in ('sqlalchemy', 'alembic') or 'migrations.versions' in m)))\n"
)


def heavy_modules_imported_by(script: str) -> list[str]:
    """The SQLAlchemy, Alembic and migration-script modules loaded once ``script`` has run
    (which must succeed: its own asserts fail the caller with its stderr)."""
    done = subprocess.run([sys.executable, "-c", script + _REPORT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded
