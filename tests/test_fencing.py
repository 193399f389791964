"""Fencing: once another leader has taken the store over, no write of the old attempt lands.

Each write operation of a fenced handle (a leader's, from ``acquire_leader_lease()``; a worker's,
from ``require_lease_attempt()``) checks the lease row inside its own transaction, so the refusal
needs no heartbeat and no clock: the old leader's very next write after a takeover is refused,
whatever its own timer says. Every catalog x blob backend, since a refused write must also leave
no blob behind.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from jobstore import InvalidArgumentError, JobDescription, JobStore, LeaseLostError
from tests.conftest import Backend

REFUSED = "now at attempt 2"


def _take_over(store: JobStore) -> int:
    return store.acquire_leader_lease(take_over=True, seconds=30).attempt


def _state(store: JobStore) -> tuple[object, ...]:
    """What a write could change, read without writing: jobs (ID, name), file IDs, the shared
    file's bytes, logs already read and whether any is unread."""
    operations, store_id = store.catalog.operations, store.store_id
    jobs = sorted((job.jobStoreID, job.jobName) for job in store.jobs())
    with store.read_shared_file_stream("shared.txt") as handle:
        shared = handle.read()
    read_logs = operations.read_logs(store_id)
    return jobs, sorted(operations.all_file_ids(store_id)), shared, read_logs, operations.has_unread_logs(store_id)


def _every_write(store: JobStore, job: JobDescription, file_id: str, tmp_path_text: str) -> list[tuple[str, object]]:
    """One call of each kind of write, as (name, thunk)."""

    def batch() -> None:
        with store.batch():
            store.create_job(JobDescription(jobName="in-batch"))
            store.update_job(job)

    def write_stream() -> None:
        with store.write_file_stream(job.jobStoreID) as (handle, _):
            handle.write(b"zombie")

    def shared() -> None:
        with store.write_shared_file_stream("shared.txt") as handle:
            handle.write(b"zombie")

    return [
        ("create_job", lambda: store.create_job(JobDescription(jobName="zombie"))),
        ("update_job", lambda: store.update_job(job)),
        ("save_jobs", lambda: store.save_jobs([job])),
        ("batch", batch),
        ("write_file", lambda: store.write_file(tmp_path_text, job.jobStoreID)),
        ("write_file_stream", write_stream),
        ("update_file", lambda: store.update_file(file_id, tmp_path_text)),
        ("delete_file", lambda: store.delete_file(file_id)),
        ("write_shared_file", shared),
        ("write_logs", lambda: store.write_logs("zombie")),
        ("read_logs", lambda: store.read_logs(lambda _: None)),  # claiming logs writes too
        ("delete_job", lambda: store.delete_job(job.jobStoreID)),
        ("destroy", store.destroy),
    ]


def test_a_takeover_refuses_the_old_leaders_next_write_at_once(backend: Backend, tmp_path: Path) -> None:
    leader = backend.new_store()
    assert leader.acquire_leader_lease(seconds=3600).attempt == 1  # its own timer says valid for an hour
    job = leader.create_job(JobDescription(jobName="job"))
    source = tmp_path / "in.txt"
    source.write_bytes(b"content")
    file_id = leader.write_file(str(source), job.jobStoreID)
    with leader.write_shared_file_stream("shared.txt") as handle:
        handle.write(b"leader")
    leader.write_logs("a log")

    rival = backend.reopen(leader)
    before = _state(rival)
    blobs_before = sorted(rival.blob_store.list_keys())
    assert _take_over(rival) == 2
    for name, write in _every_write(leader, job, file_id, str(source)):
        with pytest.raises(LeaseLostError, match=REFUSED):
            write()  # type: ignore[operator]
        assert _state(rival) == before, name
    assert sorted(rival.blob_store.list_keys()) == blobs_before  # no refused write left a blob
    assert leader.load_job(job.jobStoreID).jobName == "job"  # reading needs no lease
    rival.create_job(JobDescription(jobName="successor"))  # the new leader writes on
    rival.destroy()


def test_a_worker_of_an_old_attempt_is_refused(backend: Backend) -> None:
    leader = backend.new_store()
    attempt = leader.acquire_leader_lease(seconds=3600).attempt
    worker = backend.reopen(leader)
    worker.require_lease_attempt(attempt)
    job = worker.create_job(JobDescription(jobName="from-worker"))  # the leader's attempt: allowed
    worker.write_logs("worker log")
    leader.release_leader_lease()  # a clean exit keeps the attempt: the same workers may finish
    worker.update_job(job)

    successor = backend.reopen(leader)
    assert _take_over(successor) == 2
    with pytest.raises(LeaseLostError, match=REFUSED):
        worker.create_job(JobDescription(jobName="zombie"))
    with pytest.raises(LeaseLostError, match=REFUSED):
        worker.update_job(job)
    assert [j.jobName for j in successor.jobs()] == ["from-worker"]
    worker.require_lease_attempt(2)  # the successor's own workers carry its attempt
    worker.create_job(JobDescription(jobName="new-worker"))
    worker.require_lease_attempt(None)  # no fence: writes as before leases existed
    worker.create_job(JobDescription(jobName="unfenced"))
    for bad in (0, -1, True, "2", 1.5):
        with pytest.raises(InvalidArgumentError, match="positive integer"):
            worker.require_lease_attempt(bad)  # type: ignore[arg-type]
    worker.require_lease_attempt(2)
    successor.destroy()
    with pytest.raises(LeaseLostError, match="no longer exists"):
        worker.create_job(JobDescription(jobName="after-destroy"))


@pytest.mark.parametrize("backend", ["sqlite-local", "postgres-local", "pgbouncer-local"], indirect=True)
def test_a_takeover_waits_for_a_fenced_write_in_flight(backend: Backend) -> None:
    """The check and the write commit together: a takeover that starts while a fenced write's
    transaction is open waits for it (SQLite: the write lock; PostgreSQL: the lease row's
    FOR KEY SHARE lock against a new attempt), and the old leader's next write is refused."""
    leader = backend.new_store()
    leader.acquire_leader_lease(seconds=3600)
    job = leader.create_job(JobDescription(jobName="job"))
    rival = backend.reopen(leader)
    taken: list[int] = []
    with leader.batch():
        leader.update_job(job)  # opens the batch's transaction: the fence is checked and held
        thread = threading.Thread(target=lambda: taken.append(_take_over(rival)))
        thread.start()
        time.sleep(1.0)
        assert thread.is_alive() and not taken  # the takeover waits for the write in flight
        leader.create_job(JobDescription(jobName="in-flight"))
    thread.join(timeout=60)
    assert taken == [2]
    assert sorted(j.jobName for j in rival.jobs()) == ["in-flight", "job"]  # committed before the takeover
    with pytest.raises(LeaseLostError, match=REFUSED):
        leader.create_job(JobDescription(jobName="zombie"))
    rival.destroy()


@pytest.mark.parametrize("backend", ["postgres-local", "pgbouncer-local"], indirect=True)
def test_a_renewal_never_waits_for_a_fenced_write(backend: Backend) -> None:
    """On PostgreSQL the key-share lock of a fenced write does not block the holder's own
    heartbeat (a renewal changes no key column), so a long batch cannot cost the leader its lease."""
    leader = backend.new_store()
    lease = leader.acquire_leader_lease(seconds=3600)
    job = leader.create_job(JobDescription(jobName="job"))
    renewed = threading.Event()
    with leader.batch():
        leader.update_job(job)
        thread = threading.Thread(target=lambda: (lease.renew(), renewed.set()))
        thread.start()
        assert renewed.wait(timeout=10), "the renewal waited for the open fenced transaction"
    thread.join(timeout=10)
    leader.destroy()


@pytest.mark.parametrize("backend", ["sqlite-local", "postgres-local", "pgbouncer-local"], indirect=True)
def test_hot_fenced_writes_carry_the_check_in_their_one_statement(backend: Backend, tmp_path: Path) -> None:
    """The hot writes of a fenced handle stay one statement each (the fence is a condition of the
    statement itself, no BEGIN/COMMIT around it), and the check is in that statement: refused after
    a takeover with nothing written. On SQLite, save_jobs, update_file and delete_job are several
    statements in a transaction anyway, which checks the lease first instead."""
    from tests.statement_log import record_statements

    leader = backend.new_store()
    leader.acquire_leader_lease(seconds=3600)
    job = leader.create_job(JobDescription(jobName="job"))
    victims = [leader.create_job(JobDescription(jobName="victim")) for _ in range(2)]
    source = tmp_path / "in.txt"
    source.write_bytes(b"content")
    file_id = leader.write_file(str(source), job.jobStoreID)
    recording = record_statements(leader)
    writes = {
        "create_job": lambda: leader.create_job(JobDescription(jobName="child")),
        "update_job": lambda: leader.update_job(job),
        "save_jobs": lambda: leader.save_jobs([job, JobDescription(jobName="saved")]),
        "write_file": lambda: leader.write_file(str(source), job.jobStoreID),
        "update_file": lambda: leader.update_file(file_id, str(source)),
        "delete_job": lambda: leader.delete_job(victims.pop().jobStoreID),
        "write_logs": lambda: leader.write_logs("a log"),
    }
    on_sqlite = leader.catalog.dialect == "sqlite"
    one_statement = {"create_job", "update_job", "write_file", "write_logs"} if on_sqlite else set(writes)
    for name, write in writes.items():
        if name not in one_statement:
            write()
            continue
        recording.sent.clear()
        write()
        # update_file reads the file's row first (unfenced: a read), then its one fenced write.
        reads = 1 if name == "update_file" else 0
        check = "FROM leases" if on_sqlite else "FOR KEY SHARE"
        assert len(recording.sent) == 1 + reads and check in recording.sent[-1], (name, recording.sent)
    rival = backend.reopen(leader)
    _take_over(rival)
    for name, write in writes.items():
        with pytest.raises(LeaseLostError, match=REFUSED):
            write()
        assert sorted(j.jobName for j in rival.jobs()) == ["child", "job", "saved", "victim"], name
    rival.destroy()


def test_every_operation_named_for_fenced_statements_exists() -> None:
    """The operations PostgreSQL runs with the fence inside their statements are real operations
    (a renamed one would silently fall back to the slower fenced transaction)."""
    from jobstore.catalog.operations import PostgresOperations

    for name in PostgresOperations.FENCED_STATEMENT_OPERATIONS:
        assert callable(getattr(PostgresOperations, name, None)), name
