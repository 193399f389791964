"""A real PgBouncer in transaction pooling mode, in front of the session's PostgreSQL server.

The binary is found, in this order:

1. ``$JOBSTORE_TEST_PGBOUNCER`` (a path to a ``pgbouncer`` executable);
2. ``pgbouncer`` next to the running interpreter, on ``$PATH`` or in ``/usr/sbin`` (Debian's
   package installed by hand);
3. Debian's ``pgbouncer`` package unpacked into ``~/.cache/jobstore-tests/pgbouncer-<version>``:
   fetched the first time with ``apt-get download`` (no root, nothing installed on the system)
   with the two libraries it needs that a minimal Debian may lack (c-ares, libevent), and run
   with ``LD_LIBRARY_PATH`` pointing at them. This is how the README's test command brings
   PgBouncer to a fresh machine.

PgBouncer refuses to run as root, so when we are root it runs as the account PostgreSQL runs as
(``postgres`` or ``nobody``), from a copy of the unpacked files in its own temporary directory
(the cache sits under root's home, which that account cannot read).

The pool is deliberately small (``pool_size``, 20 by default) so that the suite's many client
connections share few server connections, the way a cluster's workers do.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import pytest

from tests.services import SERVER_TMP
from tests.services.binaries import find_binary
from tests.services.health import fail_if_dead, process_lifeline
from tests.services.postgres import PostgresServer, _run_as_user, free_port

BINARY_ENV = "JOBSTORE_TEST_PGBOUNCER"
#: Debian's packages that make a runnable PgBouncer on a Debian without it.
DEBIAN_PACKAGES = ("pgbouncer", "libc-ares2", "libevent-2.1-7")
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jobstore-tests"

_START_TIMEOUT = 30.0


class PgBouncerStartError(RuntimeError):
    """PgBouncer could not be found, fetched or started (the message says why and what to do)."""


def _unpacked_binary(root: Path) -> Path:
    return root / "usr" / "sbin" / "pgbouncer"


def _library_dirs(root: Path) -> list[str]:
    return sorted(glob.glob(str(root / "usr" / "lib" / "*-linux-gnu")))


def _cached_root() -> Path | None:
    for candidate in sorted(CACHE_DIR.glob("pgbouncer-*"), reverse=True):
        if os.access(_unpacked_binary(candidate), os.X_OK):
            return candidate
    return None


def _apt_get_download(apt_get: str, directory: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [apt_get, "download", *DEBIAN_PACKAGES],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def fetch_debian_pgbouncer() -> Path:
    """Download and unpack Debian's PgBouncer into the cache (once); return the unpacked root."""
    cached = _cached_root()
    if cached is not None:
        return cached
    apt_get, dpkg_deb = shutil.which("apt-get"), shutil.which("dpkg-deb")
    if apt_get is None or dpkg_deb is None:
        raise PgBouncerStartError(
            "PgBouncer is not installed and this machine has no apt-get/dpkg-deb to fetch Debian's package. "
            f"Install pgbouncer (it must be on PATH or in /usr/sbin) or point ${BINARY_ENV} at its binary."
        )
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pgbouncer-fetch-", dir=CACHE_DIR) as download_dir:
        # apt's download sandbox user must be able to write here.
        os.chmod(download_dir, 0o777)
        result = _apt_get_download(apt_get, download_dir)
        if result.returncode != 0 and os.geteuid() == 0:
            # A fresh container may have no package lists yet; as root we can fetch them.
            subprocess.run([apt_get, "update"], capture_output=True, timeout=600, check=False)
            result = _apt_get_download(apt_get, download_dir)
        packages = sorted(Path(download_dir).glob("*.deb"))
        if result.returncode != 0 or len(packages) != len(DEBIAN_PACKAGES):
            raise PgBouncerStartError(
                f"`apt-get download {' '.join(DEBIAN_PACKAGES)}` failed (exit code {result.returncode}): "
                f"{(result.stderr or result.stdout).strip()[-600:]}\nRun `apt-get update` if the package lists are "
                f"missing, install pgbouncer, or point ${BINARY_ENV} at a pgbouncer binary."
            )
        version = next(p.name.split("_")[1] for p in packages if p.name.startswith("pgbouncer_"))
        staging = Path(tempfile.mkdtemp(prefix="pgbouncer-unpack-", dir=CACHE_DIR))
        for package in packages:
            subprocess.run([dpkg_deb, "-x", str(package), str(staging)], check=True, timeout=120)
        target = CACHE_DIR / f"pgbouncer-{version.replace(':', '_')}"
        try:
            staging.rename(target)  # atomic: a concurrent session sees all of it or none of it
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # another session unpacked it first
    if not os.access(_unpacked_binary(target), os.X_OK):
        raise PgBouncerStartError(f"Debian's pgbouncer package unpacked into {target} holds no usr/sbin/pgbouncer.")
    return target


def find_pgbouncer() -> tuple[str, list[str]]:
    """The pgbouncer binary and the library directories it needs on ``LD_LIBRARY_PATH``."""
    requested = os.environ.get(BINARY_ENV)
    if requested:
        if not os.access(requested, os.X_OK):
            raise PgBouncerStartError(f"${BINARY_ENV}={requested!r} is not an executable file.")
        return requested, []
    installed = find_binary("pgbouncer") or (
        "/usr/sbin/pgbouncer" if os.access("/usr/sbin/pgbouncer", os.X_OK) else None
    )
    if installed:
        return installed, []
    root = fetch_debian_pgbouncer()
    return str(_unpacked_binary(root)), _library_dirs(root)


class PgBouncerServer:
    """PgBouncer on 127.0.0.1 in transaction pooling mode, every database forwarded to ``postgres``."""

    def __init__(
        self,
        postgres: PostgresServer,
        *,
        pool_size: int = 20,
        max_client_conn: int = 2000,
        round_robin: bool = False,
        min_pool_size: int = 0,
    ) -> None:
        self.postgres = postgres
        self.pool_size = pool_size
        #: Hand consecutive transactions to different server connections (PgBouncer's default
        #: reuses the most recent one, which hides what a busy pool does).
        self.round_robin = round_robin
        self.min_pool_size = min_pool_size
        self.max_client_conn = max_client_conn
        self.port = 0
        self.base_dir = ""
        self.binary = ""
        self._library_path: list[str] = []
        self._process: subprocess.Popen[bytes] | None = None
        self._user = _run_as_user()
        self.lifeline = process_lifeline("PgBouncer", lambda: self._process, lambda: self.log_path)

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the ``postgres`` database, through PgBouncer."""
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        self.lifeline.check()
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    @property
    def admin_dsn(self) -> str:
        """libpq connection string of PgBouncer's admin console (``SHOW POOLS`` and the like)."""
        self.lifeline.check()
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=pgbouncer"

    @property
    def log_path(self) -> str:
        return os.path.join(self.base_dir, "pgbouncer.log")

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> PgBouncerServer:
        if self.running:
            return self
        binary, library_dirs = find_pgbouncer()
        self.base_dir = tempfile.mkdtemp(prefix="jobstore-pgbouncer-", dir=SERVER_TMP)
        os.chmod(self.base_dir, 0o755)
        self.binary, self._library_path = binary, library_dirs
        if self._user is not None and library_dirs:
            self._copy_unpacked_files(Path(binary).parents[2])
        for attempt in range(3):
            self.port = free_port()
            try:
                self._launch()
                return self
            except PgBouncerStartError:
                if attempt == 2 or "Address already in use" not in self._log_tail():
                    raise
        raise AssertionError("unreachable")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)  # "safe shutdown": waits for transactions in flight
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def close(self) -> None:
        self.stop()
        if self.base_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = ""

    def __enter__(self) -> PgBouncerServer:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<PgBouncerServer 127.0.0.1:{self.port} -> {self.postgres!r} {state}>"

    def _copy_unpacked_files(self, root: Path) -> None:
        copy = Path(self.base_dir) / "install"
        shutil.copytree(root / "usr", copy / "usr", symlinks=True)
        for directory, _subdirs, _files in os.walk(copy):
            os.chmod(directory, 0o755)
        self.binary = str(_unpacked_binary(copy))
        self._library_path = _library_dirs(copy)

    def _write_config(self) -> str:
        config = os.path.join(self.base_dir, "pgbouncer.ini")
        with open(config, "w", encoding="utf-8") as out:
            out.write(
                "[databases]\n"
                f"* = host=127.0.0.1 port={self.postgres.port}\n"
                "[pgbouncer]\n"
                "listen_addr = 127.0.0.1\n"
                f"listen_port = {self.port}\n"
                "unix_socket_dir =\n"
                "auth_type = trust\n"
                f"auth_file = {os.path.join(self.base_dir, 'userlist.txt')}\n"
                "admin_users = postgres\n"
                "pool_mode = transaction\n"
                f"default_pool_size = {self.pool_size}\n"
                f"min_pool_size = {self.min_pool_size}\n"
                f"server_round_robin = {int(self.round_robin)}\n"
                f"max_client_conn = {self.max_client_conn}\n"
                f"logfile = {self.log_path}\n"
                "log_connections = 0\n"
                "log_disconnections = 0\n"
            )
        with open(os.path.join(self.base_dir, "userlist.txt"), "w", encoding="utf-8") as out:
            out.write('"postgres" ""\n')
        if self._user is not None:
            for path in (self.base_dir, config, os.path.join(self.base_dir, "userlist.txt")):
                os.chown(path, self._user.pw_uid, self._user.pw_gid)
        return config

    def _log_tail(self, lines: int = 30) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as log:
                return "".join(log.readlines()[-lines:])
        except OSError:
            return "(no log)"

    def _launch(self) -> None:
        config = self._write_config()
        environment = dict(os.environ)
        if self._library_path:
            environment["LD_LIBRARY_PATH"] = os.pathsep.join(
                [*self._library_path, *filter(None, [os.environ.get("LD_LIBRARY_PATH")])]
            )
        user = self._user
        process = subprocess.Popen(
            [self.binary, config],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.base_dir,
            env=environment,
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            extra_groups=[] if user else None,
        )
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise PgBouncerStartError(
                    f"PgBouncer ({self.binary}) exited with code {process.returncode} while starting on port "
                    f"{self.port}. Its log ({self.log_path}) ends with:\n{self._log_tail()}"
                )
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.settimeout(1)
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            if time.monotonic() > deadline:
                process.kill()
                process.wait()
                raise PgBouncerStartError(
                    f"PgBouncer did not listen on 127.0.0.1:{self.port} within {_START_TIMEOUT:.0f} s. "
                    f"Its log ({self.log_path}) ends with:\n{self._log_tail()}"
                )
            time.sleep(0.05)
        self._process = process


_session_server: PgBouncerServer | None = None


@pytest.fixture(scope="session")
def pgbouncer_server(postgres_server: PostgresServer) -> Iterator[PgBouncerServer]:
    """PgBouncer (transaction mode) in front of the session's PostgreSQL. Fails, never skips."""
    global _session_server
    server = PgBouncerServer(postgres_server)
    try:
        server.start()
    except Exception as exc:
        server.close()
        pytest.fail(f"Could not start the test PgBouncer: {exc}", pytrace=False)
    _session_server = server
    try:
        yield server
    finally:
        _session_server = None
        server.close()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    fail_if_dead(item, "pgbouncer_server", _session_server)
