"""Typed errors at the edges (job descriptions, Config, locators) and literal file: locators.

Every refusal is a JobStoreError subclass whose message says what to do, raised before anything is
written: the store's jobs are unchanged afterwards.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from jobstore import Config, FileJobStore, JobDescription, JobStoreError, create_job_store
from jobstore.errors import InvalidConfigError, InvalidJobDescriptionError, InvalidLocatorError
from jobstore.locator import parse_locator
from tests.conftest import Backend


def _deep(levels: int) -> list[object]:
    value: list[object] = []
    for _ in range(levels):
        value = [value]
    return value


def _self_containing() -> list[object]:
    value: list[object] = []
    value.append(value)
    return value


BAD_DESCRIPTIONS = {
    "memory-beyond-64-bits": lambda: JobDescription({"memory": 2**64}, "x"),
    "disk-beyond-64-bits": lambda: JobDescription({"disk": 10**30}, "x"),
    "cores-beyond-64-bits": lambda: JobDescription({"cores": 2**70}, "x"),
    "tries-beyond-32-bits": lambda: JobDescription({}, "x", remainingTryCount=2**40),
    "huge-int-attribute": lambda: JobDescription({}, "x", n=10**5000),
    "surrogate-in-name": lambda: JobDescription({}, "bad\udcff"),
    "surrogate-in-unit": lambda: JobDescription({}, "x", "\ud800"),
    "name-too-long": lambda: JobDescription({}, "n" * 256),
    "deep-nesting": lambda: JobDescription({}, "x", tree=_deep(5000)),
    "contains-itself": lambda: JobDescription({}, "x", loop=_self_containing()),
    "non-string-requirement-key": lambda: JobDescription({1: 2}, "x"),
    "non-string-nested-key": lambda: JobDescription({}, "x", d={"a": {2: 3}}),
}


@pytest.mark.parametrize("name", sorted(BAD_DESCRIPTIONS))
def test_bad_descriptions_are_typed_errors_and_nothing_is_written(store: object, name: str) -> None:
    from jobstore import JobStore

    assert isinstance(store, JobStore)
    with pytest.raises(InvalidJobDescriptionError):
        store.create_job(BAD_DESCRIPTIONS[name]())
    assert list(store.jobs()) == []


@pytest.mark.parametrize("version", ["2", 2.0, True, 2**64, -1])
def test_update_with_a_bad_version_is_refused_before_any_commit(store: object, version: object) -> None:
    from jobstore import JobStore

    assert isinstance(store, JobStore)
    job = store.create_job(JobDescription({}, "x"))
    job.state = "running"
    job.version = version
    with pytest.raises(InvalidJobDescriptionError, match="version"):
        store.update_job(job)
    stored = store.load_job(job.jobStoreID)
    assert (stored.state, stored.version) == ("pending", 1)


def test_a_bad_type_is_still_a_type_error(tmp_path: Path) -> None:
    """Toil's callers catch TypeError; the error is a JobStoreError too."""
    store = FileJobStore(f"file:{tmp_path}/s")
    store.initialize(Config())
    with pytest.raises(TypeError) as raised:
        store.create_job(JobDescription({}, "x", handle=object()))
    assert isinstance(raised.value, JobStoreError)
    store.close()


def test_private_attributes_are_stored(backend: Backend) -> None:
    store = backend.new_store()
    job = store.create_job(JobDescription({}, "x", _cache={"a": 1}))
    assert backend.reopen(store).load_job(job.jobStoreID)._cache == {"a": 1}


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"retrycount": 3}, "Valid options: .*retryCount"),
        ({"durability": "bogus"}, "'normal', 'full'"),
        ({"dirMode": 0o600}, "0o700"),
        ({"dirMode": 2**80}, "0o700"),
        ({"poolSize": True}, "must be int"),
        ({"retryCount": 2**64}, "retryCount"),
        ({"blobStore": "file:///x\x00"}, "NUL"),
    ],
)
def test_bad_config_options_are_refused(settings: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidConfigError, match=match):
        Config(**settings)
    config = Config()
    name, value = next(iter(settings.items()))
    with pytest.raises(InvalidConfigError):
        setattr(config, name, value)


def test_options_from_a_newer_version_survive_a_round_trip() -> None:
    config = Config.from_json('{"retryCount": 3, "optionOfTheFuture": [1, 2]}')
    assert config.retryCount == 3
    assert '"optionOfTheFuture": [1, 2]' in config.to_json()


def test_dir_mode_is_exact_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        store = create_job_store(f"sql:sqlite:///{tmp_path}/catalog.sqlite#wf")
        store.initialize(Config(blobStore=f"file://{tmp_path}/a/b/blobs", dirMode=0o750))
        with store.write_file_stream() as (handle, _):
            handle.write(b"x")
    finally:
        os.umask(old)
    for directory, subdirectories, _ in os.walk(tmp_path / "a"):
        for name in subdirectories:
            assert stat.S_IMODE(os.stat(os.path.join(directory, name)).st_mode) == 0o750, name
    store.close()


# --- locators ---------------------------------------------------------------------------------


def test_hash_in_a_file_locator_names_two_stores(tmp_path: Path) -> None:
    one, two = FileJobStore(f"file:{tmp_path}/run#1"), FileJobStore(f"file:{tmp_path}/run#2")
    one.initialize(Config())
    two.initialize(Config())
    for store, payload in ((one, b"one"), (two, b"two")):
        with store.write_file_stream() as (handle, _):
            handle.write(payload)
    assert sorted(os.listdir(tmp_path)) == ["run#1", "run#2"]
    assert os.path.isdir(tmp_path / "run#1" / "blobs") and os.path.isdir(tmp_path / "run#2" / "blobs")
    one.destroy()
    assert not (tmp_path / "run#1").exists()
    (file_id,) = two.get_all_file_ids()
    with two.read_file_stream(file_id) as handle:
        assert handle.read() == b"two"
    two.close()


@pytest.mark.parametrize("path", ["a%2F..%2F..%2Fescape", "a%20b", "q?x=1", "h#frag", "pct%25"])
def test_file_locators_are_literal(tmp_path: Path, path: str) -> None:
    for locator in (f"file:{tmp_path}/{path}", f"file://{tmp_path}/{path}", f"{tmp_path}/{path}"):
        store = create_job_store(locator)
        store.initialize(Config())
        with store.write_file_stream() as (handle, _):
            handle.write(b"x")
        assert os.listdir(tmp_path) == [path]
        assert os.path.isdir(tmp_path / path / "blobs")
        store.destroy()
        assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "locator",
    ["file:/tmp/\ud800", "sql:sqlite:////tmp/\udcff.sqlite#wf", "file:/tmp/" + "n" * 256, "file:/" + "d/" * 2100],
)
def test_unusable_locators_are_typed_errors(locator: str) -> None:
    with pytest.raises(InvalidLocatorError):
        parse_locator(locator)
