# ruff: noqa: B023  (every lambda below is called at once, inside its loop iteration)
"""jobstore's S3 and GCS blob paths against the client libraries' own transfer calls, in one run.

    python scripts/cloud_bench.py [--size-mib 1024] [--small 2000] [--runs 3] [--json out.json]

Starts SeaweedFS (S3) and fake-gcs-server (GCS) on 127.0.0.1 (the test fixtures' servers), then, run
by run and interleaved (ours, theirs, ours, theirs...), times:

* a big file: jobstore ``write_file`` / ``read_file`` (SQLite catalog + the cloud blob store, which
  checksums as it goes and verifies on the way back) against boto3's ``upload_file`` /
  ``download_file`` and google-cloud-storage's ``upload_from_filename`` / ``download_to_filename``;
* many 4 KiB files: jobstore ``write_file`` (blob + catalog row) against a bare ``put_object`` /
  ``upload_from_string`` of the same bytes.

Prints medians, the ratio ours/theirs (time; 1.10 = 10 % overhead) and this process's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jobstore import create_job_store
from tests.services.gcs import running_gcs_server
from tests.services.s3 import running_s3_server


def _timed(action: Callable[[], Any]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _make_file(path: Path, size: int) -> None:
    block = os.urandom(1024 * 1024)
    with open(path, "wb") as handle:
        for _ in range(size // len(block)):
            handle.write(block)
        handle.write(block[: size % len(block)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cloud-bench-"))
    big = work / "big.bin"
    _make_file(big, args.size_mib * 1024 * 1024)
    small = work / "small.bin"
    small.write_bytes(os.urandom(4096))
    results: dict[str, list[float]] = {}

    def record(name: str, seconds: float) -> None:
        results.setdefault(name, []).append(seconds)

    with running_s3_server() as s3, running_gcs_server() as gcs:
        client = s3.boto3_client()
        client.create_bucket(Bucket="bench-raw")
        gcs_client = gcs.client()
        gcs_bucket = gcs_client.create_bucket("bench-raw-gcs")
        for run in range(args.runs):
            for provider, blob_url, config in (
                ("s3", f"s3://bench-ours/{uuid.uuid4().hex[:8]}", s3.config()),
                ("gcs", f"gs://bench-ours-gcs/{uuid.uuid4().hex[:8]}", gcs.config(googleChunkSize=8 * 1024 * 1024)),
            ):
                store = create_job_store(f"sql:sqlite:///{work}/catalog-{provider}-{run}.sqlite#b")
                config.blobStore = blob_url
                store.initialize(config)
                job = store.create_job(__import__("jobstore").JobDescription(jobName="bench"))
                file_id = ""

                def ours_write() -> None:
                    nonlocal file_id
                    file_id = store.write_file(str(big), job.jobStoreID)

                record(f"{provider} big write: jobstore", _timed(ours_write))
                out = work / f"out-{provider}"
                record(f"{provider} big read: jobstore", _timed(lambda: store.read_file(file_id, str(out))))
                out.unlink()
                key = f"raw/{uuid.uuid4().hex}"
                if provider == "s3":
                    record("s3 big write: boto3", _timed(lambda: client.upload_file(str(big), "bench-raw", key)))
                    record("s3 big read: boto3", _timed(lambda: client.download_file("bench-raw", key, str(out))))
                    client.delete_object(Bucket="bench-raw", Key=key)
                else:
                    blob = gcs_bucket.blob(key, chunk_size=8 * 1024 * 1024)
                    record("gcs big write: client", _timed(lambda: blob.upload_from_filename(str(big))))
                    record("gcs big read: client", _timed(lambda: blob.download_to_filename(str(out))))
                    blob.delete()
                out.unlink()
                data = small.read_bytes()
                record(
                    f"{provider} {args.small} x 4 KiB: jobstore",
                    _timed(lambda: [store.write_file(str(small), job.jobStoreID) for _ in range(args.small)]),
                )
                if provider == "s3":
                    record(
                        f"s3 {args.small} x 4 KiB: boto3 put_object",
                        _timed(
                            lambda: [
                                client.put_object(Bucket="bench-raw", Key=f"small/{i}", Body=data)
                                for i in range(args.small)
                            ]
                        ),
                    )
                else:
                    record(
                        f"gcs {args.small} x 4 KiB: client upload_from_string",
                        _timed(
                            lambda: [gcs_bucket.blob(f"small/{i}").upload_from_string(data) for i in range(args.small)]
                        ),
                    )
                store.destroy()
    medians = {name: statistics.median(values) for name, values in results.items()}
    for name, median in medians.items():
        print(f"{name:45s} median {median:8.2f} s  (runs: {', '.join(f'{v:.2f}' for v in results[name])})")
    pairs = [
        ("s3 big write: jobstore", "s3 big write: boto3"),
        ("s3 big read: jobstore", "s3 big read: boto3"),
        ("gcs big write: jobstore", "gcs big write: client"),
        ("gcs big read: jobstore", "gcs big read: client"),
        (f"s3 {args.small} x 4 KiB: jobstore", f"s3 {args.small} x 4 KiB: boto3 put_object"),
        (f"gcs {args.small} x 4 KiB: jobstore", f"gcs {args.small} x 4 KiB: client upload_from_string"),
    ]
    for ours, theirs in pairs:
        print(f"ratio {ours} / {theirs}: {medians[ours] / medians[theirs]:.2f}")
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": results, "medians": medians}, indent=2))


if __name__ == "__main__":
    main()
