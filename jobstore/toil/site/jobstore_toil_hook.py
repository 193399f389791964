"""Teach Toil the ``jobstore:`` job store locator prefix, without editing Toil.

Installed with ``jobstore[toil]`` as a top-level module plus ``jobstore-toil.pth``, which imports it
at every interpreter start. Importing it only puts a finder on ``sys.meta_path`` that watches for
one module, ``toil.common``: nothing else is imported, nothing is patched and no jobstore code runs
unless a program imports Toil. When ``toil.common`` has been executed, ``Toil.getJobStore`` is
wrapped so that a locator ``jobstore:LOCATOR`` opens ``jobstore.toil.adapter.ToilJobStore(LOCATOR)``;
every other locator goes to Toil's original method. ``Toil.resumeJobStore``, the worker, and the
``toil clean/status/stats/kill/debug-*`` commands all go through ``getJobStore``, so that one wrapper
covers the leader, every worker process and the utilities.

Set ``JOBSTORE_TOIL_HOOK=0`` to disable the hook. Any failure inside the hook leaves Toil unpatched
and never breaks the interpreter or the import of Toil.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

#: The locator prefix: ``--jobStore jobstore:file:/data/wf``.
PREFIX = "jobstore"

#: Setting this environment variable to 0, false or off disables the hook.
DISABLE_ENV_VAR = "JOBSTORE_TOIL_HOOK"

_TARGET = "toil.common"
_MARK = "_jobstore_locator_hook"


def patch(common: Any) -> bool:
    """Wrap ``common.Toil.getJobStore`` to accept ``jobstore:`` locators. Returns True if patched now."""
    toil_class = getattr(common, "Toil", None)
    if toil_class is None or getattr(toil_class, _MARK, False):
        return False
    original = toil_class.__dict__.get("getJobStore")
    if not isinstance(original, classmethod):
        return False
    original_function = original.__func__

    def getJobStore(cls: Any, locator: str) -> Any:
        if isinstance(locator, str) and locator.startswith(PREFIX + ":"):
            from jobstore.toil.adapter import ToilJobStore

            return ToilJobStore(locator[len(PREFIX) + 1 :])
        return original_function(cls, locator)

    getJobStore.__doc__ = original_function.__doc__
    getJobStore.__wrapped__ = original_function  # type: ignore[attr-defined]
    toil_class.getJobStore = classmethod(getJobStore)
    setattr(toil_class, _MARK, True)
    return True


class _PatchingLoader:
    """Delegates to the real loader of ``toil.common`` and patches the module once it has run."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._loader.exec_module(module)
        try:
            patch(module)
        except Exception:  # never break Toil because of the hook
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _ToilCommonFinder:
    """A meta-path finder that answers only for ``toil.common``, by asking the other finders and
    wrapping the loader they return."""

    def find_spec(self, fullname: str, path: Sequence[str] | None = None, target: Any = None) -> Any:
        if fullname != _TARGET:
            return None
        try:
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                        spec.loader = _PatchingLoader(spec.loader)  # type: ignore[assignment]
                    return spec
        except Exception:
            return None
        return None


def install() -> None:
    """Patch Toil now if it is imported already, else watch for its import. Idempotent."""
    if os.environ.get(DISABLE_ENV_VAR, "").strip().lower() in ("0", "false", "off", "no"):
        return
    common = sys.modules.get(_TARGET)
    if common is not None:
        patch(common)
        return
    if not any(isinstance(finder, _ToilCommonFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _ToilCommonFinder())


try:
    install()
except Exception:  # an interpreter must start whatever happens here
    pass
