"""Without rsync on PATH, importing Toil's test package still works through our conftest.

``toil.test`` runs ``rsync --version`` at import time and only expects ``CalledProcessError``; on a
machine without rsync the import raised ``FileNotFoundError`` and one collection error stopped the
whole suite. Each check runs a real interpreter with a PATH that holds no rsync.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    empty = tmp_path / "no-rsync-here"
    empty.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        env={"PATH": str(empty), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_plain_import_of_toil_test_dies_without_rsync(tmp_path: Path) -> None:
    # The failure the conftest exists for: if Toil stops probing rsync, this says so.
    result = _run(tmp_path, "-c", "import toil.test")
    assert result.returncode != 0
    assert "FileNotFoundError" in result.stderr and "rsync" in result.stderr


def test_conftest_import_survives_without_rsync(tmp_path: Path) -> None:
    result = _run(tmp_path, "-c", "import sys, tests.toil.conftest; print('toil.test' in sys.modules)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def test_collection_of_the_toil_tests_survives_without_rsync(tmp_path: Path) -> None:
    result = _run(tmp_path, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "tests/toil")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "error" not in result.stdout.lower().splitlines()[-1], result.stdout[-500:]
    assert " tests collected" in result.stdout
