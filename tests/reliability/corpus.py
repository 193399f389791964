"""The hostile and malformed input corpus: every case with the typed exception it must raise.

Each case is a name, a function of the test's :class:`Context` (an initialized local store with one
job and one file, a directory outside it holding a canary, an allowed export directory) and the
exception type expected. test_hostile_input.py runs each case and checks, besides the type, that
nothing stored changed and nothing outside the store was written.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jobstore import (
    InvalidLocatorError,
    InvalidNameError,
    JobDescription,
    JobStore,
    NoSuchFileException,
    NoSuchJobException,
    create_job_store,
)
from jobstore.errors import (
    InvalidJobDescriptionError,
    LocalFileNotFoundError,
    LocalIsADirectoryError,
    UnsafeLocationError,
    UnsupportedURLError,
    URLAccessError,
)

#: A password planted in URLs: it must never appear in an error message.
SECRET = "s3cr3t-Pa55"


@dataclass
class Context:
    store: JobStore
    job_id: str
    file_id: str
    outside: str  # a directory outside the store, holding canary files
    allowed: str  # the store's only export root
    tmp: str


@dataclass(frozen=True)
class Case:
    name: str
    run: Callable[[Context], Any]
    expected: type[BaseException]


CASES: list[Case] = []


def case(name: str, expected: type[BaseException]) -> Callable[[Callable[[Context], Any]], Callable[[Context], Any]]:
    def register(function: Callable[[Context], Any]) -> Callable[[Context], Any]:
        CASES.append(Case(name, function, expected))
        return function

    return register


def _add(name: str, run: Callable[[Context], Any], expected: type[BaseException]) -> None:
    CASES.append(Case(name, run, expected))


# --- locators -------------------------------------------------------------------------------------

BAD_LOCATORS = {
    "empty": "",
    "blank": "   ",
    "nul": "file:/tmp/a\x00b",
    "unknown-scheme": "bogus:thing",
    "s3-url-as-locator": "s3://bucket/prefix",
    "http-url-as-locator": "http://example.com/store",
    "javascript": "javascript:alert(1)",
    "file-no-path": "file:",
    "file-remote-host": "file://otherhost/data/store",
    "aws-nothing": "aws:",
    "aws-region-only": "aws:us-east-1",
    "aws-empty-region": "aws::bucket",
    "aws-empty-bucket": "aws:us-east-1:",
    "aws-bad-region": "aws:mars-1:bucket",
    "aws-uppercase-bucket": "aws:us-east-1:MyBucket",
    "aws-short-bucket": "aws:us-east-1:ab",
    "aws-ip-bucket": "aws:us-east-1:192.168.1.1",
    "aws-dotdot-bucket": "aws:us-east-1:a..b",
    "aws-dash-bucket": "aws:us-east-1:-bucket",
    "aws-underscore-bucket": "aws:us-east-1:my_bucket",
    "aws-long-bucket": "aws:us-east-1:" + "b" * 64,
    "aws-traversal-prefix": "aws:us-east-1:bucket:../other",
    "aws-absolute-prefix": "aws:us-east-1:bucket:/abs",
    "aws-space-prefix": "aws:us-east-1:bucket:pre fix",
    "aws-quote-prefix": "aws:us-east-1:bucket:x'y",
    "gce-nothing": "gce:",
    "gce-goog-bucket": "gce:us-central1:google-bucket",
    "gce-uppercase-bucket": "gce:us-central1:Bucket",
    "gce-bad-region": "gce:US CENTRAL:bucket",
    "google-one-part": "google:project",
    "google-bad-project": "google:bad_project!:bucket",
    "google-three-parts": "google:my-project:a:b",
    "sql-empty": "sql:",
    "sql-name-only": "sql:#name",
    "sql-mysql": "sql:mysql://host/db#name",
    "sql-no-scheme": "sql:host/db#name",
    "sql-traversal-name": "sql:postgresql+psycopg://host/db#../x",
    "sql-space-name": "sql:postgresql+psycopg://host/db#na me",
    "sql-semicolon-name": "sql:postgresql+psycopg://host/db#a;DROP",
    "sql-injected-quote": "sql:postgresql+psycopg://host/db';DROP TABLE jobs;--#name",
    "sql-injected-double-quote": 'sql:postgresql+psycopg://u:p"w@host/db#name',
    "sql-injected-semicolon-sqlite": "sql:sqlite:////tmp/x.db;ATTACH#name",
    "sql-newline": "sql:postgresql+psycopg://host/db\nDROP#name",
    "sql-trailing-newline-name": "sql:postgresql+psycopg://host/db#wf\n",
    "aws-trailing-newline-bucket": "aws:us-east-1:bucket\n",
    "aws-trailing-newline-region": "aws:us-east-1\n:bucket",
    "sql-long-name": "sql:postgresql+psycopg://host/db#" + "n" * 200,
}
for _name, _locator in BAD_LOCATORS.items():
    _add(f"locator-{_name}", lambda ctx, locator=_locator: create_job_store(locator), InvalidLocatorError)
for _name, _value in {"int": 123, "none": None, "bytes": b"/tmp/store", "list": ["/tmp"]}.items():
    _add(f"locator-type-{_name}", lambda ctx, value=_value: create_job_store(value), InvalidLocatorError)


@case("locator-sqlite-memory-initialize", InvalidLocatorError)
def _memory(ctx: Context) -> None:
    from jobstore import Config

    create_job_store("sql:sqlite:///:memory:#wf").initialize(Config(blobStore=f"file://{ctx.tmp}/never"))


@case("locator-password-masked", InvalidLocatorError)
def _password(ctx: Context) -> None:
    create_job_store(f"sql:mysql://user:{SECRET}@host/db#wf")


# --- shared file names ----------------------------------------------------------------------------

BAD_SHARED_NAMES: dict[str, Any] = {
    "empty": "",
    "dot": ".",
    "dotdot": "..",
    "slash": "/",
    "nested": "a/b",
    "traversal": "../../etc/passwd",
    "backslash": "\\",
    "windows-traversal": "..\\..\\boot.ini",
    "nul": "\x00",
    "embedded-nul": "name\x00.txt",
    "newline": "name\n",
    "space": "my file",
    "too-long": "n" * 256,
    "very-long": "n" * 100_000,
    "accented": "résumé",
    "cjk": "名前",
    "emoji": "file-\U0001f600",
    "tilde": "~root",
    "dollar": "$HOME",
    "percent-encoded": "%2e%2e%2fetc",
    "none": None,
    "int": 7,
    "bytes": b"name",
}
for _name, _value in BAD_SHARED_NAMES.items():

    def _write_shared(ctx: Context, value: Any = _value) -> None:
        with ctx.store.write_shared_file_stream(value) as handle:
            handle.write(b"never")

    _add(f"shared-write-{_name}", _write_shared, InvalidNameError)

    def _read_shared(ctx: Context, value: Any = _value) -> None:
        with ctx.store.read_shared_file_stream(value) as handle:
            handle.read()

    _add(f"shared-read-{_name}", _read_shared, InvalidNameError)

_add("shared-import-dotdot", lambda ctx: ctx.store.import_file(f"file://{ctx.outside}/canary", ".."), InvalidNameError)


# --- file and job IDs -----------------------------------------------------------------------------

BAD_IDS: dict[str, Any] = {
    "traversal": "../../etc/passwd",
    "absolute": "/etc/passwd",
    "url-encoded-traversal": "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "mixed-encoded": "..%2f..%2fetc%2fpasswd",
    "double-encoded": "%252e%252e%252f",
    "empty": "",
    "dot": ".",
    "dotdot": "..",
    "key-shaped": "f/ab/0123",
    "nul": "abc\x00def",
    "newline": "abc\n",
    "windows": "C:\\Windows\\system.ini",
    "url": "file:///etc/passwd",
    "too-long": "a" * 129,
    "very-long": "a" * 100_000,
    "sql-quote": "x' OR '1'='1",
    "none": None,
}
for _name, _value in BAD_IDS.items():

    def _read_file(ctx: Context, value: Any = _value) -> None:
        with ctx.store.read_file_stream(value) as handle:
            handle.read()

    _add(f"file-id-read-{_name}", _read_file, NoSuchFileException)
    _add(
        f"file-id-read-to-path-{_name}",
        lambda ctx, value=_value: ctx.store.read_file(value, os.path.join(ctx.tmp, "out")),
        NoSuchFileException,
    )

    def _update_file(ctx: Context, value: Any = _value) -> None:
        with ctx.store.update_file_stream(value) as handle:
            handle.write(b"never")

    _add(f"file-id-update-{_name}", _update_file, NoSuchFileException)
    _add(
        f"file-id-export-{_name}",
        lambda ctx, value=_value: ctx.store.export_file(value, f"file://{ctx.allowed}/out"),
        NoSuchFileException,
    )
    _add(f"job-id-load-{_name}", lambda ctx, value=_value: ctx.store.load_job(value), NoSuchJobException)

    def _write_for_job(ctx: Context, value: Any = _value) -> None:
        with ctx.store.write_file_stream(value) as (handle, _):
            handle.write(b"never")

    if _value is not None:  # None is a file without an owning job: legitimate
        _add(f"job-id-write-file-{_name}", _write_for_job, NoSuchJobException)

        def _create_with_id(ctx: Context, value: Any = _value) -> None:
            job = JobDescription({}, "hostile")
            job.jobStoreID = value
            ctx.store.create_job(job)

        _add(f"job-id-create-{_name}", _create_with_id, InvalidNameError)
_add("seed-delete-missing-job", lambda ctx: ctx.store.delete("0" * 32), NoSuchJobException)
_add("seed-delete-file-traversal", lambda ctx: ctx.store.deleteFile("../../etc/passwd"), NoSuchFileException)


# --- local paths and URLs -------------------------------------------------------------------------

_add(
    "write-file-missing-local",
    lambda ctx: ctx.store.write_file(os.path.join(ctx.tmp, "no-such-file")),
    LocalFileNotFoundError,
)
_add("write-file-directory", lambda ctx: ctx.store.write_file(ctx.outside), LocalIsADirectoryError)
_add(
    "read-file-into-directory",
    lambda ctx: ctx.store.read_file(ctx.file_id, ctx.outside),
    LocalIsADirectoryError,
)

BAD_IMPORT_URLS = {
    "javascript": "javascript:alert(document.cookie)",
    "data": "data:text/plain;base64,aGk=",
    "relative": "etc/passwd",
    "dot-relative": "../../etc/passwd",
    "empty": "",
    "unknown-scheme": "gopher://127.0.0.1/x",
    "nul": "file:///tmp/a\x00b",
    "newline-ftp": "ftp://127.0.0.1/a\r\nDELE b",
    "remote-file-host": "file://otherhost/etc/passwd",
    "file-query": "file:///etc/passwd?x",
    "file-fragment": "file:///etc/passwd#x",
}
for _name, _url in BAD_IMPORT_URLS.items():
    _add(f"import-{_name}", lambda ctx, url=_url: ctx.store.import_file(url), UnsupportedURLError)
_add("import-directory", lambda ctx: ctx.store.import_file(f"file://{ctx.outside}"), URLAccessError)
_add("import-device", lambda ctx: ctx.store.import_file("file:///dev/zero"), URLAccessError)
_add(
    "import-credentials-masked",
    lambda ctx: ctx.store.import_file(f"http://user:{SECRET}@127.0.0.1:9/secret.txt"),
    URLAccessError,
)

BAD_EXPORT_URLS = {
    "javascript": ("javascript:alert(1)", UnsupportedURLError),
    "data": ("data:,x", UnsupportedURLError),
    "relative": ("out.txt", UnsupportedURLError),
    "remote-file-host": ("file://otherhost/tmp/x", UnsupportedURLError),
    "query": ("file:///tmp/x?y", UnsupportedURLError),
    "nul": ("file:///tmp/x%00y", UnsupportedURLError),
    "etc-shadow": ("file:///etc/shadow", UnsafeLocationError),
    "etc-passwd-bare-path": ("/etc/passwd", UnsafeLocationError),
    "dotdot-out-of-root": ("file://{allowed}/../outside/canary", UnsafeLocationError),
    "encoded-dotdot-out-of-root": ("file://{allowed}/%2e%2e/outside/canary", UnsafeLocationError),
    "sibling-with-common-prefix": ("file://{allowed}-evil/x", UnsafeLocationError),
    "outside-canary": ("file://{outside}/canary", UnsafeLocationError),
    "root-itself": ("file://{allowed}", UnsafeLocationError),
    "symlinked-directory": ("file://{allowed}/link-out/canary", UnsafeLocationError),
    "dev-null-in-root": ("file://{allowed}/null", UnsafeLocationError),
    "fifo-in-root": ("file://{allowed}/fifo", UnsafeLocationError),
    "directory-in-root": ("file://{allowed}/subdir", URLAccessError),
    "credentials-masked": (f"ftp://user:{SECRET}@127.0.0.1:9/x", URLAccessError),
}
for _name, (_url, _expected) in BAD_EXPORT_URLS.items():
    _add(
        f"export-{_name}",
        lambda ctx, url=_url: ctx.store.export_file(ctx.file_id, url.format(allowed=ctx.allowed, outside=ctx.outside)),
        _expected,
    )


# --- job descriptions -----------------------------------------------------------------------------


class _Exploit:
    """Would run code if it were ever unpickled: descriptions are JSON, so it is refused."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("touch /tmp/jobstore-pwned",))


UNSERIALISABLE = {
    "object": object(),
    "lambda": lambda: None,
    "set": {1, 2},
    "bytes": b"raw",
    "complex": 1j,
    "nan": float("nan"),
    "infinity": float("inf"),
    "int-keys": {1: "a"},
    "tuple-keys": {(1, 2): "a"},
    "nested-object": [1, {"a": [object()]}],
    "datetime": datetime.datetime(2024, 1, 1),
    "pickle-exploit": _Exploit(),
    "type": JobDescription,
}
for _name, _value in UNSERIALISABLE.items():
    _add(
        f"job-attribute-create-{_name}",
        lambda ctx, value=_value: ctx.store.create_job(JobDescription({}, "hostile", payload=value)),
        TypeError,
    )

    def _update_bad(ctx: Context, value: Any = _value) -> None:
        job = ctx.store.load_job(ctx.job_id)
        job.payload = value
        ctx.store.update_job(job)

    _add(f"job-attribute-update-{_name}", _update_bad, TypeError)

BAD_REQUIREMENTS: dict[str, Any] = {
    "memory-string": {"memory": "lots"},
    "memory-negative": {"memory": -1},
    "memory-float": {"memory": 1.5},
    "memory-bool": {"memory": True},
    "disk-string": {"disk": "1G"},
    "disk-list": {"disk": [1]},
    "cores-string": {"cores": "2"},
    "cores-nan": {"cores": float("nan")},
    "cores-negative": {"cores": -1},
    "cores-infinite": {"cores": float("inf")},
    "extra-object": {"gpu": object()},
}
for _name, _requirements in BAD_REQUIREMENTS.items():
    _add(
        f"requirements-{_name}",
        lambda ctx, requirements=_requirements: ctx.store.create_job(JobDescription(requirements, "hostile")),
        TypeError,
    )
_add("requirements-list", lambda ctx: ctx.store.create_job(_with(requirements=[1, 2])), TypeError)
_add("job-name-int", lambda ctx: ctx.store.create_job(_with(jobName=5)), TypeError)
_add("unit-name-none", lambda ctx: ctx.store.create_job(_with(unitName=None)), TypeError)
_add("state-none", lambda ctx: ctx.store.create_job(_with(state=None)), TypeError)
_add("try-count-string", lambda ctx: ctx.store.create_job(_with(remainingTryCount="3")), TypeError)
_add("try-count-bool", lambda ctx: ctx.store.create_job(_with(remainingTryCount=True)), TypeError)
_add("not-a-description", lambda ctx: ctx.store.create_job({"jobName": "x"}), TypeError)  # type: ignore[arg-type]
_add(
    "huge-attribute",
    lambda ctx: ctx.store.create_job(JobDescription({}, "hostile", payload="x" * (17 * 1024 * 1024))),
    InvalidJobDescriptionError,
)


def _huge_update(ctx: Context) -> None:
    job = ctx.store.load_job(ctx.job_id)
    job.payload = ["y" * 1024] * (17 * 1024)
    ctx.store.update_job(job)


_add("huge-attribute-update", _huge_update, InvalidJobDescriptionError)


def _with(**fields: Any) -> JobDescription:
    job = JobDescription({}, "hostile")
    for name, value in fields.items():
        setattr(job, name, value)
    return job


def cases_by_name() -> dict[str, Case]:
    names = [c.name for c in CASES]
    assert len(names) == len(set(names)), "duplicate case names"
    return {c.name: c for c in CASES}
