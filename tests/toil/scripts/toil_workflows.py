"""Real Toil workflows the tests run as separate processes:
``python toil_workflows.py JOBSTORE KIND WORKDIR [Toil options]``.

Each job appends its name to ``WORKDIR/executions.log`` when its body runs, so a test can count how
many times each job ran (for example after a leader was killed and the workflow restarted), and
its name with the leader attempt its worker was given (``JOBSTORE_LEASE_ATTEMPT``'s attempt, ``-``
for none) to ``WORKDIR/attempts.log``.

``features``: children and follow-ons, promises, files passed between jobs (imported, written,
read, exported), a service job, a checkpoint job, and a job that fails once and is retried.

``restartable``: a root with ten quick children and a ``gate`` child that waits until the file
``WORKDIR/open-gate`` exists, then a follow-on that combines everything. A test kills the leader
while the gate waits, opens the gate and restarts.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from toil.common import Toil
from toil.job import Job


def record(workdir: str, name: str) -> None:
    with open(os.path.join(workdir, "executions.log"), "a") as log:
        log.write(name + "\n")
    attempt = os.environ.get("JOBSTORE_LEASE_ATTEMPT", "-").rpartition(":")[2]
    with open(os.path.join(workdir, "attempts.log"), "a") as log:
        log.write(f"{name} {attempt}\n")


# --- features --------------------------------------------------------------------------------


def write_number(job: Job, workdir: str, number: int) -> Any:
    record(workdir, f"write-{number}")
    path = os.path.join(job.tempDir, f"n{number}.txt")
    with open(path, "w") as handle:
        handle.write(f"{number * number}\n")
    return job.fileStore.writeGlobalFile(path)


def read_numbers(job: Job, workdir: str, file_ids: list[Any], offset: Any) -> int:
    record(workdir, "sum")
    total = 0
    for file_id in file_ids:
        with job.fileStore.readGlobalFileStream(file_id) as handle:
            total += int(handle.read().decode())
    return total + int(offset)


def fails_once(job: Job, workdir: str) -> int:
    record(workdir, "flaky")
    marker = os.path.join(workdir, "flaky-failed-once")
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("failing on purpose, the first time only")
    return 1000


class KeyValueService(Job.Service):  # type: ignore[misc]
    """A toy service: start() hands its clients a value; stop() leaves a marker."""

    def __init__(self, workdir: str) -> None:
        super().__init__(memory="100M", cores=0.1, disk="10M")
        self.workdir = workdir

    def start(self, job: Job) -> str:
        record(self.workdir, "service-start")
        return "service-value"

    def check(self) -> bool:
        return True

    def stop(self, job: Job) -> None:
        record(self.workdir, "service-stop")


def use_service(job: Job, workdir: str, value: str) -> str:
    record(workdir, "service-client")
    return value.upper()


def checkpointed(job: Job, workdir: str) -> Any:
    record(workdir, "checkpoint")
    return job.addChildJobFn(leaf, workdir, "checkpoint-child").rv()


def leaf(job: Job, workdir: str, name: str) -> str:
    record(workdir, name)
    return name


def import_copy(job: Job, workdir: str, input_id: Any) -> Any:
    record(workdir, "copy-input")
    local = job.fileStore.readGlobalFile(input_id)
    with open(local) as handle:
        text = handle.read()
    out = os.path.join(job.tempDir, "copy.txt")
    with open(out, "w") as handle:
        handle.write(text.upper())
    return job.fileStore.writeGlobalFile(out)


def report(job: Job, workdir: str, total: int, flaky: int, service: str, checkpoint: str, copied: Any) -> Any:
    record(workdir, "report")
    with job.fileStore.readGlobalFileStream(copied) as handle:
        copied_text = handle.read().decode()
    path = os.path.join(job.tempDir, "report.txt")
    with open(path, "w") as handle:
        handle.write(f"sum={total} flaky={flaky} service={service} checkpoint={checkpoint} copy={copied_text}")
    return job.fileStore.writeGlobalFile(path)


def features_root(job: Job, workdir: str, input_id: Any) -> Any:
    record(workdir, "root")
    writers = [job.addChildJobFn(write_number, workdir, n) for n in range(1, 5)]
    flaky = job.addChildJobFn(fails_once, workdir)
    service_value = job.addService(KeyValueService(workdir))
    client = job.addChildJobFn(use_service, workdir, service_value)
    checkpoint = job.addChildJobFn(checkpointed, workdir, checkpoint=True)
    copy = job.addChildJobFn(import_copy, workdir, input_id)
    summed = job.addFollowOnJobFn(read_numbers, workdir, [w.rv() for w in writers], flaky.rv())
    final = summed.addFollowOnJobFn(report, workdir, summed.rv(), flaky.rv(), client.rv(), checkpoint.rv(), copy.rv())
    return final.rv()


# --- restartable -----------------------------------------------------------------------------


def quick(job: Job, workdir: str, number: int) -> Any:
    record(workdir, f"quick-{number}")
    path = os.path.join(job.tempDir, "q.txt")
    with open(path, "w") as handle:
        handle.write(str(number))
    return job.fileStore.writeGlobalFile(path)


def gate(job: Job, workdir: str) -> str:
    record(workdir, "gate")
    while not os.path.exists(os.path.join(workdir, "open-gate")):
        time.sleep(0.2)
    return "opened"


def combine(job: Job, workdir: str, file_ids: list[Any], gate_value: str) -> str:
    record(workdir, "combine")
    values = []
    for file_id in file_ids:
        with job.fileStore.readGlobalFileStream(file_id) as handle:
            values.append(int(handle.read().decode()))
    return f"{sum(values)}:{gate_value}"


def restartable_root(job: Job, workdir: str) -> Any:
    record(workdir, "root")
    quicks = [job.addChildJobFn(quick, workdir, n) for n in range(10)]
    waiting = job.addChildJobFn(gate, workdir)
    return job.addFollowOnJobFn(combine, workdir, [q.rv() for q in quicks], waiting.rv()).rv()


# --- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = Job.Runner.getDefaultArgumentParser()
    parser.add_argument("kind", choices=["features", "restartable"])
    parser.add_argument("workdir")
    options = parser.parse_args()
    workdir = os.path.abspath(options.workdir)
    with Toil(options) as toil:
        if options.restart:
            result = toil.restart()
        elif options.kind == "features":
            source = os.path.join(workdir, "input.txt")
            input_id = toil.importFile("file://" + source)
            result = toil.start(Job.wrapJobFn(features_root, workdir, input_id))
        else:
            result = toil.start(Job.wrapJobFn(restartable_root, workdir))
        if options.kind == "features":
            toil.exportFile(result, "file://" + os.path.join(workdir, "report.txt"))
        else:
            with open(os.path.join(workdir, "result.txt"), "w") as handle:
                handle.write(str(result))
    sys.exit(0)


if __name__ == "__main__":
    main()
