"""A test server that dies is reported once, with its pid and log, and then at once (health.py).

Each test kills a private server of its own (never the session's) with SIGKILL, as a crash would,
and checks what the next caller of the server sees. The last test runs a small pytest session in a
subprocess whose session PostgreSQL dies after its first test, to show that the later tests fail
at once with the cause instead of retrying their connections one by one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.services.health import ServerDied
from tests.services.http import HttpServer
from tests.services.postgres import PostgresServer
from tests.services.s3 import running_s3_server

REPO = Path(__file__).resolve().parents[2]


def _died_twice(check: object) -> tuple[str, str, float]:
    """Both ServerDied messages of two checks in a row, and how long the second one took."""
    assert callable(check)
    with pytest.raises(ServerDied) as first:
        check()
    started = time.monotonic()
    with pytest.raises(ServerDied) as second:
        check()
    return str(first.value), str(second.value), time.monotonic() - started


def test_killed_postgres_is_reported_with_pid_and_log_tail() -> None:
    with PostgresServer() as server:
        process = server._process
        assert process is not None
        server.lifeline.check()  # alive: no exception
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        first, second, took = _died_twice(server.lifeline.check)
        # The accessors tests use go through the same check.
        with pytest.raises(ServerDied):
            _ = server.url
        assert repr(server)  # a dead server's repr does not raise
    assert first.startswith(f"the PostgreSQL test server (pid {process.pid}) exited: killed by SIGKILL")
    assert "database system is ready to accept connections" in first  # a line of its own log
    assert second == first
    assert took < 0.05


def test_postgres_stopped_on_purpose_is_no_death_and_a_restart_is_healthy() -> None:
    with PostgresServer() as server:
        server.stop()
        server.lifeline.check()
        server.start()
        process = server._process
        assert process is not None
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        with pytest.raises(ServerDied):
            server.lifeline.check()
        server.start()  # a new process: a new, healthy lifeline
        server.lifeline.check()
        assert server.url.endswith("/postgres")


def test_killed_s3_server_is_reported_with_pid_and_log_tail() -> None:
    with running_s3_server() as server:
        process = server.process
        assert process is not None
        server.lifeline.check()
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        first, second, took = _died_twice(server.config)
    assert first.startswith(f"the S3 (SeaweedFS) test server (pid {process.pid}) exited: killed by SIGKILL")
    assert str(server.log_path) in first
    assert len(first.splitlines()) > 1  # the log tail follows the first line
    assert second == first
    assert took < 0.05


def test_http_server_whose_thread_stopped_is_reported() -> None:
    with HttpServer() as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert server._server is not None and server._thread is not None
        server._server.shutdown()  # its serving loop returns, as if the thread had ended on its own
        server._thread.join(10)
        first, second, _took = _died_twice(lambda: server.base_url)
    assert first == "the HTTP test server (thread test-http-server) stopped: its thread returned"
    assert second == first


def test_a_session_whose_postgres_dies_fails_the_later_tests_at_once(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["tests.services.postgres"]\n')
    (tmp_path / "test_dies.py").write_text(
        textwrap.dedent(
            """
            import signal

            def test_kills_the_server(postgres_server):
                postgres_server._process.send_signal(signal.SIGKILL)
                postgres_server._process.wait(10)

            def test_needs_it_later(postgres_server):
                raise AssertionError("must not run: the server is dead")

            def test_needs_it_too(postgres_server):
                raise AssertionError("must not run: the server is dead")

            def test_without_it():
                pass
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    took = time.monotonic() - started
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "2 passed, 2 errors" in out, out  # failed in setup, by the fail-fast hook
    assert "During handling" not in out, out
    assert out.count("the PostgreSQL test server (pid ") >= 2, out
    assert "must not run" not in out, out
    assert took < 60, f"{took:.1f} s"
