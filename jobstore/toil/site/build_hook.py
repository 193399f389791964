"""setuptools ``build_py`` that also ships the Toil hook at the top of site-packages.

``pyproject.toml`` names this class in ``[tool.setuptools.cmdclass]``. setuptools loads this file
by path in the isolated build environment (it never imports the ``jobstore`` package, whose
dependencies are not installed there).

A ``.pth`` file only works at the top of a site directory, and setuptools' ``data-files`` is
deprecated and installs relative to the prefix, not to site-packages. So this command copies
``jobstore-toil.pth`` and the tiny ``jobstore_toil_hook`` module it imports into the root of the
build directory, which becomes the root of the wheel (purelib, i.e. site-packages). For an
editable install (PEP 660), setuptools points ``install_lib`` at the root of the editable wheel
it is assembling, and the two files are copied there (the hook module is therefore a copy, not a
link, in editable installs).
"""

from __future__ import annotations

import os
from typing import Any

from setuptools.command.build_py import build_py  # type: ignore[import-untyped,unused-ignore]

HERE = os.path.dirname(os.path.abspath(__file__))
TOP_LEVEL_FILES = ("jobstore_toil_hook.py", "jobstore-toil.pth")


class BuildPyWithToilHook(build_py):  # type: ignore[misc,unused-ignore]
    """build_py, plus the Toil locator hook at the top level of the wheel."""

    def _top_level_target(self) -> str:
        if getattr(self, "editable_mode", False):
            return str(self.distribution.get_command_obj("install").install_lib)
        return str(self.build_lib)

    def run(self) -> None:
        super().run()
        target = self._top_level_target()
        os.makedirs(target, exist_ok=True)
        for name in TOP_LEVEL_FILES:
            self.copy_file(os.path.join(HERE, name), os.path.join(target, name), preserve_mode=False)

    def get_outputs(self, include_bytecode: Any = 1) -> list[str]:
        outputs = list(super().get_outputs(include_bytecode))
        if not getattr(self, "editable_mode", False):
            outputs.extend(os.path.join(str(self.build_lib), name) for name in TOP_LEVEL_FILES)
        return outputs
