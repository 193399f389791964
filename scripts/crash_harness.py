#!/usr/bin/env python
"""The full crash-consistency run: SIGKILL a writer N times per catalog x blob store combination.

    python scripts/crash_harness.py --kills 100                      # all six combinations
    python scripts/crash_harness.py --kills 100 --combos sqlite-local,postgres-s3 --json crash.json

Starts the servers it needs (PostgreSQL, SeaweedFS for S3, fake-gcs-server for GCS) on 127.0.0.1,
as the test suite does, and stops them at the end. For each combination it creates a fresh store
and runs tests/reliability/crashlib.py's campaign: after every kill the store is reopened and
compared with the journal of what the writer reported committed, fsck'd, garbage-collected and
fsck'd again. Prints one line per kill and a JSON summary per combination (kills, the operation in
flight at each kill and whether it had landed, failures with details); ``--json`` also writes the
summaries to a file. Exit status 1 if any kill left the store inconsistent.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from jobstore import Config, create_job_store  # noqa: E402
from tests.reliability.crashlib import run_campaign  # noqa: E402

COMBINATIONS = ("sqlite-local", "postgres-local", "sqlite-s3", "postgres-s3", "sqlite-gcs", "postgres-gcs")


class Servers:
    """Starts each server the first time a combination needs it."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        self._stack = stack
        self._servers: dict[str, Any] = {}

    def get(self, kind: str) -> Any:
        if kind not in self._servers:
            if kind == "postgres":
                from tests.services.postgres import PostgresServer

                self._servers[kind] = self._stack.enter_context(PostgresServer())
            elif kind == "s3":
                from tests.services.s3 import running_s3_server

                server = self._stack.enter_context(running_s3_server())
                server.boto3_client().create_bucket(Bucket="jobstore-crash")
                self._servers[kind] = server
            elif kind == "gcs":
                from tests.services.gcs import running_gcs_server

                server = self._stack.enter_context(running_gcs_server())
                server.client().create_bucket("jobstore-crash")
                self._servers[kind] = server
        return self._servers[kind]


def make_store(combination: str, servers: Servers, workdir: str) -> tuple[str, str | None]:
    """A fresh initialized store on ``combination``; its locator and catalog URL."""
    catalog, blobs = combination.split("-", 1)
    name = f"crash-{uuid.uuid4().hex[:8]}"
    if catalog == "sqlite" and blobs == "local":
        locator = f"file:{workdir}/{name}"
        config = Config()
    else:
        if blobs == "local":
            config = Config(blobStore=f"file://{workdir}/{name}-blobs")
        elif blobs == "s3":
            config = servers.get("s3").config(blobStore=f"s3://jobstore-crash/{name}")
        else:
            config = servers.get("gcs").config(blobStore=f"gs://jobstore-crash/{name}")
        if catalog == "postgres":
            locator = f"sql:{servers.get('postgres').url}#{name}"
        else:
            locator = f"sql:sqlite:///{workdir}/{name}.sqlite#wf"
    store = create_job_store(locator)
    store.initialize(config)
    catalog_url = store.config.catalog
    store.close()
    return locator, catalog_url


@contextlib.contextmanager
def _workdir(keep: bool) -> Iterator[str]:
    if keep:
        yield tempfile.mkdtemp(prefix="crash-harness-")
    else:
        with tempfile.TemporaryDirectory(prefix="crash-harness-") as directory:
            yield directory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kills", type=int, default=100, help="kills per combination (default 100)")
    parser.add_argument("--combos", default=",".join(COMBINATIONS), help="comma-separated combinations")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="also write the summaries to this file")
    parser.add_argument("--keep", action="store_true", help="keep the stores and journals for inspection")
    parser.add_argument("--quiet", action="store_true", help="no line per kill")
    args = parser.parse_args(argv)
    combos = [combo.strip() for combo in args.combos.split(",") if combo.strip()]
    unknown = [combo for combo in combos if combo not in COMBINATIONS]
    if unknown:
        parser.error(f"unknown combinations {unknown}; choose from {', '.join(COMBINATIONS)}")

    summaries: list[dict[str, Any]] = []
    began = time.monotonic()
    with contextlib.ExitStack() as stack, _workdir(args.keep) as workdir:
        servers = Servers(stack)
        for combo in combos:
            locator, catalog = make_store(combo, servers, workdir)
            result = run_campaign(
                combo, locator, catalog, args.kills, seed=args.seed, log=None if args.quiet else print
            )
            summary = result.summary()
            summary["locator"] = locator.split("#")[0].split("@")[-1] if combo != "sqlite-local" else "file:"
            summaries.append(summary)
            print(json.dumps(summary, indent=1), flush=True)
    report = {
        "kills_per_combination": args.kills,
        "seed": args.seed,
        "seconds": round(time.monotonic() - began, 1),
        "cpu_count": os.cpu_count(),
        "combinations": summaries,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    failed = [summary["combination"] for summary in summaries if summary["failures"]]
    total = sum(summary["kills"] for summary in summaries)
    print(f"{total} kills, {total - sum(len(s['failures']) for s in summaries)} survived; failing: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
