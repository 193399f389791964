"""Toil's own job store conformance suite (``AbstractJobStoreTest.Test`` from the Toil wheel), run
against the adapter on SQLite + local blobs and on PostgreSQL + S3.

Every generic test Toil runs against its own stores runs here unchanged, including the generated
import/export tests (file:// sources and destinations, Toil's FileJobStoreTest being the only
"other" store available without cloud credentials) and the ``@slow`` ones.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import tempfile
import uuid
from typing import Any
from urllib.parse import urlparse

import pytest
from toil.test.jobStores.jobStoreTest import AbstractJobStoreTest

from jobstore import Config
from jobstore.toil.adapter import ToilJobStore


def teardown_module() -> None:
    AbstractJobStoreTest.Test.cleanUpExternalStores()


class _AdapterConformance(AbstractJobStoreTest.Test):  # type: ignore[misc]
    """The parts every backend shares: local external stores for import/export, hashing."""

    def _prepareTestFile(self, dirPath: str, size: int | None = None) -> Any:
        path = os.path.join(dirPath, f"testfile_{uuid.uuid4()}")
        url = f"file://{path}"
        if size is None:
            return url
        content = os.urandom(size)
        with open(path, "wb") as handle:
            handle.write(content)
        return url, hashlib.md5(content).hexdigest()

    def _hashTestFile(self, url: str) -> str:
        with open(urlparse(url).path, "rb") as handle:
            return hashlib.md5(handle.read()).hexdigest()

    def _createExternalStore(self) -> str:
        return tempfile.mkdtemp(prefix="toil-external-")

    def _cleanUpExternalStore(self, dirPath: str) -> None:
        shutil.rmtree(dirPath, ignore_errors=True)

    def testImportFtpFile(self) -> None:
        """Toil's own test, with one change: its stub FTP server (``stubserver``) opens the data
        connection's port at the control port + 2 without checking that it is free, and under
        ``pytest -n 2``, among the other test servers, it sometimes was not (EADDRINUSE in the stub,
        a bare EOF in the client). Here the control port is one whose + 2 is free when chosen."""
        from stubserver import FTPStubServer

        ftpfile = {"name": "foo", "content": "foo bar baz qux"}
        for _ in range(20):
            ftp = FTPStubServer(0)
            ftp.run()
            port = ftp.server.server_address[1]
            if _port_is_free(port + 2):
                break
            ftp.stop()
        else:
            raise AssertionError("no control port with a free data port after 20 tries")
        try:
            ftp.add_file(**ftpfile)
            url = f"ftp://user1:passwd@localhost:{port}/{ftpfile['name']}"
            with self.jobstore_initialized.read_file_stream(self.jobstore_initialized.import_file(url)) as readable:
                imported = readable.read()
            self.assertEqual(imported.decode("utf-8") if isinstance(imported, bytes) else imported, ftpfile["content"])
        finally:
            ftp.stop()


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class TestToilConformanceSQLiteLocal(_AdapterConformance):
    """jobstore:file:/dir — SQLite catalog and local blobs in one directory."""

    root: str

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.root = tempfile.mkdtemp(prefix="toil-conformance-")

    @classmethod
    def tearDownClass(cls) -> None:
        shutil.rmtree(cls.root, ignore_errors=True)
        super().tearDownClass()

    def _createJobStore(self) -> ToilJobStore:
        return ToilJobStore(f"file:{os.path.join(self.root, self.namePrefix)}")

    def _corruptJobStore(self) -> None:
        # Lose every blob behind the catalog's back.
        shutil.rmtree(os.path.join(self.root, self.namePrefix, "blobs"))


class TestToilConformancePostgresS3(_AdapterConformance):
    """jobstore:sql:postgresql+psycopg://...#NAME — PostgreSQL catalog, S3 (SeaweedFS) blobs."""

    servers: dict[str, Any] = {}

    @pytest.fixture(autouse=True)
    def _servers(self, postgres_server: Any, s3_server: Any) -> None:
        type(self).servers = {"postgres": postgres_server, "s3": s3_server}

    def _settings(self) -> Config:
        settings: Config = self.servers["s3"].config()
        settings.blobStore = f"s3://jobstore-tests/toil-{self.namePrefix}"
        return settings

    def _createJobStore(self) -> ToilJobStore:
        return ToilJobStore(f"sql:{self.servers['postgres'].url}#{self.namePrefix}", self._settings())

    def _corruptJobStore(self) -> None:
        client = self.servers["s3"].boto3_client()
        listing = client.list_objects_v2(Bucket="jobstore-tests", Prefix=f"toil-{self.namePrefix}/")
        for item in listing.get("Contents", []):
            client.delete_object(Bucket="jobstore-tests", Key=item["Key"])
