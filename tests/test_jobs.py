"""Jobs: create, load, update (compare-and-set), delete, iterate, batch; both API spellings."""

from __future__ import annotations

import threading

import pytest

from jobstore import (
    AbstractJobStore,
    ConcurrentFileModificationException,
    FileJobStore,
    InvalidJobDescriptionError,
    InvalidNameError,
    JobDescription,
    JobStoreError,
    NoSuchJobException,
)
from tests.conftest import Backend
from tests.fresh_process import heavy_modules_imported_by


def make_job(name: str = "job", **extra: object) -> JobDescription:
    return JobDescription(
        requirements={"memory": 2**30, "cores": 1, "disk": 2**31}, jobName=name, unitName="unit", **extra
    )


def test_create_assigns_id_and_version(store: FileJobStore) -> None:
    job = store.create(make_job())
    assert job.jobStoreID is not None
    assert job.version == 1
    assert store.job_exists(job.jobStoreID)
    assert store.exists(job.jobStoreID)


def test_assign_id_then_create_keeps_it(store: FileJobStore) -> None:
    job = make_job()
    job_id = store.assignID(job)
    assert job.jobStoreID == job_id
    assert not store.job_exists(job_id)
    store.create_job(job)
    assert store.load_job(job_id).jobStoreID == job_id


def test_load_round_trips_every_field(store: FileJobStore) -> None:
    job = make_job(checkpoint=True, inputs={"a": [1, 2.5, None, "x"]}, predecessors=["p1", "p2"])
    job.remainingTryCount = 3
    job.state = "running"
    store.create(job)
    loaded = store.load(job.jobStoreID)
    assert loaded == job
    assert loaded.inputs == {"a": [1, 2.5, None, "x"]}
    assert loaded.checkpoint is True
    assert (loaded.memory, loaded.cores, loaded.disk) == (2**30, 1.0, 2**31)
    assert loaded.remainingTryCount == 3 and loaded.state == "running"


def test_unserialisable_attribute_is_rejected_and_nothing_stored(store: FileJobStore) -> None:
    job = make_job(callback=object())
    with pytest.raises(TypeError, match="callback"):
        store.create(job)
    assert list(store.jobs()) == []


@pytest.mark.parametrize(
    "requirements",
    [{"memory": "lots"}, {"cores": float("nan")}, {"disk": -1}, {"memory": True}, {"cores": [1]}],
)
def test_wrong_requirement_types_are_rejected(store: FileJobStore, requirements: dict[str, object]) -> None:
    with pytest.raises(TypeError):
        store.create(JobDescription(requirements=requirements, jobName="bad"))


def test_non_string_dict_keys_are_rejected(store: FileJobStore) -> None:
    with pytest.raises(TypeError, match="key"):
        store.create(make_job(table={1: "one"}))


def test_huge_description_is_rejected(store: FileJobStore) -> None:
    with pytest.raises(InvalidJobDescriptionError, match="write_file"):
        store.create(make_job(blob="x" * (17 * 1024 * 1024)))


def test_duplicate_create_is_an_error_and_keeps_the_original(store: FileJobStore) -> None:
    job = store.create(make_job("first"))
    clone = make_job("second")
    clone.jobStoreID = job.jobStoreID
    with pytest.raises(JobStoreError, match="already exists"):
        store.create(clone)
    assert store.load(job.jobStoreID).jobName == "first"


def test_duplicate_create_with_identical_content_is_an_error_too(store: FileJobStore) -> None:
    """Each create is its own write (its own token, migration 0005): an equal description under a
    taken ID is not mistaken for a retry of the first create (it was before 0005)."""
    first = make_job("same")
    first.jobStoreID = "chosen-id"
    store.create(first)
    again = make_job("same")
    again.jobStoreID = "chosen-id"
    with pytest.raises(JobStoreError, match="already exists"):
        store.create(again)
    assert store.load("chosen-id").version == 1


@pytest.mark.parametrize("bad_id", ["../../etc/passwd", "/abs", "", "a/b", "x" * 300, "..", "a b", "é"])
def test_bad_job_ids(store: FileJobStore, bad_id: str) -> None:
    with pytest.raises(NoSuchJobException):
        store.load(bad_id)
    assert not store.job_exists(bad_id)
    store.delete_job(bad_id)  # idempotent, no error
    with pytest.raises(NoSuchJobException):
        store.delete(bad_id)
    job = make_job()
    job.jobStoreID = bad_id or None
    if bad_id:
        with pytest.raises(InvalidNameError):
            store.create(job)


def test_update_sets_new_version(store: FileJobStore) -> None:
    job = store.create(make_job())
    job.remainingTryCount = 0
    store.update(job)
    assert job.version == 2
    assert store.load(job.jobStoreID).remainingTryCount == 0


def test_concurrent_update_second_writer_loses(backend: Backend) -> None:
    leader = backend.new_store()
    worker = backend.reopen(leader)
    job_id = leader.create(make_job()).jobStoreID
    mine, theirs = leader.load_job(job_id), worker.load_job(job_id)
    mine.unitName = "leader"
    leader.update_job(mine)
    theirs.unitName = "worker"
    with pytest.raises(ConcurrentFileModificationException):
        worker.update_job(theirs)
    assert worker.load_job(job_id).unitName == "leader"
    fresh = worker.load_job(job_id)
    fresh.unitName = "worker"
    worker.update_job(fresh)
    assert leader.load_job(job_id).unitName == "worker"


def test_update_of_deleted_job(store: FileJobStore) -> None:
    job = store.create(make_job())
    store.delete(job.jobStoreID)
    with pytest.raises(NoSuchJobException):
        store.update(job)


def test_modify_job_retries_through_conflicts(backend: Backend) -> None:
    store = backend.new_store()
    other = backend.reopen(store)
    job_id = store.create(make_job(counter=0)).jobStoreID
    interfered = []

    def increment(job: JobDescription) -> None:
        if not interfered:
            interfered.append(True)
            other.modify_job(job_id, lambda j: setattr(j, "counter", j.counter + 100))
        job.counter += 1

    result = store.modify_job(job_id, increment)
    assert result.counter == 101
    assert store.load(job_id).counter == 101


def test_threads_modify_without_lost_updates(store: FileJobStore) -> None:
    job_id = store.create(make_job(counter=0)).jobStoreID

    def work() -> None:
        for _ in range(25):
            store.modify_job(job_id, lambda j: setattr(j, "counter", j.counter + 1), max_attempts=200)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.load(job_id).counter == 100


def test_delete_job_is_idempotent_and_seed_delete_is_strict(store: FileJobStore) -> None:
    job = store.create(make_job())
    store.delete_job(job.jobStoreID)
    store.delete_job(job.jobStoreID)
    assert not store.job_exists(job.jobStoreID)
    with pytest.raises(NoSuchJobException):
        store.delete(job.jobStoreID)
    with pytest.raises(NoSuchJobException):
        store.load(job.jobStoreID)


def test_delete_job_removes_cleanup_files_only(store: FileJobStore, tmp_path) -> None:  # type: ignore[no-untyped-def]
    job = store.create(make_job())
    source = tmp_path / "f"
    source.write_bytes(b"data")
    doomed = [store.write_file(str(source), job.jobStoreID, cleanup=True) for _ in range(3)]
    kept = store.write_file(str(source), job.jobStoreID, cleanup=False)
    bystander = store.create(make_job())
    other = store.write_file(str(source), bystander.jobStoreID, cleanup=True)
    store.delete_job(job.jobStoreID)
    assert not any(store.file_exists(file_id) for file_id in doomed)
    assert store.file_exists(kept)
    assert store.orphaned_file_ids() == [kept]
    # Every cleanup file's blob went with its row (several keys come back from the catalog).
    assert len(list(store.blob_store.list_keys())) == 2
    store.delete_job(bystander.jobStoreID)  # a job whose only file is a cleanup file
    assert not store.file_exists(other)
    childless = store.create(make_job())
    store.delete_job(childless.jobStoreID)  # a job without files
    assert not store.job_exists(childless.jobStoreID)
    assert [store.file_exists(kept), len(list(store.blob_store.list_keys()))] == [True, 1]


def test_jobs_iterates_all_and_tolerates_deletes(store: FileJobStore) -> None:
    created = {store.create(make_job(f"j{i}")).jobStoreID for i in range(2500)}
    seen = set()
    for job in store.jobs():
        seen.add(job.jobStoreID)
        store.delete_job(job.jobStoreID)
    assert seen == created
    assert list(store.jobs()) == []


def test_batch_commits_together(store: FileJobStore) -> None:
    with store.batch():
        jobs = [store.create(make_job(f"b{i}")) for i in range(50)]
        assert store.job_exists(jobs[0].jobStoreID)  # visible inside the batch
    assert {j.jobStoreID for j in store.jobs()} == {j.jobStoreID for j in jobs}


def test_batch_rolls_back_on_error(store: FileJobStore, tmp_path) -> None:  # type: ignore[no-untyped-def]
    before = store.create(make_job("outside"))
    source = tmp_path / "f"
    source.write_bytes(b"x" * 100)
    with pytest.raises(RuntimeError):
        with store.batch():
            store.create(make_job("inside"))
            store.write_file(str(source))
            store.delete_job(before.jobStoreID)
            raise RuntimeError("boom")
    assert [j.jobName for j in store.jobs()] == ["outside"]
    assert store.get_all_file_ids() == []
    assert list(store.blob_store.list_keys()) == []  # the blob written inside was removed


def test_a_batch_of_creations_reusing_a_taken_id_commits_none_of_them(store: FileJobStore) -> None:
    """A block that only creates jobs is inserted at its end in one transaction (the fast path):
    an ID that exists already, or twice in the block, fails the whole batch there."""
    store.create_job(JobDescription({}, "first", jobStoreID="taken-id"))
    with pytest.raises(JobStoreError, match="already exists"):
        with store.batch():
            store.create_job(JobDescription({}, "fresh"))
            store.create_job(JobDescription({}, "second", jobStoreID="taken-id"))
    with pytest.raises(JobStoreError, match="twice in the batch"):
        with store.batch():
            store.create_job(JobDescription({}, "again", jobStoreID="repeated-id"))
            store.create_job(JobDescription({}, "again", jobStoreID="repeated-id"))
    assert [job.jobName for job in store.jobs()] == ["first"]
    with store.batch():  # the store is usable afterwards, in and out of batches
        store.create_job(JobDescription({}, "later"))
    assert sorted(job.jobName for job in store.jobs()) == ["first", "later"]


def test_a_batch_sees_its_creations_in_the_operations_after_them(store: FileJobStore, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The batch's transaction opens at its first operation other than a creation, and the
    creations collected so far go into it first, so that operation sees them."""
    source = tmp_path / "f"
    source.write_bytes(b"payload")
    with store.batch():
        parent = store.create_job(make_job("parent"))
        file_id = store.write_file(str(source), job_id=parent.jobStoreID, cleanup=True)
        assert store.load_job(str(parent.jobStoreID)).jobName == "parent"
        child = store.create_job(make_job("child"))  # after the transaction opened: inserted at the end
    assert sorted(job.jobName for job in store.jobs()) == ["child", "parent"]
    assert store.load_job(str(child.jobStoreID)).version == 1
    store.delete_job(str(parent.jobStoreID))
    assert not store.file_exists(file_id)


def test_a_worker_process_stays_on_the_fast_path(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A new process (a workflow's worker) that resumes a SQLite store, saves new jobs in a batch,
    lists the jobs and writes a shared file never imports SQLAlchemy (~150 ms in a new process)."""
    from jobstore import Config

    store = FileJobStore(str(tmp_path / "store"))
    store.initialize(Config())
    store.close()
    script = (
        "from jobstore import FileJobStore, JobDescription\n"
        f"store = FileJobStore({str(tmp_path / 'store')!r})\n"
        "store.resume()\n"
        "with store.batch():\n"
        "    for name in ('a', 'b', 'c'):\n"
        "        store.create_job(JobDescription({}, name))\n"
        "assert sorted(job.jobName for job in store.jobs()) == ['a', 'b', 'c']\n"
        "for text in ('first', 'second'):  # a shared file created, then replaced\n"
        "    with store.write_shared_file_stream('status') as stream:\n"
        "        stream.write(text.encode())\n"
        "with store.read_shared_file_stream('status') as stream:\n"
        "    assert stream.read() == b'second'\n"
    )
    assert heavy_modules_imported_by(script) == []
    reopened = FileJobStore(str(tmp_path / "store"))
    reopened.resume()
    assert sorted(job.jobName for job in reopened.jobs()) == ["a", "b", "c"]
    reopened.close()


def test_a_leader_process_stays_on_the_fast_path(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A workflow leader's life on a SQLite store, in a new process: create the store, write shared
    files, create, load and update jobs, collect the workers' log messages (one of them returned
    unread when the callback fails), list the jobs, destroy the store; SQLAlchemy is never imported."""
    script = (
        "from jobstore import Config, FileJobStore, JobDescription\n"
        f"store = FileJobStore({str(tmp_path / 'store')!r})\n"
        "store.initialize(Config())\n"
        "with store.write_shared_file_stream('config') as stream:\n"
        "    stream.write(b'settings')\n"
        "root = store.create_job(JobDescription({}, 'root'))\n"
        "loaded = store.load_job(root.jobStoreID)\n"
        "loaded.remainingTryCount = 3\n"
        "store.update_job(loaded)\n"
        "store.write_logs('first')\n"
        "store.write_logs('second')\n"
        "def refuse(stream):\n"
        "    raise RuntimeError('not now')\n"
        "try:\n"
        "    store.read_logs(refuse)\n"
        "except RuntimeError:\n"
        "    pass\n"
        "received = []\n"
        "assert store.read_logs(lambda stream: received.append(stream.read())) == 2\n"
        "assert received == [b'first', b'second'], received\n"
        "assert store.read_logs(received.append, read_all=True) == 2\n"
        "assert [job.remainingTryCount for job in store.jobs()] == [3]\n"
        "store.destroy()\n"
    )
    assert heavy_modules_imported_by(script) == []
    assert not (tmp_path / "store").exists()


def test_batch_invisible_to_others_until_commit(backend: Backend) -> None:
    store = backend.new_store()
    other = backend.reopen(store)
    with store.batch():
        job = store.create(make_job())
        assert not other.job_exists(job.jobStoreID)
    assert other.job_exists(job.jobStoreID)


def test_create_job_store_factory_and_class_method(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from jobstore import Config, create_job_store

    store = AbstractJobStore.createJobStore(f"file:{tmp_path}/a")
    assert isinstance(store, FileJobStore)
    store.initialize(Config())
    assert isinstance(create_job_store(str(tmp_path / "a")), FileJobStore)
    store.close()


def test_two_instances_see_each_others_work(backend: Backend) -> None:
    leader = backend.new_store()
    worker = backend.reopen(leader)
    job = worker.create(make_job("from-worker"))
    assert leader.load(job.jobStoreID).jobName == "from-worker"
    assert worker.config.workflowID == leader.config.workflowID


def test_save_jobs_creates_and_overwrites_together(store: FileJobStore) -> None:
    existing = store.create_job(JobDescription(command="old"))
    store.update_job(existing)  # version 2
    overwrite = JobDescription(command="new", jobStoreID=existing.jobStoreID)  # never loaded: no version
    fresh = JobDescription(command="fresh")
    store.save_jobs([overwrite, fresh])
    assert fresh.jobStoreID is not None and fresh.version == 1
    assert overwrite.version == 3
    assert store.load_job(str(existing.jobStoreID)).command == "new"
    assert store.load_job(fresh.jobStoreID).command == "fresh"
    store.save_jobs([])  # nothing to do


def test_save_jobs_fills_the_reporting_columns_and_takes_repeats(store: FileJobStore) -> None:
    """The columns SQL reports read (name, state, tries, requirements) come out of save_jobs as out
    of create/update, whatever mix of new and existing jobs and of int and float cores; a list that
    names a job twice overwrites it twice, in order."""
    from sqlalchemy import text

    existing = store.create_job(JobDescription({"memory": 1, "cores": 1, "disk": 1}, "old"))
    existing.jobName, existing.state, existing.remainingTryCount = "renamed", "running", 2
    existing.requirements = {"memory": 10, "cores": 2, "disk": 30}
    fresh = JobDescription({"memory": 5, "cores": 0.5, "disk": 7}, "fresh")
    bare = JobDescription({}, "bare")
    store.save_jobs([existing, fresh, bare])
    with store.catalog.engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT name, state, remaining_tries, memory, cores, disk, version FROM jobs "
                "WHERE store_id = :sid ORDER BY name"
            ),
            {"sid": store._store_id},  # test-only access: a PostgreSQL catalog holds other tests' stores
        ).all()
    assert [tuple(row) for row in rows] == [
        ("bare", "pending", 1, None, None, None, 1),
        ("fresh", "pending", 1, 5, 0.5, 7, 1),
        ("renamed", "running", 2, 10, 2.0, 30, 2),
    ]
    assert [existing.version, fresh.version, bare.version] == [2, 1, 1]
    again = store.load_job(str(fresh.jobStoreID))
    again.jobName = "first"
    twice = store.load_job(str(fresh.jobStoreID))
    twice.jobName = "second"
    store.save_jobs([again, twice])
    assert [again.version, twice.version] == [2, 3]
    assert store.load_job(str(fresh.jobStoreID)).jobName == "second"


def test_jobs_created_in_a_batch_have_every_column_as_single_creates_do(store: FileJobStore) -> None:
    """batch() inserts its creations with one executemany on the driver (not SQLAlchemy's): every
    column, timestamps and write tokens included, must read back as a single create_job writes it."""
    import datetime as dt

    from sqlalchemy import select, text

    from jobstore.catalog.schema import jobs as jobs_table

    single = store.create_job(JobDescription({"memory": 3, "cores": 1.5, "disk": 4}, "single"))
    with store.batch():
        batched = [
            store.create_job(JobDescription({"memory": 5, "cores": 2, "disk": 7}, "batched-a")),
            store.create_job(JobDescription({}, "batched-b", remainingTryCount=3)),
        ]
    columns = [c for c in jobs_table.c if c.key not in ("store_id", "id")]
    with store.catalog.engine.connect() as connection:
        rows = {
            row.name: row
            for row in connection.execute(
                select(*columns).where(jobs_table.c.store_id == store._store_id)  # test-only access
            )
        }
    assert set(rows) == {"single", "batched-a", "batched-b"}
    assert (rows["batched-a"].memory, rows["batched-a"].cores, rows["batched-a"].disk) == (5, 2.0, 7)
    assert (rows["batched-b"].memory, rows["batched-b"].remaining_tries, rows["batched-b"].state) == (
        None,
        3,
        "pending",
    )
    for name in ("single", "batched-a", "batched-b"):
        row = rows[name]
        assert row.version == 1
        assert isinstance(row.created_at, dt.datetime) and row.created_at == row.updated_at
        assert abs(
            row.created_at.replace(tzinfo=dt.UTC) - rows["single"].created_at.replace(tzinfo=dt.UTC)
        ) < dt.timedelta(minutes=5)
        assert row.write_token is not None and row.write_token > 0
    assert len({row.write_token for row in rows.values()}) == 3
    with store.catalog.engine.connect() as connection:  # as stored: SQL reports compare these
        raw = connection.execute(
            text("SELECT name, created_at, updated_at FROM jobs WHERE store_id = :sid"), {"sid": store._store_id}
        ).all()
    shapes = {(type(created), len(str(created)), str(created)[10:11]) for _, created, _ in raw}
    assert len(shapes) == 1, raw  # batched timestamps are stored exactly like a single create's
    for job in [single, *batched]:
        assert store.load_job(str(job.jobStoreID)) == job


def test_save_jobs_with_a_bad_description_saves_none(store: FileJobStore) -> None:
    good = JobDescription(command="good")
    with pytest.raises(InvalidNameError):
        store.save_jobs([good, JobDescription(command="bad", jobStoreID="../escape")])
    with pytest.raises(TypeError):
        store.save_jobs([JobDescription(command="good"), "not a description"])  # type: ignore[list-item]
    assert list(store.jobs()) == []


def test_save_jobs_inside_a_batch_joins_its_transaction(store: FileJobStore) -> None:
    with pytest.raises(RuntimeError), store.batch():
        store.save_jobs([JobDescription(command="rolled back")])
        raise RuntimeError("abort the batch")
    assert list(store.jobs()) == []
