"""stats, orphans, gc, fsck, copy and prune on every backend, including stores damaged on purpose."""

from __future__ import annotations

import pytest

from jobstore import JobStore, NoSuchFileException
from jobstore.blobs.checksum import checksum_of_bytes
from jobstore.catalog import NewFile
from jobstore.maintenance import (
    collect_garbage,
    compare_blobs,
    copy_store,
    fsck,
    orphaned_files,
    parse_duration,
    prune,
    unreferenced_blobs,
)
from jobstore.maintenance import copy as copy_module
from tests.conftest import Backend
from tests.maintenance.helpers import age_condemned, delete_job_row, populate, replace_blob


def _content(store: JobStore, file_id: str) -> bytes:
    with store.read_file_stream(file_id) as stream:
        data: bytes = stream.read()
        return data


def test_stats_report_everything(store: JobStore) -> None:
    data = populate(store, jobs_count=4)
    stats = store.stats()
    assert stats["jobs"] == 4
    assert stats["jobs_by_state"] == {"completed": 1, "failed": 1, "pending": 1, "running": 1}
    assert stats["failed_jobs"] == 1
    assert stats["files"] == len(data.files) + len(data.shared)
    assert stats["bytes"] == sum(map(len, data.files.values())) + sum(map(len, data.shared.values()))
    assert stats["shared_files"] == 2
    assert (stats["logs"], stats["unread_logs"]) == (2, 2)
    assert (stats["orphaned_files"], stats["condemned_blobs"]) == (0, 0)
    assert stats["schema_revision"] and stats["catalog"] in ("sqlite", "postgresql")
    doomed = next(iter(data.jobs))
    delete_job_row(store, doomed)
    stats = store.stats()
    owned = [f for f, owner in data.owners.items() if owner == doomed]
    assert stats["orphaned_files"] == len(owned) == 2
    assert stats["orphaned_bytes"] == sum(len(data.files[f]) for f in owned)
    assert sorted(store.orphaned_file_ids()) == sorted(owned)


def test_damaged_store_fsck_repair_and_gc(store: JobStore) -> None:
    data = populate(store, jobs_count=3)
    rows = {file_id: store.file_info(file_id) for file_id in store.get_all_file_ids()}
    owned = [f for f, owner in data.owners.items() if owner is not None]
    lost, corrupted, truncated = owned[0], owned[1], owned[2]
    store.blob_store.delete(rows[lost].blob_key)  # a row whose blob is missing
    replace_blob(store, rows[corrupted].blob_key, b"X" * rows[corrupted].size)  # same size, other bytes
    replace_blob(store, rows[truncated].blob_key, b"short")  # wrong size
    shared_row = next(row for row in rows.values() if row.shared_name == "config.json")
    store.blob_store.delete(shared_row.blob_key)  # a shared file that points nowhere
    store.blob_store.put_bytes("f/zz/extra.0001", b"not referenced by any row")  # an extra blob
    doomed = data.owners[owned[4]]
    assert doomed is not None
    delete_job_row(store, doomed)  # its cleanup file must go, its other file stays

    quick = fsck(store)
    assert quick.counts() == {
        "missing_blob": 1,
        "shared_file_missing_blob": 1,
        "size_mismatch": 1,
        "orphaned_cleanup_file": 1,
        "unreferenced_blob": 1,
    }
    assert not quick.ok and quick.notes["orphaned_files_kept"] == 1
    full = fsck(store, verify_checksums=True)
    assert full.counts()["checksum_mismatch"] == 1
    assert {p.subject for p in full.problems if p.kind == "checksum_mismatch"} == {corrupted}

    repaired = fsck(store, repair=True)
    assert not repaired.ok  # lost and damaged bytes cannot be repaired...
    assert {p.kind for p in repaired.problems if p.repaired} == {"orphaned_cleanup_file", "unreferenced_blob"}
    cleanup_orphan = next(p.subject for p in repaired.problems if p.kind == "orphaned_cleanup_file")
    assert not store.file_exists(cleanup_orphan)
    after = fsck(store)
    assert set(after.counts()) == {"missing_blob", "shared_file_missing_blob", "size_mismatch"}  # ...and stay reported
    assert after.notes["blobs_awaiting_gc"] == 1
    assert store.file_exists(lost)  # the record of what was lost is kept

    report = collect_garbage(store, grace="0")
    assert report.deleted_blobs == 1 and report.deleted_bytes == len(b"not referenced by any row")
    assert unreferenced_blobs(store) == []
    for file_id, content in data.files.items():  # every intact file is still intact
        if file_id not in (lost, corrupted, truncated, cleanup_orphan):
            assert _content(store, file_id) == content


def test_gc_is_two_phase_and_idempotent(store: JobStore) -> None:
    data = populate(store, jobs_count=2)
    store.blob_store.put_bytes("f/aa/interrupted.0001", b"a crashed writer's bytes")
    store.blob_store.put_bytes("f/bb/in-flight.0002", b"a writer about to commit")
    job_id = next(iter(data.jobs))
    delete_job_row(store, job_id)

    dry = collect_garbage(store, dry_run=True)
    assert (dry.orphaned_files, dry.condemned_blobs, dry.deleted_blobs) == (1, 2, 0)
    assert store.stats()["condemned_blobs"] == 0  # a dry run changes nothing

    first = collect_garbage(store, grace="1h")
    assert (first.orphaned_files, first.condemned_blobs, first.deleted_blobs, first.waiting_blobs) == (1, 2, 0, 2)
    assert store.blob_store.exists("f/aa/interrupted.0001")  # condemned, not deleted
    assert store.stats()["orphaned_files"] == 1  # the cleanup=False orphan is kept by design

    # The in-flight writer commits its row now: its blob must survive gc.
    content = b"a writer about to commit"
    new = NewFile(
        id="inflightfile01",
        job_id=None,
        cleanup=False,
        shared_name=None,
        basename=None,
        size=len(content),
        checksum=checksum_of_bytes(content),
        blob_key="f/bb/in-flight.0002",
        executable=False,
        encrypted=store.blob_store.encrypted,
    )
    assert store.catalog.operations.insert_file(store.store_id, new) is None  # the late commit
    age_condemned(store, 7200)  # the grace period is over for both
    second = collect_garbage(store, grace="1h")
    assert (second.released_blobs, second.deleted_blobs, second.waiting_blobs) == (1, 1, 0)
    assert not store.blob_store.exists("f/aa/interrupted.0001")
    assert _content(store, "inflightfile01") == content

    # A condemned blob that is already gone is not an error; running again finds nothing to do.
    store.blob_store.put_bytes("f/cc/vanishing.0003", b"x")
    collect_garbage(store, grace="1h")
    store.blob_store.delete("f/cc/vanishing.0003")
    age_condemned(store, 7200)
    third = collect_garbage(store, grace="1h")
    assert third.deleted_blobs == 1 and not third.failures
    again = collect_garbage(store, grace="0")
    assert (again.orphaned_files, again.unreferenced_blobs, again.deleted_blobs) == (0, 0, 0)
    assert store.stats()["condemned_blobs"] == 0
    assert fsck(store, verify_checksums=True).ok


def test_all_orphans_on_request(store: JobStore) -> None:
    data = populate(store, jobs_count=1)
    job_id = next(iter(data.jobs))
    delete_job_row(store, job_id)
    assert len(orphaned_files(store)) == 2 and len(orphaned_files(store, cleanup_only=True)) == 1
    report = collect_garbage(store, grace="0", all_orphans=True)
    assert report.orphaned_files == 2
    assert store.orphaned_file_ids() == []
    assert compare_blobs(store).unreferenced == []


def test_copy_round_trip_keeps_ids_and_resumes(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from jobstore.maintenance import open_destination

    source = backend.new_store()
    data = populate(source, jobs_count=3)
    middle = open_destination(f"file:{tmp_path_factory.mktemp('copy') / 'middle'}")
    backend.opened.append(middle)

    # Interrupt the first copy after its first page of files, then run it again: it resumes.
    monkeypatch.setattr(copy_module, "PAGE", 3)

    class Interrupted(Exception):
        pass

    def interrupt(stage: str, done: int, total: int | None) -> None:
        if stage == "files":
            raise Interrupted

    with pytest.raises(Interrupted):
        copy_store(source, middle, progress=interrupt)
    resumed = copy_store(source, middle)
    assert resumed.ok, resumed.problems
    assert resumed.files_already_there == 3 and resumed.verified == len(data.files) + len(data.shared)

    back = backend.new_store()
    report = copy_store(middle, back)
    assert report.ok and report.jobs == 3 and report.logs == 2
    for copy in (middle, back):
        assert sorted(job.jobStoreID or "" for job in copy.jobs()) == sorted(data.jobs)
        for file_id, content in data.files.items():
            assert _content(copy, file_id) == content
            assert copy.get_file_job_association(file_id) == data.owners[file_id]
            assert copy.file_info(file_id).checksum == source.file_info(file_id).checksum
        for name, content in data.shared.items():
            with copy.read_shared_file_stream(name) as stream:
                assert stream.read() == content
        assert copy.stats()["unread_logs"] == 2
        assert copy.config.workflowID == source.config.workflowID
    seen: list[bytes] = []
    back.read_logs(lambda stream: seen.append(stream.read()))
    assert seen == data.logs
    job_id = next(iter(data.jobs))
    assert back.load_job(job_id).jobName == data.jobs[job_id].jobName
    assert back.load_job(job_id).version == source.load_job(job_id).version


def test_prune_old_jobs_with_their_files(store: JobStore) -> None:
    data = populate(store, jobs_count=4)
    store.read_logs(lambda stream: None)  # mark the logs read, so they may be pruned
    completed = next(job_id for job_id, job in data.jobs.items() if job.state == "completed")
    owned = {file_id for file_id, owner in data.owners.items() if owner == completed}
    dry = prune(store, "1h", dry_run=True)
    assert (dry.jobs, dry.files) == (0, 0)  # nothing is an hour old
    dry = prune(store, "0", dry_run=True)
    assert (dry.jobs, dry.files, dry.logs) == (1, 1, 2)
    assert store.job_exists(completed)
    report = prune(store, "0")
    assert (report.jobs, report.files, report.logs) == (1, 1, 2)
    assert not store.job_exists(completed)
    kept = [file_id for file_id in owned if store.file_exists(file_id)]
    assert len(kept) == 1  # the cleanup=False output survives, as an orphan
    assert store.orphaned_file_ids() == kept
    everything = prune(store, "0", states=None, all_files=True)
    assert everything.jobs == 3 and store.stats()["jobs"] == 0
    assert compare_blobs(store).missing == []
    with pytest.raises(NoSuchFileException):
        store.file_info(next(iter(owned - set(kept))))


def test_durations() -> None:
    assert parse_duration("1d12h").total_seconds() == 36 * 3600
    assert parse_duration("30m").total_seconds() == 1800 and parse_duration("0").total_seconds() == 0
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("5 parsecs")


@pytest.mark.parametrize("backend", ["postgres-local"], indirect=True)
def test_a_copy_into_postgresql_leaves_the_planner_real_statistics(
    backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Freshly filled tables that autovacuum has not analyzed yet look empty to PostgreSQL's
    planner, which then picks a quadratic anti-join for the orphan query and the totals; a copy
    is such a fill, so it analyzes the tables at its end."""
    from sqlalchemy import text

    from jobstore.maintenance import open_destination

    source = open_destination(f"file:{tmp_path_factory.mktemp('copy') / 'source'}")
    backend.opened.append(source)
    populate(source, jobs_count=3)
    destination = backend.new_store()
    with destination.catalog.engine.connect() as connection:
        before = connection.execute(text("SELECT now()")).scalar_one()
    assert copy_store(source, destination).ok
    with destination.catalog.engine.connect() as connection:
        analyzed = connection.execute(
            text("SELECT relname, last_analyze FROM pg_stat_user_tables WHERE relname IN ('jobs', 'files', 'logs')")
        ).fetchall()
    assert len(analyzed) == 3
    assert all(last is not None and last >= before for _, last in analyzed), analyzed
