"""Fixtures for running real Toil against jobstore.

``toil_env`` is the environment for Toil subprocesses (leaders, workers, ``toil`` utilities): it
makes this checkout's ``jobstore`` importable and activates the ``.pth`` hook from the source tree
through a ``sitecustomize`` that calls ``site.addsitedir`` on the hook's directory, so the real
``jobstore-toil.pth`` line is what teaches every Toil process the ``jobstore:`` prefix, exactly as
an installed ``jobstore[toil]`` does.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

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


def pytest_configure(config: pytest.Config) -> None:
    for name in TOIL_MARKERS:
        config.addinivalue_line("markers", f"{name}: set by toil.test decorators on Toil's own tests")


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
    # Toil's entry points (``toil``, ``_toil_worker``) of this interpreter come first on PATH.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env
