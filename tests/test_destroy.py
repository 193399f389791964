"""destroy() as an ordered, resumable procedure, on every backend: the store is marked first (its
lease moves to a final attempt), then its blobs go, then its rows, then the blobs once more.

An interrupted destroy is simulated by a blob store whose first sweep fails (an OSError such as a
full or failing disk would raise): everything after the mark must then hold, and a second
destroy() must finish the job.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from jobstore import (
    JobDescription,
    JobStore,
    JobStoreError,
    NoSuchJobStoreException,
    StoreBeingDestroyedError,
    create_job_store,
)
from jobstore.cli import app
from tests.conftest import Backend


def _interrupt_first_sweep(store: JobStore) -> None:
    """Make the store's first blob sweep fail the way a failing disk or network would."""
    blobs = store.blob_store
    original = blobs.destroy

    def failing(**kwargs: Any) -> None:
        blobs.destroy = original  # type: ignore[method-assign]
        raise OSError("injected: the blob store failed mid-destroy")

    blobs.destroy = failing  # type: ignore[method-assign]


def _blob_keys(store: JobStore) -> list[str]:
    return [key for key in store.blob_store.list_keys() if not key.startswith("tmp")]


def test_an_interrupted_destroy_refuses_everything_and_finishes_when_run_again(
    backend: Backend, tmp_path: Path
) -> None:
    leader = backend.new_store()
    lease = leader.acquire_leader_lease(seconds=3600)
    job = leader.create_job(JobDescription(jobName="job"))
    source = tmp_path / "in.txt"
    source.write_bytes(b"bytes")
    file_id = leader.write_file(str(source), job.jobStoreID)
    worker = backend.reopen(leader)
    worker.require_lease_attempt(lease.attempt)
    leader.release_leader_lease()  # the leader itself destroys below, as `jobstore destroy` would

    _interrupt_first_sweep(leader)
    with pytest.raises(OSError, match="injected"):
        leader.destroy()

    # Marked: no fenced write lands, no one resumes it or leads it, and reads still work.
    keys_before = sorted(_blob_keys(worker))
    with pytest.raises(StoreBeingDestroyedError, match="being destroyed"):
        worker.update_job(job)
    with pytest.raises(StoreBeingDestroyedError):
        worker.write_file(str(source), job.jobStoreID)
    assert sorted(_blob_keys(worker)) == keys_before  # the refused write's blob was removed
    with pytest.raises(NoSuchJobStoreException, match=r"destroy\(\).*again"):
        create_job_store(leader.locator).resume(backend.reopen_config(leader))
    with pytest.raises(StoreBeingDestroyedError):
        worker.acquire_leader_lease(take_over=True)
    assert worker.load_job(job.jobStoreID).jobName == "job"
    assert worker.file_exists(file_id)

    # A new handle (`jobstore destroy` run again) finishes it.
    finisher = create_job_store(leader.locator)
    finisher.destroy()
    with pytest.raises(NoSuchJobStoreException) as gone:
        create_job_store(leader.locator).resume(backend.reopen_config(leader))
    assert not isinstance(gone.value, StoreBeingDestroyedError)
    assert _blob_keys(worker) == []


def test_destroy_while_a_writer_runs_leaves_no_half_store(backend: Backend, tmp_path: Path) -> None:
    """A writer that holds no lease keeps writing job files while another handle destroys the
    store: the writer only ever sees jobstore's errors, and afterwards nothing of the store is
    left, neither rows nor blobs."""
    store = backend.new_store()
    job = store.create_job(JobDescription(jobName="busy"))
    writer = backend.reopen(store)
    inspector = backend.reopen(store)
    source = tmp_path / "in.txt"
    source.write_bytes(b"x" * 1024)
    started = threading.Event()
    stop = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            while not stop.is_set():
                writer.write_file(str(source), job.jobStoreID)
                started.set()
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            started.set()

    thread = threading.Thread(target=write)
    thread.start()
    assert started.wait(30)
    create_job_store(store.locator).destroy()
    stop.set()
    thread.join(30)
    assert all(isinstance(error, JobStoreError) for error in errors), errors
    with pytest.raises(NoSuchJobStoreException):
        create_job_store(store.locator).resume(backend.reopen_config(store))
    assert _blob_keys(inspector) == []


@pytest.mark.parametrize("backend", ["sqlite-local", "postgres-local"], indirect=True)
def test_destroy_of_a_destroyed_store_is_a_no_op(backend: Backend) -> None:
    store = backend.new_store()
    store.destroy()
    store.destroy()
    create_job_store(store.locator).destroy()


@pytest.mark.parametrize("backend", ["sqlite-local", "postgres-s3"], indirect=True)
def test_jobstore_destroy_finishes_an_interrupted_destroy(backend: Backend) -> None:
    store = backend.new_store()
    store.create_job(JobDescription(jobName="job"))
    _interrupt_first_sweep(store)
    with pytest.raises(OSError, match="injected"):
        store.destroy()
    catalog = store.config.catalog
    arguments = ["destroy", store.locator, "--yes", *(["--catalog", catalog] if catalog else [])]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    assert "finished destroying" in result.output
    with pytest.raises(NoSuchJobStoreException) as gone:
        create_job_store(store.locator).resume(backend.reopen_config(store))
    assert not isinstance(gone.value, StoreBeingDestroyedError)
