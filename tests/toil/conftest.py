"""Fixtures for running real Toil against jobstore.

``toil_env`` is the environment for Toil subprocesses (leaders, workers, ``toil`` utilities): it
makes this checkout's ``jobstore`` importable and activates the ``.pth`` hook from the source tree
through a ``sitecustomize`` that calls ``site.addsitedir`` on the hook's directory, so the real
``jobstore-toil.pth`` line is what teaches every Toil process the ``jobstore:`` prefix, exactly as
an installed ``jobstore[toil]`` does.

rsync: importing ``toil.test`` runs ``rsync --version`` (``_has_rsync3()``, for Toil's own
provisioner tests, none of which run here) and, on a machine without rsync, dies with
``FileNotFoundError`` because the probe only expects ``CalledProcessError``: one collection error
that stops the whole suite. This conftest imports ``toil.test`` first, before any test module
does; when rsync is not on PATH, the probe is answered for what it is, "not installed" (a
``CalledProcessError``), so Toil marks its rsync tests skipped and nothing else changes. No rsync
is faked and nothing is installed: with rsync present the import runs untouched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
HOOK_DIR = REPO / "jobstore" / "toil" / "site"

#: Markers that toil.test's decorators put on the tests it defines (registered for --strict-markers).
TOIL_MARKERS = (
    "stubserver",
    "aws_s3",
    "encryption",
    "google_project",
    "google_storage",
    "online",
    "integrative",
)


@contextlib.contextmanager
def _rsync_probe_says_absent() -> Iterator[None]:
    """While rsync is missing, ``subprocess.check_output(["rsync", ...])`` fails as Toil expects."""
    if shutil.which("rsync") is not None:
        yield
        return
    real = subprocess.check_output

    def check_output(args: Any, *rest: Any, **kwargs: Any) -> Any:
        if isinstance(args, list | tuple) and args[:1] == ["rsync"]:
            raise subprocess.CalledProcessError(127, args, output=b"", stderr=b"rsync is not installed")
        return real(args, *rest, **kwargs)

    subprocess.check_output = check_output  # type: ignore[assignment]
    try:
        yield
    finally:
        subprocess.check_output = real


def _import_toil_test() -> None:
    if "toil.test" in sys.modules:
        return
    with _rsync_probe_says_absent(), contextlib.suppress(ImportError):  # no toil: the modules say so
        import toil.test  # noqa: F401


_import_toil_test()


def pytest_configure(config: pytest.Config) -> None:
    for name in TOIL_MARKERS:
        config.addinivalue_line("markers", f"{name}: set by toil.test decorators on Toil's own tests")


@pytest.fixture(scope="package", autouse=True)
def _toil_temporary_files() -> Iterator[None]:
    """Toil's conformance tests leave ``mkstemp()`` files behind (one per test, never unlinked):
    while this package's tests run, the temporary directory is one of ours, removed afterwards.
    Package scope, not per test: Toil shares its external stores between tests of a class."""
    import tempfile

    directory = tempfile.mkdtemp(prefix="jobstore-toil-tests-")
    previous, tempfile.tempdir = tempfile.tempdir, directory
    try:
        yield
    finally:
        tempfile.tempdir = previous
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="class")
def rootpath(request: pytest.FixtureRequest) -> None:
    """What toil.test's ``ToilTest`` expects from Toil's own conftest (which is not ours to load)."""
    request.cls._rootpath = Path(str(request.config.rootpath))


@pytest.fixture(scope="session")
def toil_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for Toil subprocesses that use this checkout's jobstore and its .pth hook."""
    site_dir = tmp_path_factory.mktemp("toil-site")
    (site_dir / "sitecustomize.py").write_text(f"import site\nsite.addsitedir({str(HOOK_DIR)!r})\n")
    env = dict(os.environ)
    path = [str(site_dir), str(REPO)]
    if env.get("PYTHONPATH"):
        path.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(path)
    env.pop("JOBSTORE_TOIL_HOOK", None)
    # Toil's leader writes its message bus to ``mkstemp()`` and never unlinks it: point the
    # subprocesses' temporary directory at one pytest removes.
    env["TMPDIR"] = str(tmp_path_factory.mktemp("toil-tmp"))
    # Toil's entry points (``toil``, ``_toil_worker``) of this interpreter come first on PATH.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env
