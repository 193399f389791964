"""Secrets never leave the process, in any spelling libpq, SQLAlchemy or the object stores accept.

The string-level tests pin each spelling (and a property test generates passwords and spellings);
the store-level test runs a real PostgreSQL catalog (trust authentication ignores the password) and
collects everything the store shows: repr, str, its Config, the stored config row, error messages
and log records.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from jobstore import Config, JobDescription, JobStoreError, create_job_store
from jobstore.errors import InvalidLocatorError
from jobstore.locator import parse_locator
from jobstore.redact import redact_url

SECRET = "Sup3r-s3cret-pw"

#: Each spelling of a password in a catalog URL; ``{pw}`` is the password as the user wrote it.
SPELLINGS = {
    "userinfo": "postgresql+psycopg://postgres:{pw}@127.0.0.1:{port}/postgres",
    "percent-encoded": "postgresql+psycopg://postgres:{quoted}@127.0.0.1:{port}/postgres",
    "query": "postgresql+psycopg://postgres@127.0.0.1:{port}/postgres?password={quoted}",
    "query-after-another": "postgresql+psycopg://postgres@127.0.0.1:{port}/postgres?sslmode=disable&password={quoted}",
    "query-upper-case": "postgresql+psycopg://postgres@127.0.0.1:{port}/postgres?PASSWORD={quoted}",
    "query-encoded-key": "postgresql+psycopg://postgres@127.0.0.1:{port}/postgres?pass%77ord={quoted}",
    "sslpassword": "postgresql+psycopg://postgres@127.0.0.1:{port}/postgres?sslpassword={quoted}",
}

#: Passwords holding the characters that ended the old mask early.
PASSWORDS = [SECRET, f"{SECRET}/x", f"a/{SECRET}", f"{SECRET}@x", f"x@{SECRET}", f"x:{SECRET}", f"{SECRET}%41"]


def _url(spelling: str, password: str, port: int = 5432) -> str:
    return SPELLINGS[spelling].format(pw=password, quoted=quote(password, safe=""), port=port)


def _secret_parts(password: str) -> list[str]:
    """The substrings that must not appear: the password in both spellings, and its longest
    piece between URL syntax characters (a mask that stopped at '/' or '@' leaves one visible)."""
    pieces = [piece for piece in password.replace("/", " ").replace("@", " ").replace(":", " ").split() if piece]
    return [password, quote(password, safe=""), max(pieces, key=len)]


@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
@pytest.mark.parametrize("password", PASSWORDS)
def test_every_spelling_is_masked(spelling: str, password: str) -> None:
    url = _url(spelling, password)
    for text in (url, f"sql:{url}#wf", f"error: could not open '{url}' (timeout)", f"Config(catalog={url!r})"):
        shown = redact_url(text)
        assert "***" in shown
        leaked = [part for part in _secret_parts(password) if part in shown]
        assert leaked == [], (text, shown)


def test_masking_keeps_what_is_not_secret() -> None:
    assert redact_url("postgresql://u:pw@db.example:5432/wf?sslmode=require") == (
        "postgresql://u:***@db.example:5432/wf?sslmode=require"
    )
    assert redact_url("file:///data/store#1/blobs") == "file:///data/store#1/blobs"
    assert redact_url("sqlite:////tmp/a@b/catalog.sqlite") == "sqlite:////tmp/a@b/catalog.sqlite"
    assert redact_url("no url here, password or not") == "no url here, password or not"


def test_libpq_keyword_strings_are_masked() -> None:
    for text in (
        f"host=db password={SECRET} dbname=wf",
        f"host=db password='{SECRET} with space' dbname=wf",
        f"host=db PassWord = {SECRET}",
        f"(sslpassword={SECRET})",
    ):
        assert SECRET not in redact_url(text), text


def test_object_store_credentials_in_urls_are_masked() -> None:
    for text in (
        f"s3://AKIAEXAMPLE:{SECRET}@bucket/prefix",
        f"https://bucket.s3.amazonaws.com/k?X-Amz-Credential=AKIA%2F1&X-Amz-Signature={SECRET}",
        f"https://storage.googleapis.com/b/k?X-Goog-Signature={SECRET}&X-Goog-Date=1",
        f"gs://bucket/k?access_token={SECRET}",
        f"https://h/x?X-Amz-Security-Token={SECRET}",
    ):
        assert SECRET not in redact_url(text), text


#: Quotes, whitespace and NUL are refused in catalog URLs (locator and Config.catalog: percent-encode
#: them), so a raw one never reaches a message; every other character may appear raw.
_PASSWORD_CHARACTERS = st.characters(codec="utf-8", exclude_characters="\x00'\"").filter(lambda c: not c.isspace())


@settings(max_examples=300, deadline=None)
@given(
    password=st.text(_PASSWORD_CHARACTERS, min_size=8, max_size=24).filter(lambda p: "***" not in p),
    spelling=st.sampled_from(sorted(SPELLINGS)),
    wrapper=st.sampled_from(["{}", "sql:{}#wf", "failed: '{}'", "({}) and then", "{}, then http://h/x"]),
)
def test_generated_passwords_never_show(password: str, spelling: str, wrapper: str) -> None:
    """Any password (with '/', '@', ':', '%', '#', '?', non-ASCII), in any spelling, inside any
    message: neither it nor its percent-encoding is in the masked text."""
    url = _url(spelling, password)
    # A password that is also part of the URL around it ("postgres") cannot be told apart.
    assume(
        password not in wrapper.format(_url(spelling, ""))
        and quote(password, safe="") not in wrapper.format(_url(spelling, ""))
    )
    shown = redact_url(wrapper.format(url))
    for secret in (password, quote(password, safe="")):
        assert secret not in shown, shown


def test_catalog_urls_with_raw_whitespace_or_quotes_are_refused() -> None:
    from jobstore.errors import InvalidConfigError

    for character in (" ", "\t", "\x0c", "'", '"'):
        url = f"postgresql+psycopg://u:{SECRET}{character}x@host/db"
        with pytest.raises(InvalidLocatorError) as raised:
            parse_locator(f"sql:{url}#wf")
        assert SECRET not in str(raised.value)
        with pytest.raises(InvalidConfigError, match="percent-encode") as refused:
            Config(catalog=url)
        assert SECRET not in str(refused.value)
    with pytest.raises(InvalidConfigError, match="%40"):
        Config(catalog=f"postgresql+psycopg://u:a@{SECRET}@host/db")


# --- what the library shows -------------------------------------------------------------------


def test_locator_with_a_raw_hash_in_the_password_does_not_echo_it() -> None:
    """The last '#' separates the store name; a '#' in a password must be %23. If it is not, the
    error says so without repeating the text after the '#' (the password's tail)."""
    with pytest.raises(InvalidLocatorError, match="%23") as raised:
        parse_locator(f"sql:postgresql+psycopg://u:ab#{SECRET}@host/db")
    assert SECRET not in str(raised.value)
    location = parse_locator(f"sql:postgresql+psycopg://u:ab%23{SECRET}@host/db#wf")
    assert (location.store_name, location.catalog_url) == ("wf", f"postgresql+psycopg://u:ab%23{SECRET}@host/db")
    assert SECRET not in repr(location)


@pytest.mark.parametrize("spelling", ["userinfo", "query", "query-encoded-key"])
@pytest.mark.parametrize("password", [f"{SECRET}/x", f"x@{SECRET}", SECRET])
def test_a_store_never_shows_the_password(
    postgres_server: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture, spelling: str, password: str
) -> None:
    url = _url(spelling, password, postgres_server.port)
    if spelling == "userinfo" and "@" in password:
        # SQLAlchemy would read the password's tail as the host, and the driver print it in its
        # errors: refused before any connection, without echoing the URL.
        with pytest.raises(InvalidLocatorError, match="%40") as raised:
            create_job_store(f"sql:{url}#wf")
        assert not any(part in str(raised.value) for part in _secret_parts(password))
        return
    caplog.set_level(logging.DEBUG)
    locator = f"sql:{url}#masked-{uuid.uuid4().hex[:8]}"
    store = create_job_store(locator)
    store.initialize(Config(blobStore=f"file://{tmp_path}/blobs"))
    store.create_job(JobDescription({}, "x"))
    shown = [repr(store), str(store), repr(store.config), store.config.to_json(), repr(store.catalog)]
    for failing in (
        lambda: store.load_job("0" * 32),
        lambda: create_job_store(locator).initialize(Config(blobStore=f"file://{tmp_path}/b2")),
        lambda: create_job_store(locator.replace("postgresql+psycopg", "mysql")),
    ):
        with pytest.raises(JobStoreError) as raised:
            failing()
        shown += [str(raised.value), repr(raised.value)]
    with store.catalog.engine.connect() as connection:
        from sqlalchemy import select

        from jobstore.catalog.schema import stores

        shown += [str(row) for row in connection.execute(select(stores))]
    shown += [record.getMessage() for record in caplog.records] + [str(record.args) for record in caplog.records]
    leaks = [text for text in shown for part in _secret_parts(password) if part in text]
    assert leaks == []
    store.destroy()
