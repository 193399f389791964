"""``ftp://[user[:password]@]host[:port]/path`` URLs, through ftplib (binary mode, passive).

The path is taken relative to the login directory, as curl and wget do (for an anonymous server
that directory is its root). Without ``user@`` the login is anonymous.

Reads verify two things at the end: the byte count against ``SIZE``, and the server's own verdict
on the transfer (226 means complete; 426 means it aborted, whatever arrived). Writes upload to a
temporary name beside the destination and rename it (RNFR/RNTO), so the destination never holds a
partial file. Servers that refuse a temporary name get a direct upload; servers that refuse the
rename get a direct upload too when the data can be re-read from the start, and a clear error
otherwise. ``executable=True`` is attempted with ``SITE CHMOD 755``, which many servers ignore.

There is no retry loop here: FTP transient errors (4xx) are reported as URLAccessError; the
design allows one hand-written retry loop in the code base and FTP does not justify it.
"""

from __future__ import annotations

import ftplib
import posixpath
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import IO, NoReturn
from urllib.parse import unquote, urlsplit

from jobstore.errors import (
    TransferIntegrityError,
    UnsupportedURLError,
    URLAccessError,
    URLForbiddenError,
    URLNotFoundError,
)
from jobstore.redact import redact_url
from jobstore.urls.base import (
    CHUNK_SIZE,
    ExactReader,
    UrlHandler,
    UrlSource,
    VerifyingReader,
    basename_of,
    reader_position,
)

TIMEOUT = 60.0
_DENIED_WORDS = ("permission", "privilege", "denied", "not allowed", "forbidden", "access")


def _raise_ftp_error(url: str, action: str, error: BaseException) -> NoReturn:
    """Translate an ftplib/socket exception: the one place this module does it."""
    where = redact_url(url)
    reply = redact_url(str(error)).strip()
    code = reply[:3]
    if isinstance(error, ftplib.error_perm):
        if code in ("530", "532"):
            raise URLForbiddenError(f"{where}: cannot {action}: the login was refused ({reply}).") from error
        if code == "550":
            if any(word in reply.lower() for word in _DENIED_WORDS):
                raise URLForbiddenError(f"{where}: cannot {action}: permission denied ({reply}).") from error
            raise URLNotFoundError(f"{where}: cannot {action}: no such file ({reply}).") from error
        if code == "553":
            raise URLForbiddenError(f"{where}: cannot {action}: the server refuses that name ({reply}).") from error
        raise URLAccessError(f"{where}: cannot {action}: the server refused ({reply}).") from error
    if isinstance(error, ftplib.error_temp):
        raise URLAccessError(f"{where}: cannot {action}: temporary server failure ({reply}). Retry later.") from error
    if isinstance(error, (TimeoutError, socket.timeout)):
        raise URLAccessError(f"{where}: cannot {action}: the server did not answer in time.") from error
    if isinstance(error, socket.gaierror):
        raise URLAccessError(f"{where}: cannot {action}: unknown host ({reply}).") from error
    if isinstance(error, (OSError, EOFError, ftplib.Error)):
        raise URLAccessError(
            f"{where}: cannot {action}: {type(error).__name__}: {reply or 'connection closed'}."
        ) from error
    raise URLAccessError(f"{where}: cannot {action}: {reply}") from error


def _path_of(url: str) -> str:
    parts = urlsplit(url)
    if not parts.hostname:
        raise UnsupportedURLError(f"{redact_url(url)!r} names no host; write ftp://host/path.")
    if parts.query or parts.fragment:
        raise UnsupportedURLError(
            f"{redact_url(url)!r} has a '?' or '#'; percent-encode them (%3F, %23) if they are part of the name."
        )
    path = unquote(parts.path)
    if any(ord(ch) < 0x20 for ch in path):
        raise UnsupportedURLError(f"{redact_url(url)!r} has control characters in its path.")
    return path.lstrip("/")


class _Session:
    """One logged-in control connection, and the URL it serves (for messages)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.url = url
        user = unquote(parts.username) if parts.username else "anonymous"
        password = unquote(parts.password) if parts.password is not None else "anonymous@"
        self.ftp = ftplib.FTP(timeout=TIMEOUT)
        try:
            self.ftp.connect(parts.hostname or "", parts.port or 21)
            self.ftp.login(user, password)
            self.ftp.voidcmd("TYPE I")  # binary: SIZE and transfers count bytes, not lines
        except BaseException as error:
            self.abandon()
            if isinstance(error, Exception):
                _raise_ftp_error(url, "connect and log in", error)
            raise

    def is_directory(self, path: str) -> bool:
        """True if ``path`` is a directory (CWD succeeds); the working directory is restored."""
        try:
            home = self.ftp.pwd()
            self.ftp.cwd(path or ".")
        except ftplib.error_perm:
            return False
        except (ftplib.Error, OSError, EOFError) as error:
            _raise_ftp_error(self.url, "inspect it", error)
        with suppress(ftplib.Error, OSError, EOFError):
            self.ftp.cwd(home)
        return True

    def size(self, path: str) -> int | None:
        """SIZE of ``path``; None when the server does not implement it."""
        try:
            size = self.ftp.size(path)
        except ftplib.error_perm as error:
            if str(error)[:3] in ("500", "502", "504"):
                return None
            raise
        return int(size) if size is not None else None

    def quit(self) -> None:
        try:
            self.ftp.quit()
        except (ftplib.Error, OSError, EOFError):
            self.abandon()

    def abandon(self) -> None:
        """Drop the connection without a goodbye (after an error its state is unknown)."""
        with suppress(OSError):
            self.ftp.close()


class FtpHandler(UrlHandler):
    """FTP, anonymous or with ``user:password@``."""

    schemes = ("ftp",)

    @staticmethod
    def _refuse_directory(url: str) -> NoReturn:
        raise URLAccessError(f"{redact_url(url)} is a directory; give the URL of a file.")

    @contextmanager
    def open_source(self, url: str) -> Iterator[UrlSource]:
        path = _path_of(url)
        session = _Session(url)
        finished = False
        try:
            if not path or path.endswith("/"):
                self._refuse_directory(url)
            try:
                size = session.size(path)
                connection = session.ftp.transfercmd(f"RETR {path}")
            except ftplib.error_perm as error:
                # Most servers answer 550 both for a directory and for nothing: tell them apart.
                if str(error)[:3] == "550" and session.is_directory(path):
                    self._refuse_directory(url)
                _raise_ftp_error(url, "read it", error)
            except (ftplib.Error, OSError, EOFError) as error:
                _raise_ftp_error(url, "read it", error)
            data = connection.makefile("rb")

            def read(n: int) -> bytes:
                nonlocal finished
                try:
                    chunk = data.read(n)
                    if chunk:
                        return bytes(chunk)
                    data.close()
                    connection.close()
                    session.ftp.voidresp()  # 226: the server says the whole file was sent
                    finished = True
                    return b""
                except ftplib.error_temp as error:  # 426 and friends: the server aborted
                    raise TransferIntegrityError(
                        f"{redact_url(url)}: the server reports the transfer failed "
                        f"({redact_url(str(error)).strip()}). "
                        "The copy is incomplete; retry the transfer."
                    ) from error
                except (ftplib.Error, OSError, EOFError) as error:
                    _raise_ftp_error(url, "read it", error)

            def close() -> None:
                with suppress(OSError):
                    data.close()
                with suppress(OSError):
                    connection.close()

            raw = VerifyingReader(read, what=redact_url(url), size=size, on_close=close)
            source = UrlSource(url=redact_url(url), raw=raw, size=size, basename=basename_of(path))
            try:
                yield source
            finally:
                source.close()
        finally:
            if finished:
                session.quit()
            else:  # an unfinished transfer leaves a reply pending: drop the connection
                session.abandon()

    def write(
        self,
        url: str,
        reader: IO[bytes],
        size: int | None,
        *,
        executable: bool = False,
        http_method: str = "POST",
    ) -> None:
        path = _path_of(url)
        if not path or path.endswith("/"):
            raise URLAccessError(f"{redact_url(url)} is a directory; export to the URL of a file inside it.")
        session = _Session(url)
        try:
            self._write(session, url, path, reader, size, executable)
        except BaseException:
            session.abandon()
            raise
        session.quit()

    def _write(
        self, session: _Session, url: str, path: str, reader: IO[bytes], size: int | None, executable: bool
    ) -> None:
        if session.is_directory(path):
            raise URLAccessError(f"{redact_url(url)} is a directory; export to the URL of a file inside it.")
        directory, name = posixpath.split(path)
        self._make_parents(session, directory)
        temp = posixpath.join(directory, f".{name}.jobstore-{secrets.token_hex(6)}.tmp")
        start = reader_position(reader)
        body = ExactReader(reader, size, redact_url(url))
        try:
            session.ftp.storbinary(f"STOR {temp}", body, blocksize=CHUNK_SIZE)
        except ftplib.error_perm as error:
            if body.consumed:
                self._cleanup_with_new_session(url, temp)
                _raise_ftp_error(url, "upload it", error)
            # Refused before any data moved (the server dislikes the temporary name): go direct.
            self._store_direct(session, url, path, body)
        except BaseException as error:
            self._cleanup_with_new_session(url, temp)
            if error is not body.failure and isinstance(error, (ftplib.Error, OSError, EOFError)):
                _raise_ftp_error(url, "upload it", error)
            raise
        else:
            self._rename_into_place(session, url, temp, path, reader, size, start)
        if executable:
            with suppress(ftplib.Error):
                session.ftp.sendcmd(f"SITE CHMOD 755 {path}")

    def _rename_into_place(
        self,
        session: _Session,
        url: str,
        temp: str,
        path: str,
        reader: IO[bytes],
        size: int | None,
        start: int | None,
    ) -> None:
        try:
            session.ftp.rename(temp, path)
            return
        except ftplib.error_perm as error:
            refusal: Exception = error
        except (ftplib.Error, OSError, EOFError) as error:
            _raise_ftp_error(url, "rename the uploaded file into place", error)
        with suppress(ftplib.Error, OSError, EOFError):
            session.ftp.delete(temp)
        if start is None:
            raise URLForbiddenError(
                f"{redact_url(url)}: the server accepted the upload under a temporary name but refused to "
                f"rename it ({redact_url(str(refusal)).strip()}), and the data cannot be read a second time "
                "for a direct upload. Use an account that may rename files."
            ) from refusal
        try:
            reader.seek(start)
        except (OSError, ValueError) as error:
            raise URLAccessError(f"{redact_url(url)}: cannot re-read the data for a direct upload.") from error
        self._store_direct(session, url, path, ExactReader(reader, size, redact_url(url)))

    def _store_direct(self, session: _Session, url: str, path: str, body: ExactReader) -> None:
        """STOR straight to the destination; a partial result is deleted (best effort)."""
        try:
            session.ftp.storbinary(f"STOR {path}", body, blocksize=CHUNK_SIZE)
        except BaseException as error:
            if body.consumed:
                self._cleanup_with_new_session(url, path)
            if error is not body.failure and isinstance(error, (ftplib.Error, OSError, EOFError)):
                _raise_ftp_error(url, "upload it", error)
            raise

    @staticmethod
    def _make_parents(session: _Session, directory: str) -> None:
        """MKD each missing parent; errors are ignored here (the STOR that follows reports them)."""
        if not directory:
            return
        prefix = ""
        for segment in directory.split("/"):
            if not segment:
                continue
            prefix = f"{prefix}/{segment}" if prefix else segment
            with suppress(ftplib.error_perm):  # 550 when it exists already: fine
                session.ftp.mkd(prefix)

    @staticmethod
    def _cleanup_with_new_session(url: str, path: str) -> None:
        """Delete ``path`` over a fresh connection (the failed one may have a reply pending)."""
        with suppress(Exception):
            session = _Session(url)
            try:
                session.ftp.delete(path)
            finally:
                session.quit()

    def __repr__(self) -> str:
        return "<FtpHandler>"
