"""The behaviour suite's backends: every test that takes ``store`` or ``backend`` runs on each,
and every test that takes ``store`` runs both outside and inside ``batch()``.

A backend is a catalog plus a blob store. Each one builds fresh, initialized stores and can open a
second instance of the same store (the leader/worker view). Servers (PostgreSQL, S3, GCS) are
started by session fixtures in ``tests/services``; a backend whose server cannot start fails its
tests, it never skips them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from jobstore import Config, JobStore, create_job_store
from tests.in_batch import EveryCallInABatch

#: The real servers, as session fixtures (each started once, on demand, on 127.0.0.1).
pytest_plugins = [
    "tests.services.postgres",
    "tests.services.pgbouncer",
    "tests.services.s3",
    "tests.services.gcs",
    "tests.services.http",
    "tests.services.ftp",
    "tests.temp_leftovers",
]


@dataclass
class Backend:
    """Makes stores on one catalog/blob combination."""

    name: str
    make_locator: Callable[[], tuple[str, Config]]
    opened: list[JobStore] = field(default_factory=list)

    def new_store(self, **config_overrides: Any) -> JobStore:
        locator, config = self.make_locator()
        for key, value in config_overrides.items():
            setattr(config, key, value)
        store = create_job_store(locator)
        store.initialize(config)
        self.opened.append(store)
        return store

    def reopen(self, store: JobStore, **config_overrides: Any) -> JobStore:
        """A second, independent instance of the same store, resumed from its locator alone."""
        other = create_job_store(store.locator)
        other.resume(self.reopen_config(store, **config_overrides))
        self.opened.append(other)
        return other

    def reopen_config(self, store: JobStore, **config_overrides: Any) -> Config | None:
        """What ``resume()`` of another handle on ``store`` needs (its catalog, for cloud locators)."""
        if config_overrides or store.config.catalog:
            return Config(catalog=store.config.catalog, **config_overrides)
        return None

    def close_all(self) -> None:
        for store in self.opened:
            store.close()
        self.opened.clear()


def _sqlite_local(tmp_path_factory: pytest.TempPathFactory) -> Callable[[], tuple[str, Config]]:
    def make() -> tuple[str, Config]:
        directory = tmp_path_factory.mktemp("store") / "js"
        return f"file:{directory}", Config()

    return make


def _postgres_catalog(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, blobs: str, *, pooled: bool = False
) -> Callable[[], tuple[str, Config]]:
    """PostgreSQL directly, or (``pooled``) through PgBouncer in transaction mode, spelled as a
    user behind PgBouncer must spell it: server-side prepared statements off."""
    server = request.getfixturevalue("pgbouncer_server" if pooled else "postgres_server")
    catalog_url = f"{server.url}?prepare_threshold=none" if pooled else server.url
    blob_factory = _blob_url_factory(request, tmp_path_factory, blobs)

    def make() -> tuple[str, Config]:
        name = "wf-" + uuid.uuid4().hex[:12]
        blob_url, config = blob_factory()
        config.blobStore = blob_url
        return f"sql:{catalog_url}#{name}", config

    return make


def _sqlite_catalog(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, blobs: str
) -> Callable[[], tuple[str, Config]]:
    blob_factory = _blob_url_factory(request, tmp_path_factory, blobs)

    def make() -> tuple[str, Config]:
        catalog = tmp_path_factory.mktemp("catalog") / "catalog.sqlite"
        blob_url, config = blob_factory()
        config.blobStore = blob_url
        return f"sql:sqlite:///{catalog}#wf", config

    return make


def _blob_url_factory(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, blobs: str
) -> Callable[[], tuple[str, Config]]:
    if blobs == "local":
        return lambda: (f"file://{tmp_path_factory.mktemp('blobs') / 'b'}", Config())
    if blobs == "s3":
        server = request.getfixturevalue("s3_server")
        bucket = "jobstore-tests"
        return lambda: (f"s3://{bucket}/{uuid.uuid4().hex[:12]}", server.config())
    if blobs == "gcs":
        server = request.getfixturevalue("gcs_server")
        bucket = "jobstore-tests"
        return lambda: (f"gs://{bucket}/{uuid.uuid4().hex[:12]}", server.config())
    raise AssertionError(blobs)


#: Every catalog x blob store combination the suite runs on. Extend here, nowhere else.
#: ``pgbouncer-local`` is PostgreSQL through PgBouncer in transaction pooling mode.
BACKENDS = [
    "sqlite-local",
    "postgres-local",
    "sqlite-s3",
    "postgres-s3",
    "sqlite-gcs",
    "postgres-gcs",
    "pgbouncer-local",
]
if os.environ.get("JOBSTORE_TEST_BACKENDS"):
    BACKENDS = os.environ["JOBSTORE_TEST_BACKENDS"].split(",")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    name: str = request.param
    if name == "sqlite-local":
        make = _sqlite_local(tmp_path_factory)
    else:
        catalog, blobs = name.split("-", 1)
        if catalog in ("postgres", "pgbouncer"):
            make = _postgres_catalog(request, tmp_path_factory, blobs, pooled=catalog == "pgbouncer")
        else:
            make = _sqlite_catalog(request, tmp_path_factory, blobs)
    backend = Backend(name, make)
    yield backend
    backend.close_all()


@pytest.fixture(params=["direct", "in-batch"])
def store(backend: Backend, request: pytest.FixtureRequest) -> JobStore:
    """A fresh, initialized store on the current backend: as it is, and with every operation in
    its own ``batch()`` (``tests/in_batch.py``), so each behaviour holds on both paths."""
    store = backend.new_store()
    if request.param == "in-batch":
        return cast(JobStore, EveryCallInABatch(store))
    return store
