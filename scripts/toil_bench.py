"""Time one real Toil workflow of many small jobs on Toil's FileJobStore and on jobstore.

    python scripts/toil_bench.py [--jobs 500] [--max-cores 2] [--runs 1] [--file-size 16M]

The workflow: a root job with N children, each writing a file with ``writeGlobalFile`` (a line of
text, or ``--file-size`` bytes), and a follow-on that reads them all back as streams. It runs on
both stores in the same invocation, with the single-machine batch system: on ``file:DIR`` (Toil's
FileJobStore) and on ``jobstore:file:DIR`` (SQLite catalog + local blobs), and prints the
wall-clock times and the ratio of the medians. With ``--runs N`` the order alternates (Toil first,
then jobstore first, ...), since this machine's disk slows down as a run goes on and would
otherwise always favour whichever store runs first. From a source checkout the ``.pth`` hook is
activated for the Toil processes through a temporary ``sitecustomize``.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def small_file(job: Any, number: int, size: int = 0) -> Any:
    path = os.path.join(job.tempDir, "small.txt")
    line = f"job {number}\n"
    with open(path, "w") as handle:
        if size:
            block = line * (1024 * 1024 // len(line) + 1)
            for start in range(0, size, len(block)):
                handle.write(block[: min(len(block), size - start)])
        else:
            handle.write(line)
    return job.fileStore.writeGlobalFile(path)


def gather(job: Any, file_ids: list[Any]) -> int:
    total = 0
    for file_id in file_ids:
        with job.fileStore.readGlobalFileStream(file_id) as handle:
            total += len(handle.read())
    return total


def fan_out(job: Any, count: int, size: int = 0) -> Any:
    disk = f"{max(10, 3 * size // 2**20)}M"
    children = [job.addChildJobFn(small_file, n, size, memory="50M", cores=0.1, disk=disk) for n in range(count)]
    return job.addFollowOnJobFn(gather, [child.rv() for child in children]).rv()


def run_workflow(locator: str, count: int, max_cores: int, size: int) -> None:
    """The Toil leader (run in a subprocess by ``main``)."""
    from toil.common import Toil
    from toil.job import Job

    parser = Job.Runner.getDefaultArgumentParser()
    options = parser.parse_args([locator])
    options.batchSystem = "single_machine"
    options.maxCores = max_cores
    options.logLevel = "WARNING"
    options.clean = "always"
    with Toil(options) as toil:
        result = toil.start(Job.wrapJobFn(fan_out, count, size))
    if result <= 0:
        raise SystemExit("the workflow produced nothing")


def timed(locator: str, count: int, max_cores: int, size: int, env: dict[str, str]) -> float:
    command = [sys.executable, __file__, "--leader", locator, "--jobs", str(count), "--max-cores", str(max_cores)]
    command += ["--file-size", str(size)]
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True)
    return time.perf_counter() - start


def _size(text: str) -> int:
    """``16M``, ``512K``, ``1G`` or a plain number of bytes."""
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--max-cores", type=int, default=2)
    parser.add_argument("--runs", type=int, default=1, help="runs per store, in alternating order")
    parser.add_argument(
        "--file-size", type=_size, default=0, help="bytes each job writes, e.g. 16M (default: one line of text)"
    )
    parser.add_argument("--leader", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.leader:
        run_workflow(args.leader, args.jobs, args.max_cores, args.file_size)
        return

    # An installed jobstore (pip install .) has byte-compiled modules, as Toil does; a source
    # checkout may not (PYTHONDONTWRITEBYTECODE), and every Toil worker would then compile ours
    # from source again. Compile them once so both stores start alike.
    compileall.compile_dir(str(REPO / "jobstore"), quiet=1)
    with tempfile.TemporaryDirectory(prefix="toil-bench-") as work:
        site_dir = Path(work, "site")
        site_dir.mkdir()
        hook_dir = REPO / "jobstore" / "toil" / "site"
        (site_dir / "sitecustomize.py").write_text(f"import site\nsite.addsitedir({str(hook_dir)!r})\n")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site_dir), str(REPO), env.get("PYTHONPATH")]))
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        locators = {"toil": f"file:{work}/toil-store", "jobstore": f"jobstore:file:{work}/jobstore-store"}
        seconds: dict[str, list[float]] = {"toil": [], "jobstore": []}
        for run in range(args.runs):
            for name in ("toil", "jobstore") if run % 2 == 0 else ("jobstore", "toil"):
                seconds[name].append(timed(f"{locators[name]}-{run}", args.jobs, args.max_cores, args.file_size, env))
    toil_seconds, ours_seconds = statistics.median(seconds["toil"]), statistics.median(seconds["jobstore"])
    each = lambda name: ", ".join(f"{value:.1f}" for value in seconds[name])  # noqa: E731
    written = f"a {args.file_size:,}-byte file" if args.file_size else "a small file"
    print(f"{args.jobs} jobs each writing {written}, single_machine, maxCores={args.max_cores}, {args.runs} run(s)")
    print(f"  Toil FileJobStore        {toil_seconds:8.1f} s  (runs: {each('toil')})")
    print(f"  jobstore (SQLite+local)  {ours_seconds:8.1f} s  (runs: {each('jobstore')})")
    print(f"  ratio jobstore / Toil    {ours_seconds / toil_seconds:8.2f}  (medians)")


if __name__ == "__main__":
    main()
