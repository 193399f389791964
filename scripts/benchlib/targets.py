"""The target registry: what a benchmark run is pointed at.

A *target* knows how to open a fresh store in a child's work directory (``open``), how to open the
same store again from another process (``attach``, for W10's workers), how to make a job
description, and which workloads it cannot run (with the reason printed in the report).

The jobstore family is generic: ``JobstoreTarget`` is given a locator factory and a Config factory,
so a new backend is one more entry in ``TARGETS``. ``jobstore-postgres``, ``jobstore-s3`` and
``jobstore-gcs`` are registered already; they become available as soon as the options they need are
given (``--catalog``, ``--s3-bucket``, ``--gcs-bucket``) and the servers exist.

Options (``opts``) are a plain JSON dict built by ``bench.py`` from the command line and passed to
every child unchanged.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchlib.raw import RawConcurrentModification, RawCopyStore, RawJob, RawSqliteStore

#: Requirements every benchmark job gets (the extra key shows that arbitrary keys survive).
REQUIREMENTS: dict[str, Any] = {"memory": 2 * 1024**3, "cores": 1, "disk": 2 * 1024**3, "preemptible": False}

JOB_WORKLOADS = frozenset({"W1", "W2", "W3", "W4", "W5", "W6"})
FILE_WORKLOADS = frozenset({"W7", "W8"})
ALL_WORKLOADS = JOB_WORKLOADS | FILE_WORKLOADS | {"W9", "W10", "W11"}


class Session:
    """A store opened inside a child process.

    ``store`` offers the Toil-9-style methods the workloads call. ``handle`` is the JSON-able
    information ``Target.attach`` needs to open the same store from another process.
    """

    def __init__(self, store: Any, handle: dict[str, Any], cas_errors: tuple[type[BaseException], ...] = ()):
        self.store = store
        self.handle = handle
        self.cas_errors = cas_errors

    def new_job(self, i: int) -> Any:
        raise NotImplementedError

    def populate_file_rows(self, job_ids: list[str], rows: int, orphan_fraction: float) -> int:
        """Insert ``rows`` file rows straight into the catalog; return how many are orphans."""
        raise NotImplementedError

    def close(self, destroy: bool) -> None:
        if destroy:
            self.store.destroy()


@dataclass
class Target:
    """Base of all targets. ``skips`` maps a workload key to the reason it is not run."""

    name: str
    description: str
    skips: dict[str, str] = field(default_factory=dict)
    #: Whether a store keeps state outside its work directory (a server's rows or objects), which
    #: only ``Session.close(destroy=True)`` removes.
    keeps_remote_state: bool = False

    def unavailable(self, opts: dict[str, Any]) -> str | None:
        """Why this target cannot run at all here (None when it can). Called in the parent."""
        return None

    def unsupported(self, workload: str) -> str | None:
        return self.skips.get(workload)

    def prepare_environment(self, opts: dict[str, Any]) -> None:
        """Set environment variables the store reads (in the child, before opening; inherited by
        W10's workers)."""

    def open(self, workdir: Path, opts: dict[str, Any]) -> Session:
        raise NotImplementedError

    def attach(self, handle: dict[str, Any], opts: dict[str, Any]) -> Session:
        raise NotImplementedError


# --- Toil --------------------------------------------------------------------------------------


class ToilSession(Session):
    def new_job(self, i: int) -> Any:
        from toil.job import JobDescription

        job = JobDescription(requirements=dict(REQUIREMENTS), jobName="bench", unitName=f"unit-{i}")
        job.counter = 0
        return job

    def populate_file_rows(self, job_ids: list[str], rows: int, orphan_fraction: float) -> int:
        raise NotImplementedError("Toil's FileJobStore has no catalog")


class ToilTarget(Target):
    def unavailable(self, opts: dict[str, Any]) -> str | None:
        if importlib.util.find_spec("toil") is None:
            return "toil is not installed (pip install toil==9.6.0)"
        try:
            importlib.import_module("toil.jobStores.fileJobStore")
        except Exception as exc:  # any import failure means: not usable here
            return f"toil is installed but does not import: {exc!r}"
        return None

    def open(self, workdir: Path, opts: dict[str, Any]) -> Session:
        from toil.common import Config
        from toil.jobStores.fileJobStore import FileJobStore

        path = str(workdir / "toil-jobstore")
        store = FileJobStore(path)
        store.initialize(Config())
        return ToilSession(store, {"path": path})

    def attach(self, handle: dict[str, Any], opts: dict[str, Any]) -> Session:
        from toil.jobStores.fileJobStore import FileJobStore

        store = FileJobStore(handle["path"])
        store.resume()
        return ToilSession(store, handle)


class AdapterTarget(ToilTarget):
    """jobstore as a Toil user meets it: ``jobstore.toil.adapter.ToilJobStore`` (what a
    ``jobstore:`` locator opens), Toil's own ``JobDescription`` pickled into the catalog, and
    Toil's ``Config`` recorded at ``initialize`` the way Toil's leader does."""

    def unavailable(self, opts: dict[str, Any]) -> str | None:
        missing = super().unavailable(opts)
        if missing is None and importlib.util.find_spec("jobstore.toil.adapter") is None:
            return "jobstore.toil.adapter is not importable"
        return missing

    def open(self, workdir: Path, opts: dict[str, Any]) -> Session:
        from toil.common import Config

        from jobstore.toil.adapter import ToilJobStore

        locator = f"file:{workdir / 'adapter-store'}"
        store = ToilJobStore(locator)
        config = Config()
        config.jobStore = f"jobstore:{locator}"
        store.initialize(config)
        return ToilSession(store, {"locator": locator}, (_toil_concurrent_modification(),))

    def attach(self, handle: dict[str, Any], opts: dict[str, Any]) -> Session:
        from jobstore.toil.adapter import ToilJobStore

        store = ToilJobStore(handle["locator"])
        store.resume()
        return ToilSession(store, handle, (_toil_concurrent_modification(),))


def _toil_concurrent_modification() -> type[BaseException]:
    from toil.jobStores.abstractJobStore import ConcurrentFileModificationException

    return ConcurrentFileModificationException  # type: ignore[no-any-return]


# --- jobstore (generic over locator + Config) ---------------------------------------------------

LocatorFactory = Callable[[Path, dict[str, Any]], str]
ConfigFactory = Callable[[str, Path, dict[str, Any]], dict[str, Any]]


class JobstoreSession(Session):
    def __init__(self, store: Any, handle: dict[str, Any], module: Any) -> None:
        super().__init__(store, handle, (module.ConcurrentFileModificationException,))
        self.module = module

    def new_job(self, i: int) -> Any:
        return self.module.JobDescription(
            requirements=dict(REQUIREMENTS), jobName="bench", unitName=f"unit-{i}", counter=0
        )

    def populate_file_rows(self, job_ids: list[str], rows: int, orphan_fraction: float) -> int:
        from benchlib.catalog_rows import populate_jobstore_file_rows

        return populate_jobstore_file_rows(self.store, self.handle, job_ids, rows, orphan_fraction)


@dataclass
class JobstoreTarget(Target):
    """jobstore with some catalog and some blob store.

    ``locator`` builds the locator string for a fresh store in a work directory; ``config`` builds
    the ``jobstore.Config`` keyword arguments; ``store_class`` names the class in ``jobstore``;
    ``requires`` lists option names that must be set (with the hint shown when they are not).
    """

    locator: LocatorFactory = lambda workdir, opts: str(workdir / "store")
    config: ConfigFactory = lambda locator, workdir, opts: {}
    store_class: str = "FileJobStore"
    requires: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # option name -> environment variable
    #: Hold the leader lease (every write fenced), and fence W10's workers with its attempt.
    fenced: bool = False

    def unavailable(self, opts: dict[str, Any]) -> str | None:
        try:
            module = importlib.import_module("jobstore")
            getattr(module, self.store_class)
        except Exception as exc:  # not there yet, or broken: report and skip
            return f"jobstore.{self.store_class} is not importable: {exc!r}"
        for option, hint in self.requires.items():
            if not opts.get(option):
                return hint
        return None

    def prepare_environment(self, opts: dict[str, Any]) -> None:
        for option, variable in self.env.items():
            if opts.get(option):
                os.environ[variable] = str(opts[option])

    def _open(self, locator: str) -> tuple[Any, Any]:
        module = importlib.import_module("jobstore")
        return module, getattr(module, self.store_class)(locator)

    def open(self, workdir: Path, opts: dict[str, Any]) -> Session:
        locator = self.locator(workdir, opts)
        module, store = self._open(locator)
        settings = {"jobStore": locator, **self.config(locator, workdir, opts)}
        store.initialize(module.Config(**settings))
        if settings.get("catalog") and not locator.startswith("sql:"):
            # aws:/gce: locators do not name their catalog: a worker resuming from the locator
            # alone (W10) finds it in the environment, as a Toil worker would.
            os.environ["JOBSTORE_CATALOG"] = str(settings["catalog"])
        handle = {"locator": locator, "workdir": str(workdir), **settings}
        if self.fenced:
            handle["lease_attempt"] = store.acquire_leader_lease(seconds=3600).attempt
        return JobstoreSession(store, handle, module)

    def attach(self, handle: dict[str, Any], opts: dict[str, Any]) -> Session:
        module, store = self._open(handle["locator"])
        store.resume()
        if handle.get("lease_attempt"):
            store.require_lease_attempt(handle["lease_attempt"])
        return JobstoreSession(store, handle, module)


def _unique(prefix: str = "bench") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _catalog_or_sqlite(workdir: Path, opts: dict[str, Any]) -> str:
    """The catalog for object-store targets: ``--catalog`` if given, else a SQLite file here."""
    return str(opts.get("catalog") or f"sqlite:///{workdir / 'catalog.sqlite'}")


# --- raw floors ---------------------------------------------------------------------------------


class RawSqliteSession(Session):
    def new_job(self, i: int) -> Any:
        return RawJob(dict(REQUIREMENTS), "bench", f"unit-{i}", counter=0)

    def populate_file_rows(self, job_ids: list[str], rows: int, orphan_fraction: float) -> int:
        store: RawSqliteStore = self.store
        return store.populate_file_rows(job_ids, rows, orphan_fraction)


class RawSqliteTarget(Target):
    def open(self, workdir: Path, opts: dict[str, Any]) -> Session:
        path = workdir / "raw.sqlite"
        return RawSqliteSession(RawSqliteStore(path), {"path": str(path)}, (RawConcurrentModification,))

    def attach(self, handle: dict[str, Any], opts: dict[str, Any]) -> Session:
        store = RawSqliteStore(Path(handle["path"]))
        return RawSqliteSession(store, handle, (RawConcurrentModification,))


class RawCopySession(Session):
    def new_job(self, i: int) -> Any:
        raise NotImplementedError("raw-copy has no jobs")


class RawCopyTarget(Target):
    def open(self, workdir: Path, opts: dict[str, Any]) -> Session:
        root = workdir / "raw-copy"
        return RawCopySession(RawCopyStore(root), {"root": str(root)})

    def attach(self, handle: dict[str, Any], opts: dict[str, Any]) -> Session:
        return RawCopySession(RawCopyStore(Path(handle["root"])), handle)


# --- the registry -------------------------------------------------------------------------------

_NO_CATALOG = "Toil's FileJobStore has no catalog to query: orphan detection is a directory walk"
_NO_CAS = "Toil's FileJobStore has no compare-and-swap: concurrent updates silently overwrite"
_NATIVE_QUERY = "catalog queries are the native API's (target jobstore); Toil's interface has none"
_ADAPTER_NO_CAS = "the adapter keeps Toil's contract: update_job overwrites, without compare-and-swap"


def _postgres_locator(workdir: Path, opts: dict[str, Any]) -> str:
    return f"sql:{opts['catalog']}#{_unique()}"


def _s3_locator(workdir: Path, opts: dict[str, Any]) -> str:
    return f"aws:{opts.get('aws_region') or 'us-east-1'}:{opts['s3_bucket']}:{_unique()}"


def _gcs_locator(workdir: Path, opts: dict[str, Any]) -> str:
    return f"gce:{opts.get('gcs_region') or 'us-central1'}:{opts['gcs_bucket']}:{_unique()}"


_POSTGRES = JobstoreTarget(
    "jobstore-postgres",
    "jobstore on a PostgreSQL catalog (--catalog or $JOBSTORE_BENCH_POSTGRES) + local blobs",
    locator=_postgres_locator,
    config=lambda loc, workdir, opts: {
        "catalog": opts["catalog"],
        "blobStore": f"file://{workdir / 'blobs'}",
    },
    store_class="JobStore",
    keeps_remote_state=True,
    requires={"catalog": "needs a PostgreSQL URL: --catalog URL or $JOBSTORE_BENCH_POSTGRES"},
)

TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        JobstoreTarget("jobstore", "jobstore FileJobStore: SQLite catalog + local blob directory"),
        JobstoreTarget(
            "jobstore-fenced",
            "target jobstore holding the leader lease: every write checks the fencing token",
            fenced=True,
        ),
        ToilTarget(
            "toil",
            "Toil 9.6 FileJobStore (the baseline)",
            skips={"W9": _NO_CATALOG, "W10": _NO_CAS},
        ),
        AdapterTarget(
            "jobstore-adapter",
            "jobstore through its Toil adapter (a jobstore:file: locator, Toil's JobDescription)",
            skips={"W9": _NATIVE_QUERY, "W10": _ADAPTER_NO_CAS},
        ),
        RawSqliteTarget(
            "raw-sqlite",
            "sqlite3 directly: WAL, synchronous=NORMAL, one-row commits, one transaction per batch; "
            "W7: a plain file per blob and its row committed per operation",
            skips={
                "W8": "raw-sqlite's files are small-file floors; raw-copy is W8's",
                "W11": "raw-sqlite has no imports",
            },
        ),
        RawCopyTarget(
            "raw-copy",
            "plain files: shutil.copyfile (and cp), open/read/write",
            skips={w: "raw-copy has no jobs or catalog" for w in ALL_WORKLOADS - FILE_WORKLOADS},
        ),
        _POSTGRES,
        dataclasses.replace(
            _POSTGRES,
            name="jobstore-postgres-fenced",
            description="target jobstore-postgres holding the leader lease: every write checks the fencing token",
            fenced=True,
        ),
        JobstoreTarget(
            "jobstore-s3",
            "jobstore on S3 blobs (--s3-bucket, --s3-endpoint) + SQLite catalog (or --catalog)",
            locator=_s3_locator,
            config=lambda loc, workdir, opts: {
                "catalog": _catalog_or_sqlite(workdir, opts),
                "awsRegion": opts.get("aws_region") or "us-east-1",
                "awsEndpointURL": opts.get("s3_endpoint"),
            },
            store_class="AWSJobStore",
            keeps_remote_state=True,
            requires={"s3_bucket": "needs --s3-bucket (and --s3-endpoint for a local S3 server)"},
            skips={"W9": "W9 rows are inserted through the catalog; run it on jobstore/-postgres"},
        ),
        JobstoreTarget(
            "jobstore-gcs",
            "jobstore on GCS blobs (--gcs-bucket, --gcs-endpoint) + SQLite catalog (or --catalog)",
            locator=_gcs_locator,
            config=lambda loc, workdir, opts: {
                "catalog": _catalog_or_sqlite(workdir, opts),
                "googleProject": opts.get("gcs_project"),
            },
            store_class="GoogleJobStore",
            keeps_remote_state=True,
            requires={"gcs_bucket": "needs --gcs-bucket (and --gcs-endpoint for a local GCS server)"},
            env={"gcs_endpoint": "STORAGE_EMULATOR_HOST"},
            skips={"W9": "W9 rows are inserted through the catalog; run it on jobstore/-postgres"},
        ),
    )
}


def get_target(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise SystemExit(f"unknown target {name!r}; known: {', '.join(TARGETS)}") from None


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
