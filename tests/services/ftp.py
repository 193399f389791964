"""A real FTP server for URL import/export tests: pyftpdlib in a thread of the test process.

Two accounts share one root directory: ``anonymous`` may only list and read (``perm="elr"``), so
export tests see a real permission refusal; ``USER``/``PASSWORD`` may also write, rename, delete
and make directories. A third account, ``NORENAME_USER``, may write but not rename, so a client's
fallback for servers that refuse RNFR/RNTO can be tested.

Usable as a session fixture (``ftp_server``) or, outside pytest, as a context manager. If its
thread stops during the session, the next test that needs it fails at once, and so does every later
one (``health.py``).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterator
from types import TracebackType

import pytest

from tests.services import SERVER_TMP
from tests.services.health import fail_if_dead, thread_lifeline

with warnings.catch_warnings():  # pyftpdlib still imports asyncore/asynchat on Python 3.11
    warnings.simplefilter("ignore", DeprecationWarning)
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.log import config_logging
    from pyftpdlib.servers import ThreadedFTPServer

USER = "jobstore"
PASSWORD = "s3cret-pw"  # a throw-away account of a test server
NORENAME_USER = "norename"


class FtpServer:
    """An FTP server on 127.0.0.1 serving ``root``."""

    def __init__(self) -> None:
        self.root = ""
        self.port = 0
        self._tmp = ""
        self._server: ThreadedFTPServer | None = None
        self._thread: threading.Thread | None = None
        self._thread_error: BaseException | None = None
        self._stopping = threading.Event()
        #: Raises ServerDied once the serving thread has stopped without ``close()`` (see health.py).
        self.lifeline = thread_lifeline("FTP", lambda: self._thread, lambda: self._thread_error)

    @property
    def base_url(self) -> str:
        """``ftp://127.0.0.1:PORT`` for the anonymous, read-only account (no trailing slash)."""
        self.lifeline.check()
        return f"ftp://127.0.0.1:{self.port}"

    @property
    def user_url(self) -> str:
        """``ftp://USER:PASSWORD@127.0.0.1:PORT`` for the account that may write."""
        self.lifeline.check()
        return f"ftp://{USER}:{PASSWORD}@127.0.0.1:{self.port}"

    @property
    def norename_url(self) -> str:
        """An account that may write and delete but not rename."""
        self.lifeline.check()
        return f"ftp://{NORENAME_USER}:{PASSWORD}@127.0.0.1:{self.port}"

    def write_file(self, relative_path: str, data: bytes) -> str:
        """Put ``data`` at ``root/relative_path``; return its anonymous URL."""
        path = os.path.join(self.root, relative_path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return f"{self.base_url}/{relative_path}"

    def start(self) -> FtpServer:
        config_logging(level=logging.WARNING)
        self._tmp = tempfile.mkdtemp(prefix="jobstore-ftp-", dir=SERVER_TMP)
        self.root = os.path.join(self._tmp, "root")
        os.mkdir(self.root)
        authorizer = DummyAuthorizer()
        authorizer.add_anonymous(self.root, perm="elr")
        authorizer.add_user(USER, PASSWORD, self.root, perm="elradfmwMT")
        authorizer.add_user(NORENAME_USER, PASSWORD, self.root, perm="elradmw")

        class Handler(FTPHandler):  # type: ignore[misc]  # a subclass, so settings stay ours
            banner = "jobstore test FTP server"
            permit_foreign_addresses = False
            auth_failed_timeout = 0.05  # pyftpdlib waits 3 s after a wrong password by default

        Handler.authorizer = authorizer
        self._server = ThreadedFTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.address[1])
        self._stopping.clear()
        self._thread_error = None
        self._thread = threading.Thread(target=self._serve, name="test-ftp-server", daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        """Poll in short rounds so ``close()`` from another thread is noticed promptly."""
        assert self._server is not None
        try:
            while not self._stopping.is_set():
                self._server.serve_forever(timeout=0.1, blocking=False, handle_exit=False)
        except BaseException as error:  # kept for the death message (health.py)
            self._thread_error = error
            raise
        finally:
            self._server.close_all()

    def close(self) -> None:
        thread, self._thread = self._thread, None  # from here on, the thread's end is no death
        self._stopping.set()
        if thread is not None:
            thread.join(15)
        self._server = None
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = ""

    def __enter__(self) -> FtpServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


#: The session fixture's server, once started (for the fail-fast hook below).
_session_server: FtpServer | None = None


@pytest.fixture(scope="session")
def ftp_server() -> Iterator[FtpServer]:
    """An FTP server for the whole session. Fails (never skips) if it cannot start; if its thread
    stops, every later test that needs it fails at once (it is not restarted: see health.py)."""
    global _session_server
    server = FtpServer()
    try:
        server.start()
    except Exception as exc:
        server.close()
        pytest.fail(f"Could not start the test FTP server: {exc}", pytrace=False)
    _session_server = server
    try:
        yield server
    finally:
        _session_server = None
        server.close()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    fail_if_dead(item, "ftp_server", _session_server)
