"""Hostile and malformed input: the corpus in corpus.py, tampered catalog rows, and property tests.

For every case: the typed exception the corpus names (a JobStoreError, or TypeError where Python's
convention says so), nothing in the store changed (rows, versions, blobs, temporary uploads),
nothing outside the store written (a canary tree, /etc/passwd, /etc/shadow), and no password in
the message. Reads outside the store are prevented by refusing the input before any I/O (the
store's content is unchanged, so nothing outside was imported).
"""

from __future__ import annotations

import hashlib
import os
import stat
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update
from sqlalchemy.exc import DataError

from jobstore import (
    Config,
    FileJobStore,
    InvalidLocatorError,
    InvalidNameError,
    JobDescription,
    JobStore,
    JobStoreError,
    NoSuchFileException,
    NoSuchJobException,
)
from jobstore.abstract import SHARED_FILE_NAME
from jobstore.catalog.schema import files, jobs
from jobstore.errors import InvalidJobDescriptionError, UnsafeLocationError
from jobstore.locator import parse_locator
from jobstore.maintenance import fsck
from tests.conftest import Backend
from tests.reliability.corpus import CASES, SECRET, Case, Context, cases_by_name

PROTECTED = ("/etc/passwd", "/etc/shadow")


def _tree(root: str) -> dict[str, tuple[int, int, str]]:
    """Every entry under ``root``: mode, size and content hash (symlinks and devices not followed)."""
    found: dict[str, tuple[int, int, str]] = {}
    for directory, subdirectories, names in os.walk(root):
        for name in subdirectories + names:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            content = ""
            if stat.S_ISREG(info.st_mode) and info.st_size < 50_000_000:
                with open(path, "rb") as handle:
                    content = hashlib.sha256(handle.read()).hexdigest()
            found[os.path.relpath(path, root)] = (info.st_mode, info.st_size, content)
    return found


def _protected() -> dict[str, tuple[int, str]]:
    result = {}
    for path in PROTECTED:
        if os.path.exists(path):
            with open(path, "rb") as handle:
                result[path] = (os.stat(path).st_mtime_ns, hashlib.sha256(handle.read()).hexdigest())
    return result


def store_snapshot(store: JobStore) -> dict[str, Any]:
    """Everything stored: rows with their versions, every blob key, counts of logs."""
    job_rows = sorted((job.jobStoreID or "", job.version or 0, repr(sorted(vars(job).items()))) for job in store.jobs())
    file_rows = sorted(
        (info.id, info.version, info.checksum, info.blob_key, info.shared_name)
        for info in (store.file_info(file_id) for file_id in store.get_all_file_ids())
    )
    stats = store.stats()
    return {
        "jobs": job_rows,
        "files": file_rows,
        "blobs": sorted(store.blob_store.list_keys()),
        "logs": (stats.get("logs"), stats.get("unread_logs")),
    }


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Context]:
    base = tmp_path_factory.mktemp("hostile")
    outside, allowed, scratch = base / "outside", base / "allowed", base / "scratch"
    for directory in (outside, allowed, scratch):
        directory.mkdir()
    (outside / "canary").write_bytes(b"do not touch")
    (allowed / "subdir").mkdir()
    os.symlink(outside, allowed / "link-out")
    os.mkfifo(allowed / "fifo")
    os.mknod(allowed / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a /dev/null of our own
    store = FileJobStore(f"file:{base}/store")
    store.initialize(Config(exportRoots=[str(allowed)]))
    job = store.create_job(JobDescription({"memory": 1}, "victim", payload="original"))
    with store.write_file_stream(job.jobStoreID) as (handle, file_id):
        handle.write(b"precious bytes")
    with store.write_shared_file_stream("shared") as handle:
        handle.write(b"shared bytes")
    store.write_logs("a log")
    assert job.jobStoreID is not None
    yield Context(store, job.jobStoreID, file_id, str(outside), str(allowed), str(scratch))
    store.close()


def test_the_corpus_has_at_least_100_cases() -> None:
    assert len(cases_by_name()) >= 100


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input(case: Case, context: Context) -> None:
    base = os.path.dirname(context.outside)
    before = (store_snapshot(context.store), _tree(context.outside), _tree(context.allowed), _protected())
    with pytest.raises(case.expected) as raised:
        case.run(context)
    error = raised.value
    assert isinstance(error, JobStoreError | TypeError), f"{type(error).__name__} is not a typed error"
    message = str(error)
    assert message and SECRET not in message and SECRET not in repr(error)
    after = (store_snapshot(context.store), _tree(context.outside), _tree(context.allowed), _protected())
    assert after == before
    assert not os.path.exists("/tmp/jobstore-pwned")
    leftovers = [name for name in os.listdir(base) if name not in ("outside", "allowed", "scratch", "store")]
    assert leftovers == []
    assert os.listdir(os.path.join(base, "store", "blobs", ".tmp")) == []


def test_export_inside_the_allowed_root_works(context: Context) -> None:
    """The policy refuses what is outside, not what is inside; a symlink named by the destination is
    replaced by the rename, never followed to its target."""
    canary = _tree(context.outside)
    target = os.path.join(context.allowed, "deep", "out.bin")
    context.store.export_file(context.file_id, f"file://{target}")
    assert Path(target).read_bytes() == b"precious bytes"
    link = os.path.join(context.allowed, "link-to-canary")
    os.symlink(os.path.join(context.outside, "canary"), link)
    context.store.export_file(context.file_id, link)
    assert not os.path.islink(link) and Path(link).read_bytes() == b"precious bytes"
    assert _tree(context.outside) == canary


# --- tampered catalog rows ------------------------------------------------------------------------

TAMPERED_KEYS = {
    "traversal": "../../../../etc/passwd",
    "absolute": "/etc/passwd",
    "inner-traversal": "f/ab/../../../../etc/passwd",
    "empty-segment": "f//x",
    "dot-segment": "f/./x",
    "backslash": "f\\..\\..\\x",
    "nul": "f/ab/x\x00y",
    "empty": "",
}


def _tamper_blob_key(store: JobStore, file_id: str, key: str) -> None:
    with store.catalog.engine.begin() as connection:
        connection.execute(update(files).where(files.c.id == file_id).values(blob_key=key))


@pytest.mark.parametrize("key", list(TAMPERED_KEYS.values()), ids=list(TAMPERED_KEYS))
def test_tampered_blob_key_never_leaves_the_store(backend: Backend, key: str, tmp_path: Path) -> None:
    """A row whose blob key points outside the store: reads, exports, public URLs, deletes and fsck
    refuse it with UnsafeLocationError / report it, and touch nothing outside."""
    store = backend.new_store()
    with store.write_file_stream() as (handle, file_id):
        handle.write(b"ours")
    original = store.file_info(file_id).blob_key
    protected = _protected()
    if "\x00" in key and store.catalog.dialect == "postgresql":
        with pytest.raises(DataError):  # PostgreSQL text cannot even hold this tampered key
            _tamper_blob_key(store, file_id, key)
        return
    _tamper_blob_key(store, file_id, key)
    with pytest.raises(UnsafeLocationError):
        with store.read_file_stream(file_id) as stream:
            stream.read()
    with pytest.raises(UnsafeLocationError):
        store.read_file(file_id, str(tmp_path / "out"))
    with pytest.raises(UnsafeLocationError):
        store.export_file(file_id, f"file://{tmp_path}/exported")
    with pytest.raises(UnsafeLocationError):
        store.get_public_url(file_id)
    assert not (tmp_path / "out").exists() and not (tmp_path / "exported").exists()
    report = fsck(store)
    assert "invalid_blob_key" in report.counts()
    store.delete_file(file_id)  # the row goes; the out-of-store "blob" is not touched
    assert not store.file_exists(file_id)
    assert _protected() == protected
    assert original in set(store.blob_store.list_keys())  # left for gc, which sees it unreferenced


@pytest.mark.parametrize(
    "description",
    ["not json", "{}", "[]", "null", '{"jobStoreID": 1}', '{"__reduce__": "os.system"}', "\x80\x04\x95"],
)
def test_tampered_description_is_a_typed_error(description: str, tmp_path: Path) -> None:
    store = FileJobStore(f"file:{tmp_path}/store")
    store.initialize(Config())
    job = store.create_job(JobDescription({}, "victim"))
    with store.catalog.engine.begin() as connection:
        connection.execute(update(jobs).where(jobs.c.id == job.jobStoreID).values(description=description))
    with pytest.raises(InvalidJobDescriptionError):
        store.load_job(str(job.jobStoreID))
    with pytest.raises(InvalidJobDescriptionError):
        list(store.jobs())
    store.close()


# --- properties -----------------------------------------------------------------------------------

_names = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=string.ascii_letters + string.digits + "._-/\\\x00 ", max_size=40),
    st.sampled_from([".", "..", "...", "-", "_", "a" * 255, "a" * 256]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=_names)
def test_shared_names_are_accepted_exactly_when_safe(name: str, context: Context) -> None:
    """Any string: either a valid shared name that round-trips, or InvalidNameError; never a path
    outside the store, never another exception."""
    valid = SHARED_FILE_NAME.fullmatch(name) is not None and name not in (".", "..")
    if not valid:
        with pytest.raises(InvalidNameError):
            with context.store.write_shared_file_stream(name) as handle:
                handle.write(b"x")
        with pytest.raises(InvalidNameError):
            context.store.shared_file_exists(name)
        return
    assert "/" not in name and "\\" not in name and name not in (".", "..")
    with context.store.write_shared_file_stream(name) as handle:
        handle.write(name.encode())
    with context.store.read_shared_file_stream(name) as handle:
        assert handle.read() == name.encode()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(identifier=st.one_of(st.text(max_size=300), st.from_regex(r"[./%a-z0-9\\]{0,40}", fullmatch=True)))
def test_ids_never_escape(identifier: str, context: Context) -> None:
    """Any string as a job or file ID: a clean 'no such' answer, never another exception."""
    if identifier in (context.job_id, context.file_id):
        return
    assert not context.store.job_exists(identifier)
    assert not context.store.file_exists(identifier)
    assert context.store.get_file_size(identifier) == 0
    with pytest.raises(NoSuchJobException):
        context.store.load_job(identifier)
    with pytest.raises(NoSuchFileException):
        with context.store.read_file_stream(identifier) as handle:
            handle.read()
    context.store.delete_file(identifier)  # idempotent no-op
    context.store.delete_job(identifier)
    assert context.store.file_exists(context.file_id) and context.store.job_exists(context.job_id)


@settings(max_examples=300, deadline=None)
@given(
    locator=st.one_of(st.text(max_size=200), st.from_regex(r"(aws|gce|google|sql|file):[^\n]{0,60}", fullmatch=True))
)
def test_locators_parse_or_raise_invalid_locator(locator: str) -> None:
    try:
        location = parse_locator(locator)
    except InvalidLocatorError:
        return
    assert location.kind in ("file", "aws", "google", "sql")
    if location.blob_url and not location.blob_url.startswith("file:"):
        assert ".." not in location.blob_url.split("/")
