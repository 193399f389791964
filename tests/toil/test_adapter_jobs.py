"""How the adapter writes Toil's jobs: an assigned ID's placeholder costs nothing until needed,
a creation that follows its assignment is one write, and ``batch()`` stays one transaction."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from toil.common import Config as ToilConfig
from toil.job import JobDescription as ToilJobDescription
from toil.jobStores.abstractJobStore import NoSuchJobException as ToilNoSuchJob

from jobstore.toil.adapter import ToilJobStore
from tests.conftest import Backend
from tests.statement_log import record_statements, writes

REQUIREMENTS = {"memory": 1, "cores": 1, "disk": 1, "preemptible": False}


@pytest.fixture
def adapter(backend: Backend) -> Iterator[ToilJobStore]:
    locator, settings = backend.make_locator()
    store = ToilJobStore(locator, settings)
    config = ToilConfig()
    config.jobStore = f"jobstore:{locator}"
    store.initialize(config)
    yield store
    store.destroy()


def _job(name: str = "job") -> ToilJobDescription:
    return ToilJobDescription(requirements=dict(REQUIREMENTS), jobName=name)


def test_assign_then_create_writes_once_like_a_native_create(adapter: ToilJobStore) -> None:
    native = adapter.store
    from jobstore import JobDescription

    recording = record_statements(native)
    native.create_job(JobDescription(jobName="native"))
    native_writes = writes(recording.sent)
    recording.sent.clear()
    job = _job()
    adapter.assign_job_id(job)
    assert recording.sent == []  # an ID costs no round trip
    adapter.create_job(job)
    assert writes(recording.sent) == native_writes
    assert adapter.load_job(job.jobStoreID).jobName == "job"


def test_a_batch_of_assigned_jobs_writes_like_a_native_batch(adapter: ToilJobStore) -> None:
    native = adapter.store
    from jobstore import JobDescription

    recording = record_statements(native)
    with native.batch():
        for i in range(20):
            native.create_job(JobDescription(jobName=f"native{i}"))
    native_writes = writes(recording.sent)
    recording.sent.clear()
    jobs = [_job(f"child{i}") for i in range(20)]
    with adapter.batch():
        for job in jobs:
            adapter.assign_job_id(job)
            adapter.create_job(job)
    assert writes(recording.sent) == native_writes
    assert sorted(j.jobName for j in adapter.jobs()) == sorted(j.jobName for j in jobs)


def test_files_written_for_an_assigned_job_find_its_row(adapter: ToilJobStore, tmp_path: Path) -> None:
    """Toil writes a job's pickled body (cleanup=True) before it creates the job."""
    job = _job()
    adapter.assign_job_id(job)
    assert not adapter.job_exists(job.jobStoreID)  # the placeholder, now written, is not a job
    body = tmp_path / "body"
    body.write_bytes(b"pickled body")
    file_id = adapter.write_file(str(body), job.jobStoreID, cleanup=True)
    adapter.create_job(job)
    assert adapter.load_job(job.jobStoreID).jobName == "job"
    adapter.delete_job(job.jobStoreID)
    assert not adapter.file_exists(file_id)  # deleted with its job


def test_an_id_assigned_on_one_thread_takes_files_on_another(adapter: ToilJobStore) -> None:
    job = _job()
    adapter.assign_job_id(job)
    written: list[str] = []

    def write() -> None:
        with adapter.write_file_stream(job.jobStoreID, cleanup=True) as (handle, file_id):
            handle.write(b"from another thread")
        written.append(file_id)

    thread = threading.Thread(target=write)
    thread.start()
    thread.join()
    assert written, "the other thread's write failed"
    adapter.create_job(job)
    with adapter.read_file_stream(written[0]) as handle:
        assert handle.read() == b"from another thread"


def test_a_failed_batch_saves_neither_jobs_nor_placeholders(adapter: ToilJobStore) -> None:
    job = _job()
    with pytest.raises(RuntimeError, match="stop"):
        with adapter.batch():
            adapter.assign_job_id(job)
            adapter.create_job(job)
            raise RuntimeError("stop")
    with pytest.raises(ToilNoSuchJob):
        adapter.load_job(job.jobStoreID)
    assert list(adapter.store.jobs()) == []


def test_a_created_job_is_never_overwritten_by_its_placeholder(adapter: ToilJobStore) -> None:
    """Placeholders of other IDs are written on the next operation: never over a created job."""
    first, second = _job("first"), _job("second")
    adapter.assign_job_id(first)
    adapter.assign_job_id(second)
    adapter.create_job(first)
    adapter.create_job(second)
    adapter.update_job(first)
    assert {j.jobName for j in adapter.jobs()} == {"first", "second"}
    assert [j.state for j in adapter.store.jobs() if j.jobName == "first"] != ["assigned"]


def test_a_batch_mixes_new_jobs_with_rewrites_of_stored_ones(adapter: ToilJobStore) -> None:
    parent, early, child = _job("parent"), _job("early"), _job("child")
    adapter.assign_job_id(parent)
    adapter.create_job(parent)
    adapter.assign_job_id(early)  # assigned before the batch, created inside it
    parent.jobName = "parent-rewritten"
    with adapter.batch():
        adapter.create_job(parent)  # a row that exists: overwritten
        adapter.create_job(early)
        adapter.assign_job_id(child)
        adapter.create_job(child)
    assert {j.jobName for j in adapter.jobs()} == {"parent-rewritten", "early", "child"}
    assert len(list(adapter.store.jobs())) == 3  # no placeholder left beside its job
