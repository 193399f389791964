"""The maintenance commands through the real command line: exit codes, --json, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from jobstore import Config, FileJobStore, JobStore, create_job_store
from jobstore.cli import app
from tests.conftest import Backend
from tests.maintenance.helpers import delete_job_row, populate

runner = CliRunner()


def _catalog_args(store: JobStore) -> list[str]:
    return ["--catalog", store.config.catalog] if store.config.catalog else []


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout


def test_cli_on_every_backend(backend: Backend) -> None:
    store = backend.new_store()
    data = populate(store, jobs_count=2)
    store.close()
    locator = store.locator
    code, out = invoke("status", locator, "--json")
    assert code == 0 and json.loads(out)["files"] == len(data.files) + len(data.shared)
    code, out = invoke("fsck", locator, "--json", "--verify-checksums")
    assert code == 0 and json.loads(out)["ok"] is True
    damaged = backend.reopen(store)
    damaged.blob_store.put_bytes("f/zz/extra.0001", b"extra")
    delete_job_row(damaged, next(iter(data.jobs)))
    code, out = invoke("fsck", locator, "--json")
    assert code == 1 and json.loads(out)["counts"] == {"orphaned_cleanup_file": 1, "unreferenced_blob": 1}
    code, out = invoke("gc", locator, "--dry-run", "--json")
    plan = json.loads(out)
    assert code == 0 and (plan["orphaned_files"], plan["condemned_blobs"], plan["dry_run"]) == (1, 1, True)
    code, out = invoke("gc", locator, "--grace", "0", "--json")
    assert code == 0 and json.loads(out)["deleted_blobs"] == 1
    code, _ = invoke("fsck", locator)
    assert code == 0
    code, out = invoke("prune", locator, "--older-than", "0", "--state", "any", "--dry-run", "--json")
    assert code == 0 and json.loads(out)["jobs"] == 1
    code, out = invoke("gc", locator)  # human output
    assert code == 0 and "orphaned files removed" in out
    code, out = invoke("destroy", locator, "--yes")
    assert code == 0 and "destroyed" in out
    with pytest.raises(Exception, match="does not exist"):
        create_job_store(locator).resume(Config(catalog=store.config.catalog) if store.config.catalog else None)


def test_copy_and_destroy_only_that_store(tmp_path: Path, backend: Backend) -> None:
    source = backend.new_store()
    populate(source, jobs_count=2)
    source.close()
    shared_catalog = f"sqlite:///{tmp_path}/shared.sqlite"
    first = f"sql:{shared_catalog}#first"
    second = f"sql:{shared_catalog}#second"
    for target, blobs in ((first, tmp_path / "b1"), (second, tmp_path / "b2")):
        code, out = invoke("copy", source.locator, target, "--dst-blob-store", f"file://{blobs}", "--json")
        assert code == 0 and json.loads(out)["ok"] is True
    code, out = invoke("copy", source.locator, first, "--json")  # again: everything is already there
    assert code == 0 and json.loads(out)["files_already_there"] == json.loads(out)["verified"]
    declined = runner.invoke(app, ["destroy", first], input="n\n")
    assert declined.exit_code == 1  # asked, said no: nothing destroyed
    code, _ = invoke("destroy", first, "--yes")
    assert code == 0
    code, out = invoke("status", second, "--json")
    assert code == 0 and json.loads(out)["jobs"] == 2
    code, out = invoke("fsck", second, "--verify-checksums", "--json")
    assert code == 0 and json.loads(out)["ok"] is True


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jobstore", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_expected_errors_are_one_line_with_exit_2(tmp_path: Path) -> None:
    store = FileJobStore(f"file:{tmp_path}/wf")
    store.initialize(Config())
    store.close()
    for args in (
        ("gc", f"{tmp_path}/missing"),
        ("fsck", "aws:nowhere:x"),
        ("prune", store.locator, "--older-than", "5 parsecs"),
        ("copy", store.locator, store.locator),
        ("destroy", "sql:sqlite:///" + str(tmp_path / "none.sqlite") + "#x", "--yes"),
        ("status", "bogus:locator"),
    ):
        result = _run(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr and "error" in result.stderr.lower(), (args, result.stderr)
    for command in ("gc", "fsck", "copy", "prune", "destroy", "status"):
        helped = _run(command, "--help")
        assert helped.returncode == 0 and "Usage" in helped.stdout


def test_usage_errors_exit_2_without_a_traceback() -> None:
    """Typer's usage errors (click's, vendored by typer >= 0.29 with click itself possibly absent)."""
    for args in (("status",), ("no-such-command",), ("gc", "--no-such-option", "x")):
        result = _run(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr and "--help`)" in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr  # one line, naming the fix
