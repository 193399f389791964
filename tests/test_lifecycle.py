"""Locators, initialize / resume / destroy, and what happens with things that are not stores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jobstore import (
    AWSJobStore,
    Config,
    FileJobStore,
    InvalidLocatorError,
    JobDescription,
    JobStoreError,
    JobStoreExistsException,
    NoSuchJobStoreException,
    UnsafeLocationError,
    create_job_store,
)
from jobstore.locator import parse_locator
from tests.conftest import Backend

MALFORMED_LOCATORS = [
    "",
    "   ",
    "nosuch:thing",
    "aws:",
    "aws:us-east-1",
    "aws:us-east-1:",
    "aws:not-a-region:bucket",
    "aws:us-east-1:UPPERCASE",
    "aws:us-east-1:ab",
    "aws:us-east-1:bucket_with_underscore",
    "aws:us-east-1:192.168.0.1",
    "aws:us-east-1:bucket:../escape",
    "aws:us-east-1:bucket:/abs",
    "aws:us-east-1:bucket:pre fix",
    "gce:us-central1:Bad_Bucket",
    "gce::bucket",
    "gce:us-central1:googbucket",
    "google:project",
    "google:Bad_Project:prefix",
    "google:my-project:a:b",
    "sql:",
    "sql:#name",
    "sql:mysql://host/db#x",
    "sql:postgresql+psycopg://host/db#bad name",
    "sql:postgresql+psycopg://host/db#../x",
    "sql:postgresql+psycopg://host/db';DROP TABLE jobs;--#x",
    "sql:postgresql+psycopg://u:p@host/db;#x",
    "sql:not a url#x",
    "file://otherhost/path",
    "file:",
    "a\x00b",
]


@pytest.mark.parametrize("locator", MALFORMED_LOCATORS)
def test_malformed_locators(locator: str) -> None:
    with pytest.raises(InvalidLocatorError) as caught:
        create_job_store(locator)
    assert str(caught.value)  # says something


def test_locator_non_string() -> None:
    with pytest.raises(InvalidLocatorError):
        parse_locator(None)


def test_password_never_in_messages_or_repr() -> None:
    with pytest.raises(InvalidLocatorError) as caught:
        create_job_store("sql:mysql://alice:s3cret@host/db#x")
    assert "s3cret" not in str(caught.value)
    location = parse_locator("sql:postgresql+psycopg://alice:s3cret@host/db#x")
    assert "s3cret" not in repr(location)
    config = Config(catalog="postgresql+psycopg://alice:s3cret@host/db", sseKey="k" * 32)
    assert "s3cret" not in repr(config) and "k" * 32 not in repr(config)
    assert "s3cret" not in config.to_json() and "k" * 32 not in config.to_json()


def test_locator_forms() -> None:
    assert parse_locator("/tmp/x").locator == "file:/tmp/x"
    assert parse_locator("file:///tmp/x").locator == "file:/tmp/x"
    aws = parse_locator("aws:us-west-2:my-bucket:wf/123")
    assert (aws.blob_url, aws.region, aws.catalog_url) == ("s3://my-bucket/wf/123", "us-west-2", None)
    assert parse_locator("aws:us-west-2:my-bucket").blob_url == "s3://my-bucket"
    assert parse_locator("gce:us-central1:my-bucket:p").blob_url == "gs://my-bucket/p"
    assert parse_locator("google:my-project:toil-bucket").blob_url == "gs://toil-bucket"
    sql = parse_locator("sql:postgresql+psycopg://u@h:5432/db#wf-1")
    assert (sql.catalog_url, sql.store_name, sql.blob_url) == (
        "postgresql+psycopg://u@h:5432/db",
        "wf-1",
        None,
    )


def test_front_doors_check_the_kind(tmp_path: Path) -> None:
    with pytest.raises(InvalidLocatorError):
        FileJobStore("aws:us-east-1:bucket")
    with pytest.raises(InvalidLocatorError):
        AWSJobStore(f"file:{tmp_path}")


def test_cloud_locator_without_catalog_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOBSTORE_CATALOG", raising=False)
    store = create_job_store("aws:us-east-1:some-bucket:prefix")
    with pytest.raises(InvalidLocatorError, match=r"Config\.catalog"):
        store.initialize(Config())


def test_settings_the_locator_would_override_are_refused(tmp_path: Path) -> None:
    """A Config.catalog or Config.blobStore naming another place than the locator implies used to
    be ignored (the locator wins): refused with what to do instead, before anything is created."""
    target = tmp_path / "store"
    with pytest.raises(InvalidLocatorError, match=r"Config\.catalog=.*conflicts.*sql:") as caught:
        FileJobStore(f"file:{target}").initialize(Config(catalog="postgresql+psycopg://u:hunter2@db.example/wf"))
    assert "hunter2" not in str(caught.value)
    with pytest.raises(InvalidLocatorError, match=r"Config\.blobStore='s3://bucket/p' conflicts"):
        FileJobStore(f"file:{target}").initialize(Config(blobStore="s3://bucket/p"))
    with pytest.raises(InvalidLocatorError, match=r"Config\.blobStore='s3://other' conflicts"):
        create_job_store("aws:us-east-1:some-bucket:prefix").initialize(
            Config(catalog=f"sqlite:///{tmp_path}/c.sqlite", blobStore="s3://other")
        )
    assert sorted(os.listdir(tmp_path)) == []  # nothing was created anywhere
    # The same places, spelled otherwise, are no conflict.
    store = FileJobStore(f"file:{target}")
    store.initialize(Config(catalog=f"sqlite:///{target}/./catalog.sqlite", blobStore=f"file://{target}/blobs/"))
    job = store.create(JobDescription(jobName="kept"))
    store.close()
    with pytest.raises(InvalidLocatorError, match=r"Config\.catalog"):
        FileJobStore(f"file:{target}").resume(Config(catalog=f"sqlite:///{tmp_path}/elsewhere.sqlite"))
    again = FileJobStore(f"file:{target}")
    again.resume()
    assert again.load(job.jobStoreID).jobName == "kept"
    assert not (tmp_path / "elsewhere.sqlite").exists()


def test_initialize_twice_and_resume_missing(backend: Backend) -> None:
    store = backend.new_store()
    again = create_job_store(store.locator)
    with pytest.raises(JobStoreExistsException):
        again.initialize(Config(catalog=store.config.catalog, blobStore=store.config.blobStore))
    store.create(JobDescription(jobName="survivor"))
    assert [j.jobName for j in store.jobs()] == ["survivor"]


def test_resume_missing_store(tmp_path: Path) -> None:
    with pytest.raises(NoSuchJobStoreException):
        FileJobStore(f"file:{tmp_path}/never-created").resume()
    assert not (tmp_path / "never-created").exists()


def test_directory_that_is_not_a_store(tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("precious")
    with pytest.raises(NoSuchJobStoreException, match="not a job store"):
        FileJobStore(f"file:{tmp_path}").resume()
    with pytest.raises(UnsafeLocationError):
        FileJobStore(f"file:{tmp_path}").initialize(Config())
    FileJobStore(f"file:{tmp_path}").destroy()  # must not touch what is not ours
    assert (tmp_path / "data.txt").read_text() == "precious"
    assert sorted(os.listdir(tmp_path)) == ["data.txt"]


def test_file_in_place_of_directory(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("x")
    with pytest.raises(InvalidLocatorError):
        FileJobStore(f"file:{tmp_path}/plain").initialize(Config())


def test_destroy_removes_only_that_store(backend: Backend, tmp_path: Path) -> None:
    first = backend.new_store()
    second = backend.new_store()
    source = tmp_path / "f"
    source.write_bytes(b"bytes")
    first.write_file(str(source))
    keep = second.write_file(str(source))
    first.destroy()
    first.destroy()  # idempotent
    with pytest.raises(NoSuchJobStoreException):
        create_job_store(first.locator).resume(Config(catalog=first.config.catalog) if first.config.catalog else None)
    assert second.file_exists(keep)
    with second.read_file_stream(keep) as handle:
        assert handle.read() == b"bytes"


def test_file_store_destroy_removes_directory(tmp_path: Path) -> None:
    store = FileJobStore(f"file:{tmp_path}/wf")
    store.initialize(Config())
    source = tmp_path / "f"
    source.write_bytes(b"x")
    store.write_file(str(source))
    store.destroy()
    assert not (tmp_path / "wf").exists()


def test_permissions_are_private(tmp_path: Path) -> None:
    store = FileJobStore(f"file:{tmp_path}/wf")
    store.initialize(Config())
    assert (os.stat(tmp_path / "wf").st_mode & 0o777) == 0o700
    assert (os.stat(tmp_path / "wf" / "blobs").st_mode & 0o777) == 0o700
    source = tmp_path / "f"
    source.write_bytes(b"x")
    file_id = store.write_file(str(source))
    blob = tmp_path / "wf" / "blobs" / store.file_info(file_id).blob_key
    assert (os.stat(blob).st_mode & 0o777) == 0o400
    store.close()


def test_operations_before_open_are_clear_errors(tmp_path: Path) -> None:
    store = FileJobStore(f"file:{tmp_path}/wf")
    with pytest.raises(JobStoreError, match="initialize"):
        store.create(JobDescription(jobName="x"))
    with pytest.raises(JobStoreError, match="initialize"):
        _ = store.config


def test_sqlite_on_network_file_system_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No NFS mount exists on test machines, so the file-system probe is pointed at a fake answer;
    the decision logic and the message are what is tested."""
    from jobstore.catalog import sqlite_file

    monkeypatch.setattr(sqlite_file, "file_system_type", lambda path: "nfs4")
    with pytest.raises(UnsafeLocationError, match="PostgreSQL"):
        FileJobStore(f"file:{tmp_path}/wf").initialize(Config())
    monkeypatch.setenv(sqlite_file.ALLOW_NETWORK_SQLITE_ENV, "1")
    store = FileJobStore(f"file:{tmp_path}/wf2")
    store.initialize(Config())
    store.close()


def test_file_system_type_reads_proc_mounts(tmp_path: Path) -> None:
    from jobstore.catalog.sqlite_file import file_system_type

    assert file_system_type(str(tmp_path)) not in (None, "")
