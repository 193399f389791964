"""``jobstore import`` and ``jobstore export`` on a local store, through Typer's test runner."""

from __future__ import annotations

import os
from pathlib import Path

from typer.testing import CliRunner

from jobstore import Config, create_job_store
from jobstore.cli import app
from tests.services.http import HttpServer


def _new_store(tmp_path: Path) -> str:
    locator = f"file:{tmp_path / 'store'}"
    store = create_job_store(locator)
    store.initialize(Config())
    store.close()
    return locator


def test_import_prints_ids_and_exits_1_when_some_fail(tmp_path: Path, http_server: HttpServer) -> None:
    locator = _new_store(tmp_path)
    data = os.urandom(5 * 1024 * 1024)
    good = http_server.write_file(f"cli/{os.urandom(4).hex()}.bin", data)
    local = tmp_path / "local.txt"
    local.write_bytes(b"local")
    missing = http_server.url("_special/status/404")
    result = CliRunner().invoke(app, ["import", locator, good, str(local), missing, "--workers", "2"])
    assert result.exit_code == 1, result.output
    lines = [line.split("\t") for line in result.stdout.splitlines() if "\t" in line]
    assert [url for _, url in lines] == [good, str(local)]
    assert missing in result.stderr and "1 of 3 transfers failed" in result.stderr

    store = create_job_store(locator)
    store.resume()
    try:
        with store.read_file_stream(lines[0][0]) as stream:
            assert stream.read() == data
        file_id = lines[1][0]
    finally:
        store.close()

    target = tmp_path / "out" / "copy.txt"
    exported = CliRunner().invoke(app, ["export", locator, file_id, target.as_uri()])
    assert exported.exit_code == 0, exported.output
    assert target.read_bytes() == b"local"


def test_shared_import_and_usage_errors(tmp_path: Path, http_server: HttpServer) -> None:
    locator = _new_store(tmp_path)
    local = tmp_path / "config.json"
    local.write_bytes(b"{}")
    result = CliRunner().invoke(app, ["import", locator, str(local), "--shared-name", "config.json"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("shared:config.json\t")
    store = create_job_store(locator)
    store.resume()
    try:
        with store.read_shared_file_stream("config.json") as stream:
            assert stream.read() == b"{}"
    finally:
        store.close()
    two = CliRunner().invoke(app, ["import", locator, str(local), str(local), "--shared-name", "x"])
    assert two.exit_code == 2
    upload = CliRunner().invoke(
        app, ["export", locator, "no-such-file", http_server.url("_special/upload/cli"), "--http-method", "put"]
    )
    assert upload.exit_code == 1
    assert "no-such-file" in upload.stderr
