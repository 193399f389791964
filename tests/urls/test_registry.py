"""Scheme dispatch: what is refused before any handler runs, and how new schemes plug in."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

import pytest

from jobstore.errors import UnsupportedURLError
from jobstore.urls import (
    UrlHandler,
    UrlSource,
    handler_for,
    open_source,
    register_scheme,
    scheme_of,
    supported_schemes,
    write_to_url,
)
from jobstore.urls.base import VerifyingReader
from jobstore.urls.registry import _HANDLERS


@pytest.mark.parametrize(
    "url",
    [
        "gopher://example.org/x",
        "javascript:alert(1)",
        "data:text/plain,hello",
        "mailto:someone@example.org",
        "HTTPX://example.org/",
    ],
)
def test_unknown_schemes_are_refused_with_the_list_of_supported_ones(url: str) -> None:
    with pytest.raises(UnsupportedURLError) as info:
        with open_source(url):
            pass
    message = str(info.value)
    for scheme in ("file", "http", "https", "ftp"):
        assert scheme in message
    with pytest.raises(UnsupportedURLError):
        write_to_url(url, io.BytesIO(b"x"), 1)


@pytest.mark.parametrize("url", ["", "relative/path.txt", "file.txt", "/tmp/a\nb", "http://h/a\r\nDELE x"])
def test_non_urls_are_refused(url: str) -> None:
    with pytest.raises(UnsupportedURLError):
        scheme_of(url)


def test_refusal_masks_the_password() -> None:
    with pytest.raises(UnsupportedURLError) as info:
        scheme_of("gopher://alice:hunter2@example.org/x")
    assert "hunter2" not in str(info.value)
    assert "alice:***@" in str(info.value)


def test_bare_absolute_paths_are_files() -> None:
    assert scheme_of("/tmp/x") == "file"
    assert scheme_of("FILE:///tmp/x") == "file"
    assert scheme_of("HTTPS://example.org/") == "https"
    assert set(supported_schemes()) >= {"file", "http", "https", "ftp"}


class _MemoryHandler(UrlHandler):
    """A scheme served from a dict: how s3:// and gs:// will plug in."""

    schemes = ("mem",)
    store: dict[str, bytes] = {}

    @contextmanager
    def open_source(self, url: str) -> Iterator[UrlSource]:
        data = io.BytesIO(self.store[url])
        raw = VerifyingReader(data.read, what=url, size=len(self.store[url]))
        source = UrlSource(url=url, raw=raw, size=len(self.store[url]), basename=url.rsplit("/", 1)[-1])
        try:
            yield source
        finally:
            source.close()

    def write(
        self,
        url: str,
        reader: IO[bytes],
        size: int | None,
        *,
        executable: bool = False,
        http_method: str = "POST",
    ) -> None:
        self.store[url] = reader.read()


def test_a_registered_scheme_is_served(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(_HANDLERS, "mem", _MemoryHandler)
    write_to_url("mem://box/a.txt", io.BytesIO(b"abc"), 3)
    with open_source("mem://box/a.txt") as source:
        assert source.stream.read() == b"abc"
        assert source.basename == "a.txt"
    assert "mem" in supported_schemes()


def test_registering_by_name_imports_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(_HANDLERS, "lazy", "tests.urls.test_registry:_MemoryHandler")
    assert isinstance(handler_for("lazy://x"), _MemoryHandler)
    monkeypatch.setitem(_HANDLERS, "broken", "jobstore.errors:JobStoreError")
    with pytest.raises(TypeError, match="not a UrlHandler"):
        handler_for("broken://x")
    register_scheme("mem2", _MemoryHandler)
    try:
        assert isinstance(handler_for("mem2://x"), _MemoryHandler)
    finally:
        _HANDLERS.pop("mem2")


def test_importing_urls_does_not_import_transports() -> None:
    """requests and ftplib are paid for only by the scheme that needs them."""
    code = (
        "import sys, jobstore.urls\n"
        "names = ('jobstore.urls.web', 'jobstore.urls.ftp', 'jobstore.urls.local')\n"
        "loaded = [m for m in names if m in sys.modules]\n"
        "print(','.join(loaded))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
