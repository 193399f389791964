"""The PgBouncer fixture itself: found or fetched, in transaction mode, and clear when it cannot start."""

from __future__ import annotations

import psycopg
import pytest

from tests.services import pgbouncer
from tests.services.health import ServerDied
from tests.services.pgbouncer import PgBouncerServer, PgBouncerStartError
from tests.services.postgres import PostgresServer


def test_the_session_pgbouncer_pools_transactions(pgbouncer_server: PgBouncerServer) -> None:
    with psycopg.connect(pgbouncer_server.admin_dsn, autocommit=True, prepare_threshold=None) as admin:
        cursor = admin.cursor()
        cursor.execute("SHOW CONFIG")
        settings = {row[0]: row[1] for row in cursor.fetchall()}
    assert settings["pool_mode"] == "transaction"
    assert settings["default_pool_size"] == str(pgbouncer_server.pool_size)
    # What goes through it reaches the session's PostgreSQL.
    with psycopg.connect(pgbouncer_server.url.replace("+psycopg", ""), prepare_threshold=None) as conn:
        assert conn.execute("SELECT current_setting('port')").fetchone() == (str(pgbouncer_server.postgres.port),)


def test_a_named_binary_that_is_not_there_is_refused_by_name(
    postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(pgbouncer.BINARY_ENV, "/nonexistent/pgbouncer")
    with pytest.raises(PgBouncerStartError, match=r"JOBSTORE_TEST_PGBOUNCER.*not an executable"):
        PgBouncerServer(postgres_server).start()


def test_a_pgbouncer_that_died_is_reported_with_its_log(postgres_server: PostgresServer) -> None:
    with PgBouncerServer(postgres_server) as server:
        process = server._process
        assert process is not None
        process.kill()
        process.wait()
        with pytest.raises(ServerDied, match=r"PgBouncer"):
            _ = server.url
