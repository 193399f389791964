"""A program that opens a store through the adapter and exits without closing it exits quietly.

Per-thread catalog connections are closed by finalizers that may run while the interpreter tears
its modules down; whatever order that happens in, nothing may reach stderr.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import Backend

_UNCLOSED = textwrap.dedent(
    """
    import sys, threading
    from toil.common import Config
    from toil.job import JobDescription
    from jobstore.toil.adapter import ToilJobStore

    store = ToilJobStore(sys.argv[1])
    config = Config()
    config.jobStore = "jobstore:" + sys.argv[1]
    store.initialize(config)
    job = JobDescription(requirements={"memory": 1, "cores": 1, "disk": 1, "preemptible": False},
                         jobName="unclosed")
    store.assign_job_id(job)
    store.create_job(job)

    def worker():  # connections of threads that end before the interpreter does
        assert store.load_job(job.jobStoreID).jobName == "unclosed"
        with store.write_file_stream(job.jobStoreID) as (handle, _):
            handle.write(b"bytes")

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # and a connection of the main thread, open at exit: no close(), no destroy()
    assert store.job_exists(job.jobStoreID)
    """
)


def test_a_store_left_open_at_exit_prints_nothing(backend: Backend, toil_env: dict[str, str], tmp_path: Path) -> None:
    locator, config = backend.make_locator()
    env = dict(toil_env)
    if "STORAGE_EMULATOR_HOST" in os.environ:  # set by the GCS server, perhaps after toil_env was made
        env["STORAGE_EMULATOR_HOST"] = os.environ["STORAGE_EMULATOR_HOST"]
    settings = {name: value for name, value in vars(config).items() if not name.startswith("_") and value is not None}
    env["JOBSTORE_SETTINGS"] = json.dumps(settings)
    result = subprocess.run(
        [sys.executable, "-c", _UNCLOSED, locator], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
