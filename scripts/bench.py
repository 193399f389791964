#!/usr/bin/env python3
"""Benchmark jobstore against Toil's FileJobStore and against plain sqlite3 / file copies.

Every (workload, target, run) runs in a fresh child interpreter, and the targets are interleaved
run by run (the order rotates each run: A B C, B C A, ...) so that machine noise hits all of them
alike. Each child reports the time of the timed section(s) only and its own peak RSS.

    python scripts/bench.py                          # everything, 5 runs (several minutes)
    python scripts/bench.py --quick                  # smoke test, seconds
    python scripts/bench.py --workloads W1,W3 --targets jobstore,toil --runs 7 --json out.json
    python scripts/bench.py --list                   # workloads and targets

See docs/BENCHMARKS.md for what each workload measures and how to read the table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SCRIPTS = Path(__file__).resolve().parent
REPO = SCRIPTS.parent
# The benchmark measures the jobstore of this tree (not whatever is installed), in the parent and
# (through PYTHONPATH) in every child.
for _path in (REPO, SCRIPTS):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from benchlib.goals import assess, goals_markdown, render_goals  # noqa: E402
from benchlib.model import Params  # noqa: E402
from benchlib.report import render_comparison, render_markdown, render_table, summarise  # noqa: E402
from benchlib.scratch import mark_top_directory  # noqa: E402
from benchlib.targets import TARGETS, get_target  # noqa: E402
from benchlib.workloads import WORKLOADS, iter_workloads  # noqa: E402
from rich.console import Console  # noqa: E402

DEFAULT_TARGETS = "jobstore,jobstore-adapter,toil,raw-sqlite,raw-copy"
POSTGRES_ENV = "JOBSTORE_BENCH_POSTGRES"
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``4096``, ``4K``, ``64MiB``, ``1G`` -> bytes (binary multiples)."""
    match = _SIZE.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 4K, 64M, 1G)")
    number, suffix = match.groups()
    return int(float(number) * 1024 ** "_kmgt".index(suffix.lower() or "_"))


def parse_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def build_parser() -> argparse.ArgumentParser:
    defaults = Params()
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated, e.g. W1,W3")
    p.add_argument("--targets", default=DEFAULT_TARGETS, help=f"comma-separated, of: {', '.join(TARGETS)}")
    p.add_argument("--runs", type=int, default=None, help="runs per (workload, target) [default 5; 1 with --quick]")
    p.add_argument("--quick", action="store_true", help="tiny sizes and 1 run: a smoke test in seconds")
    p.add_argument("--baseline", default="toil", help="target the ratio column divides by")
    p.add_argument("--tmpdir", default=None, help="where stores and test files go [default: tempfile's]")
    p.add_argument("--json", type=Path, default=None, help="write every run and the summary here")
    p.add_argument("--markdown", type=Path, default=None, help="write the summary as a Markdown table here")
    p.add_argument("--compare", type=Path, default=None, help="an earlier --json file to compare medians with")
    p.add_argument(
        "--isolate-runs",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep one run's deleted files from slowing the next run's file creations: spread work "
        "directories over the file system's block groups and delete them at the end (W8/W9's big "
        "files right away); see scripts/benchlib/scratch.py",
    )
    p.add_argument("--timeout", type=float, default=1800, help="seconds before a child run is killed")
    p.add_argument("--list", action="store_true", help="list workloads and targets and exit")
    p.add_argument("-v", "--verbose", action="store_true", help="show each child's stderr")
    s = p.add_argument_group("sizes (defaults shown; --quick picks tiny ones unless given)")
    s.add_argument("--n", type=int, help=f"jobs for W1-W4, W6 [{defaults.n}]")
    s.add_argument("--iter-jobs", type=int, help=f"jobs iterated in W5 [{defaults.iter_jobs}]")
    s.add_argument("--small-files", type=int, help=f"files in W7 [{defaults.small_files}]")
    s.add_argument("--small-size", type=parse_size, help=f"bytes per W7 file [{defaults.small_size}]")
    s.add_argument("--big-size", type=parse_size, help=f"bytes of the W8 file [{defaults.big_size}]")
    s.add_argument("--chunk", type=parse_size, help=f"W8 stream chunk [{defaults.chunk}]")
    s.add_argument("--file-rows", type=int, help=f"file rows for W9 [{defaults.file_rows}]")
    s.add_argument("--file-jobs", type=int, help=f"jobs owning W9's rows [{defaults.file_jobs}]")
    s.add_argument("--orphan-fraction", type=float, help=f"share of W9 rows orphaned [{defaults.orphan_fraction}]")
    s.add_argument(
        "--procs",
        type=lambda t: tuple(int(x) for x in parse_list(t)),
        help=f"W10 process counts [{','.join(map(str, defaults.procs))}]",
    )
    s.add_argument("--shared-jobs", type=int, help=f"jobs W10's processes share [{defaults.shared_jobs}]")
    s.add_argument(
        "--updates-per-proc",
        type=int,
        help=f"successful updates per W10 process [{defaults.updates_per_proc}]",
    )
    b = p.add_argument_group("backends for the jobstore-postgres/-s3/-gcs targets")
    b.add_argument("--catalog", default=None, help=f"catalog SQLAlchemy URL [${POSTGRES_ENV}]")
    b.add_argument("--s3-bucket", default=None)
    b.add_argument("--s3-endpoint", default=None, help="e.g. http://127.0.0.1:8333 for a local server")
    b.add_argument("--aws-region", default=None)
    b.add_argument("--gcs-bucket", default=None)
    b.add_argument("--gcs-endpoint", default=None, help="sets STORAGE_EMULATOR_HOST in the children")
    b.add_argument("--gcs-project", default=None)
    b.add_argument("--gcs-region", default=None)
    return p


def make_params(args: argparse.Namespace) -> Params:
    params = Params.quick() if args.quick else Params()
    for name in (
        "n",
        "iter_jobs",
        "small_files",
        "small_size",
        "big_size",
        "chunk",
        "file_rows",
        "file_jobs",
        "orphan_fraction",
        "procs",
        "shared_jobs",
        "updates_per_proc",
    ):
        value = getattr(args, name)
        if value is not None:
            setattr(params, name, value)
    return params


def make_opts(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "catalog": args.catalog or os.environ.get(POSTGRES_ENV),
        "s3_bucket": args.s3_bucket,
        "s3_endpoint": args.s3_endpoint,
        "aws_region": args.aws_region,
        "gcs_bucket": args.gcs_bucket,
        "gcs_endpoint": args.gcs_endpoint,
        "gcs_project": args.gcs_project,
        "gcs_region": args.gcs_region,
    }


def run_child(spec: dict[str, Any], scratch: Path, timeout: float, verbose: bool, console: Console) -> dict[str, Any]:
    """Run one spec in a fresh interpreter; return its result dict (``ok`` False on any failure)."""
    stem = f"{spec['workload']}-{spec['target']}-{spec['run']}-{time.monotonic_ns()}"
    spec_path, result_path = scratch / f"{stem}.spec.json", scratch / f"{stem}.result.json"
    spec_path.write_text(json.dumps(spec))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SCRIPTS), str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "benchlib.child", str(spec_path), str(result_path)],
            cwd=scratch,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {timeout:.0f} s"}
    if verbose and proc.stderr.strip():
        console.print(f"[dim]{proc.stderr.rstrip()}[/dim]")
    try:
        result: dict[str, Any] = json.loads(result_path.read_text())
    except (OSError, ValueError):
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        return {"ok": False, "error": f"child exited {proc.returncode} without a result", "traceback": tail}
    finally:
        spec_path.unlink(missing_ok=True)
        result_path.unlink(missing_ok=True)
    if not result["ok"] and proc.stderr.strip():
        result["stderr_tail"] = "\n".join(proc.stderr.strip().splitlines()[-15:])
    return result


def describe_metrics(result: dict[str, Any]) -> str:
    parts = []
    for m in result["metrics"]:
        rate = m["count"] / m["seconds"] if m["seconds"] > 0 else float("inf")
        rate_text = f"{rate / 2**20:,.0f} MiB/s" if m["unit"] == "B" else f"{rate:,.0f} {m['unit']}/s"
        parts.append(f"{m['name']} {m['seconds']:.3f} s ({rate_text})")
    return "; ".join(parts)


def environment_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "hostname": platform.node(),
    }
    try:
        from importlib.metadata import version

        info["toil"] = version("toil")
    except Exception:
        info["toil"] = None
    try:
        info["jobstore_git"] = subprocess.run(
            ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except Exception:
        info["jobstore_git"] = None
    try:
        import psutil

        info["memory_gib"] = round(psutil.virtual_memory().total / 2**30, 1)
    except Exception:
        pass
    return info


def source_digest() -> str:
    """A digest of jobstore's Python sources and migrations: if it differs between the start and the
    end of a run, the code changed under the benchmark and the numbers mix two versions."""
    digest = hashlib.sha256()
    for path in sorted([*(REPO / "jobstore").rglob("*.py"), *(REPO / "migrations").rglob("*.py")]):
        digest.update(str(path.relative_to(REPO)).encode())
        try:
            digest.update(path.read_bytes())
        except OSError:
            pass
    return digest.hexdigest()[:16]


def list_everything(console: Console, opts: dict[str, Any]) -> None:
    console.print("[bold]workloads[/bold]")
    for w in WORKLOADS.values():
        console.print(f"  {w.key:4} {w.title}: {w.measures}")
    console.print("[bold]targets[/bold]")
    for t in TARGETS.values():
        why = t.unavailable(opts)
        state = "[green]available[/green]" if why is None else f"[yellow]unavailable: {why}[/yellow]"
        console.print(f"  {t.name:18} {t.description} — {state}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 200)
    opts = make_opts(args)
    if args.list:
        list_everything(console, opts)
        return 0
    params = make_params(args)
    runs = args.runs if args.runs is not None else (1 if args.quick else 5)
    if runs < 1:
        raise SystemExit("--runs must be at least 1")
    workloads = list(iter_workloads(parse_list(args.workloads)))

    targets = []
    notes: list[str] = []
    for name in parse_list(args.targets):
        target = get_target(name)
        why = target.unavailable(opts)
        if why is None:
            targets.append(target)
        else:
            notes.append(f"target {name} skipped: {why}")
    for note in notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    if not targets:
        console.print("[red]no target is available[/red]")
        return 2
    baseline = args.baseline if any(t.name == args.baseline for t in targets) else None
    if baseline is None:
        msg = f"baseline {args.baseline} is not among the running targets: no baseline ratios"
        notes.append(msg)
        console.print(f"[yellow]note:[/yellow] {msg}")

    plan: list[tuple[Any, dict[str, Any], list[Any]]] = []
    skipped: dict[tuple[str, str], list[str]] = {}
    for workload in workloads:
        runnable = []
        for target in targets:
            why = target.unsupported(workload.key)
            if why is None:
                runnable.append(target)
            else:
                skipped.setdefault((target.name, why), []).append(workload.key)
        for case in workload.cases(params):
            if runnable:
                plan.append((workload, case, runnable))
    for (name, why), keys in skipped.items():
        notes.append(f"{','.join(keys)} not run on {name}: {why}")
        console.print(f"[yellow]note:[/yellow] {notes[-1]}", highlight=False)
    total = sum(len(runnable) * runs for _, _, runnable in plan)

    tmp_root = Path(args.tmpdir) if args.tmpdir else Path(tempfile.gettempdir())
    tmp_root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="jobstore-bench-", dir=tmp_root))
    # Isolated runs (benchlib/scratch.py): children move their work directories to the trash, which
    # is deleted at the end, and the scratch directory spreads them over the block groups.
    trash = scratch / "trash"
    trash.mkdir()
    spread = args.isolate_runs and mark_top_directory(scratch)
    started = dt.datetime.now(dt.UTC)
    digest_before = source_digest()
    results: list[dict[str, Any]] = []
    done = 0
    t0 = time.monotonic()
    try:
        for workload, case, runnable in plan:
            case_label = workload.case_label(case)
            for run in range(runs):
                shift = run % len(runnable)
                for target in runnable[shift:] + runnable[:shift]:  # interleaved, order rotated per run
                    done += 1
                    spec = {
                        "workload": workload.key,
                        "case": case,
                        "target": target.name,
                        "run": run,
                        "opts": opts,
                        "params": params.to_json(),
                        "tmpdir": str(scratch),
                        "trash": str(trash) if args.isolate_runs and not workload.big_files else None,
                    }
                    result = run_child(spec, scratch, args.timeout, args.verbose, console)
                    result.update(
                        workload=workload.key,
                        title=workload.title,
                        case=case_label,
                        target=target.name,
                        run=run,
                    )
                    results.append(result)
                    where = (
                        f"[{done}/{total}] {workload.key}{' ' + case_label if case_label else ''} "
                        f"{target.name} run {run + 1}/{runs}"
                    )
                    if result["ok"]:
                        console.print(
                            f"[dim]{where}: {describe_metrics(result)}[/dim]", highlight=False, soft_wrap=True
                        )
                    else:
                        console.print(f"[red]{where}: FAILED {result['error']}[/red]", highlight=False)
                        if args.verbose or run == 0:
                            console.print(
                                result.get("traceback", "") + result.get("stderr_tail", ""),
                                markup=False,
                                highlight=False,
                            )
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: reporting the runs so far[/yellow]")
    finally:
        for leftover in scratch.iterdir():
            if leftover.is_dir():
                import shutil

                shutil.rmtree(leftover, ignore_errors=True)
        try:
            scratch.rmdir()
        except OSError:
            pass
    elapsed = time.monotonic() - t0
    digest_after = source_digest()
    if digest_after != digest_before:
        notes.append("jobstore's sources changed during this run: its numbers mix two versions; run again")

    failures = sorted({f"{r['workload']} {r['case']} on {r['target']}: {r['error']}" for r in results if not r["ok"]})
    rows = summarise(results, baseline)
    console.print()
    render_table(rows, baseline, runs, console)
    goals = assess(rows, baseline=baseline or "toil") if any(t.name == "jobstore" for t in targets) else []
    if goals:
        render_goals(goals, console)
    for note in notes:
        console.print(f"[yellow]note:[/yellow] {note}", highlight=False)
    for failure in failures:
        console.print(f"[red]failed:[/red] {failure}", highlight=False)
    problems = [f"{r.workload} {r.case} {r.operation} on {r.target}: {p}" for r in rows for p in r.problems]
    for problem in problems:
        console.print(f"[red]problem:[/red] {problem}", highlight=False)
    console.print(f"[dim]{len(results)} child runs in {elapsed:,.0f} s[/dim]")

    command = "python scripts/bench.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "meta": {
                        "command": command,
                        "started": started.isoformat(),
                        "elapsed_seconds": elapsed,
                        "runs": runs,
                        "isolate_runs": args.isolate_runs,
                        "scratch_spread_over_block_groups": spread,
                        "baseline": baseline,
                        "params": params.to_json(),
                        "targets": [t.name for t in targets],
                        "environment": environment_info(),
                        "jobstore_source_digest": [digest_before, digest_after],
                        "opts": {k: v for k, v in opts.items() if k != "catalog"} | {"catalog": bool(opts["catalog"])},
                    },
                    "notes": notes,
                    "failures": failures,
                    "problems": problems,
                    "summary": [r.to_json() for r in rows],
                    "goals": [g.to_json() for g in goals],
                    "runs": results,
                },
                indent=1,
            )
        )
        console.print(f"results written to {args.json}")
    if args.markdown:
        args.markdown.write_text(render_markdown(rows, baseline) + (f"\n{goals_markdown(goals)}" if goals else ""))
        console.print(f"markdown table written to {args.markdown}")
    if args.compare:
        render_comparison(rows, args.compare, console)
    return 1 if failures or problems else 0


if __name__ == "__main__":
    sys.exit(main())
