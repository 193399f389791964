"""Plain data shared by the parent and the children: sizes, measurements, run specs."""

from __future__ import annotations

import os
import resource
import time
from dataclasses import asdict, dataclass, field
from typing import Any

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB


@dataclass
class Params:
    """Workload sizes. Every field is overridable from the command line."""

    n: int = 2000  # W1-W4, W6: jobs
    iter_jobs: int = 20_000  # W5: jobs iterated by jobs()
    small_files: int = 2000  # W7: number of small files
    small_size: int = 4 * KIB  # W7: size of each small file
    big_size: int = GIB  # W8: size of the big file
    chunk: int = MIB  # W8: stream chunk size
    file_rows: int = 1_000_000  # W9: file rows in the catalog
    file_jobs: int = 1000  # W9: jobs owning those rows
    orphan_fraction: float = 0.01  # W9: share of rows whose job does not exist
    procs: tuple[int, ...] = (1, 2, 4, 8)  # W10: process counts
    shared_jobs: int = 4  # W10: jobs all processes fight over
    updates_per_proc: int = 250  # W10: successful updates each process makes

    @classmethod
    def quick(cls) -> Params:
        """Tiny sizes for a smoke test that finishes in seconds."""
        return cls(
            n=50,
            iter_jobs=200,
            small_files=50,
            small_size=4 * KIB,
            big_size=8 * MIB,
            chunk=MIB,
            file_rows=5000,
            file_jobs=50,
            procs=(1, 2),
            shared_jobs=2,
            updates_per_proc=20,
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["procs"] = list(self.procs)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Params:
        data = dict(data)
        data["procs"] = tuple(data["procs"])
        return cls(**data)


@dataclass
class Metric:
    """One timed section of one run.

    ``count`` things (``unit``) were done in ``seconds``; for ``unit == "B"`` the rate is reported
    in MiB/s, otherwise in ``unit``/s. ``rss_kib`` is the peak RSS during the section (for W10 the
    largest of the workers'), ``extra['rss_start_kib']`` the RSS when it started.
    """

    name: str
    seconds: float
    count: float
    unit: str = "ops"
    rss_kib: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _proc_status_kib(field: str) -> int | None:
    """A ``kB`` field of /proc/self/status (Linux), or None where there is no such file."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def current_rss_kib() -> int:
    """This process's resident set size now, in KiB."""
    value = _proc_status_kib("VmRSS")
    return value if value is not None else peak_rss_kib()


def peak_rss_kib() -> int:
    """This process's peak RSS since it started or since ``reset_peak_rss()``, in KiB.

    On Linux this is ``VmHWM``, the high-water mark of the process's own address space. Not
    ``ru_maxrss``: Linux carries ``ru_maxrss`` across fork and execve, so a child started by a big
    parent reports the parent's peak as its own. Elsewhere ``ru_maxrss`` is the best there is.
    """
    value = _proc_status_kib("VmHWM")
    if value is not None:
        return value
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def reset_peak_rss() -> bool:
    """Lower the peak-RSS mark to the current RSS (Linux >= 4.0: ``5`` into clear_refs).

    Lets each timed section report its own peak rather than the setup's."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.seconds``; perf_counter, nothing else timed.

    Before the clock starts it calls ``os.sync()`` (unless ``settle=False``): dirty pages left by
    the setup (a 1 GiB source file, 20,000 job files) would otherwise be written back during the
    timed section and charged to whichever operation happens to be running then. The page cache
    itself is kept: reads of just-written data are served from memory for every target alike.
    It also resets the peak-RSS mark, so ``rss_peak_kib`` is the peak during the section.
    """

    def __init__(self, settle: bool = True) -> None:
        self.seconds = 0.0
        self.rss_start_kib = 0
        self.rss_peak_kib = 0
        self._start = 0.0
        self._settle = settle

    def __enter__(self) -> Stopwatch:
        if self._settle:
            os.sync()
        reset_peak_rss()
        self.rss_start_kib = current_rss_kib()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start
        self.rss_peak_kib = peak_rss_kib()
