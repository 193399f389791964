"""What a new process pays to use a store, for this tree and optionally an older commit.

    python scripts/process_costs.py                  # this tree only
    python scripts/process_costs.py --compare REV    # also REV (a git worktree), alternating runs

A workflow engine starts many short-lived processes (Toil one per job), so a store's fixed costs
matter as much as its per-operation ones. Each measurement is a fresh ``python -c`` process
(byte-compiled modules, as installed) that reports its own timings:

* SQLite: the import of ``jobstore``, ``initialize`` of a new ``file:`` store, and the whole
  process's wall time; then, in another process, ``resume`` and a first ``batch()`` of 50
  creations (what a worker saving a job's children does), and whether SQLAlchemy got imported;
  then, in a third, a worker's first large file: ``write_file`` of a 16 MiB file and a
  ``read_file_stream`` of it (each verified by its checksum).
* PostgreSQL (the test suite's server, started here on 127.0.0.1): ``initialize`` of the next store
  in a shared catalog, 200 overwrites of a shared file, 20 ``batch()`` blocks of 50 creations.

Medians over ``--runs`` (default 5), trees alternating run by run.
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SQLITE_CREATE = r"""
import sys, time
t0 = time.perf_counter()
from jobstore import Config, FileJobStore
t1 = time.perf_counter()
FileJobStore(sys.argv[1]).initialize(Config())
t2 = time.perf_counter()
print((t1 - t0) * 1000, (t2 - t1) * 1000)
"""

SQLITE_WORKER = r"""
import sys, time
from jobstore import FileJobStore, JobDescription
store = FileJobStore(sys.argv[1])
store.resume()
t = time.perf_counter()
with store.batch():
    for i in range(50):
        store.create_job(JobDescription({}, f"child-{i}"))
batch = (time.perf_counter() - t) * 1000
print(batch, int(any(m.startswith("sqlalchemy") for m in sys.modules)))
"""

SQLITE_LARGE_FILE = r"""
import sys, time
from jobstore import FileJobStore
store = FileJobStore(sys.argv[1])
store.resume()
t = time.perf_counter()
file_id = store.write_file(sys.argv[2])
write = (time.perf_counter() - t) * 1000
t = time.perf_counter()
with store.read_file_stream(file_id) as stream:
    while stream.read(1 << 20):
        pass
read = (time.perf_counter() - t) * 1000
print(write, read)
"""

POSTGRES = r"""
import sys, tempfile, time, uuid
from jobstore import Config, JobDescription, create_job_store
t = time.perf_counter()
store = create_job_store(f"sql:{sys.argv[1]}#costs-{uuid.uuid4().hex[:10]}")
store.initialize(Config(blobStore=f"file://{tempfile.mkdtemp()}"))
initialize = (time.perf_counter() - t) * 1000
with store.write_shared_file_stream("status") as stream:
    stream.write(b"first")
t = time.perf_counter()
for i in range(200):
    with store.write_shared_file_stream("status") as stream:
        stream.write(b"payload %d" % i)
shared = (time.perf_counter() - t) / 200 * 1000
t = time.perf_counter()
for _ in range(20):
    with store.batch():
        for i in range(50):
            store.create_job(JobDescription({}, f"c{i}"))
batch = (time.perf_counter() - t) / 20 * 1000
store.destroy()
print(initialize, shared, batch)
"""


def run(tree: Path, code: str, *args: str) -> list[float]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, cwd=tempfile.gettempdir()
    )
    if done.returncode != 0:
        raise SystemExit(f"{tree}: {done.stderr.strip()[-2000:]}")
    return [float(value) for value in done.stdout.split()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compare", metavar="REV", help="also measure this git revision (a temporary worktree)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL measurements")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="process-costs-") as scratch:
        trees = {"this tree": REPO}
        if args.compare:
            worktree = Path(scratch, "compare")
            subprocess.run(["git", "worktree", "add", "--detach", str(worktree), args.compare], cwd=REPO, check=True)
            trees[args.compare] = worktree
        try:
            for tree in trees.values():
                compileall.compile_dir(str(tree / "jobstore"), quiet=1)
            results: dict[str, dict[str, list[float]]] = {name: {} for name in trees}

            def record(name: str, metric: str, value: float) -> None:
                results[name].setdefault(metric, []).append(value)

            large_file = Path(scratch, "large.bin")
            large_file.write_bytes(os.urandom(16 << 20))
            for run_number in range(args.runs):
                for name, tree in trees.items() if run_number % 2 == 0 else reversed(list(trees.items())):
                    store = str(Path(tempfile.mkdtemp(dir=scratch)) / "store")
                    start = time.perf_counter()
                    imported, initialized = run(tree, SQLITE_CREATE, store)
                    record(name, "SQLite: new process, whole (ms)", (time.perf_counter() - start) * 1000)
                    record(name, "SQLite: import jobstore (ms)", imported)
                    record(name, "SQLite: initialize (ms)", initialized)
                    batch, loaded_sqlalchemy = run(tree, SQLITE_WORKER, store)
                    record(name, "SQLite: worker's first batch() of 50 creations (ms)", batch)
                    record(name, "SQLite: worker imported SQLAlchemy (1 = yes)", loaded_sqlalchemy)
                    write, read = run(tree, SQLITE_LARGE_FILE, store, str(large_file))
                    record(name, "SQLite: worker's first write_file, 16 MiB (ms)", write)
                    record(name, "SQLite: then read_file_stream of it (ms)", read)
            if not args.no_postgres:
                from tests.services.postgres import PostgresServer

                with PostgresServer() as server:
                    for run_number in range(args.runs):
                        for name, tree in trees.items() if run_number % 2 == 0 else reversed(list(trees.items())):
                            initialize, shared, batch = run(tree, POSTGRES, str(server.url))
                            record(name, "PostgreSQL: new process's initialize (ms)", initialize)
                            record(name, "PostgreSQL: shared-file overwrite (ms)", shared)
                            record(name, "PostgreSQL: batch() of 50 creations (ms)", batch)
        finally:
            if args.compare:
                subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=REPO, check=False)

    names = list(trees)
    metrics = list(results[names[0]])
    width = max(len(metric) for metric in metrics)
    print(f"medians of {args.runs} runs".ljust(width) + "".join(f"  {name:>12}" for name in names))
    for metric in metrics:
        print(metric.ljust(width) + "".join(f"  {statistics.median(results[name][metric]):12.2f}" for name in names))


if __name__ == "__main__":
    main()
