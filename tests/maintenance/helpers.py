"""A store with something of everything, and ways to damage it on purpose (through the real APIs)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import delete, update

from jobstore import JobDescription, JobStore
from jobstore.catalog.schema import condemned_blobs, jobs


@dataclass
class Populated:
    jobs: dict[str, JobDescription] = field(default_factory=dict)
    #: file id -> content
    files: dict[str, bytes] = field(default_factory=dict)
    #: file id -> owning job id
    owners: dict[str, str | None] = field(default_factory=dict)
    shared: dict[str, bytes] = field(default_factory=dict)
    logs: list[bytes] = field(default_factory=list)


def populate(store: JobStore, jobs_count: int = 3) -> Populated:
    """Jobs in several states, owned files (cleanup and not), an unowned file, shared files, logs."""
    result = Populated()
    states = ["completed", "failed", "pending", "running"]
    for index in range(jobs_count):
        job = store.create(JobDescription({"memory": 1000, "cores": 1, "disk": 10}, f"job{index}"))
        job.state = states[index % len(states)]
        if job.state == "failed":
            job.remainingTryCount = 0
        store.update(job)
        result.jobs[job.jobStoreID or ""] = job
        for cleanup in (True, False):
            content = f"{job.jobName}-{cleanup}".encode() * 10
            with store.write_file_stream(job.jobStoreID, cleanup=cleanup) as (handle, file_id):
                handle.write(content)
            result.files[file_id] = content
            result.owners[file_id] = job.jobStoreID
    with store.write_file_stream() as (handle, file_id):
        handle.write(b"unowned")
    result.files[file_id] = b"unowned"
    result.owners[file_id] = None
    for name in ("config.json", "environment.pickle"):
        content = f"shared {name}".encode()
        with store.write_shared_file_stream(name) as handle:
            handle.write(content)
        result.shared[name] = content
    for message in (b"first log", b"second log"):
        store.write_logs(message)
        result.logs.append(message)
    return result


def delete_job_row(store: JobStore, job_id: str) -> None:
    """Remove a job's row behind the store's back (as a crash or a hand-written DELETE would),
    leaving its files as orphans."""
    store.catalog.run_raw(
        lambda c: c.execute(delete(jobs).where(jobs.c.store_id == store.store_id, jobs.c.id == job_id)),
        describe="damage",
    )


def age_condemned(store: JobStore, seconds: float) -> None:
    """Pretend every condemned record was made ``seconds`` earlier."""
    from datetime import timedelta

    from jobstore.catalog.rows import utc_now

    store.catalog.run_raw(
        lambda c: c.execute(
            update(condemned_blobs)
            .where(condemned_blobs.c.store_id == store.store_id)
            .values(condemned_at=utc_now() - timedelta(seconds=seconds))
        ),
        describe="age condemned blobs",
    )


def replace_blob(store: JobStore, key: str, content: bytes) -> None:
    """Overwrite a blob's bytes in place (damage): delete, then write new bytes at the same key."""
    store.blob_store.delete(key)
    store.blob_store.put_bytes(key, content)
