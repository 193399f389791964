"""ToilJobStore.batch(): the job creations inside commit together through JobStore.save_jobs."""

from __future__ import annotations

from pathlib import Path

import pytest
from toil.common import Config as ToilConfig
from toil.job import JobDescription as ToilJobDescription

from jobstore.toil.adapter import ToilJobStore

REQUIREMENTS = {"memory": 1, "cores": 1, "disk": 1, "preemptible": False}


@pytest.fixture
def adapter(tmp_path: Path) -> ToilJobStore:
    store = ToilJobStore(f"file:{tmp_path / 'store'}")
    config = ToilConfig()
    config.jobStore = f"jobstore:file:{tmp_path / 'store'}"
    store.initialize(config)
    return store


def _new_job(store: ToilJobStore, name: str) -> ToilJobDescription:
    job = ToilJobDescription(requirements=REQUIREMENTS, jobName=name)
    store.assign_job_id(job)
    return job


def test_creations_in_a_batch_appear_together_at_its_end(adapter: ToilJobStore) -> None:
    first, second = _new_job(adapter, "first"), _new_job(adapter, "second")
    with adapter.batch():
        adapter.create_job(first)
        adapter.create_job(second)
        assert adapter._batched.jobs and len(adapter._batched.jobs) == 2  # collected, not yet saved
    assert {job.jobName for job in adapter.jobs()} == {"first", "second"}


def test_a_batch_that_raises_saves_none_of_its_creations(adapter: ToilJobStore) -> None:
    job = _new_job(adapter, "doomed")
    with pytest.raises(RuntimeError), adapter.batch():
        adapter.create_job(job)
        raise RuntimeError("the job failed while saving its successors")
    assert not adapter.job_exists(job.jobStoreID)
    assert list(adapter.jobs()) == []


def test_operations_inside_a_batch_see_the_jobs_created_before_them(adapter: ToilJobStore, tmp_path: Path) -> None:
    job = _new_job(adapter, "parent")
    source = tmp_path / "input"
    source.write_bytes(b"data")
    with adapter.batch():
        adapter.create_job(job)
        assert adapter.load_job(job.jobStoreID).jobName == "parent"  # saved before the read
        file_id = adapter.write_file(str(source), job.jobStoreID, cleanup=True)
        child = _new_job(adapter, "child")
        adapter.create_job(child)
    assert adapter.file_exists(file_id)
    assert {j.jobName for j in adapter.jobs()} == {"parent", "child"}
    adapter.delete_job(job.jobStoreID)
    assert not adapter.file_exists(file_id)  # cleanup=True followed its job


def test_nested_batches_save_once_at_the_outer_end(adapter: ToilJobStore) -> None:
    job = _new_job(adapter, "nested")
    with adapter.batch():
        with adapter.batch():
            adapter.create_job(job)
        assert adapter._batched.jobs  # still collected after the inner block
    assert adapter.load_job(job.jobStoreID).jobName == "nested"
