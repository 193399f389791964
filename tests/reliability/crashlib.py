"""Crash consistency: a writer process doing a mixed workload, killed with SIGKILL at random moments.

The writer (``python -m tests.reliability.crashlib writer ...``) runs jobs, files, streams, shared
files, logs and batches against a store and keeps a journal: a ``begin`` record (what it is about to
do) before every operation and a ``commit`` record once the store call has returned. The journal
is written with plain ``os.write`` calls, so a SIGKILL loses nothing the writer had written to it.

After each kill the harness (:func:`run_campaign`) reopens the store and compares everything in it
with its model: the state before the operation that was in flight, or the state after it. Nothing
else is acceptable, which checks at once that every committed operation is there, that nothing
partial is visible, and that multi-row operations (``batch()``, ``delete_job`` with its cleanup
files) are all or nothing. Every file is read back through the store (which verifies the CRC32C)
and is also self-verifying: its content carries the SHA-256 of its own body, so a truncated or
mixed-up blob cannot pass. Then ``fsck --verify-checksums`` must find nothing but unreferenced
blobs (the expected residue of a crash), ``gc --grace 0`` must remove them, a second ``fsck`` must
be clean, and no temporary upload may be left behind.

Content digests (SHA-256 of the whole content) identify file versions in the model.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from jobstore import Config, JobDescription, JobStore, create_job_store

MAGIC = b"JSCRASH1 "
SHARED_NAMES = ("progress", "state.json", "leader-lock", "config-v2")

#: Relative weights of the writer's operations.
OPERATIONS: dict[str, float] = {
    "create_job": 3,
    "update_job": 4,
    "delete_job": 1,
    "write_file": 2,
    "write_file_stream": 3,
    "update_file": 2,
    "update_file_stream": 2,
    "delete_file": 2,
    "write_shared": 2,
    "write_log": 3,
    "batch": 1,
    "big_file": 0.2,
}
#: Past this many files the writer deletes more than it creates, so verification stays quick.
FILE_LIMIT = 40
BIG_FILE = 6 * 1024 * 1024
NEW = "<new file>"


def make_content(rng: random.Random, size: int) -> bytes:
    """Random bytes that carry their own SHA-256, so any partial or mixed blob is detectable."""
    body = rng.randbytes(size)
    return MAGIC + hashlib.sha256(body).hexdigest().encode() + b"\n" + body


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_is_whole(data: bytes) -> bool:
    if not data.startswith(MAGIC):
        return False
    header, _, body = data.partition(b"\n")
    return header[len(MAGIC) :].decode("ascii", "replace") == hashlib.sha256(body).hexdigest()


# --- the writer -------------------------------------------------------------------------------------


class _Journal:
    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def note(self, kind: str, **details: Any) -> None:
        os.write(self._fd, (json.dumps({"k": kind, **details}) + "\n").encode())


def open_store(locator: str, catalog: str | None) -> JobStore:
    store = create_job_store(locator)
    store.resume(Config(catalog=catalog) if catalog else None)
    return store


def run_writer(locator: str, catalog: str | None, journal_path: str, seed: int, workdir: str) -> None:
    """The workload: runs until killed. Every record it journals as committed must survive."""
    journal = _Journal(journal_path)
    store = open_store(locator, catalog)
    rng = random.Random(seed)
    jobs = {job.jobStoreID: int(job.counter) for job in store.jobs() if job.jobStoreID}
    files: dict[str, tuple[str | None, bool]] = {}
    for file_id in store.get_all_file_ids():
        info = store.file_info(file_id)
        if info.shared_name is None:
            files[file_id] = (info.job_id, info.cleanup)
    journal.note("ready", pid=os.getpid())
    names = list(OPERATIONS)
    seq = 0
    while True:
        weights = dict(OPERATIONS)
        if len(files) > FILE_LIMIT:
            weights.update(write_file=0.2, write_file_stream=0.2, big_file=0, delete_file=8, delete_job=3)
        op = rng.choices(names, [weights[name] for name in names])[0]
        seq += 1
        _one_operation(store, journal, rng, seq, op, jobs, files, workdir)


def _one_operation(
    store: JobStore,
    journal: _Journal,
    rng: random.Random,
    seq: int,
    op: str,
    jobs: dict[str, int],
    files: dict[str, tuple[str | None, bool]],
    workdir: str,
) -> None:
    if op in ("update_job", "delete_job") and not jobs:
        op = "create_job"
    if op in ("update_file", "update_file_stream", "delete_file") and not files:
        op = "write_file_stream"
    owner = rng.choice(sorted(jobs)) if jobs and rng.random() < 0.7 else None
    cleanup = owner is not None and rng.random() < 0.5
    if op == "create_job":
        job = JobDescription({"memory": 1 << 20, "cores": 1}, "crash", counter=0)
        store.assign_job_id(job)
        journal.note("begin", seq=seq, op=op, job_id=job.jobStoreID)
        store.create_job(job)
        jobs[str(job.jobStoreID)] = 0
        journal.note("commit", seq=seq)
    elif op == "update_job":
        job_id = rng.choice(sorted(jobs))
        job = store.load_job(job_id)
        job.counter = int(job.counter) + 1
        journal.note("begin", seq=seq, op=op, job_id=job_id, counter=job.counter)
        store.update_job(job)
        jobs[job_id] = job.counter
        journal.note("commit", seq=seq)
    elif op == "delete_job":
        job_id = rng.choice(sorted(jobs))
        journal.note("begin", seq=seq, op=op, job_id=job_id)
        store.delete_job(job_id)
        del jobs[job_id]
        for file_id, (file_owner, file_cleanup) in list(files.items()):
            if file_owner == job_id and file_cleanup:
                del files[file_id]
        journal.note("commit", seq=seq)
    elif op in ("write_file", "big_file"):
        data = make_content(rng, BIG_FILE if op == "big_file" else rng.randrange(0, 300_000))
        path = os.path.join(workdir, f"in-{seq}")
        with open(path, "wb") as handle:
            handle.write(data)
        journal.note("begin", seq=seq, op="write_file", digest=digest(data), job_id=owner, cleanup=cleanup)
        file_id = store.write_file(path, owner, cleanup=cleanup)
        files[file_id] = (owner, cleanup)
        journal.note("commit", seq=seq, file_id=file_id)
        os.unlink(path)
    elif op == "write_file_stream":
        data = make_content(rng, rng.randrange(0, 300_000))
        journal.note("begin", seq=seq, op=op, digest=digest(data), job_id=owner, cleanup=cleanup)
        with store.write_file_stream(owner, cleanup=cleanup) as (handle, file_id):
            for start in range(0, len(data), 65536):
                handle.write(data[start : start + 65536])
        files[file_id] = (owner, cleanup)
        journal.note("commit", seq=seq, file_id=file_id)
    elif op == "update_file":
        file_id = rng.choice(sorted(files))
        data = make_content(rng, rng.randrange(0, 200_000))
        path = os.path.join(workdir, f"up-{seq}")
        with open(path, "wb") as handle:
            handle.write(data)
        journal.note("begin", seq=seq, op=op, file_id=file_id, digest=digest(data))
        store.update_file(file_id, path)
        journal.note("commit", seq=seq)
        os.unlink(path)
    elif op == "update_file_stream":
        file_id = rng.choice(sorted(files))
        data = make_content(rng, rng.randrange(0, 200_000))
        journal.note("begin", seq=seq, op=op, file_id=file_id, digest=digest(data))
        with store.update_file_stream(file_id) as handle:
            for start in range(0, len(data), 65536):
                handle.write(data[start : start + 65536])
        journal.note("commit", seq=seq)
    elif op == "delete_file":
        file_id = rng.choice(sorted(files))
        journal.note("begin", seq=seq, op=op, file_id=file_id)
        store.delete_file(file_id)
        del files[file_id]
        journal.note("commit", seq=seq)
    elif op == "write_shared":
        name = rng.choice(SHARED_NAMES)
        data = make_content(rng, rng.randrange(0, 50_000))
        journal.note("begin", seq=seq, op=op, name=name, digest=digest(data))
        with store.write_shared_file_stream(name) as handle:
            handle.write(data)
        journal.note("commit", seq=seq)
    elif op == "write_log":
        message = f"log {seq} {rng.getrandbits(64):016x}"
        journal.note("begin", seq=seq, op=op, message=message)
        store.write_logs(message)
        journal.note("commit", seq=seq)
    elif op == "batch":
        first = JobDescription({}, "batch", counter=0)
        second = JobDescription({}, "batch", counter=0)
        store.assign_job_id(first)
        store.assign_job_id(second)
        data = make_content(rng, rng.randrange(0, 100_000))
        journal.note("begin", seq=seq, op=op, job_ids=[first.jobStoreID, second.jobStoreID], digest=digest(data))
        with store.batch():
            store.create_job(first)
            store.create_job(second)
            with store.write_file_stream(first.jobStoreID, cleanup=True) as (handle, file_id):
                handle.write(data)
        jobs[str(first.jobStoreID)] = 0
        jobs[str(second.jobStoreID)] = 0
        files[file_id] = (first.jobStoreID, True)
        journal.note("commit", seq=seq, file_id=file_id)
    else:  # pragma: no cover
        raise AssertionError(op)


# --- the model -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileState:
    digest: str
    job_id: str | None
    cleanup: bool


@dataclass
class State:
    """What the store holds, as far as the harness can tell."""

    jobs: dict[str, int] = field(default_factory=dict)
    files: dict[str, FileState] = field(default_factory=dict)
    shared: dict[str, str] = field(default_factory=dict)
    logs: set[str] = field(default_factory=set)

    def copy(self) -> State:
        return State(dict(self.jobs), dict(self.files), dict(self.shared), set(self.logs))


def apply(state: State, begin: dict[str, Any], file_id: str | None) -> State:
    """The state after the operation ``begin`` describes; a new file whose ID is unknown (the
    writer was killed before it learnt it) is keyed ``NEW``."""
    after = state.copy()
    op = begin["op"]
    if op == "create_job":
        after.jobs[begin["job_id"]] = 0
    elif op == "update_job":
        after.jobs[begin["job_id"]] = begin["counter"]
    elif op == "delete_job":
        after.jobs.pop(begin["job_id"], None)
        for fid, info in list(after.files.items()):
            if info.job_id == begin["job_id"] and info.cleanup:
                del after.files[fid]
    elif op in ("write_file", "write_file_stream"):
        after.files[file_id or NEW] = FileState(begin["digest"], begin["job_id"], bool(begin["cleanup"]))
    elif op in ("update_file", "update_file_stream"):
        old = after.files[begin["file_id"]]
        after.files[begin["file_id"]] = FileState(begin["digest"], old.job_id, old.cleanup)
    elif op == "delete_file":
        after.files.pop(begin["file_id"], None)
    elif op == "write_shared":
        after.shared[begin["name"]] = begin["digest"]
    elif op == "write_log":
        after.logs.add(begin["message"])
    elif op == "batch":
        for job_id in begin["job_ids"]:
            after.jobs[job_id] = 0
        after.files[file_id or NEW] = FileState(begin["digest"], begin["job_ids"][0], True)
    else:
        raise AssertionError(op)
    return after


def matches(expected: State, observed: State) -> State | None:
    """``observed`` if it equals ``expected`` (a ``NEW`` file matching exactly one unknown file)."""
    if (expected.jobs, expected.shared, expected.logs) != (observed.jobs, observed.shared, observed.logs):
        return None
    files = dict(expected.files)
    wildcard = files.pop(NEW, None)
    if wildcard is None:
        return observed if files == observed.files else None
    extra = {fid: info for fid, info in observed.files.items() if fid not in files}
    rest = {fid: info for fid, info in observed.files.items() if fid in files}
    if rest == files and list(extra.values()) == [wildcard]:
        return observed
    return None


def read_journal(path: str) -> list[dict[str, Any]]:
    records = []
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.endswith("\n"):
                    records.append(json.loads(line))
    except FileNotFoundError:
        pass
    return records


def observe(store: JobStore) -> tuple[State, list[str]]:
    """Everything in the store, every file read back and checked; and a list of what is wrong."""
    from jobstore import JobStoreError

    wrong: list[str] = []
    state = State()
    for job in store.jobs():
        state.jobs[str(job.jobStoreID)] = int(job.counter)
    for file_id in store.get_all_file_ids():
        info = store.file_info(file_id)
        try:
            with store.read_file_stream(file_id) as handle:
                data = handle.read()
        except JobStoreError as error:
            wrong.append(f"file {file_id} ({info.shared_name}) unreadable: {type(error).__name__}: {error}")
            continue
        if not content_is_whole(data):
            wrong.append(f"file {file_id} ({info.shared_name}) holds partial or foreign content ({len(data)} bytes)")
        if info.shared_name is not None:
            state.shared[info.shared_name] = digest(data)
        else:
            state.files[file_id] = FileState(digest(data), info.job_id, info.cleanup)
    messages: list[str] = []
    store.read_logs(lambda stream: messages.append(stream.read().decode()), read_all=True)
    duplicates = [message for message, count in Counter(messages).items() if count > 1]
    if duplicates:
        wrong.append(f"log messages delivered twice: {duplicates[:3]}")
    state.logs = set(messages)
    return state, wrong


# --- the harness -----------------------------------------------------------------------------------


@dataclass
class KillRecord:
    round: int
    #: The operation in flight when the writer died ("startup" if it had not begun one).
    in_flight: str
    committed_ops: int
    #: "before" (the in-flight operation left no trace), "after" (it had committed), "none" (no op).
    landed: str
    fsck_before_gc: dict[str, int]
    gc_deleted_blobs: int
    temporaries_left: int
    ok: bool
    problems: list[str]


@dataclass
class CampaignResult:
    combination: str
    kills: int
    records: list[KillRecord] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failures(self) -> list[KillRecord]:
        return [record for record in self.records if not record.ok]

    def summary(self) -> dict[str, Any]:
        by_op: dict[str, dict[str, int]] = {}
        for record in self.records:
            entry = by_op.setdefault(record.in_flight, {"kills": 0, "before": 0, "after": 0, "failed": 0})
            entry["kills"] += 1
            if record.landed in ("before", "after"):
                entry[record.landed] += 1
            if not record.ok:
                entry["failed"] += 1
        return {
            "combination": self.combination,
            "kills": len(self.records),
            "survived": len(self.records) - len(self.failures),
            "committed_ops_verified": sum(record.committed_ops for record in self.records),
            "unreferenced_blobs_collected": sum(record.gc_deleted_blobs for record in self.records),
            "by_operation_in_flight": dict(sorted(by_op.items())),
            "seconds": round(self.seconds, 1),
            "failures": [record.__dict__ for record in self.failures],
        }


def temporaries_left(store: JobStore) -> int:
    """Uploads a killed writer left half done: local temporary files, S3 multipart uploads."""
    blobs = store.blob_store
    root = getattr(blobs, "root", None)
    if root is not None:
        temp_dir = os.path.join(root, ".tmp")
        return len(os.listdir(temp_dir)) if os.path.isdir(temp_dir) else 0
    client = getattr(blobs, "_client", None)
    if client is not None and hasattr(blobs, "bucket"):
        prefix = getattr(blobs, "prefix", "")
        response = client.list_multipart_uploads(Bucket=blobs.bucket, Prefix=prefix)
        return len(response.get("Uploads", []))
    return 0


def _wait_for(predicate: Any, timeout: float, process: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.005)
    return False


def run_campaign(
    combination: str,
    locator: str,
    catalog: str | None,
    kills: int,
    *,
    seed: int = 0,
    max_ops_before_kill: int = 30,
    log: Any = None,
) -> CampaignResult:
    """Kill a writer ``kills`` times at random moments; verify the store after every kill."""
    from jobstore.maintenance import collect_garbage, fsck

    rng = random.Random(seed)
    result = CampaignResult(combination, kills)
    model = State()
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="crash-") as workdir:
        for round_number in range(kills):
            journal_path = os.path.join(workdir, f"journal-{round_number}")
            stderr_path = os.path.join(workdir, f"stderr-{round_number}")
            command = [sys.executable, "-m", "tests.reliability.crashlib", "writer", locator, journal_path]
            command += ["--seed", str(seed * 100_000 + round_number), "--workdir", workdir]
            if catalog:
                command += ["--catalog", catalog]
            with open(stderr_path, "wb") as stderr:
                process = subprocess.Popen(command, stderr=stderr, stdout=subprocess.DEVNULL, cwd=_repo_root())
            try:
                if rng.random() < 0.1:
                    time.sleep(rng.uniform(0, 1.0))  # sometimes during start-up and resume
                else:
                    target = rng.randrange(0, max_ops_before_kill)

                    # Mostly aim inside an operation (just after its begin record), sometimes anywhere.
                    aim = rng.random() < 0.75

                    def enough(target: int = target, aim: bool = aim, journal: str = journal_path) -> bool:
                        records = read_journal(journal)
                        if not records or sum(1 for r in records if r["k"] == "commit") < target:
                            return False
                        return not aim or records[-1]["k"] == "begin"

                    _wait_for(enough, 180, process)
                    time.sleep(rng.uniform(0, 0.004 if aim else 0.03))
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGKILL)
                process.wait()
            record = _verify_round(
                round_number, journal_path, stderr_path, model, locator, catalog, fsck, collect_garbage
            )
            result.records.append(record)
            if log is not None:
                log(
                    f"{combination} kill {round_number + 1}/{kills}: {record.in_flight} -> {record.landed}"
                    f"{'' if record.ok else ' FAILED ' + '; '.join(record.problems)}"
                )
            if not record.ok:
                break  # the model no longer describes the store
    result.seconds = time.monotonic() - began
    return result


def _verify_round(
    round_number: int,
    journal_path: str,
    stderr_path: str,
    model: State,
    locator: str,
    catalog: str | None,
    fsck: Any,
    collect_garbage: Any,
) -> KillRecord:
    records = read_journal(journal_path)
    problems: list[str] = []
    committed = 0
    in_flight: dict[str, Any] | None = None
    pending: dict[int, dict[str, Any]] = {}
    for record in records:
        if record["k"] == "begin":
            pending[record["seq"]] = record
            in_flight = record
        elif record["k"] == "commit":
            begin = pending.pop(record["seq"])
            new = apply(model, begin, record.get("file_id"))
            model.__dict__.update(new.__dict__)
            committed += 1
            in_flight = None
    if records and records[-1]["k"] not in ("begin", "commit", "ready"):
        problems.append(f"unexpected journal record {records[-1]}")
    # A writer that died of an exception (not of our SIGKILL) is a failure too.
    with open(stderr_path, "rb") as handle:
        stderr = handle.read().decode(errors="replace")
    if "Traceback" in stderr:
        problems.append("writer raised: " + stderr.strip().splitlines()[-1])
    landed = "none"
    fsck_counts: dict[str, int] = {}
    deleted = 0
    temps = 0
    try:
        store = open_store(locator, catalog)
        try:
            observed, wrong = observe(store)
            problems += wrong
            if matches(model, observed) is not None:
                landed = "before" if in_flight is not None else "none"
            elif in_flight is not None and matches(apply(model, in_flight, None), observed) is not None:
                landed = "after"
            else:
                problems.append(_difference(model, observed, in_flight))
            if landed != "none" or in_flight is None:
                model.__dict__.update(observed.copy().__dict__)
            report = fsck(store, verify_checksums=True)
            fsck_counts = report.counts()
            damage = {kind: n for kind, n in fsck_counts.items() if kind != "unreferenced_blob"}
            if damage:
                problems.append(f"fsck found {damage}: {[p.detail for p in report.problems][:3]}")
            collected = collect_garbage(store, grace="0")
            deleted = collected.deleted_blobs
            again = fsck(store, verify_checksums=False)
            if again.problems:
                problems.append(f"fsck after gc still finds {again.counts()}")
            temps = temporaries_left(store)
            if temps:
                problems.append(f"{temps} temporary upload(s) left after gc")
            # The store is still writable after the crash.
            store.write_logs(f"verifier {round_number}")
            model.logs.add(f"verifier {round_number}")
        finally:
            store.close()
    except Exception as error:  # recorded, not raised: the harness reports every outcome
        problems.append(f"verification raised {type(error).__name__}: {error}\n{traceback.format_exc()[-2000:]}")
    return KillRecord(
        round=round_number,
        in_flight=in_flight["op"] if in_flight is not None else "startup" if not committed else "between",
        committed_ops=committed,
        landed=landed,
        fsck_before_gc=fsck_counts,
        gc_deleted_blobs=deleted,
        temporaries_left=temps,
        ok=not problems,
        problems=problems,
    )


def _difference(model: State, observed: State, in_flight: dict[str, Any] | None) -> str:
    parts = [f"store matches neither the state before nor after {in_flight and in_flight['op']}"]
    for name in ("jobs", "files", "shared"):
        want, got = getattr(model, name), getattr(observed, name)
        missing = sorted(set(want) - set(got))[:3]
        extra = sorted(set(got) - set(want))[:3]
        changed = sorted(key for key in set(want) & set(got) if want[key] != got[key])[:3]
        if missing or extra or changed:
            parts.append(f"{name}: missing {missing} extra {extra} changed {changed}")
    if model.logs != observed.logs:
        parts.append(
            f"logs: missing {sorted(model.logs - observed.logs)[:3]} extra {sorted(observed.logs - model.logs)[:3]}"
        )
    return "; ".join(parts)


def _repo_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    writer = sub.add_parser("writer")
    writer.add_argument("locator")
    writer.add_argument("journal")
    writer.add_argument("--catalog")
    writer.add_argument("--seed", type=int, default=0)
    writer.add_argument("--workdir", default=tempfile.gettempdir())
    args = parser.parse_args(argv)
    run_writer(args.locator, args.catalog, args.journal, args.seed, args.workdir)


if __name__ == "__main__":
    main()
