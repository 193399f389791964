"""AbstractJobStore: the interface, the logic every store shares, and the seed's camelCase names.

The snake_case methods follow Toil 9's ``AbstractJobStore`` (names and semantics). The camelCase
names follow the original specification (docs in ../shared/seed), which differs from Toil in two
places on purpose: ``delete`` raises ``NoSuchJobException`` for a missing job and ``deleteFile``
raises ``NoSuchFileException`` for a missing file, where Toil's ``delete_job`` / ``delete_file``
are idempotent.
"""

from __future__ import annotations

import random
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import IO, Any

from jobstore.config import Config
from jobstore.errors import (
    ConcurrentFileModificationException,
    InvalidArgumentError,
    InvalidNameError,
    NoSuchFileException,
)
from jobstore.job import JobDescription

#: ``progress(bytes_done, total)`` of one transfer (``total`` None when the source does not say).
ByteProgress = Callable[[int, int | None], None]

#: What :meth:`AbstractJobStore.createJobStore` calls. The concrete stores live in
#: ``jobstore.store``, which imports this module, so this module never imports it back (the layers
#: point one way, tests/test_layers.py): the package's ``__init__``, which every import of a
#: ``jobstore`` module runs first, registers ``jobstore.store.create_job_store`` here.
_store_factory: Callable[[str], AbstractJobStore] | None = None


def register_store_factory(factory: Callable[[str], AbstractJobStore]) -> None:
    """Make ``factory(locator)`` what :meth:`AbstractJobStore.createJobStore` returns."""
    global _store_factory
    _store_factory = factory


@dataclass(frozen=True)
class TransferResult:
    """What became of one transfer of :meth:`AbstractJobStore.import_files` / ``export_files``.

    ``url`` has any password masked. For an import, ``file_id`` is the new file's ID (None for a
    shared import, named by ``shared_file_name``, and for a failure); for an export it is the file
    that was exported. ``error`` is the exception that stopped this transfer, or None.
    """

    url: str
    file_id: str | None = None
    shared_file_name: str | None = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class TransferProgress:
    """A progress report of a bulk transfer, sent from the worker threads as bytes move.

    ``index`` is the transfer's position in the input; ``result`` is set on the last report of each
    transfer (successful or not), so a caller can count finished items.
    """

    index: int
    url: str
    transferred: int
    total: int | None
    result: TransferResult | None = None


#: Shared file names: Toil's rule, plus '.' and '..' refused outright.
SHARED_FILE_NAME = re.compile(r"^[A-Za-z0-9._-]{1,255}$")


def check_shared_file_name(name: object) -> str:
    if not isinstance(name, str) or not SHARED_FILE_NAME.fullmatch(name) or name in (".", ".."):
        raise InvalidNameError(
            f"{name!r} is not a valid shared file name: use 1-255 ASCII letters, digits, '.', '_' or '-' "
            "(no '/', no spaces), and not '.' or '..'."
        )
    return name


class AbstractJobStore(ABC):
    """The job store interface (Toil 9's names and semantics) plus the seed's camelCase names."""

    #: Toil's name for the shared file name rule.
    sharedFileNameRegex = SHARED_FILE_NAME

    def __init__(self, locator: str) -> None:
        self._locator_string = locator

    @property
    def locator(self) -> str:
        return self._locator_string

    @classmethod
    def createJobStore(cls, locator: str) -> AbstractJobStore:
        """A store object for ``locator`` (not yet initialized or resumed)."""
        if _store_factory is None:
            raise RuntimeError(
                "No job store factory is registered: import the jobstore package (its __init__ "
                "registers jobstore.store.create_job_store) or call register_store_factory()."
            )
        return _store_factory(locator)

    # --- life cycle --------------------------------------------------------------------------

    @abstractmethod
    def initialize(self, config: Config) -> None: ...

    @abstractmethod
    def resume(self) -> None: ...

    @abstractmethod
    def destroy(self) -> None: ...

    @property
    @abstractmethod
    def config(self) -> Config: ...

    # --- jobs --------------------------------------------------------------------------------

    @abstractmethod
    def assign_job_id(self, job_description: JobDescription) -> None: ...

    @abstractmethod
    def create_job(self, job_description: JobDescription) -> JobDescription: ...

    @abstractmethod
    def job_exists(self, job_id: str) -> bool: ...

    @abstractmethod
    def load_job(self, job_id: str) -> JobDescription: ...

    @abstractmethod
    def update_job(self, job_description: JobDescription) -> None: ...

    @abstractmethod
    def save_jobs(self, job_descriptions: list[JobDescription]) -> None:
        """Create or overwrite each job (no version check), all in one transaction."""

    @abstractmethod
    def delete_job(self, job_id: str) -> None: ...

    @abstractmethod
    def jobs(self) -> Iterator[JobDescription]: ...

    @abstractmethod
    def batch(self) -> AbstractContextManager[None]: ...

    def modify_job(
        self,
        job_id: str,
        change: Callable[[JobDescription], JobDescription | None],
        *,
        max_attempts: int = 20,
        base_delay: float = 0.01,
    ) -> JobDescription:
        """Load a job, apply ``change`` to it and update it; on a concurrent modification reload
        and apply ``change`` again (bounded attempts, jittered exponential backoff).

        ``change`` may mutate the description in place or return a replacement. It can run more than
        once, so it must compute from the description it is given. Returns the stored description.
        """
        delay = base_delay
        for attempt in range(1, max_attempts + 1):
            job = self.load_job(job_id)
            changed = change(job)
            if changed is not None:
                job = changed
            try:
                self.update_job(job)
                return job
            except ConcurrentFileModificationException:
                if attempt == max_attempts:
                    raise
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 1.0)
        raise AssertionError("unreachable")

    # --- files -------------------------------------------------------------------------------

    @abstractmethod
    def write_file(
        self,
        local_path: str,
        job_id: str | None = None,
        cleanup: bool = False,
        hints: list[str] | None = None,
    ) -> str: ...

    @abstractmethod
    def write_file_stream(
        self,
        job_id: str | None = None,
        cleanup: bool = False,
        hints: list[str] | None = None,
        basename: str | None = None,
        encoding: str | None = None,
        errors: str | None = None,
    ) -> AbstractContextManager[tuple[IO[Any], str]]: ...

    @abstractmethod
    def get_empty_file_store_id(
        self,
        job_id: str | None = None,
        cleanup: bool = False,
        basename: str | None = None,
        hints: list[str] | None = None,
    ) -> str: ...

    @abstractmethod
    def read_file(self, file_id: str, local_path: str, symlink: bool = False) -> None: ...

    @abstractmethod
    def read_file_stream(
        self, file_id: str, encoding: str | None = None, errors: str | None = None
    ) -> AbstractContextManager[IO[Any]]: ...

    @abstractmethod
    def update_file(self, file_id: str, local_path: str) -> None: ...

    @abstractmethod
    def update_file_stream(
        self, file_id: str, encoding: str | None = None, errors: str | None = None
    ) -> AbstractContextManager[IO[Any]]: ...

    @abstractmethod
    def claim_file_id(
        self, file_id: str, job_id: str | None = None, cleanup: bool = False, basename: str | None = None
    ) -> bool:
        """Create an empty file under a caller-chosen ID unless it is taken (then False)."""

    @abstractmethod
    def delete_file(self, file_id: str) -> None: ...

    @abstractmethod
    def file_exists(self, file_id: str) -> bool: ...

    @abstractmethod
    def get_file_size(self, file_id: str) -> int: ...

    @abstractmethod
    def write_shared_file_stream(
        self,
        shared_file_name: str,
        encrypted: bool | None = None,
        encoding: str | None = None,
        errors: str | None = None,
    ) -> AbstractContextManager[IO[Any]]: ...

    @abstractmethod
    def read_shared_file_stream(
        self, shared_file_name: str, encoding: str | None = None, errors: str | None = None
    ) -> AbstractContextManager[IO[Any]]: ...

    @abstractmethod
    def write_logs(self, msg: str | bytes) -> None: ...

    @abstractmethod
    def read_logs(self, callback: Callable[..., Any], read_all: bool = False) -> int: ...

    @abstractmethod
    def get_public_url(self, file_name: str) -> str: ...

    @abstractmethod
    def get_shared_public_url(self, shared_file_name: str) -> str: ...

    @abstractmethod
    def import_file(self, src_uri: str, shared_file_name: str | None = None) -> str | None: ...

    @abstractmethod
    def export_file(self, file_id: str, dst_uri: str) -> None: ...

    # --- bulk import and export --------------------------------------------------------------

    def import_files(
        self,
        urls: Iterable[str | tuple[str, str]],
        *,
        max_workers: int = 4,
        progress: Callable[[TransferProgress], None] | None = None,
        mode: str = "copy",
    ) -> list[TransferResult]:
        """Import several URLs at once (at most ``max_workers`` transfers in flight), each with
        ``import_file``'s ``mode`` ("copy" or "reference").

        Each item is a URL, or ``(url, shared_file_name)``. Returns one TransferResult per item,
        in input order. A failure stops only its own transfer: the files other transfers committed
        stay, and the failed result carries the exception (typed, naming the URL), so the caller
        knows exactly what to retry. ``progress`` is called from the worker threads (it must be
        thread-safe; rich's Progress is).
        """
        items = [(item, None) if isinstance(item, str) else (item[0], item[1]) for item in urls]

        def one(index: int, url: str, shared: str | None, report: ByteProgress | None) -> TransferResult:
            try:
                file_id = self._import_one(url, shared, report, mode)
            except Exception as error:
                return TransferResult(_masked(url), None, shared, error)
            return TransferResult(_masked(url), file_id, shared)

        return _run_bulk([(url, (url, shared)) for url, shared in items], one, max_workers, progress)

    def export_files(
        self,
        pairs: Iterable[tuple[str, str]],
        *,
        max_workers: int = 4,
        progress: Callable[[TransferProgress], None] | None = None,
        http_method: str | None = None,
    ) -> list[TransferResult]:
        """Export several ``(file_id, url)`` pairs at once; results as for :meth:`import_files`."""
        items = list(pairs)

        def one(index: int, file_id: str, url: str, report: ByteProgress | None) -> TransferResult:
            try:
                self._export_one(file_id, url, report, http_method)
            except Exception as error:
                return TransferResult(_masked(url), file_id, None, error)
            return TransferResult(_masked(url), file_id)

        return _run_bulk([(url, (file_id, url)) for file_id, url in items], one, max_workers, progress)

    def _import_one(
        self, url: str, shared_file_name: str | None, progress: ByteProgress | None, mode: str
    ) -> str | None:
        """One import of a bulk call; stores that can report bytes as they move, or import by
        reference, override this."""
        if mode != "copy":
            raise InvalidArgumentError(f"{type(self).__name__} imports by copy only, not {mode!r}.")
        return self.import_file(url, shared_file_name)

    def _export_one(self, file_id: str, url: str, progress: ByteProgress | None, http_method: str | None) -> None:
        """One export of a bulk call; stores that can report bytes (or choose a method) override this."""
        self.export_file(file_id, url)

    # --- maintenance -------------------------------------------------------------------------

    @abstractmethod
    def get_all_file_ids(self) -> list[str]: ...

    @abstractmethod
    def get_file_job_association(self, file_id: str) -> str | None: ...

    @abstractmethod
    def orphaned_file_ids(self) -> list[str]: ...

    @abstractmethod
    def stats(self) -> dict[str, Any]: ...

    # --- the seed's camelCase names ----------------------------------------------------------

    def assignID(self, jobDescription: JobDescription) -> str:
        self.assign_job_id(jobDescription)
        assert jobDescription.jobStoreID is not None
        return jobDescription.jobStoreID

    def create(self, jobDescription: JobDescription) -> JobDescription:
        """Store a new job, assigning an ID first if it has none."""
        return self.create_job(jobDescription)

    def update(self, jobDescription: JobDescription) -> None:
        self.update_job(jobDescription)

    def load(self, jobStoreID: str) -> JobDescription:
        return self.load_job(jobStoreID)

    def exists(self, jobStoreID: str) -> bool:
        return self.job_exists(jobStoreID)

    def delete(self, jobStoreID: str) -> None:
        """Delete a job and its cleanup files; unlike ``delete_job``, a missing job is an error."""
        from jobstore.errors import NoSuchJobException

        if not self.job_exists(jobStoreID):
            raise NoSuchJobException(jobStoreID)
        self.delete_job(jobStoreID)

    def writeFile(self, localFilePath: str, jobStoreID: str | None = None, cleanup: bool = False) -> str:
        return self.write_file(localFilePath, jobStoreID, cleanup)

    def writeFileStream(
        self,
        jobStoreID: str | None = None,
        cleanup: bool = False,
        basename: str | None = None,
        encoding: str | None = None,
        errors: str | None = None,
    ) -> AbstractContextManager[tuple[IO[Any], str]]:
        return self.write_file_stream(jobStoreID, cleanup, basename=basename, encoding=encoding, errors=errors)

    def getEmptyFileStoreID(
        self, jobStoreID: str | None = None, cleanup: bool = False, basename: str | None = None
    ) -> str:
        return self.get_empty_file_store_id(jobStoreID, cleanup, basename)

    def readFile(self, jobStoreFileID: str, localFilePath: str, symlink: bool = False) -> None:
        self.read_file(jobStoreFileID, localFilePath, symlink)

    def readFileStream(
        self, jobStoreFileID: str, encoding: str | None = None, errors: str | None = None
    ) -> AbstractContextManager[IO[Any]]:
        return self.read_file_stream(jobStoreFileID, encoding, errors)

    def updateFile(self, jobStoreFileID: str, localFilePath: str) -> None:
        self.update_file(jobStoreFileID, localFilePath)

    def updateFileStream(
        self, jobStoreFileID: str, encoding: str | None = None, errors: str | None = None
    ) -> AbstractContextManager[IO[Any]]:
        return self.update_file_stream(jobStoreFileID, encoding, errors)

    def deleteFile(self, jobStoreFileID: str) -> None:
        """Delete a file; unlike ``delete_file``, a missing file is an error."""
        if not self.file_exists(jobStoreFileID):
            raise NoSuchFileException(jobStoreFileID)
        self.delete_file(jobStoreFileID)

    def fileExists(self, jobStoreFileID: str) -> bool:
        return self.file_exists(jobStoreFileID)

    def getFileSize(self, jobStoreFileID: str) -> int:
        return self.get_file_size(jobStoreFileID)

    def writeSharedFileStream(
        self,
        sharedFileName: str,
        isProtected: bool | None = None,
        encoding: str | None = None,
        errors: str | None = None,
    ) -> AbstractContextManager[IO[Any]]:
        return self.write_shared_file_stream(sharedFileName, isProtected, encoding, errors)

    def readSharedFileStream(
        self, sharedFileName: str, encoding: str | None = None, errors: str | None = None
    ) -> AbstractContextManager[IO[Any]]:
        return self.read_shared_file_stream(sharedFileName, encoding, errors)

    def writeStatsAndLogging(self, statsAndLoggingString: str | bytes) -> None:
        self.write_logs(statsAndLoggingString)

    def readStatsAndLogging(self, callback: Callable[..., Any], readAll: bool = False) -> int:
        return self.read_logs(callback, readAll)

    def getPublicUrl(self, fileName: str) -> str:
        return self.get_public_url(fileName)

    def getSharedPublicUrl(self, sharedFileName: str) -> str:
        return self.get_shared_public_url(sharedFileName)

    def importFile(self, srcUrl: str, sharedFileName: str | None = None) -> str | None:
        return self.import_file(srcUrl, sharedFileName)

    def exportFile(self, jobStoreFileID: str, dstUrl: str) -> None:
        self.export_file(jobStoreFileID, dstUrl)

    def importFiles(self, srcUrls: Iterable[str | tuple[str, str]], maxWorkers: int = 4) -> list[TransferResult]:
        return self.import_files(srcUrls, max_workers=maxWorkers)

    def exportFiles(self, pairs: Iterable[tuple[str, str]], maxWorkers: int = 4) -> list[TransferResult]:
        return self.export_files(pairs, max_workers=maxWorkers)


def _masked(url: str) -> str:
    from jobstore.redact import redact_url

    return redact_url(url) if isinstance(url, str) else repr(url)


def _run_bulk(
    items: list[tuple[str, tuple[str, str | None]]],
    one: Callable[..., TransferResult],
    max_workers: int,
    progress: Callable[[TransferProgress], None] | None,
) -> list[TransferResult]:
    """Run ``one(index, *args, byte_report)`` for every item on a bounded pool; results in order.

    On KeyboardInterrupt the transfers not yet started are cancelled; those running finish (a
    transfer commits whole or not at all, so nothing half-done is left either way).
    """
    if not isinstance(max_workers, int) or max_workers < 1:
        raise ValueError(f"max_workers must be a positive integer, not {max_workers!r}.")
    if not items:
        return []

    def run(index: int, url: str, args: tuple[str, str | None]) -> TransferResult:
        last: list[Any] = [0, None]  # bytes done and total of the latest report

        def report(done: int, total: int | None) -> None:
            last[:] = [done, total]
            if progress is not None:
                progress(TransferProgress(index, _masked(url), done, total))

        result = one(index, *args, report if progress is not None else None)
        if progress is not None:
            progress(TransferProgress(index, result.url, last[0], last[1], result))
        return result

    from concurrent.futures import ThreadPoolExecutor  # here: a Toil worker never needs it (1 ms to import)

    pool = ThreadPoolExecutor(max_workers=min(max_workers, len(items)), thread_name_prefix="jobstore-transfer")
    try:
        futures = [pool.submit(run, index, url, args) for index, (url, args) in enumerate(items)]
        return [future.result() for future in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
