"""PostgreSQL-specific behaviour: restarts, concurrent migrations, pool settings, secrets, many stores."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from jobstore import Config, JobDescription, JobStore, create_job_store
from jobstore.catalog import Catalog
from jobstore.catalog.migrate import head_revision, upgrade
from jobstore.errors import CatalogError, CatalogUnavailableError


def _store(server: Any, tmp_path: Path, *, catalog_url: str | None = None, **config: Any) -> JobStore:
    url = catalog_url or server.url
    store = create_job_store(f"sql:{url}#wf-{uuid.uuid4().hex[:10]}")
    store.initialize(Config(blobStore=f"file://{tmp_path}/blobs-{uuid.uuid4().hex[:6]}", **config))
    return store


def test_restart_between_operations_costs_one_retry(postgres_server: Any, tmp_path: Path) -> None:
    store = _store(postgres_server, tmp_path)
    job = store.create(JobDescription(jobName="before"))
    postgres_server.stop()
    try:
        postgres_server.start()
        # The pooled connection is dead; pre-ping (and the retry loop) replace it transparently.
        loaded = store.load(job.jobStoreID)
        loaded.state = "running"
        store.update(loaded)
        assert store.load(job.jobStoreID).state == "running"
    finally:
        if not postgres_server.running:
            postgres_server.start()


def _upgrade(url: str, queue: Any) -> None:
    try:
        catalog = Catalog(url)
        before, after = upgrade(catalog.engine)
        queue.put(("ok", before, after))
    except BaseException as error:  # reported to the parent
        queue.put(("error", repr(error), None))


def test_concurrent_upgrades_serialise_on_the_advisory_lock(postgres_server: Any) -> None:
    url = postgres_server.new_database(f"migrate_{uuid.uuid4().hex[:8]}")
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=_upgrade, args=(url, queue)) for _ in range(4)]
    for process in processes:
        process.start()
    results = [queue.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(60)
    assert all(result[0] == "ok" for result in results), results
    assert all(result[2] == head_revision() for result in results)
    # Exactly one of them did the work; the others found it done.
    assert sorted(str(result[1]) for result in results).count("None") == 1
    catalog = Catalog(url)
    assert catalog.schema_state(url) == "current"
    catalog.dispose()


def test_upgrade_sql_prints_postgres_ddl(postgres_server: Any) -> None:
    # A database of its own: `--sql` prints only what is pending, and the shared one is upgraded.
    url = postgres_server.new_database("upgrade_sql_" + uuid.uuid4().hex[:8])
    result = subprocess.run(
        [sys.executable, "-m", "jobstore", "db", "upgrade", "--sql", f"sql:{url}#x"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "CREATE TABLE jobs" in result.stdout and "BIGINT" in result.stdout
    assert "jobstore_alembic_version" in result.stdout


def test_pool_size_from_config_and_url(postgres_server: Any, tmp_path: Path) -> None:
    store = _store(postgres_server, tmp_path, poolSize=2)
    assert store.catalog.engine.pool.size() == 2  # type: ignore[attr-defined]
    sized = Catalog(f"{postgres_server.url}?pool_size=7")
    assert sized.engine.pool.size() == 7  # type: ignore[attr-defined]
    assert "pool_size" not in str(sized.engine.url)
    sized.dispose()
    store.close()


def test_passwords_never_shown(postgres_server: Any, tmp_path: Path) -> None:
    """Trust authentication accepts any password, so a URL with one works and must be masked."""
    with_password = str(postgres_server.url).replace("postgres@", "postgres:hunter2secret@")
    store = _store(postgres_server, tmp_path, catalog_url=with_password)
    shown = [repr(store), repr(store.catalog), store.config.to_json(), repr(store.config), store.locator]
    shown.append(repr(create_job_store(store.locator)))
    assert not any("hunter2secret" in item for item in shown[:-2] + shown[-1:])
    unreachable = with_password.replace(f":{postgres_server.port}/", ":1/")
    broken = create_job_store(f"sql:{unreachable}#x")
    with pytest.raises(Exception) as caught:
        broken.resume()
    assert "hunter2secret" not in str(caught.value)
    store.close()


def test_many_stores_in_one_database_are_isolated(postgres_server: Any, tmp_path: Path) -> None:
    stores = [_store(postgres_server, tmp_path) for _ in range(3)]
    source = tmp_path / "f"
    source.write_bytes(b"data")
    ids = []
    for index, store in enumerate(stores):
        job = store.create(JobDescription(jobName=f"store{index}"))
        ids.append((job.jobStoreID, store.write_file(str(source), job.jobStoreID)))
        store.write_logs(f"log{index}")
    stores[1].destroy()
    for index in (0, 2):
        _, file_id = ids[index]
        assert [j.jobName for j in stores[index].jobs()] == [f"store{index}"]
        assert stores[index].file_exists(file_id)
        received: list[bytes] = []
        stores[index].read_logs(lambda s, sink=received: sink.append(s.read()))
        assert received == [f"log{index}".encode()]
    engine = stores[0].catalog.engine
    with engine.connect() as connection:
        names = set(connection.execute(text("SELECT name FROM stores")).scalars())
    assert stores[0].locator.split("#")[1] in names and stores[1].locator.split("#")[1] not in names
    for store in (stores[0], stores[2]):
        store.close()


def test_a_refused_login_is_reported_at_once_with_the_servers_words(postgres_server: Any, tmp_path: Path) -> None:
    """A database that does not exist (like a wrong password) is not an outage: no retries, and the
    message carries the server's own reason."""
    url = postgres_server.url.rsplit("/", 1)[0] + "/no_such_database_here"
    store = create_job_store(f"sql:{url}#wf")
    with pytest.raises(CatalogError) as caught:
        store.initialize(Config(blobStore=f"file://{tmp_path}/blobs"))
    assert 'database "no_such_database_here" does not exist' in str(caught.value)
    assert "refused the login" in str(caught.value)
    # Retries that run out end as CatalogUnavailableError ("failed 8 times"); a refusal is not retried.
    assert not isinstance(caught.value, CatalogUnavailableError)
