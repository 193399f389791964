"""The benchmark harness (scripts/bench.py): a quick run works in both run-isolation modes and
leaves nothing behind, and the scratch directory is marked for spreading where the file system
supports it. Timings are never asserted (DESIGN.md section 5)."""

from __future__ import annotations

import fcntl
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from benchlib.goals import assess  # noqa: E402
from benchlib.report import Row  # noqa: E402
from benchlib.scratch import _FS_IOC_GETFLAGS, _FS_TOPDIR_FL, mark_top_directory  # noqa: E402


@pytest.mark.parametrize("isolation", ["--isolate-runs", "--no-isolate-runs"])
def test_a_quick_run_measures_and_leaves_nothing_behind(isolation: str, tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    result = tmp_path / "result.json"
    run = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "bench.py"),
            "--quick",
            "--workloads",
            "W1,W7,W8",
            "--targets",
            "jobstore,raw-sqlite,raw-copy",
            "--runs",
            "2",
            "--tmpdir",
            str(scratch),
            "--json",
            str(result),
            isolation,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(result.read_text())
    assert report["meta"]["isolate_runs"] is (isolation == "--isolate-runs")
    assert report["failures"] == []
    measured = {(row["workload"], row["operation"], row["target"]) for row in report["summary"]}
    assert ("W7", "write_file", "jobstore") in measured and ("W1", "create", "jobstore") in measured
    # The floors: small files with their rows in raw SQLite, and a plain stream read plus CRC32C.
    assert {("W7", op, "raw-sqlite") for op in ("write_file", "read_file", "delete_file")} <= measured
    assert ("W8", "read_file_stream + crc32c", "raw-copy") in measured
    w7_floors = {row["floor"] for row in report["summary"] if row["workload"] == "W7" and row["target"] == "jobstore"}
    assert w7_floors == {"raw-sqlite"}
    goals = {(g["workload"], g["operation"]): g["verdict"] for g in report["goals"]}
    assert goals[("W7", "write_file")] == "not run (toil missing)"  # no Toil in this run: no ratio
    assert goals[("W8", "")] == "met"  # peak RSS < 150 MiB
    assert list(scratch.iterdir()) == []  # work directories, trash and all: removed at the end


def test_the_adapter_is_measured_beside_the_native_api(tmp_path: Path) -> None:
    """Toil users reach jobstore through the adapter: its rows carry their cost over the native API."""
    result = tmp_path / "result.json"
    run = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "bench.py"),
            "--quick",
            "--workloads",
            "W2,W4,W8,W10",
            "--targets",
            "jobstore,jobstore-adapter",
            "--tmpdir",
            str(tmp_path / "scratch"),
            "--json",
            str(result),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(result.read_text())
    assert report["failures"] == []
    adapter = {
        (row["workload"], row["operation"]): row for row in report["summary"] if row["target"] == "jobstore-adapter"
    }
    assert {("W2", "load"), ("W4", "batch create"), ("W8", "write_file_stream")} <= set(adapter)
    assert all(row["ratio_to_native"] and row["ratio_to_native"] > 0 for row in adapter.values())
    assert not any(workload == "W10" for workload, _ in adapter)  # Toil's contract has no compare-and-swap
    assert "W10 not run on jobstore-adapter: the adapter keeps Toil's contract" in run.stdout


def _row(workload: str, operation: str, target: str, seconds: float, floor: str | None = None) -> Row:
    row = Row(workload, workload, "", operation, target, "ops", 1, seconds=[seconds], rss_kib=[1024])
    row.floor = floor
    return row


def test_targets_are_met_missed_or_out_of_reach_of_the_same_runs_floor() -> None:
    """Toil's time / ours against the target; a target above Toil's time / the floor's (the
    ceiling) is "out of reach" rather than "missed"; a named floor operation sets the ceiling."""
    # (workload, operation, jobstore's median, Toil's, the floor's): seconds
    medians = [
        ("W2", "load", 1.0, 1.5, 0.5),
        ("W3", "load+update", 1.0, 4.0, 0.5),
        ("W1", "create", 1.0, 4.0, 0.5),
        ("W8", "read_file_stream", 1.0, 0.7, 0.5),
    ]
    floors = {"W8": "raw-copy"}
    rows = []
    for workload, operation, ours, toil, floor in medians:
        floor_target = floors.get(workload, "raw-sqlite")
        rows += [
            _row(workload, operation, "jobstore", ours, floor_target),
            _row(workload, operation, "toil", toil),
            _row(workload, operation, floor_target, floor),
        ]
    rows.append(_row("W8", "read_file_stream + crc32c", "raw-copy", 1.0))  # the verifying floor
    verdicts = {(a.goal.workload, a.goal.operation): (a.measured, a.ceiling, a.verdict) for a in assess(rows)}
    assert verdicts[("W2", "load")] == ("1.50x", "3.00x", "met")  # >= 1x
    assert verdicts[("W3", "load+update")] == ("4.00x", "8.00x", "missed")  # >= 5x, reachable
    assert verdicts[("W1", "create")] == ("4.00x", "8.00x", "out of reach")  # >= 10x above 8x
    assert verdicts[("W8", "read_file_stream")] == ("0.70x", "0.70x", "out of reach")  # crc floor, not plain


def _flags(path: Path) -> int:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return int(struct.unpack("l", fcntl.ioctl(fd, _FS_IOC_GETFLAGS, struct.pack("l", 0)))[0])
    finally:
        os.close(fd)


def _file_system_type(path: Path) -> str:
    """The type of the file system holding ``path`` (the longest matching mount point)."""
    best, kind = "", ""
    for line in Path("/proc/self/mounts").read_text().splitlines():
        _, mount_point, fs_type, *_ = line.split()
        mount_point = mount_point.replace("\\040", " ")
        inside = str(path) == mount_point or str(path).startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, kind = mount_point, fs_type
    return kind


def test_the_scratch_directory_is_marked_as_a_top_directory_on_ext4(tmp_path: Path) -> None:
    directory = tmp_path / "scratch"
    directory.mkdir()
    marked = mark_top_directory(directory)
    if _file_system_type(directory.resolve()) in ("ext2", "ext3", "ext4"):
        assert marked
    if marked:
        assert _flags(directory) & _FS_TOPDIR_FL
    assert mark_top_directory(tmp_path / "missing") is False
    (tmp_path / "file").write_text("not a directory")
    assert mark_top_directory(tmp_path / "file") is False


def test_process_costs_reports_a_worker_that_never_loads_sqlalchemy() -> None:
    """scripts/process_costs.py runs its fresh processes and reports each figure; the one figure
    that is a fact rather than a timing, whether a worker's batch imported SQLAlchemy, is 0."""
    run = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "process_costs.py"), "--runs", "1", "--no-postgres"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    lines = {line.rsplit(None, 1)[0].strip(): line.rsplit(None, 1)[1] for line in run.stdout.splitlines()[1:]}
    assert float(lines["SQLite: initialize (ms)"]) > 0
    assert float(lines["SQLite: worker's first batch() of 50 creations (ms)"]) > 0
    assert lines["SQLite: worker imported SQLAlchemy (1 = yes)"] == "0.00"
