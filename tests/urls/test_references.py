"""Reference imports (``import_file(..., mode="reference")``) on every backend, from every source
kind that can be referenced (local files, S3 and GCS objects).

A reference copies nothing and owns nothing: these tests check that no blob appears, that every
read re-checks the source and refuses one that changed or vanished, that no delete path (delete,
update, a rolled-back batch, gc, fsck --repair, prune, destroy) touches the source, and that
transports which cannot be referenced, and sources inside a store, are refused with typed errors.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from jobstore import (
    Config,
    InvalidArgumentError,
    JobDescription,
    JobStore,
    ReferenceChangedError,
    UnsafeLocationError,
    UnsupportedURLError,
    URLAccessError,
    URLNotFoundError,
    create_job_store,
)
from jobstore.cli import app
from jobstore.maintenance import collect_garbage, copy_store, fsck, prune
from tests.conftest import Backend
from tests.services.ftp import FtpServer
from tests.services.http import HttpServer
from tests.urls.conftest import Place, make_place

REFERENCE_SCHEMES = ["file", "s3", "gs"]


def _blob_keys(store: JobStore) -> list[str]:
    return sorted(store.blob_store.list_keys())


def _local_source(tmp_path_factory: pytest.TempPathFactory, data: bytes, name: str = "input.bin") -> Path:
    path = tmp_path_factory.mktemp("inputs") / name  # outside every store's tree
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("scheme", REFERENCE_SCHEMES)
def test_a_reference_copies_nothing_and_reads_the_source(
    backend: Backend, scheme: str, request: pytest.FixtureRequest, tmp_path: Path, url_config: dict[str, Any]
) -> None:
    place: Place = make_place(scheme, request, tmp_path)
    store = backend.new_store(**url_config)
    data = os.urandom(300_000)
    url = place.put("reference.bin", data)
    before = _blob_keys(store)

    file_id = store.import_file(url, mode="reference")
    assert file_id is not None
    assert _blob_keys(store) == before  # nothing copied
    row = store.file_info(file_id)
    assert row.reference is not None and row.size == len(data) and row.blob_key.startswith("ref/")
    assert (row.basename, row.source_url) == ("reference.bin", url)
    stats = store.stats()
    assert (stats["referenced_files"], stats["referenced_bytes"], stats["stored_bytes"]) == (1, len(data), 0)
    assert store.get_file_size(file_id) == len(data)

    with store.read_file_stream(file_id) as handle:
        assert handle.read() == data
    copy = tmp_path / "copy.bin"
    store.read_file(file_id, str(copy))
    assert copy.read_bytes() == data and not copy.is_symlink()
    exported = tmp_path / "exported.bin"
    store.export_file(file_id, exported.as_uri())
    assert exported.read_bytes() == data
    assert fsck(store).ok

    # The source is replaced: every read refuses it, naming the source; the row stays as it was.
    place.put("reference.bin", os.urandom(300_000))
    with pytest.raises(ReferenceChangedError, match="changed since it was imported") as info:
        with store.read_file_stream(file_id) as handle:
            handle.read()
    assert "reference.bin" in str(info.value)
    with pytest.raises(ReferenceChangedError):
        store.read_file(file_id, str(tmp_path / "again.bin"))
    assert not (tmp_path / "again.bin").exists()
    assert store.file_info(file_id) == row
    report = fsck(store)
    assert [problem.kind for problem in report.problems] == ["reference_changed"]


def test_a_local_reference_is_handed_out_as_a_link_only_when_asked(
    store: JobStore, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    source = _local_source(tmp_path_factory, b"linked content")
    file_id = store.import_file(source.as_uri(), mode="reference")
    assert file_id is not None
    linked = tmp_path / "linked.bin"
    store.read_file(file_id, str(linked), symlink=True)
    assert linked.is_symlink() and os.readlink(linked) == os.path.realpath(source)
    copied = tmp_path / "copied.bin"
    store.read_file(file_id, str(copied))
    assert not copied.is_symlink() and copied.read_bytes() == b"linked content"
    assert store.get_public_url(file_id) == "file://" + str(source)

    source.unlink()
    with pytest.raises(ReferenceChangedError, match="no longer exists"):
        store.read_file(file_id, str(tmp_path / "gone.bin"), symlink=True)
    with pytest.raises(ReferenceChangedError, match="no longer exists"):
        with store.read_file_stream(file_id) as handle:
            handle.read()
    assert [problem.kind for problem in fsck(store).problems] == ["reference_missing"]


def test_a_recorded_checksum_catches_a_rewrite_that_keeps_size_and_mtime(
    store: JobStore, tmp_path_factory: pytest.TempPathFactory
) -> None:
    source = _local_source(tmp_path_factory, b"A" * 4096)
    checked = store.import_file(str(source), mode="reference", checksum=True)
    unchecked = store.import_file(str(source), mode="reference")
    assert checked is not None and unchecked is not None
    assert store.file_info(checked).checksum.startswith("crc32c:") and store.file_info(unchecked).checksum == ""
    stat = source.stat()
    with open(source, "r+b") as handle:  # same inode, same size, and the mtime put back
        handle.write(b"B")
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    with pytest.raises(ReferenceChangedError, match="CRC32C"):
        with store.read_file_stream(checked) as handle:
            handle.read()
    report = fsck(store, verify_checksums=True)
    assert [(problem.kind, problem.subject) for problem in report.problems] == [("reference_changed", checked)]


def test_no_delete_path_touches_a_referenced_source(
    backend: Backend, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    store = backend.new_store()
    data = os.urandom(10_000)
    source = _local_source(tmp_path_factory, data)
    stat = source.stat()

    def source_intact() -> bool:
        now = source.stat()
        return source.read_bytes() == data and (now.st_ino, now.st_mtime_ns, now.st_mode) == (
            stat.st_ino,
            stat.st_mtime_ns,
            stat.st_mode,
        )

    deleted = store.import_file(str(source), mode="reference")
    assert deleted is not None
    store.delete_file(deleted)
    assert not store.file_exists(deleted) and source_intact()

    updated = store.import_file(str(source), mode="reference")
    assert updated is not None
    replacement = tmp_path / "replacement.bin"
    replacement.write_bytes(b"owned now")
    store.update_file(updated, str(replacement))
    assert store.file_info(updated).reference is None
    with store.read_file_stream(updated) as handle:
        assert handle.read() == b"owned now"
    assert source_intact()

    with pytest.raises(RuntimeError, match="roll back"):
        with store.batch():
            store.import_file(str(source), mode="reference")
            raise RuntimeError("roll back")
    assert source_intact()

    store.import_file(str(source), "shared-input", mode="reference")
    with store.write_shared_file_stream("shared-input") as handle:
        handle.write(b"replaced")  # the shared name now points at an owned blob
    assert source_intact()

    kept = store.import_file(str(source), mode="reference")
    job = store.create(JobDescription(jobName="old"))
    store.delete_job(str(job.jobStoreID))
    collect_garbage(store, grace="0s", all_orphans=True)
    fsck(store, repair=True)
    prune(store, older_than="0s", all_files=True)
    assert kept is not None and store.file_exists(kept) and source_intact()
    with store.read_file_stream(kept) as handle:
        assert handle.read() == data

    store.destroy()
    assert source_intact()


def test_copy_keeps_references_or_materializes_them(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> None:
    data = os.urandom(50_000)
    source_path = _local_source(tmp_path_factory, data)
    source = backend.new_store()
    file_id = source.import_file(str(source_path), mode="reference", checksum=True)
    assert file_id is not None

    kept = _local_destination(tmp_path_factory)
    report = copy_store(source, kept)
    assert report.ok and kept.file_info(file_id).reference is not None and _blob_keys(kept) == []
    with kept.read_file_stream(file_id) as handle:
        assert handle.read() == data

    owned = _local_destination(tmp_path_factory)
    report = copy_store(source, owned, materialize_references=True)
    assert report.ok and report.verified == 1
    row = owned.file_info(file_id)
    assert row.reference is None and row.checksum == source.file_info(file_id).checksum
    assert len(_blob_keys(owned)) == 1
    source_path.unlink()  # the copy owns its bytes now
    with owned.read_file_stream(file_id) as handle:
        assert handle.read() == data
    for store in (kept, owned):
        store.close()


def _local_destination(tmp_path_factory: pytest.TempPathFactory) -> JobStore:
    destination = create_job_store(str(tmp_path_factory.mktemp("copy") / "store"))
    destination.initialize(Config())
    return destination


def test_what_cannot_be_referenced_is_refused_and_nothing_is_stored(
    backend: Backend,
    http_server: HttpServer,
    ftp_server: FtpServer,
    tmp_path_factory: pytest.TempPathFactory,
    url_config: dict[str, Any],
) -> None:
    store = backend.new_store(**url_config)
    source = _local_source(tmp_path_factory, b"x")
    inside_root = tmp_path_factory.mktemp("other") / "store"
    inside = create_job_store(str(inside_root))
    inside.initialize(Config())
    inside_file = inside_root / "planted.bin"
    inside_file.write_bytes(b"planted")
    before = (sorted(store.get_all_file_ids()), _blob_keys(store))
    cases: list[tuple[str, dict[str, Any], type[Exception], str]] = [
        (http_server.url("any.bin"), {"mode": "reference"}, UnsupportedURLError, "mode='copy'"),
        (f"{ftp_server.base_url}/any.bin", {"mode": "reference"}, UnsupportedURLError, "cannot be imported by ref"),
        (str(source), {"mode": "link"}, InvalidArgumentError, "'link' is not one of copy, reference"),
        (str(source.parent / "missing.bin"), {"mode": "reference"}, URLNotFoundError, "missing.bin"),
        (str(source.parent), {"mode": "reference"}, URLAccessError, "regular file"),
        ("s3://jobstore-urls/no/such/key", {"mode": "reference"}, URLNotFoundError, "no/such/key"),
        (f"gs://jobstore-urls/{uuid.uuid4().hex}", {"mode": "reference"}, URLNotFoundError, "no such object"),
        (str(inside_file), {"mode": "reference"}, UnsafeLocationError, "inside the job store"),
    ]
    for url, arguments, error_type, mentioned in cases:
        with pytest.raises(error_type) as info:
            store.import_file(url, **arguments)
        assert mentioned in str(info.value), (url, str(info.value))
    assert (sorted(store.get_all_file_ids()), _blob_keys(store)) == before
    assert inside_file.read_bytes() == b"planted"
    inside.close()


def test_cli_imports_by_reference_and_status_shows_it(tmp_path_factory: pytest.TempPathFactory) -> None:
    data = os.urandom(20_000)
    source = _local_source(tmp_path_factory, data)
    locator = str(tmp_path_factory.mktemp("cli") / "store")
    create_job_store(locator).initialize(Config())
    result = CliRunner().invoke(app, ["import", locator, str(source), "--reference", "--no-progress"])
    assert result.exit_code == 0, result.output
    status = CliRunner().invoke(app, ["status", locator, "--json"])
    assert status.exit_code == 0, status.output
    assert '"referenced_files": 1' in status.output and f'"referenced_bytes": {len(data)}' in status.output
    store = create_job_store(locator)
    store.resume()
    (file_id,) = store.get_all_file_ids()
    assert store.file_info(file_id).reference is not None and _blob_keys(store) == []
    store.close()
