"""Every command's --help, and a table of bad inputs, through the real command line.

Each case runs ``python -m jobstore`` (what the ``jobstore`` console script runs) as a subprocess
from a scratch directory, with this checkout first on PYTHONPATH, and checks what a person sees:
the exit status, one line on stderr that says what was wrong, no traceback, and no API words
(``Config.catalog``, ``initialize()``) where a CLI user needs an option or a variable.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer.main

from tests.services.postgres import PostgresServer

REPO = Path(__file__).resolve().parents[1]
API_WORDS = ("Config.", "initialize()", "resume()", "Traceback", "call ")


def _jobstore(cwd: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    env.pop("JOBSTORE_CATALOG", None)
    return subprocess.run(
        [sys.executable, "-m", "jobstore", *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _commands() -> Iterator[list[str]]:
    from jobstore.cli import app

    def walk(command: object, path: list[str]) -> Iterator[list[str]]:
        yield path
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            yield from walk(sub, [*path, name])

    yield from walk(typer.main.get_command(app), [])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch directory holding a finished demo (its store is ``jobstore-demo/store``) and a file."""
    directory = tmp_path_factory.mktemp("cli")
    done = _jobstore(directory, "demo", "jobstore-demo", "--pace", "0")
    assert done.returncode == 0, done.stderr
    (directory / "small.txt").write_text("hello\n")
    return directory


def test_every_commands_help(workdir: Path) -> None:
    commands = list(_commands())
    assert ["db", "upgrade"] in commands and ["demo"] in commands and len(commands) >= 14
    for command in commands:
        shown = _jobstore(workdir, *command, "--help")
        assert shown.returncode == 0, (command, shown.stderr)
        assert "Usage:" in shown.stdout and not shown.stderr, command
    top = _jobstore(workdir, "--help").stdout
    for explained in ("LOCATOR", "JOBSTORE_CATALOG", "JOBSTORE_BLOB_STORE", "sql:URL#NAME"):
        assert explained in top
    assert "LOCATOR" in _jobstore(workdir, "status", "--help").stdout


def test_version(workdir: Path) -> None:
    shown = _jobstore(workdir, "--version")
    assert shown.returncode == 0
    assert shown.stdout.startswith("jobstore ") and len(shown.stdout.split()) == 2


BAD_INPUTS = [
    # (arguments, the exit status, what the one line must say)
    (["demo", "/etc/passwd"], 2, "/etc/passwd is not a directory"),
    (["demo", "d", "--fan-out", "0"], 2, "--fan-out must be between 1 and 400, not 0"),
    (["demo", "d", "--fan-out", "-1"], 2, "--fan-out must be between 1 and 400, not -1"),
    (["demo", "d", "--fan-out", "many"], 2, "Invalid value for '--fan-out'"),
    (["demo", "d", "--pace", "-1"], 2, "--pace must be 0 or more"),
    (["demo", "small.txt"], 2, "is not a directory"),
    (["status"], 2, "Missing argument 'LOCATOR'"),
    (["no-such-command"], 2, "No such command 'no-such-command'"),
    (["status", "a", "b"], 2, "unexpected extra argument"),
    (["status", "/etc/passwd"], 2, "does not exist"),
    (["status", "jobstore-demo"], 2, "give DIR/store"),
    (["status", "no-such-dir"], 2, "does not exist"),
    (["status", "small.txt"], 2, "does not exist"),
    (["status", "bad:locator"], 2, "Unknown job store type 'bad'"),
    (["status", "aws:us-east-1:bucket:prefix"], 2, "pass --catalog with a SQLAlchemy URL, or set JOBSTORE_CATALOG"),
    (["db", "current", "gce:us-east1:bucket:prefix"], 2, "pass --catalog URL or set JOBSTORE_CATALOG"),
    (["status", "jobstore-demo/store", "--catalog", "sqlite:////tmp/elsewhere.sqlite"], 2, "--catalog='sqlite"),
    (["status", "sql:postgresql+psycopg://u@127.0.0.1:1/db#x"], 2, "127.0.0.1:1: connection refused"),
    (["status", "sql:postgresql+psycopg://u@no-such-host.invalid:5432/db#x"], 2, "'no-such-host.invalid' does not"),
    (["import", "jobstore-demo/store", "no-such-file.txt"], 1, "no such file or directory"),
    (["import", "jobstore-demo/store", "."], 1, "directory"),
    (["import", "/etc/passwd", "small.txt"], 2, "does not exist"),
    (["export", "jobstore-demo/store", "shared:no-such", "out.txt"], 2, "No shared file has that name"),
    (["export", "jobstore-demo/store", "shared:../x", "out.txt"], 2, "shared"),
    (["export", "jobstore-demo/store", "no-such-id", "out.txt"], 1, "'no-such-id' does not exist"),
    (["gc", "jobstore-demo/store", "--grace", "soon"], 2, "'soon' is not a duration"),
    (["prune", "jobstore-demo/store", "--older-than", "old"], 2, "'old' is not a duration"),
    (["db", "check", "/etc/passwd"], 2, "There is no catalog at /etc/passwd/catalog.sqlite"),
    (["copy", "jobstore-demo/store"], 2, "Missing argument 'DST'"),
    (["destroy", "jobstore-demo/store"], 2, "error: no answer (standard input ended); pass --yes"),
]
#: Commands that ask a question first (on stderr): the error is the line after it.
ASKS = {"destroy"}


@pytest.mark.parametrize(("args", "status", "says"), BAD_INPUTS, ids=[" ".join(case[0]) for case in BAD_INPUTS])
def test_bad_input_is_one_line(workdir: Path, args: list[str], status: int, says: str) -> None:
    result = _jobstore(workdir, *args)
    assert result.returncode == status, result.stderr
    lines = result.stderr.strip().splitlines()
    if args[0] in ASKS:
        assert lines[-2] == "Destroy it? [y/N]:", lines
        lines = lines[-1:]
    assert lines and says in lines[0], result.stderr
    # One line; a transfer that failed adds the count of failures on a second.
    assert len(lines) == 1 or (status == 1 and len(lines) == 2 and lines[1] == "the transfer failed."), lines
    for word in API_WORDS:
        assert word not in result.stderr, result.stderr
    assert (workdir / "jobstore-demo" / "store" / "catalog.sqlite").is_file()  # nothing was destroyed


def test_relative_paths_and_shared_ids_round_trip(workdir: Path) -> None:
    imported = _jobstore(workdir, "import", "jobstore-demo/store", "small.txt")
    assert imported.returncode == 0, imported.stderr
    file_id, url = imported.stdout.strip().split("\t")
    assert url == "small.txt"  # as given
    exported = _jobstore(workdir, "export", "./jobstore-demo/store", file_id, "copy.txt")
    assert exported.returncode == 0, exported.stderr
    assert (workdir / "copy.txt").read_text() == "hello\n"
    shared = _jobstore(workdir, "import", "jobstore-demo/store", "small.txt", "--shared-name", "greeting")
    assert shared.stdout.split("\t")[0] == "shared:greeting"
    again = _jobstore(workdir, "export", "jobstore-demo/store", "shared:greeting", "greeting.txt")
    assert again.returncode == 0, again.stderr
    assert again.stdout.split("\t")[0] == "shared:greeting"
    assert (workdir / "greeting.txt").read_text() == "hello\n"


def test_upgrade_sql_prints_only_pending_migrations(workdir: Path) -> None:
    current = _jobstore(workdir, "db", "upgrade", "--sql", "jobstore-demo/store")
    assert current.returncode == 0, current.stderr
    assert current.stdout == ""
    assert "is already at revision" in current.stderr
    fresh = workdir / "fresh.sqlite"
    whole = _jobstore(workdir, "db", "upgrade", "--sql", f"sql:sqlite:///{fresh}#x")
    assert whole.returncode == 0, whole.stderr
    assert "CREATE TABLE jobs" in whole.stdout


def test_a_refused_login_names_the_server_and_what_to_check(workdir: Path, postgres_server: PostgresServer) -> None:
    locator = f"sql:postgresql+psycopg://no_such_role@127.0.0.1:{postgres_server.port}/postgres#x"
    result = _jobstore(workdir, "status", locator)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    # The server's own reason, at once (a refusal is not retried like an outage), and what to check.
    assert "refused the login" in lines[0] and 'role "no_such_role" does not exist' in lines[0], lines[0]
    assert "Check the user, the password" in lines[0]
