"""The performance issue's targets, and how one run measures up to them.

Each ratio target is checked against Toil's FileJobStore in the same run, and next to it stands
that run's *ceiling*: Toil's median over the floor's (the same operation done by ``raw-sqlite`` or
``raw-copy``, or by a named floor operation such as ``read_file_stream + crc32c``), the best ratio
a store doing at least the floor's work could have shown. A target above its ceiling is out of
reach for any such store on this machine, whatever its code: the verdict says so rather than
"missed".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from benchlib.report import Row

KIB = 1024


@dataclass(frozen=True)
class Goal:
    """One target: ``kind`` "ratio" (Toil's time / ours >= ``value``), "seconds" (our median <
    ``value``), "rss" (peak RSS of every row of the workload < ``value`` MiB), "hard link" (the
    read made a link) or "no lost update" (W10's check)."""

    workload: str
    operation: str  # "" for goals over the whole workload
    kind: str
    value: float = 0.0
    floor_operation: str | None = None  # the floor's operation for the ceiling (default: the same)

    def describe(self) -> str:
        if self.kind == "ratio":
            return f">= {self.value:g}x Toil"
        if self.kind == "seconds":
            return f"< {self.value:g} s"
        if self.kind == "rss":
            return f"peak RSS < {self.value:g} MiB"
        return self.kind


GOALS: tuple[Goal, ...] = (
    Goal("W1", "create", "ratio", 10),
    Goal("W2", "load", "ratio", 1),
    Goal("W3", "load+update", "ratio", 5),
    Goal("W4", "batch create", "ratio", 20),
    Goal("W5", "jobs()", "ratio", 2),
    Goal("W6", "delete", "ratio", 3),
    Goal("W7", "write_file", "ratio", 2),
    Goal("W7", "read_file", "ratio", 1),
    Goal("W7", "delete_file", "ratio", 1),
    Goal("W8", "write_file", "ratio", 0.8),
    Goal("W8", "read_file", "hard link"),
    Goal("W8", "read_file (other FS)", "ratio", 0.8),
    Goal("W8", "write_file_stream", "ratio", 0.8),
    Goal("W8", "read_file_stream", "ratio", 0.8, floor_operation="read_file_stream + crc32c"),
    Goal("W8", "", "rss", 150),
    Goal("W9", "orphaned_file_ids", "seconds", 2),
    Goal("W9", "stats", "seconds", 2),
    Goal("W10", "", "no lost update"),
    Goal("W11", "import_file", "seconds", 0.05),
)


@dataclass
class Assessment:
    goal: Goal
    measured: str
    ceiling: str
    verdict: str  # "met", "missed", "out of reach" (the ceiling is below the target), "not run"

    def to_json(self) -> dict[str, Any]:
        return {
            "workload": self.goal.workload,
            "operation": self.goal.operation,
            "target": self.goal.describe(),
            "measured": self.measured,
            "ceiling": self.ceiling,
            "verdict": self.verdict,
        }


def assess(rows: list[Row], store: str = "jobstore", baseline: str = "toil") -> list[Assessment]:
    """The verdict on every goal whose workload ran for ``store``."""
    index: dict[tuple[str, str, str], list[Row]] = {}
    for row in rows:
        index.setdefault((row.workload, row.operation, row.target), []).append(row)
    ran = {row.workload for row in rows if row.target == store}
    return [_assess_one(goal, index, rows, store, baseline) for goal in GOALS if goal.workload in ran]


def _assess_one(
    goal: Goal, index: dict[tuple[str, str, str], list[Row]], rows: list[Row], store: str, baseline: str
) -> Assessment:
    ours = index.get((goal.workload, goal.operation, store), [])
    whole = [row for row in rows if row.workload == goal.workload and row.target == store]
    if goal.kind == "rss":
        peaks = [max(row.rss_kib) for row in whole if row.rss_kib]
        if not peaks:
            return Assessment(goal, "—", "", "not run")
        peak_mib = max(peaks) / KIB
        return Assessment(goal, f"{peak_mib:,.0f} MiB", "", "met" if peak_mib < goal.value else "missed")
    if goal.kind == "no lost update":
        lost = [extra.get("lost_updates") for row in whole for extra in row.extra]
        counted = [n for n in lost if n is not None]
        if not counted:
            return Assessment(goal, "—", "", "not run")
        return Assessment(goal, f"{sum(counted)} lost", "", "met" if sum(counted) == 0 else "missed")
    if not ours:
        return Assessment(goal, "—", "", "not run")
    row = ours[0]
    if goal.kind == "seconds":
        return Assessment(goal, f"{row.median:.2f} s", "", "met" if row.median < goal.value else "missed")
    if goal.kind == "hard link":
        linked = all(e.get("hardlinked") for e in row.extra)
        return Assessment(goal, "hard link" if linked else "copied", "", "met" if linked else "missed")
    theirs = index.get((goal.workload, goal.operation, baseline), [])
    if not theirs:
        return Assessment(goal, "—", "", f"not run ({baseline} missing)")
    ratio = theirs[0].median / row.median
    ceiling = _ceiling(goal, index, row, theirs[0])
    if ratio >= goal.value:
        verdict = "met"
    elif ceiling is not None and ceiling < goal.value:
        verdict = "out of reach"
    else:
        verdict = "missed"
    return Assessment(goal, f"{ratio:.2f}x", "—" if ceiling is None else f"{ceiling:.2f}x", verdict)


def _ceiling(goal: Goal, index: dict[tuple[str, str, str], list[Row]], ours: Row, theirs: Row) -> float | None:
    """Toil's median over the floor's: the best ratio a store doing the floor's work could show."""
    if goal.floor_operation is not None:  # a floor operation of its own, whichever floor target ran it
        wanted = (goal.workload, goal.floor_operation)
        floors = [row for (workload, op, _), found in index.items() if (workload, op) == wanted for row in found]
    elif ours.floor is not None:
        floors = index.get((goal.workload, goal.operation, ours.floor), [])
    else:
        floors = []
    return theirs.median / floors[0].median if floors else None


def render_goals(assessments: list[Assessment], console: Console) -> None:
    table = Table(title="targets (ratios: Toil's median time / ours; ceiling: Toil's / the floor's, same run)")
    for name in ("workload", "operation", "target", "measured", "ceiling", "verdict"):
        table.add_column(name)
    for item in assessments:
        style = {"met": "green", "missed": "red", "out of reach": "yellow"}.get(item.verdict, "dim")
        table.add_row(
            item.goal.workload,
            item.goal.operation or "(all)",
            item.goal.describe(),
            item.measured,
            item.ceiling,
            f"[{style}]{item.verdict}[/{style}]",
        )
    console.print(table)


def goals_markdown(assessments: list[Assessment]) -> str:
    lines = [
        "| workload | operation | target | measured | ceiling | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for item in assessments:
        lines.append(
            f"| {item.goal.workload} | {item.goal.operation or '(all)'} | {item.goal.describe()} | "
            f"{item.measured} | {item.ceiling} | {item.verdict} |"
        )
    return "\n".join(lines) + "\n"
