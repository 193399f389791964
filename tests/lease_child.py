"""A would-be leader in its own process, for tests/test_leases.py.

``python -m tests.lease_child LOCATOR CATALOG SECONDS NAME``: resumes the store (CATALOG "-" for
none), tries to take the leader lease for SECONDS and prints ``won ATTEMPT`` or ``held``; a winner
then creates a job named ``NAME-<n>`` every 50 ms, printing ``wrote <n>`` after each, until its
lease is lost (prints ``lost``, exits 3) or it is killed. Every line is flushed at once.
"""

from __future__ import annotations

import sys
import time

from jobstore import Config, JobDescription, LeaseHeldError, LeaseLostError, create_job_store


def main(locator: str, catalog: str, seconds: float, name: str) -> int:
    store = create_job_store(locator)
    store.resume(Config(catalog=catalog) if catalog != "-" else None)
    try:
        lease = store.acquire_leader_lease(seconds=seconds)
    except LeaseHeldError:
        print("held", flush=True)
        return 2
    print(f"won {lease.attempt}", flush=True)
    written = 0
    while True:
        try:
            store.create_job(JobDescription(jobName=f"{name}-{written}"))
        except LeaseLostError:
            print("lost", flush=True)
            return 3
        print(f"wrote {written}", flush=True)
        written += 1
        time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]))
