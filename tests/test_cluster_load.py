"""A small run of scripts/cluster_load.py: many worker processes doing a Toil worker's operations
on one PostgreSQL store at once, directly (on a server with fewer connection slots than workers)
and through PgBouncer. The script checks the store afterwards; this test holds it to its checks
and to the connection bounds. The full run (200 workers) is in docs/PERFORMANCE.md."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

from cluster_load import run_load


def test_more_workers_than_the_server_has_connections_all_succeed() -> None:
    result = run_load("direct", 24, max_connections=8)
    assert result.worker_errors == []
    assert result.check_failures == []
    assert result.operations == 24 * 9
    assert 1 <= result.max_server_connections <= 8


@pytest.mark.parametrize("pool_size", [4])
def test_workers_through_pgbouncer_share_its_pool(pool_size: int) -> None:
    result = run_load("pgbouncer", 24, pool_size=pool_size)
    assert result.worker_errors == []
    assert result.check_failures == []
    assert result.operations == 24 * 9
    assert 1 <= result.max_server_connections <= pool_size
    assert result.max_client_connections > pool_size  # the clients really were more than the pool
