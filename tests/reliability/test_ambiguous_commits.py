"""A commit whose acknowledgement is lost: the server committed, then the connection dropped before
the reply arrived. The catalog's retry loop runs the operation again; the retry must recognise the
store's own committed change instead of reporting a conflict, and must never discard what was
committed (a file's new blob, here). On PostgreSQL, where a reply can be lost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from jobstore import Config, JobDescription, JobStore, create_job_store
from jobstore.catalog.operations import PostgresOperations


class _LosesTheReplyOnce:
    """A driver connection that runs a statement for real (in autocommit: committed when execute
    returns) and then reports the connection lost, once, for the first statement with ``prefix``."""

    def __init__(self, connection: Any, prefix: str) -> None:
        self._connection = connection
        self._prefix = prefix
        self.dropped = False

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        result = self._connection.execute(sql, *args, **kwargs)
        if not self.dropped and sql.lstrip().startswith(self._prefix):
            self.dropped = True
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


@pytest.fixture
def store(tmp_path: Path, request: pytest.FixtureRequest) -> JobStore:
    server = request.getfixturevalue("postgres_server")
    store = create_job_store(f"sql:{server.url}#ambiguous-{tmp_path.name[-20:]}")
    store.initialize(Config(blobStore=f"file://{tmp_path / 'blobs'}"))
    return store


def _lose_the_reply(store: JobStore, prefix: str) -> _LosesTheReplyOnce:
    operations = store.catalog.operations
    assert isinstance(operations, PostgresOperations)
    proxy = _LosesTheReplyOnce(operations._connection(), prefix)  # test-only access: this thread's connection
    assert operations._state.holder is not None
    operations._state.holder.connection = proxy
    return proxy


def test_an_update_of_a_file_committed_before_the_reply_was_lost_is_kept(store: JobStore, tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.write_bytes(b"first")
    file_id = store.write_file(str(source))
    source.write_bytes(b"second")
    proxy = _lose_the_reply(store, "WITH updated_file")
    store.update_file(file_id, str(source))  # no ConcurrentFileModificationException: it was ours
    assert proxy.dropped
    with store.read_file_stream(file_id) as handle:
        assert handle.read() == b"second"  # the committed blob was not discarded
    assert store.file_info(file_id).version == 2


def test_a_file_update_that_lost_to_another_writer_still_conflicts(store: JobStore, tmp_path: Path) -> None:
    """The retry's check recognises our own fresh blob only: another writer's update, even of the
    same bytes, is still a conflict (a read-modify-write must not be silently merged)."""
    from jobstore import ConcurrentFileModificationException

    source = tmp_path / "source"
    source.write_bytes(b"v1")
    file_id = store.write_file(str(source))
    source.write_bytes(b"v2")
    with pytest.raises(ConcurrentFileModificationException):
        with store.update_file_stream(file_id) as handle:
            handle.write(b"v2")
            store.update_file(file_id, str(source))  # the same bytes, written first by another update
    with store.read_file_stream(file_id) as handle:
        assert handle.read() == b"v2"
    assert len(list(store.blob_store.list_keys())) == 1  # the loser's blob was removed


def test_writes_and_deletes_whose_reply_was_lost_succeed(store: JobStore, tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.write_bytes(b"payload")
    job = store.create_job(JobDescription(jobName="j"))
    proxy = _lose_the_reply(store, "INSERT INTO files")
    file_id = store.write_file(str(source), job.jobStoreID, cleanup=True)
    assert proxy.dropped
    with store.read_file_stream(file_id) as handle:
        assert handle.read() == b"payload"
    proxy = _lose_the_reply(store, "WITH gone_job")
    store.delete_job(str(job.jobStoreID))
    assert proxy.dropped
    assert not store.job_exists(str(job.jobStoreID))
    assert not store.file_exists(file_id)


def test_a_job_update_committed_before_the_reply_was_lost_is_not_a_conflict(store: JobStore) -> None:
    """The retried compare-and-set finds the version moved on; the row's write token is this
    call's own, so the update committed: success, with the version it made (migration 0005)."""
    job = store.create_job(JobDescription(jobName="j"))
    job.remainingTryCount = 7
    proxy = _lose_the_reply(store, "UPDATE jobs")
    store.update_job(job)  # no ConcurrentFileModificationException: it was ours
    assert proxy.dropped
    assert job.version == 2
    stored = store.load_job(str(job.jobStoreID))
    assert (stored.version, stored.remainingTryCount) == (2, 7)
    job.remainingTryCount = 6
    store.update_job(job)  # the version the call reported is the stored one
    assert store.load_job(str(job.jobStoreID)).remainingTryCount == 6


def test_a_job_update_that_lost_to_another_writer_still_conflicts_after_a_retry(store: JobStore) -> None:
    """Two read-modify-writes that compute the same value: the second must conflict even when its
    statement is retried (another writer's token is not ours), or an increment would be lost."""
    from jobstore import ConcurrentFileModificationException

    created = store.create_job(JobDescription(jobName="counter"))
    first, second = store.load_job(str(created.jobStoreID)), store.load_job(str(created.jobStoreID))
    first.remainingTryCount = second.remainingTryCount = 9
    store.update_job(first)
    proxy = _lose_the_reply(store, "UPDATE jobs")
    with pytest.raises(ConcurrentFileModificationException):
        store.update_job(second)
    assert proxy.dropped
    assert store.load_job(str(created.jobStoreID)).version == 2


def test_a_job_creation_whose_reply_was_lost_succeeds(store: JobStore) -> None:
    proxy = _lose_the_reply(store, "INSERT INTO jobs")
    job = store.create_job(JobDescription(jobName="new"))
    assert proxy.dropped
    assert store.load_job(str(job.jobStoreID)).version == 1


def test_creating_a_job_under_an_id_another_call_created_is_refused_even_with_equal_content(store: JobStore) -> None:
    """Before migration 0005 a retried create_job recognised "its" row by equal content, so a
    second create of the same ID and description passed for the first; the token tells them apart."""
    from jobstore import JobStoreError

    store.create_job(JobDescription(jobName="same", jobStoreID="chosen-id"))
    proxy = _lose_the_reply(store, "INSERT INTO jobs")
    with pytest.raises(JobStoreError, match="already exists"):
        store.create_job(JobDescription(jobName="same", jobStoreID="chosen-id"))
    assert proxy.dropped


def test_a_batch_of_creations_whose_commit_reply_was_lost_succeeds(store: JobStore) -> None:
    """A batch that only creates jobs is one fast-path statement at its end (on PostgreSQL an
    insert from column arrays), which the retry loop may run again: the retry's duplicate IDs are
    its own first commit (the write tokens say so), not a conflict."""
    proxy = _lose_the_reply(store, "INSERT INTO jobs")
    with store.batch():
        created = [store.create_job(JobDescription(jobName=f"child-{i}")) for i in range(3)]
    assert proxy.dropped
    assert sorted(j.jobName for j in store.jobs()) == ["child-0", "child-1", "child-2"]
    assert all(store.load_job(str(job.jobStoreID)).version == 1 for job in created)


def test_creating_a_store_whose_reply_was_lost_succeeds(
    tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store's row committed but the reply was lost: the retry finds the name taken by a row
    with this call's own (fresh) workflow ID, which is success, not JobStoreExistsException."""
    server = request.getfixturevalue("postgres_server")
    proxies: list[_LosesTheReplyOnce] = []
    connect = PostgresOperations._connect

    def connect_losing_the_store_reply(self: PostgresOperations) -> Any:
        proxies.append(_LosesTheReplyOnce(connect(self), "INSERT INTO stores"))
        return proxies[-1]

    monkeypatch.setattr(PostgresOperations, "_connect", connect_losing_the_store_reply)
    locator = f"sql:{server.url}#lost-store-reply-{tmp_path.name[-16:]}"
    store = create_job_store(locator)
    store.initialize(Config(blobStore=f"file://{tmp_path / 'blobs'}"))
    assert any(proxy.dropped for proxy in proxies)
    store.create_job(JobDescription(jobName="works"))
    monkeypatch.undo()
    from jobstore import JobStoreExistsException

    with pytest.raises(JobStoreExistsException):  # another initialize of the name is still refused
        create_job_store(locator).initialize(Config(blobStore=f"file://{tmp_path / 'other'}"))
    reopened = create_job_store(locator)
    reopened.resume()
    assert [job.jobName for job in reopened.jobs()] == ["works"]
    reopened.destroy()


def test_shared_file_writes_whose_reply_was_lost_succeed(store: JobStore) -> None:
    """Creating and then replacing a shared file on the fast path (a row insert, then a
    compare-and-set): a lost reply after either commit is recognised by the blob it installed."""
    proxy = _lose_the_reply(store, "INSERT INTO files")
    with store.write_shared_file_stream("status") as stream:
        stream.write(b"first")
    assert proxy.dropped
    proxy = _lose_the_reply(store, "WITH updated_file")
    with store.write_shared_file_stream("status") as stream:
        stream.write(b"second")
    assert proxy.dropped
    with store.read_shared_file_stream("status") as stream:
        assert stream.read() == b"second"
    assert len(store.get_all_file_ids()) == 1
