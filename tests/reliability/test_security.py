"""Security defaults: private files and objects, no unpickling, masked secrets, bound SQL only."""

from __future__ import annotations

import ast
import logging
import os
import re
import stat
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from jobstore import Config, FileJobStore, JobDescription, JobStoreError, create_job_store
from jobstore.maintenance import collect_garbage, fsck

ROOT = Path(__file__).resolve().parents[2]
SECRET = "Sup3r-s3cret-pw"


# --- local permissions ----------------------------------------------------------------------------


def _modes(root: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(os.stat(root).st_mode)}
    for directory, subdirectories, names in os.walk(root):
        for name in subdirectories + names:
            path = os.path.join(directory, name)
            found[os.path.relpath(path, root)] = stat.S_IMODE(os.lstat(path).st_mode)
    return found


def _populate(store: Any, tmp_path: Path) -> None:
    job = store.create_job(JobDescription({}, "perm"))
    with store.write_file_stream(job.jobStoreID) as (handle, _):
        handle.write(b"private")
    script = tmp_path / "tool.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    store.write_file(str(script))
    with store.write_shared_file_stream("shared") as handle:
        handle.write(b"shared")
    store.write_logs("log")


def test_local_store_is_readable_by_the_owner_only(tmp_path: Path) -> None:
    """Directories 0700, files 0600, blobs 0400 (0500 when executable): nothing for group or others,
    including the SQLite catalog and its -wal/-shm files."""
    store = FileJobStore(f"file:{tmp_path}/store")
    store.initialize(Config())
    _populate(store, tmp_path)
    modes = _modes(tmp_path / "store")
    exposed = {path: oct(mode) for path, mode in modes.items() if mode & 0o077}
    assert exposed == {}
    assert modes["."] == 0o700 and modes["catalog.sqlite"] == 0o600
    assert {
        mode for path, mode in modes.items() if path.startswith("blobs/f/") and mode & 0o400 and not mode & 0o200
    } <= {
        0o400,
        0o500,
    }
    store.close()


def test_directory_mode_is_configurable(tmp_path: Path) -> None:
    store = FileJobStore(f"file:{tmp_path}/store")
    store.initialize(Config(dirMode=0o750))
    _populate(store, tmp_path)
    modes = _modes(tmp_path / "store")
    directories = {path: mode for path, mode in modes.items() if os.path.isdir(tmp_path / "store" / path)}
    assert set(directories.values()) == {0o750}, directories
    store.close()


def test_sql_catalog_file_is_private(tmp_path: Path) -> None:
    store = create_job_store(f"sql:sqlite:///{tmp_path}/cat/catalog.db#wf")
    (tmp_path / "cat").mkdir()
    store.initialize(Config(blobStore=f"file://{tmp_path}/blobs"))
    store.create_job(JobDescription({}, "x"))
    for name in os.listdir(tmp_path / "cat"):
        assert stat.S_IMODE(os.stat(tmp_path / "cat" / name).st_mode) == 0o600, name
    store.close()


# --- cloud objects are private --------------------------------------------------------------------


def test_s3_objects_are_private(s3_server: Any) -> None:
    prefix = f"private-{uuid.uuid4().hex[:8]}"
    store = create_job_store(f"sql:sqlite:///{s3_server.workdir}/{prefix}.sqlite#wf")
    store.initialize(s3_server.config(blobStore=f"s3://jobstore-tests/{prefix}"))
    with store.write_file_stream() as (handle, file_id):
        handle.write(b"private")
    key = store.file_info(file_id).blob_key
    url = f"{s3_server.endpoint_url}/jobstore-tests/{prefix}/{key}"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=10)  # anonymous, unsigned
    assert refused.value.code in (401, 403)
    acl = s3_server.boto3_client().get_object_acl(Bucket="jobstore-tests", Key=f"{prefix}/{key}")
    grantees = [grant["Grantee"].get("URI", "") for grant in acl.get("Grants", [])]
    assert not any("AllUsers" in uri or "AuthenticatedUsers" in uri for uri in grantees)
    store.close()


def test_gcs_objects_are_private(gcs_server: Any, tmp_path: Path) -> None:
    """fake-gcs-server does not enforce access control, so this checks what the store asks for: no
    public ACL on the object, and no predefined public ACL in the store's requests."""
    prefix = f"private-{uuid.uuid4().hex[:8]}"
    store = create_job_store(f"sql:sqlite:///{tmp_path}/catalog.sqlite#wf")
    store.initialize(gcs_server.config(blobStore=f"gs://jobstore-tests/{prefix}"))
    with store.write_file_stream() as (handle, file_id):
        handle.write(b"private")
    blob = gcs_server.client().bucket("jobstore-tests").get_blob(f"{prefix}/{store.file_info(file_id).blob_key}")
    assert blob is not None
    entities = [entry.get("entity") for entry in (blob._properties.get("acl") or [])]
    assert "allUsers" not in entities and "allAuthenticatedUsers" not in entities
    store.close()


def test_no_public_acls_in_the_blob_stores() -> None:
    for path in (ROOT / "jobstore" / "blobs").glob("*.py"):
        text = path.read_text()
        for word in ("public-read", "allUsers", "allAuthenticatedUsers", "publicRead", "AllUsers"):
            assert word not in text, f"{path.name} mentions {word}"


# --- no unpickling --------------------------------------------------------------------------------

_UNSAFE_LOADERS = re.compile(r"\b(pickle|cPickle|dill|cloudpickle|marshal|shelve)\b|yaml\.load\(|\beval\(|\bexec\(")


def test_nothing_outside_the_toil_adapter_unpickles() -> None:
    """The native API stores descriptions as JSON; only jobstore/toil stores Toil's pickles (Toil
    requires it; documented there)."""
    offenders = []
    for path in (ROOT / "jobstore").rglob("*.py"):
        if "toil" in path.relative_to(ROOT / "jobstore").parts:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [alias.name for alias in node.names] + [getattr(node, "module", None) or ""]
                if any(_UNSAFE_LOADERS.search(name) for name in names):
                    offenders.append(f"{path.name}:{node.lineno}")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("eval", "exec"):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_a_description_that_would_unpickle_is_refused(tmp_path: Path) -> None:
    class Exploit:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"touch {tmp_path}/pwned",))

    store = FileJobStore(f"file:{tmp_path}/store")
    store.initialize(Config())
    with pytest.raises(TypeError, match="cannot be stored"):
        store.create_job(JobDescription({}, "x", payload=Exploit()))
    assert not (tmp_path / "pwned").exists()
    store.close()


# --- secrets masked everywhere --------------------------------------------------------------------


def test_passwords_and_keys_never_shown(postgres_server: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A password in the catalog URL and an encryption key: masked in every log line (DEBUG),
    message and repr, and never stored in the catalog."""
    caplog.set_level(logging.DEBUG)
    url = postgres_server.url.replace("postgres@", f"postgres:{SECRET}@")  # trust auth ignores it
    locator = f"sql:{url}#masked-{uuid.uuid4().hex[:8]}"
    key = "k" * 32
    store = create_job_store(locator)
    store.initialize(Config(blobStore=f"file://{tmp_path}/blobs", sseKey=key))
    job = store.create_job(JobDescription({}, "x"))
    with store.write_file_stream(job.jobStoreID) as (handle, _):
        handle.write(b"data")
    shown = [repr(store), str(store), repr(store.config), repr(store.catalog), str(store.stats())]
    for failing in (
        lambda: store.load_job("0" * 32),
        lambda: store.import_file(f"http://user:{SECRET}@127.0.0.1:9/x"),
        lambda: store.export_file("0" * 32, f"ftp://user:{SECRET}@127.0.0.1:9/x"),
        lambda: create_job_store(locator).initialize(Config(blobStore=f"file://{tmp_path}/b2")),
        lambda: create_job_store(url.replace("postgresql+psycopg", "sql:mysql")),
    ):
        with pytest.raises(JobStoreError) as raised:
            failing()
        shown += [str(raised.value), repr(raised.value)]
    fsck(store)
    collect_garbage(store, grace="0")
    with store.catalog.engine.connect() as connection:
        from sqlalchemy import select

        from jobstore.catalog.schema import stores

        shown += [str(row) for row in connection.execute(select(stores))]
    shown += [record.getMessage() for record in caplog.records]
    shown += [str(record.args) for record in caplog.records]
    leaks = [text for text in shown if SECRET in text or key in text]
    assert leaks == []
    store.close()


# --- SQL only through bound parameters ------------------------------------------------------------

_SQL_WORDS = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|WHERE|PRAGMA|TRUNCATE|GRANT|VALUES)\b")
#: String-built SQL that is allowed, and why: nothing in it comes from outside the code.
#: (SQLite PRAGMAs cannot take bound parameters; the catalog sets them from constants.)
_ALLOWED_PRAGMAS = {"PRAGMA synchronous=", "PRAGMA busy_timeout=", "PRAGMA wal_autocheckpoint="}
_ALLOWED = {
    ("migrations/versions/0002_reporting_views.py", "CREATE VIEW  AS "),  # view names and bodies are literals
    ("migrations/versions/0002_reporting_views.py", "DROP VIEW IF EXISTS "),
    # the body is the module's literal (upgrade) or 0002's (downgrade)
    ("migrations/versions/0008_referenced_bytes_in_store_totals.py", "CREATE VIEW report_store_totals AS "),
}


def _string_built_sql(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        literal = None
        if isinstance(node, ast.JoinedStr):
            literal = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
            if isinstance(node.left, ast.Constant) and isinstance(node.left.value, str):
                literal = node.left.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
            if isinstance(node.func.value, ast.Constant) and isinstance(node.func.value.value, str):
                literal = node.func.value.value
        if literal and _SQL_WORDS.search(literal):
            found.append((node.lineno, literal))
    return found


def test_sql_is_only_built_with_bound_parameters() -> None:
    """No f-string, %-format, + or .format() builds SQL text anywhere in the package or migrations,
    except the reviewed constants above (so a value can never be spliced into a statement)."""
    offenders = []
    for base in ("jobstore", "migrations"):
        for path in (ROOT / base).rglob("*.py"):
            relative = str(path.relative_to(ROOT))
            for line, literal in _string_built_sql(path):
                pragma = relative.startswith("jobstore/catalog/") and literal in _ALLOWED_PRAGMAS
                if (relative, literal) not in _ALLOWED and not pragma:
                    offenders.append(f"{relative}:{line}: {literal[:60]!r}")
    assert offenders == []


def test_the_sql_grep_catches_string_built_sql(tmp_path: Path) -> None:
    sample = tmp_path / "bad.py"
    sample.write_text(
        "def f(c, name):\n"
        "    c.execute(f\"SELECT * FROM jobs WHERE name = '{name}'\")\n"
        '    c.execute("DELETE FROM files WHERE id = %s" % name)\n'
        '    c.execute("UPDATE jobs SET x = {}".format(name))\n'
        '    c.execute("SELECT 1 WHERE a = " + name)\n'
    )
    assert [line for line, _ in _string_built_sql(sample)] == [2, 3, 4, 5]
