"""A store owns its tree: reads and exports write only replaceable regular files outside every
store, blob directories are marked with their store and never shared or nested, and a hard-linked
read checks the blob's size (its checksum too with ``Config.verifyReads``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jobstore import Config, JobStore, create_job_store
from jobstore.errors import (
    ChecksumMismatchError,
    InvalidNameError,
    LocalFileError,
    LocalFileNotFoundError,
    LocalIsADirectoryError,
    UnsafeLocationError,
)
from jobstore.maintenance import parse_duration
from jobstore.maintenance.durations import InvalidDurationError
from tests.conftest import Backend


def _file(store: JobStore, tmp_path: Path, data: bytes = b"payload " * 64) -> str:
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    return store.write_file(str(source))


def _local_store(path: Path) -> JobStore:
    store = create_job_store(f"file:{path}")
    store.initialize(Config())
    return store


# --- every backend: read_file and export targets ------------------------------------------------


def test_read_file_leaves_a_fifo_alone(backend: Backend, tmp_path: Path) -> None:
    store = backend.new_store()
    file_id = _file(store, tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(LocalFileError, match="device, FIFO or socket"):
        store.read_file(file_id, str(fifo))
    assert fifo.is_fifo()


def test_read_file_into_a_missing_directory_is_a_typed_error(backend: Backend, tmp_path: Path) -> None:
    store = backend.new_store()
    file_id = _file(store, tmp_path)
    with pytest.raises(LocalFileNotFoundError, match="does not exist; create it first"):
        store.read_file(file_id, str(tmp_path / "missing" / "out"))
    with pytest.raises(LocalIsADirectoryError):
        store.read_file(file_id, str(tmp_path))
    (tmp_path / "plain").write_text("x")
    with pytest.raises(LocalFileError, match=r"(?i)not a directory"):
        store.read_file(file_id, str(tmp_path / "plain" / "out"))


def test_reads_and_exports_never_write_into_a_store(backend: Backend, tmp_path: Path) -> None:
    store = backend.new_store()
    file_id = _file(store, tmp_path)
    other = _local_store(tmp_path / "other")
    catalog = tmp_path / "other" / "catalog.sqlite"
    before = catalog.read_bytes()
    for target in (catalog, tmp_path / "other" / "blobs" / "planted"):
        with pytest.raises(UnsafeLocationError, match="inside the job store"):
            store.read_file(file_id, str(target))
        with pytest.raises(UnsafeLocationError, match="inside the job store"):
            store.export_file(file_id, f"file://{target}")
    assert catalog.read_bytes() == before
    assert not (tmp_path / "other" / "blobs" / "planted").exists()
    other.close()


# --- local blob directories: marked, never shared or nested -------------------------------------


def test_a_directory_found_outside_stores_is_checked_again_once_it_names_another(tmp_path: Path) -> None:
    """The outside-every-store verdict is remembered per directory, but only while the path names
    the same directory: a link into a store put in its place is refused like any other."""
    store = _local_store(tmp_path / "store")
    file_id = _file(store, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    store.read_file(file_id, str(out / "first"))  # found outside every store, remembered
    (out / "first").unlink()
    out.rmdir()
    out.symlink_to(tmp_path / "store" / "blobs")
    with pytest.raises(UnsafeLocationError, match="inside the job store"):
        store.read_file(file_id, str(out / "second"))
    assert not (tmp_path / "store" / "blobs" / "second").exists()
    out.unlink()
    out.mkdir()  # a new directory at the old path: checked again, and outside
    store.read_file(file_id, str(out / "third"))
    assert (out / "third").read_bytes() == b"payload " * 64


def test_a_remembered_directory_that_becomes_a_store_is_refused(tmp_path: Path) -> None:
    """A directory emptied after a read may become a store: it is checked again, itself."""
    store = _local_store(tmp_path / "store")
    file_id = _file(store, tmp_path)
    later = tmp_path / "later"
    later.mkdir()
    store.read_file(file_id, str(later / "first"))  # found outside every store, remembered
    (later / "first").unlink()
    other = _local_store(later)  # the emptied directory becomes a store
    catalog = later / "catalog.sqlite"
    before = catalog.read_bytes()
    with pytest.raises(UnsafeLocationError, match="inside the job store"):
        store.read_file(file_id, str(catalog))
    assert catalog.read_bytes() == before
    other.close()


def test_two_stores_cannot_share_a_blob_directory(tmp_path: Path) -> None:
    first = create_job_store(f"sql:sqlite:///{tmp_path}/a.sqlite#a")
    first.initialize(Config(blobStore=f"file://{tmp_path}/blobs"))
    file_id = _file(first, tmp_path)
    second = create_job_store(f"sql:sqlite:///{tmp_path}/b.sqlite#b")
    with pytest.raises(UnsafeLocationError, match="belongs to another job store"):
        second.initialize(Config(blobStore=f"file://{tmp_path}/blobs"))
    with first.read_file_stream(file_id) as stream:
        assert stream.read() == b"payload " * 64


@pytest.mark.parametrize(
    "make",
    [
        lambda root: create_job_store(f"file:{root}/outer/blobs/f/inner"),
        lambda root: create_job_store(f"file:{root}/outer/inner"),
        lambda root: create_job_store(f"sql:sqlite:///{root}/outer/blobs/c.sqlite#x"),
    ],
    ids=["store-in-blobs", "store-in-store", "catalog-in-blobs"],
)
def test_a_store_cannot_be_made_inside_another(tmp_path: Path, make: object) -> None:
    outer = _local_store(tmp_path / "outer")
    file_id = _file(outer, tmp_path)
    nested = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(UnsafeLocationError, match="inside the job store"):
        sql = nested.locator.startswith("sql:")  # type: ignore[attr-defined]
        nested.initialize(Config(blobStore=f"file://{tmp_path}/elsewhere") if sql else Config())  # type: ignore[attr-defined]
    assert outer.file_exists(file_id)
    assert not (tmp_path / "outer" / "blobs" / "c.sqlite").exists()


def test_destroy_refuses_a_blob_directory_marked_for_another_store(tmp_path: Path) -> None:
    store = _local_store(tmp_path / "s")
    file_id = _file(store, tmp_path)
    (tmp_path / "s" / "blobs" / ".jobstore-blobs").write_text("store 'x' of workflow someone-else")
    with pytest.raises(UnsafeLocationError, match="belongs to another job store"):
        store.destroy()
    with pytest.raises(UnsafeLocationError, match="belongs to another job store"):
        create_job_store(f"file:{tmp_path / 's'}").resume()
    (tmp_path / "s" / "blobs" / ".jobstore-blobs").write_text("")  # a marker from before owners
    reopened = create_job_store(f"file:{tmp_path / 's'}")
    reopened.resume()
    assert reopened.file_exists(file_id)


# --- a hard-linked read checks what it hands out ------------------------------------------------


def _the_blob(root: Path) -> Path:
    (blob,) = (p for p in (root / "blobs" / "f").rglob("*") if p.is_file())
    os.chmod(blob, 0o600)
    return blob


def test_a_truncated_blob_is_refused_by_a_linked_read(tmp_path: Path) -> None:
    store = _local_store(tmp_path / "s")
    file_id = _file(store, tmp_path)
    with open(_the_blob(tmp_path / "s"), "r+b") as blob:
        blob.truncate(100)
    with pytest.raises(ChecksumMismatchError, match="100 bytes but 512 were recorded"):
        store.read_file(file_id, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_verify_reads_checksums_a_linked_read(tmp_path: Path) -> None:
    store = _local_store(tmp_path / "s")
    file_id = _file(store, tmp_path)
    with open(_the_blob(tmp_path / "s"), "r+b") as blob:
        blob.write(b"X")  # same size, one byte changed
    checked = create_job_store(store.locator)
    checked.resume(Config(verifyReads=True))
    with pytest.raises(ChecksumMismatchError, match="does not match"):
        checked.read_file(file_id, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


# --- typed errors for the inputs that used to escape --------------------------------------------


def test_a_log_with_a_lone_surrogate_is_refused_and_nothing_is_stored(backend: Backend) -> None:
    store = backend.new_store()
    with pytest.raises(InvalidNameError, match="lone surrogate"):
        store.write_logs("bad \udc80 log")
    assert store.read_logs(lambda _stream: None, read_all=True) == 0


@pytest.mark.parametrize("text", ["99999999999999999999999d", "99999999999999999999w"])
def test_a_duration_beyond_timedelta_is_a_typed_error(text: str) -> None:
    with pytest.raises(InvalidDurationError, match="longer than any duration"):
        parse_duration(text)


# --- links planted inside a store are never followed --------------------------------------------


def test_a_symlinked_temp_directory_is_refused(tmp_path: Path) -> None:
    _local_store(tmp_path / "s").close()
    outside = tmp_path / "outside"
    outside.mkdir()
    temp = tmp_path / "s" / "blobs" / ".tmp"
    temp.rmdir()
    temp.symlink_to(outside)
    store = create_job_store(f"file:{tmp_path / 's'}")
    store.resume()
    with pytest.raises(UnsafeLocationError, match="symbolic link"):
        with store.write_file_stream() as (handle, _file_id):
            handle.write(b"x")
    assert list(outside.iterdir()) == []


def test_a_symlinked_fan_out_directory_is_refused_for_reads_and_deletes(tmp_path: Path) -> None:
    store = _local_store(tmp_path / "s")
    file_id = _file(store, tmp_path)
    store.close()
    blob = _the_blob(tmp_path / "s")
    fan_out = blob.parent
    outside = tmp_path / "outside"
    fan_out.rename(outside)
    fan_out.symlink_to(outside)
    reopened = create_job_store(f"file:{tmp_path / 's'}")
    reopened.resume()
    with pytest.raises(UnsafeLocationError, match="symbolic link"):
        reopened.read_file(file_id, str(tmp_path / "out"))
    reopened.delete_file(file_id)  # the row goes; the blob behind the link is left (and logged)
    assert not reopened.file_exists(file_id)
    assert (outside / blob.name).exists()
