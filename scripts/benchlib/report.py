"""Summaries of many runs: medians, ranges, rates, ratios; as a rich table, JSON or Markdown."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from benchlib.model import MIB

#: Targets whose numbers are the floor for a workload: the standard library doing the same work.
FLOORS = ("raw-sqlite", "raw-copy")

#: A target that reaches jobstore through another interface -> the native target it wraps: their
#: ratio is what the interface costs.
NATIVE_PEERS = {"jobstore-adapter": "jobstore"}


@dataclass
class Row:
    """One (workload, case, operation, target) over all its runs."""

    workload: str
    title: str
    case: str
    operation: str
    target: str
    unit: str
    count: float
    seconds: list[float] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    extra: list[dict[str, Any]] = field(default_factory=list)
    ratio_baseline: float | None = None
    ratio_floor: float | None = None
    floor: str | None = None
    ratio_native: float | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.workload, self.case, self.operation)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def rate(self) -> float:
        return self.count / self.median if self.median > 0 else float("inf")

    def rate_text(self) -> str:
        if self.unit == "B":
            return f"{self.rate / MIB:,.0f} MiB/s"
        return f"{self.rate:,.0f} {self.unit}/s"

    def to_json(self) -> dict[str, Any]:
        return {
            "workload": self.workload,
            "case": self.case,
            "operation": self.operation,
            "target": self.target,
            "unit": self.unit,
            "count": self.count,
            "runs": len(self.seconds),
            "seconds": self.seconds,
            "median_seconds": self.median,
            "min_seconds": min(self.seconds),
            "max_seconds": max(self.seconds),
            "rate_per_second": self.rate,
            "rate_text": self.rate_text(),
            "ratio_to_baseline": self.ratio_baseline,
            "ratio_to_floor": self.ratio_floor,
            "ratio_to_native": self.ratio_native,
            "floor": self.floor,
            "peak_rss_kib": max(self.rss_kib) if self.rss_kib else None,
            "problems": self.problems,
            "extra": self.extra,
        }


def summarise(results: list[dict[str, Any]], baseline: str | None) -> list[Row]:
    """Fold per-run results (as produced by bench.py) into rows, in first-seen order."""
    rows: dict[tuple[str, str, str, str], Row] = {}
    for result in results:
        if not result["ok"]:
            continue
        for m in result["metrics"]:
            k = (result["workload"], result["case"], m["name"], result["target"])
            row = rows.get(k)
            if row is None:
                row = rows[k] = Row(
                    result["workload"],
                    result["title"],
                    result["case"],
                    m["name"],
                    result["target"],
                    m["unit"],
                    m["count"],
                )
            row.seconds.append(m["seconds"])
            row.rss_kib.append(m["rss_kib"])
            extra = dict(m.get("extra") or {})
            problem = extra.pop("problem", None)
            if problem and problem not in row.problems:
                row.problems.append(problem)
            row.extra.append(extra)
    by_key: dict[tuple[str, str, str], dict[str, Row]] = defaultdict(dict)
    for row in rows.values():
        by_key[row.key][row.target] = row
    for row in rows.values():
        peers = by_key[row.key]
        if baseline and baseline in peers and row.target != baseline:
            row.ratio_baseline = row.median / peers[baseline].median
        floor = next((f for f in FLOORS if f in peers), None)
        if floor and row.target != floor:
            row.floor = floor
            row.ratio_floor = row.median / peers[floor].median
        native = NATIVE_PEERS.get(row.target)
        if native in peers:
            row.ratio_native = row.median / peers[native].median
    return sorted(rows.values(), key=lambda r: _order(r, list(rows)))


def _order(row: Row, keys: list[tuple[str, str, str, str]]) -> tuple[int, int, int]:
    # Workloads in numeric order, operations in first-seen order, targets in first-seen order.
    first_op = next(i for i, k in enumerate(keys) if k[:3] == row.key)
    return (int(row.workload[1:]), first_op, keys.index((*row.key, row.target)))


def fmt_seconds(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:,.1f} ms"
    return f"{seconds:,.2f} s"


def fmt_ratio(ratio: float | None) -> Text:
    if ratio is None:
        return Text("—", style="dim")
    style = "red" if ratio > 1.1 else "green" if ratio < 0.9 else ""
    return Text(f"{ratio:.2f}x", style=style)


def fmt_rss(rows_kib: list[int]) -> str:
    return f"{max(rows_kib) / 1024:,.0f} MiB" if rows_kib else "—"


def _label(row: Row) -> str:
    return f"{row.workload} {row.title}" + (f" [{row.case}]" if row.case else "")


def _notes_for(row: Row) -> str:
    notes = list(row.problems)
    if any(e.get("hardlinked") for e in row.extra):
        notes.append("hard link, no copy")
    conflicts = [e["conflicts"] for e in row.extra if "conflicts" in e]
    if conflicts:
        notes.append(f"conflicts median {statistics.median(conflicts):,.0f}")
    return "; ".join(notes)


def render_table(rows: list[Row], baseline: str | None, runs: int, console: Console) -> None:
    table = Table(title=f"jobstore benchmarks — median of {runs} run(s) each", show_lines=False)
    for name, justify in (
        ("workload", "left"),
        ("operation", "left"),
        ("target", "left"),
        ("median", "right"),
        ("min - max", "right"),
        ("rate", "right"),
        (f"vs {baseline}" if baseline else "vs baseline", "right"),
        ("vs floor", "right"),
        ("vs native", "right"),
        ("peak RSS", "right"),
        ("notes", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    previous: tuple[str, str] | None = None
    for row in rows:
        group = (row.workload, row.case)
        if previous is not None and group != previous:
            table.add_section()
        label = _label(row) if group != previous else ""
        previous = group
        table.add_row(
            label,
            row.operation,
            row.target,
            fmt_seconds(row.median),
            f"{fmt_seconds(min(row.seconds))} - {fmt_seconds(max(row.seconds))}",
            row.rate_text(),
            fmt_ratio(row.ratio_baseline),
            fmt_ratio(row.ratio_floor),
            fmt_ratio(row.ratio_native),
            fmt_rss(row.rss_kib),
            Text(_notes_for(row), style="red" if row.problems else "dim"),
        )
    console.print(table)


def render_markdown(rows: list[Row], baseline: str | None) -> str:
    head = [
        "workload",
        "operation",
        "target",
        "median",
        "min - max",
        "rate",
        f"vs {baseline or 'baseline'}",
        "vs floor",
        "vs native",
        "peak RSS",
        "notes",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for row in rows:
        cells = [
            _label(row),
            row.operation,
            row.target,
            fmt_seconds(row.median),
            f"{fmt_seconds(min(row.seconds))} - {fmt_seconds(max(row.seconds))}",
            row.rate_text(),
            fmt_ratio(row.ratio_baseline).plain,
            fmt_ratio(row.ratio_floor).plain + (f" ({row.floor})" if row.floor else ""),
            fmt_ratio(row.ratio_native).plain,
            fmt_rss(row.rss_kib),
            _notes_for(row),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render_comparison(rows: list[Row], old_path: Path, console: Console) -> None:
    """New median vs old median for every row present in both runs (>1: slower now)."""
    old = json.loads(old_path.read_text())
    old_medians = {(r["workload"], r["case"], r["operation"], r["target"]): r["median_seconds"] for r in old["summary"]}
    table = Table(title=f"compared with {old_path}")
    for name in ("workload", "operation", "target", "old median", "new median", "new vs old"):
        table.add_column(name, justify="left" if name in ("workload", "operation", "target") else "right")
    for row in rows:
        before = old_medians.get((*row.key, row.target))
        if before is None:
            continue
        table.add_row(
            _label(row),
            row.operation,
            row.target,
            fmt_seconds(before),
            fmt_seconds(row.median),
            fmt_ratio(row.median / before if before else None),
        )
    console.print(table)
