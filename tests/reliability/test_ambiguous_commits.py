"""A commit whose acknowledgement is lost: the server committed, then the connection dropped before
the reply arrived. The catalog's retry loop runs the operation again; the retry must recognise the
store's own committed change instead of reporting a conflict, and must never discard what was
committed (a file's new blob, here). PostgreSQL fast path, where a worker's operations run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from jobstore import Config, JobDescription, JobStore, create_job_store
from jobstore.catalog import direct


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
    route = store._direct()  # test-only access: the fast path's per-thread connection
    assert route is not None and isinstance(route[0], direct.DirectPostgres)
    proxy = _LosesTheReplyOnce(route[0]._connection(), prefix)
    route[0]._local.holder.connection = proxy
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
