"""Through the adapter, a Toil leader's workers carry its fencing token: ``get_env()`` hands them
``JOBSTORE_LEASE_ATTEMPT`` once ``write_leader_pid()`` took the lease, and a worker that resumes the
store with it writes only while that leader's attempt holds the store."""

from __future__ import annotations

import pytest
from toil.common import Config as ToilConfig
from toil.job import JobDescription as ToilJobDescription

from jobstore import InvalidArgumentError, LeaseLostError
from jobstore.toil.adapter import LEASE_ATTEMPT_ENV_VAR, ToilJobStore
from tests.conftest import Backend


def _job(store: ToilJobStore, name: str) -> ToilJobDescription:
    job = ToilJobDescription(requirements={"memory": 1, "cores": 1, "disk": 1, "preemptible": False}, jobName=name)
    store.assign_job_id(job)
    store.create_job(job)
    return job


def test_workers_carry_the_leaders_attempt(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    locator, settings = backend.make_locator()
    leader = ToilJobStore(locator, settings)
    config = ToilConfig()
    config.jobStore = f"jobstore:{locator}"
    leader.initialize(config)
    assert LEASE_ATTEMPT_ENV_VAR not in leader.get_env()  # no lease yet: nothing to pass on
    leader.write_leader_pid()
    token = leader.get_env()[LEASE_ATTEMPT_ENV_VAR]
    assert token == f"{config.workflowID}:1"

    monkeypatch.setenv(LEASE_ATTEMPT_ENV_VAR, token)
    worker = ToilJobStore(locator, settings)
    worker.resume()
    job = _job(worker, "from-worker")  # attempt 1 holds the store: the worker writes
    monkeypatch.delenv(LEASE_ATTEMPT_ENV_VAR)

    successor = ToilJobStore(locator, settings)
    successor.resume()
    monkeypatch.setenv("JOBSTORE_TAKE_OVER_LEASE", "1")
    successor.write_leader_pid()  # a second leader, explicitly taking the workflow over
    assert successor.get_env()[LEASE_ATTEMPT_ENV_VAR] == f"{config.workflowID}:2"
    with pytest.raises(LeaseLostError, match="now at attempt 2"):
        worker.update_job(job)
    with pytest.raises(LeaseLostError, match="now at attempt 2"):
        worker.write_logs("from a zombie worker")
    assert worker.load_job(job.jobStoreID).jobName == "from-worker"  # reading needs no lease

    monkeypatch.setenv(LEASE_ATTEMPT_ENV_VAR, f"another-workflow:{7}")
    unrelated = ToilJobStore(locator, settings)
    unrelated.resume()  # a token of another workflow is not this store's to check
    _job(unrelated, "unfenced")
    for bad in ("nonsense", f"{config.workflowID}:", f"{config.workflowID}:0", ":3"):
        monkeypatch.setenv(LEASE_ATTEMPT_ENV_VAR, bad)
        with pytest.raises(InvalidArgumentError, match="WORKFLOW_ID:ATTEMPT"):
            ToilJobStore(locator, settings).resume()
    monkeypatch.delenv(LEASE_ATTEMPT_ENV_VAR)
    leader._store.close()  # the superseded leader lets its heartbeat go
    successor.destroy()
