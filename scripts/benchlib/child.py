"""One (workload, case, target, run) in a fresh interpreter.

Usage (by bench.py only): ``python -m benchlib.child SPEC.json RESULT.json``. The spec names the
workload, case, target, options, sizes and the parent temp directory; the result holds the
metrics, the peak RSS, or the error with its traceback.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchlib.model import Params, current_rss_kib
from benchlib.targets import get_target, remove_tree
from benchlib.workloads import WORKLOADS


def run(spec: dict[str, Any]) -> dict[str, Any]:
    target = get_target(spec["target"])
    workload = WORKLOADS[spec["workload"]]
    params = Params.from_json(spec["params"])
    opts: dict[str, Any] = spec["opts"]
    os.environ["BENCH_TARGET"] = target.name
    os.environ["BENCH_OPTS"] = json.dumps(opts)
    target.prepare_environment(opts)
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{workload.key}-{target.name}-", dir=spec["tmpdir"]))
    started = time.time()
    session = None
    # Toil's Config() makes a message-bus file with mkstemp() and never removes it: temporary
    # files of this run belong in its work directory.
    previous_tempdir, tempfile.tempdir = tempfile.tempdir, str(workdir)
    try:
        session = target.open(workdir, opts)
        rss_open = current_rss_kib()
        metrics = workload.run(session, spec["case"], params, workdir)
        return {
            "ok": True,
            "metrics": [asdict(m) for m in metrics],
            "rss_after_open_kib": rss_open,
            "wall_seconds": time.time() - started,
        }
    finally:
        tempfile.tempdir = previous_tempdir
        # With a trash directory, the work directory is moved there (one rename) instead of being
        # deleted now: deleting thousands of files would slow the next runs' file creations (see
        # benchlib/scratch.py). Remote state (a server's rows or objects) is always removed now.
        trash = spec.get("trash")
        if session is not None:
            try:
                session.close(destroy=not trash or target.keeps_remote_state)
            except Exception:
                logging.exception("destroying the store failed")
        if trash:
            os.rename(workdir, Path(trash) / workdir.name)
        else:
            remove_tree(workdir)


def main(argv: list[str]) -> int:
    spec_path, result_path = argv[1], argv[2]
    logging.basicConfig(level=logging.WARNING)
    spec = json.loads(Path(spec_path).read_text())
    try:
        result = run(spec)
    except BaseException as exc:
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    Path(result_path).write_text(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
