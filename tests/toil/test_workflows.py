"""Real Toil workflows on jobstore, run by Toil's own leader, workers and utilities as separate
processes (single-machine batch system), which find the store through the ``.pth`` hook alone.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from jobstore import create_job_store

SCRIPT = Path(__file__).resolve().parent / "scripts" / "toil_workflows.py"
TOIL_OPTIONS = [
    "--batchSystem",
    "single_machine",
    "--maxCores",
    "2",
    "--retryCount",
    "2",
    "--retryBackoffSeconds",
    "0",
    "--clean",
    "never",
    "--stats",
    "--logLevel",
    "INFO",
]


def run_workflow(
    env: dict[str, str], locator: str, kind: str, workdir: Path, *extra: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(SCRIPT), locator, kind, str(workdir), *TOIL_OPTIONS, *extra]
    result = subprocess.run(command, env=env, cwd=workdir, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stderr[-6000:]}"
    return result


def toil_command(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["toil", *args], env=env, capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, f"toil {' '.join(args)} failed:\n{result.stderr[-4000:]}"
    return result


def executions(workdir: Path) -> collections.Counter[str]:
    log = workdir / "executions.log"
    return collections.Counter(log.read_text().split()) if log.exists() else collections.Counter()


def test_features_workflow_and_toil_utilities(toil_env: dict[str, str], tmp_path: Path) -> None:
    """Children, follow-ons, promises, files between jobs, import/export, a service, a checkpoint
    and a retried job, then ``toil status``, ``toil stats`` and ``toil clean`` on the store."""
    workdir = tmp_path / "features"
    workdir.mkdir()
    (workdir / "input.txt").write_text("hello toil")
    locator = f"jobstore:file:{workdir / 'store'}"
    run_workflow(toil_env, locator, "features", workdir)

    report = (workdir / "report.txt").read_text()
    # 1+4+9+16 from the writers, plus the retried job's 1000.
    assert report == "sum=1030 flaky=1000 service=SERVICE-VALUE checkpoint=checkpoint-child copy=HELLO TOIL"
    counts = executions(workdir)
    assert counts["flaky"] == 2  # failed once, retried once
    for name in ("root", "sum", "report", "service-start", "service-stop", "checkpoint", "checkpoint-child"):
        assert counts[name] == 1, (name, counts)
    assert all(counts[f"write-{n}"] == 1 for n in range(1, 5))

    status = toil_command(toil_env, "status", locator)
    assert "Root job is absent. The workflow has may have completed successfully." in status.stdout
    stats = toil_command(toil_env, "stats", locator)
    assert "Batch System: single_machine" in stats.stdout
    assert "Worker" in stats.stdout and "Job" in stats.stdout

    # Every job finished and was deleted with its cleanup files; SQL sees an empty job table.
    store = create_job_store(f"file:{workdir / 'store'}")
    store.resume()
    assert store.stats()["jobs"] == 0
    store.close()

    toil_command(toil_env, "clean", locator)
    assert not (workdir / "store").exists()


def _crash(leader: subprocess.Popen[Any]) -> None:
    """A crash of the leader's machine: the leader and every worker it started (Toil starts
    workers in sessions of their own, so the process group is not enough) die at once."""
    processes = [leader.pid] + [child.pid for child in psutil.Process(leader.pid).children(recursive=True)]
    for pid in processes:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    leader.wait()


def _kill_halfway_and_restart(env: dict[str, str], locator: str, workdir: Path) -> tuple[collections.Counter[str], str]:
    """Start the restartable workflow, SIGKILL its leader (and workers) while the gate job waits,
    take ``toil status`` of the halted workflow, open the gate, restart with --restart; return the
    executions of every job and the status report."""
    workdir.mkdir()
    command = [sys.executable, str(SCRIPT), locator, "restartable", str(workdir), *TOIL_OPTIONS]
    leader = subprocess.Popen(
        command, env=env, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            counts = executions(workdir)
            if counts["gate"] >= 1 and all(counts[f"quick-{n}"] for n in range(10)):
                break
            if leader.poll() is not None:
                errors = leader.stderr.read()[-4000:] if leader.stderr else ""
                raise AssertionError(f"the leader exited early:\n{errors}")
            assert time.monotonic() < deadline, f"the workflow did not get halfway: {counts}"
            time.sleep(0.2)
        time.sleep(2)  # let the leader record the finished quick jobs, as it would in a real crash window
    finally:
        _crash(leader)
    halted_status = toil_command(env, "status", locator).stdout
    (workdir / "open-gate").touch()
    run_workflow(env, locator, "restartable", workdir, "--restart")
    assert (workdir / "result.txt").read_text() == "45:opened"
    return executions(workdir), halted_status


def test_sigkilled_leader_restarts_like_on_toils_file_job_store(toil_env: dict[str, str], tmp_path: Path) -> None:
    ours, our_status = _kill_halfway_and_restart(
        toil_env, f"jobstore:file:{tmp_path / 'js-store'}", tmp_path / "jobstore"
    )
    theirs, their_status = _kill_halfway_and_restart(toil_env, f"file:{tmp_path / 'toil-store'}", tmp_path / "toil")
    assert _shape(our_status) == _shape(their_status), (our_status, their_status)
    assert "jobs ready to run" in our_status
    # Every quick job committed before the kill and must not run again; the gate ran twice.
    assert all(ours[f"quick-{n}"] == 1 for n in range(10)), ours
    assert ours["combine"] == 1 and ours["gate"] == 2, ours
    assert sum(ours.values()) <= sum(theirs.values()), (ours, theirs)

    # toil status and toil stats print for our store what they print for Toil's own.
    for kind in ("status", "stats"):
        mine = toil_command(toil_env, kind, f"jobstore:file:{tmp_path / 'js-store'}").stdout
        reference = toil_command(toil_env, kind, f"file:{tmp_path / 'toil-store'}").stdout
        assert sorted(_shape(mine)) == sorted(_shape(reference)), (kind, mine, reference)


def _shape(output: str) -> list[str]:
    """The words of a report without numbers, times, store names and Toil's CPU-overuse notes
    (which differ between runs)."""
    words = []
    lines = [line for line in output.splitlines() if "used more CPU than requested" not in line]
    for word in " ".join(lines).split():
        if any(character.isdigit() for character in word) or "Store(" in word or "store" in word.lower():
            continue
        words.append(word)
    return words


@pytest.mark.parametrize("backend", ["postgres-s3"])
def test_workflow_on_postgres_and_s3(
    toil_env: dict[str, str], tmp_path: Path, postgres_server: object, s3_server: object, backend: str
) -> None:
    """The multi-machine form: catalog in PostgreSQL, blobs in S3; workers resume from the locator."""
    import json

    workdir = tmp_path / "pg"
    workdir.mkdir()
    settings = s3_server.config()  # type: ignore[attr-defined]
    env = dict(toil_env)
    env["JOBSTORE_BLOB_STORE"] = f"s3://jobstore-tests/toil-wf-{os.getpid()}-{int(time.time())}"
    env["JOBSTORE_SETTINGS"] = json.dumps(
        {key: getattr(settings, key) for key in ("awsEndpointURL", "awsRegion", "awsCredentials")}
    )
    locator = f"jobstore:sql:{postgres_server.url}#toil-wf-{os.getpid()}"  # type: ignore[attr-defined]
    (workdir / "open-gate").touch()
    run_workflow(env, locator, "restartable", workdir)
    assert (workdir / "result.txt").read_text() == "45:opened"
    toil_command(env, "clean", locator)


def _start_until_gate(env: dict[str, str], tmp_path: Path) -> tuple[Path, str, list[str], subprocess.Popen[str]]:
    """Start the restartable workflow on a jobstore:file: store and wait until its gate job waits
    (for a file that is not there yet); the work dir, locator, command and running leader."""
    workdir = tmp_path / "run"
    workdir.mkdir()
    locator = f"jobstore:file:{tmp_path / 'store'}"
    command = [sys.executable, str(SCRIPT), locator, "restartable", str(workdir), *TOIL_OPTIONS]
    leader = subprocess.Popen(
        command,
        env=env,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        text=True,
    )
    deadline = time.monotonic() + 180
    while executions(workdir)["gate"] < 1:
        if leader.poll() is not None:
            errors = leader.stderr.read()[-4000:] if leader.stderr else ""
            raise AssertionError(f"the leader exited early:\n{errors}")
        assert time.monotonic() < deadline, "the workflow never reached its gate job"
        time.sleep(0.2)
    return workdir, locator, command, leader


def test_toil_kill_stops_the_leader_and_the_workflow_restarts(toil_env: dict[str, str], tmp_path: Path) -> None:
    """``toil kill jobstore:...`` finds the leader through the store (its PID and node ID are
    shared files) and stops it; the killed workflow then finishes with ``--restart``."""
    workdir, locator, _, leader = _start_until_gate(toil_env, tmp_path)
    try:
        toil_command(toil_env, "kill", locator)
        assert leader.wait(timeout=120) != 0, "the killed leader reported success"
    finally:
        survivors = [leader] if leader.poll() is None else []
        try:
            survivors += psutil.Process(leader.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            pass
        for process in survivors:
            try:
                process.kill()
            except (psutil.NoSuchProcess, ProcessLookupError):
                pass
        leader.wait()
    (workdir / "open-gate").touch()
    run_workflow(toil_env, locator, "restartable", workdir, "--restart")
    assert (workdir / "result.txt").read_text() == "45:opened"


def test_a_second_restart_of_a_running_workflow_fails_at_once(toil_env: dict[str, str], tmp_path: Path) -> None:
    """While a leader runs the workflow, ``--restart`` from another process fails at once with
    the leader lease's message (and changes nothing); once that leader is SIGKILLed, a restart
    takes over (its holder's process is gone) and finishes the workflow."""
    workdir, locator, command, leader = _start_until_gate(toil_env, tmp_path)
    try:
        started = time.monotonic()
        second = subprocess.run(
            [*command, "--restart"], env=toil_env, cwd=workdir, capture_output=True, text=True, timeout=120
        )
        assert second.returncode != 0
        assert "already has a leader" in second.stderr and "JOBSTORE_TAKE_OVER_LEASE" in second.stderr
        assert time.monotonic() - started < 60  # at once, not after a lease period
        assert leader.poll() is None  # the running leader is unharmed
    finally:
        _crash(leader)
    (workdir / "open-gate").touch()
    run_workflow(toil_env, locator, "restartable", workdir, "--restart")
    assert (workdir / "result.txt").read_text() == "45:opened"
    # Every worker carried its leader's fencing token: attempt 1 before the crash, 2 after it.
    attempts = dict(line.split() for line in (workdir / "attempts.log").read_text().splitlines())
    assert attempts["root"] == "1" and attempts["combine"] == "2", attempts
