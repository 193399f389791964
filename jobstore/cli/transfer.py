"""``jobstore import`` and ``jobstore export``: files in and out of a store by URL.

Results go to stdout, one line per URL (``FILE_ID<TAB>URL``, or ``shared:NAME<TAB>URL``), so a
script can capture the IDs; failures go to stderr, one line each naming the URL and the reason.
Exit status 0 when everything transferred, 1 when some transfer failed (the others are kept),
2 for bad usage. Progress bars (on stderr, when it is a terminal) show each large transfer and
the count of finished ones.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from jobstore.abstract import TransferProgress, TransferResult
from jobstore.cli.common import CatalogOption, app, errors
from jobstore.config import Config
from jobstore.store import JobStore

#: Transfers at least this large (or of unknown size) get a bar of their own.
LARGE_TRANSFER = 4 * 1024 * 1024

ProgressOption = Annotated[
    bool, typer.Option("--progress/--no-progress", help="Show progress bars (only ever on a terminal).")
]
WorkersOption = Annotated[int, typer.Option("--workers", min=1, max=64, help="Transfers in flight at once.")]


@app.command("import")
def import_command(
    locator: str,
    urls: Annotated[list[str], typer.Argument(help="file://, http(s)://, ftp://, s3:// or gs:// URLs (or paths).")],
    shared_name: Annotated[
        str | None, typer.Option("--shared-name", help="Store the (single) URL as this shared file instead.")
    ] = None,
    catalog: CatalogOption = None,
    workers: WorkersOption = 4,
    progress: ProgressOption = True,
) -> None:
    """Import files by URL; print each new file ID with its URL."""
    if shared_name is not None and len(urls) != 1:
        raise typer.BadParameter("--shared-name names one shared file: give exactly one URL with it.")
    items: list[str | tuple[str, str]] = [(urls[0], shared_name)] if shared_name is not None else list(urls)
    with _opened(locator, catalog) as store, _Bars(len(items), "imported", enabled=progress) as bars:
        results = store.import_files(items, max_workers=workers, progress=bars.report)
    _finish(results, lambda result: f"shared:{result.shared_file_name}" if result.shared_file_name else result.file_id)


@app.command("export")
def export_command(
    locator: str,
    file_id: str,
    url: Annotated[str, typer.Argument(help="Destination: file://, ftp://, s3://, gs:// or http(s):// URL.")],
    http_method: Annotated[
        str, typer.Option("--http-method", help="POST or PUT, for http(s):// destinations.", case_sensitive=False)
    ] = "POST",
    catalog: CatalogOption = None,
    progress: ProgressOption = True,
) -> None:
    """Export a file to a URL."""
    with _opened(locator, catalog) as store, _Bars(1, "exported", enabled=progress) as bars:
        results = store.export_files([(file_id, url)], progress=bars.report, http_method=http_method.upper())
    _finish(results, lambda result: result.file_id)


@contextmanager
def _opened(locator: str, catalog: str | None) -> Iterator[JobStore]:
    from jobstore.store import create_job_store

    store = create_job_store(locator)
    store.resume(Config(catalog=catalog) if catalog else None)
    try:
        yield store
    finally:
        store.close()


def _finish(results: list[TransferResult], label: Callable[[TransferResult], str | None]) -> None:
    failed = 0
    for result in results:
        if result.ok:
            sys.stdout.write(f"{label(result)}\t{result.url}\n")  # tab-separated, for scripts
            continue
        failed += 1
        reason = str(result.error)
        where = "" if result.url in reason else f"{result.url}: "
        errors.print(f"[red]failed:[/red] {escape(where + reason)}", highlight=False, soft_wrap=True)
    if failed:
        errors.print(f"{failed} of {len(results)} transfers failed; the others were completed.")
        raise typer.Exit(1)


class _BytesOrFiles(ProgressColumn):
    """Bytes (and speed) for a transfer's bar; "n/m files" for the overall one."""

    def __init__(self, column: ProgressColumn) -> None:
        super().__init__()
        self._column = column

    def render(self, task: Task) -> Text:
        if task.fields.get("files"):
            if isinstance(self._column, TransferSpeedColumn):
                return Text("")
            return Text(f"{int(task.completed)}/{int(task.total or 0)} files")
        rendered = self._column.render(task)
        return rendered if isinstance(rendered, Text) else Text(str(rendered))


class _Bars:
    """A rich Progress fed by the store's thread-safe progress reports."""

    def __init__(self, count: int, verb: str, *, enabled: bool) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            _BytesOrFiles(DownloadColumn()),
            _BytesOrFiles(TransferSpeedColumn()),
            TimeRemainingColumn(),
            console=errors,
            transient=True,
            disable=not (enabled and errors.is_terminal),
        )
        self._overall = self._progress.add_task(verb, total=count, files=True)
        self._tasks: dict[int, TaskID] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> _Bars:
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()

    def report(self, event: TransferProgress) -> None:
        with self._lock:
            task = self._tasks.get(event.index)
            if task is None and event.result is None and (event.total is None or event.total >= LARGE_TRANSFER):
                name = event.url.rsplit("/", 1)[-1] or event.url
                task = self._progress.add_task(name[:40], total=event.total)
                self._tasks[event.index] = task
        if task is not None:
            self._progress.update(task, completed=event.transferred, total=event.total)
        if event.result is not None:
            if task is not None:
                self._progress.remove_task(task)
            self._progress.advance(self._overall)
