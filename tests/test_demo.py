"""``jobstore demo``: killed at every step boundary, interrupted with Ctrl-C, resumed with options.

The kills are real: ``JOBSTORE_DEMO_KILL_AT=N`` makes the demo process (run as ``python -m
jobstore``) SIGKILL itself at its Nth step boundary. Each killed run is resumed to the end and its
printed summary and exported result are compared with those of a run that was never interrupted.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from jobstore.demo import KILL_ENV, RESULT_NAME, DemoError, open_or_create, run_demo

FAN_OUT = 3
#: plan, input, 3 per counting job (started, output written, completed), 3 for combine, export.
BOUNDARIES = 2 + 3 * FAN_OUT + 3 + 1


def _demo(directory: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jobstore", "demo", str(directory), "--pace", "0", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _summary(directory: Path, **options: object) -> str:
    """What a (resumed) run prints from the summary table on, with the directory made neutral."""
    out = io.StringIO()
    run_demo(directory, pace=0, console=Console(file=out, width=100), **options)  # type: ignore[arg-type]
    text = out.getvalue()
    return text[text.index("Jobs and their files") :].replace(str(directory), "DIR")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, bytes]:
    """The summary and result of an uninterrupted run."""
    directory = tmp_path_factory.mktemp("reference") / "demo"
    summary = _summary(directory, fan_out=FAN_OUT)
    return summary, (directory / RESULT_NAME).read_bytes()


@pytest.mark.parametrize("boundary", range(1, BOUNDARIES + 1))
def test_kill_at_every_step_boundary_then_resume_equals_an_uninterrupted_run(
    tmp_path: Path, boundary: int, reference: tuple[str, bytes]
) -> None:
    directory = tmp_path / "demo"
    killed = _demo(directory, "--fan-out", str(FAN_OUT), env={KILL_ENV: str(boundary)})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    summary = _summary(directory)  # no --fan-out: the recorded one is kept
    assert summary == reference[0]
    assert (directory / RESULT_NAME).read_bytes() == reference[1]
    store, _ = open_or_create(directory / "store")
    try:
        jobs = list(store.jobs())
        assert all(job.state == "completed" for job in jobs)
        # At most the one step that was in flight ran twice.
        assert sum(getattr(job, "attempts", 0) for job in jobs) in (FAN_OUT + 1, FAN_OUT + 2)
    finally:
        store.close()


def test_boundaries_are_counted_exactly(tmp_path: Path) -> None:
    # A kill one past the last boundary never fires: the parametrised test above covers every one.
    done = _demo(tmp_path / "demo", "--fan-out", str(FAN_OUT), env={KILL_ENV: str(BOUNDARIES + 1)})
    assert done.returncode == 0, done.stderr


def test_resume_with_another_fan_out_is_refused_and_without_one_keeps_it(tmp_path: Path) -> None:
    directory = tmp_path / "demo"
    killed = _demo(directory, "--fan-out", "4", env={KILL_ENV: "6"})
    assert killed.returncode == -signal.SIGKILL
    refused = _demo(directory)  # the default would be 8
    assert refused.returncode == 0, refused.stderr
    assert "(with --fan-out 4, as it was started)" in refused.stdout
    other = tmp_path / "other"
    _demo(other, "--fan-out", "4", env={KILL_ENV: "6"})
    different = _demo(other, "--fan-out", "2")
    assert different.returncode == 2
    assert different.stderr.strip() == (
        f"error: the demo in {other} was started with --fan-out 4; run it again without --fan-out "
        "(or with --fan-out 4) to resume it, or give another directory to start over."
    )
    # Both finish with all 3,197 words of the input, as an uninterrupted --fan-out 4 run does.
    for finished in (directory, other):
        _demo(finished)
        counts = (finished / RESULT_NAME).read_text().splitlines()
        assert sum(int(line.split("\t")[1]) for line in counts) == 3197


@pytest.mark.parametrize("delay", [0.4, 0.9, 1.6])
def test_ctrl_c_at_any_moment_is_one_line_and_exit_130(tmp_path: Path, delay: float) -> None:
    # 0.4 s: usually still importing the commands; later: inside jobs (0.3 s each, the default pace).
    directory = tmp_path / "demo"
    process = subprocess.Popen(
        [sys.executable, "-m", "jobstore", "demo", str(directory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("interrupted"), err
    if delay > 0.8:
        assert lines[0] == f"interrupted: run `jobstore demo {directory}` again to resume"
    finished = _demo(directory)
    assert finished.returncode == 0, finished.stderr
    counts = (directory / RESULT_NAME).read_text().splitlines()
    assert sum(int(line.split("\t")[1]) for line in counts) == 3197


def test_summary_rows_come_in_the_workflows_order_and_the_title_fits(tmp_path: Path) -> None:
    out = io.StringIO()
    run_demo(tmp_path / "demo", fan_out=12, pace=0, console=Console(file=out, width=80))
    lines = out.getvalue().splitlines()
    title = next(i for i, line in enumerate(lines) if "Jobs and their files" in line)
    assert "from the catalog" in lines[title]  # on one line
    units = [line.split("│")[2].strip() for line in lines[title:] if line.startswith("│")]
    assert units == ["word-count", *(f"chunk-{i}" for i in range(12)), "all"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"fan_out": 0}, "--fan-out must be between 1 and 400, not 0."),
        ({"fan_out": -1}, "--fan-out must be between 1 and 400, not -1."),
        ({"pace": -0.5}, "--pace must be 0 or more seconds per job, not -0.5."),
    ],
)
def test_bad_options_are_refused(tmp_path: Path, options: dict[str, float], message: str) -> None:
    with pytest.raises(DemoError) as raised:
        run_demo(tmp_path / "demo", console=Console(file=io.StringIO()), **options)  # type: ignore[arg-type]
    assert str(raised.value) == message
    assert not (tmp_path / "demo").exists()


def test_a_file_or_a_foreign_directory_is_refused(tmp_path: Path) -> None:
    a_file = tmp_path / "passwd"
    a_file.write_text("root:x:0:0\n")
    with pytest.raises(DemoError, match="is not a directory"):
        run_demo(a_file, pace=0, console=Console(file=io.StringIO()))
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("")
    with pytest.raises(DemoError, match="holds no demo store"):
        run_demo(foreign, pace=0, console=Console(file=io.StringIO()))
    assert sorted(p.name for p in foreign.iterdir()) == ["thesis.tex"]
