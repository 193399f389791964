"""The code itself: mypy --strict, ruff clean and ruff-formatted, as the project requires."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_mypy_strict_on_the_package() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "jobstore"], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_clean() -> None:
    ruff = shutil.which("ruff") or "ruff"
    result = subprocess.run(
        [ruff, "check", "jobstore", "tests", "scripts", "migrations"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_clean() -> None:
    """Formatting drifts silently otherwise (blobs/s3.py had, until session 4)."""
    ruff = shutil.which("ruff") or "ruff"
    result = subprocess.run(
        [ruff, "format", "--check", "jobstore", "tests", "scripts", "migrations"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
