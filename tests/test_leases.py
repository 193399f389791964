"""The leader lease with real processes, on SQLite and PostgreSQL catalogs (the blob store plays no
part): two leaders started together, a leader SIGKILLed and restarted, a leader paused past its
lease while another takes over, and the API's own rules (holder named, explicit takeover, release).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jobstore import InvalidArgumentError, JobDescription, JobStore, LeaseHeldError, LeaseLostError
from tests.conftest import Backend

CATALOGS = pytest.mark.parametrize("backend", ["sqlite-local", "postgres-local", "pgbouncer-local"], indirect=True)
REPO = Path(__file__).resolve().parent.parent


def _leader(store: JobStore, seconds: float, name: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.lease_child", store.locator, store.config.catalog or "-", str(seconds), name],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )


def _line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    assert line, f"the child exited ({process.wait(timeout=30)}) without a word"
    return line


def _finish(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=30)


def _job_names(store: JobStore, prefix: str) -> list[str]:
    return [job.jobName for job in store.jobs() if job.jobName.startswith(prefix)]


@CATALOGS
def test_two_leaders_started_together_exactly_one_wins(backend: Backend) -> None:
    store = backend.new_store()
    leaders = [_leader(store, 30, f"L{k}") for k in range(2)]
    try:
        first = sorted(_line(process) for process in leaders)
        assert first[0] == "held" and first[1] == "won 1", first
        holder = store.leader_lease()
        assert holder is not None and holder.attempt == 1
        leader = store.stats()["leader"]
        assert leader["attempt"] == 1 and leader["live"] and leader["holder"]["pid"] in [p.pid for p in leaders]
        with pytest.raises(LeaseHeldError, match="already has a leader: pid"):
            store.acquire_leader_lease()
    finally:
        for process in leaders:
            _finish(process)


@CATALOGS
def test_a_sigkilled_leader_is_replaced_by_the_next_restart(backend: Backend) -> None:
    store = backend.new_store()
    first = _leader(store, 300, "first")  # a lease far from expiring: only the exit can free it
    try:
        assert _line(first) == "won 1"
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        second = _leader(store, 300, "second")
        try:
            assert _line(second) == "won 2"  # its holder's process is gone: no wait for the expiry
            assert _line(second).startswith("wrote")
        finally:
            _finish(second)
    finally:
        _finish(first)


@CATALOGS
def test_a_leader_paused_past_its_lease_writes_nothing_after_the_takeover(backend: Backend) -> None:
    store = backend.new_store()
    paused = _leader(store, 2, "paused")
    try:
        assert _line(paused) == "won 1"
        assert _line(paused).startswith("wrote")
        paused.send_signal(signal.SIGSTOP)
        time.sleep(2.5)  # past the lease's end
        successor = store.acquire_leader_lease(seconds=30)  # expired: taken without take_over
        assert successor.attempt == 2
        taken_at = store.leader_lease()
        assert taken_at is not None
        written_before = len(_job_names(store, "paused-"))
        paused.send_signal(signal.SIGCONT)
        assert paused.wait(timeout=60) == 3  # its next write found the lease gone
        assert paused.stdout is not None
        tail = paused.stdout.read().split()
        assert "lost" in tail
        assert len(_job_names(store, "paused-")) == written_before  # nothing landed after the takeover
        store.create_job(JobDescription(jobName="successor"))  # the new leader writes on
    finally:
        paused.send_signal(signal.SIGCONT)
        _finish(paused)


@CATALOGS
def test_lease_rules_in_one_process(backend: Backend) -> None:
    leader = backend.new_store()
    rival = backend.reopen(leader)
    lease = leader.acquire_leader_lease(seconds=3)  # a heartbeat every second
    assert leader.acquire_leader_lease() is lease  # held already: the same lease
    with pytest.raises(LeaseHeldError) as info:
        rival.acquire_leader_lease()
    assert "attempt 1" in str(info.value) and "take_over=True" in str(info.value)
    assert rival.leader_lease() is not None and list(rival.jobs()) == []  # reading needs no lease

    taken = rival.acquire_leader_lease(take_over=True, seconds=30)
    assert taken.attempt == 2
    time.sleep(1.5)  # the old leader's next heartbeat finds attempt 2 in the row
    with pytest.raises(LeaseLostError, match="held by pid"):
        leader.create_job(JobDescription(jobName="zombie"))
    with pytest.raises(LeaseLostError):
        with leader.write_shared_file_stream("zombie.txt") as handle:
            handle.write(b"from the old leader")
    assert [job.jobName for job in rival.jobs()] == [] and not rival.shared_file_exists("zombie.txt")

    rival.release_leader_lease()  # expires at once: the next leader takes it without waiting
    again = leader.acquire_leader_lease(seconds=30)
    assert again.attempt == 3
    leader.create_job(JobDescription(jobName="back"))
    for seconds in (0, -1, 10**6):
        with pytest.raises(InvalidArgumentError, match="outside 1 to 86400"):
            rival.acquire_leader_lease(seconds=seconds)
    leader.close()
    assert rival.acquire_leader_lease(seconds=30).attempt == 4  # close() released it
