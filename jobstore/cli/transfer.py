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
from jobstore.cli.common import CatalogOption, LocatorArgument, app, as_url, errors, preflight
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
    locator: LocatorArgument,
    urls: Annotated[
        list[str],
        typer.Argument(help="Local paths (relative or absolute) or file://, http(s)://, ftp://, s3:// or gs:// URLs."),
    ],
    shared_name: Annotated[
        str | None, typer.Option("--shared-name", help="Store the (single) URL as this shared file instead.")
    ] = None,
    catalog: CatalogOption = None,
    workers: WorkersOption = 4,
    progress: ProgressOption = True,
    reference: Annotated[
        bool,
        typer.Option(
            "--reference",
            help="Record file:, s3:// or gs:// sources by reference instead of copying them: instant, no "
            "extra space; each read checks the source is unchanged, and jobstore never deletes it.",
        ),
    ] = False,
) -> None:
    """Import files by URL; print each new file ID with its URL."""
    if shared_name is not None and len(urls) != 1:
        raise typer.BadParameter("--shared-name names one shared file: give exactly one URL with it.")
    # Local paths, relative ones included, as the file: URLs the store takes.
    given = {as_url(url): url for url in urls}  # results show each URL or path as it was given
    urls = list(given) if len(given) == len(urls) else [as_url(url) for url in urls]
    items: list[str | tuple[str, str]] = [(urls[0], shared_name)] if shared_name is not None else list(urls)
    with _opened(locator, catalog) as store, _Bars(len(items), "imported", enabled=progress) as bars:
        results = store.import_files(
            items, max_workers=workers, progress=bars.report, mode="reference" if reference else "copy"
        )
    _finish(
        results,
        lambda result: f"shared:{result.shared_file_name}" if result.shared_file_name else result.file_id,
        shown=lambda url: given.get(url, url),
    )


@app.command("export")
def export_command(
    locator: LocatorArgument,
    file_id: Annotated[
        str, typer.Argument(metavar="FILE_ID", help="A file ID, or shared:NAME for a shared file (as import prints).")
    ],
    url: Annotated[
        str,
        typer.Argument(
            help="Destination: a local path (relative or absolute) or a file://, ftp://, s3://, gs:// "
            "or http(s):// URL."
        ),
    ],
    http_method: Annotated[
        str, typer.Option("--http-method", help="POST or PUT, for http(s):// destinations.", case_sensitive=False)
    ] = "POST",
    catalog: CatalogOption = None,
    progress: ProgressOption = True,
) -> None:
    """Export a file (a FILE_ID as `jobstore import` prints it, shared:NAME included) to a URL or path."""
    url = as_url(url)
    with _opened(locator, catalog) as store, _Bars(1, "exported", enabled=progress) as bars:
        stored_id = _file_id(store, file_id)
        results = store.export_files([(stored_id, url)], progress=bars.report, http_method=http_method.upper())
    _finish(results, lambda result: file_id)  # the ID as the user gave it


SHARED_PREFIX = "shared:"


def _file_id(store: JobStore, given: str) -> str:
    """The stored ID of ``given``: itself, or the ID of the shared file that ``shared:NAME`` names."""
    if not given.startswith(SHARED_PREFIX):
        return given
    return str(store.shared_file_info(given[len(SHARED_PREFIX) :]).id)


@contextmanager
def _opened(locator: str, catalog: str | None) -> Iterator[JobStore]:
    from jobstore.store import create_job_store

    preflight(locator, catalog)
    store = create_job_store(locator)
    store.resume(Config(catalog=catalog) if catalog else None)
    try:
        yield store
    finally:
        store.close()


def _finish(
    results: list[TransferResult],
    label: Callable[[TransferResult], str | None],
    shown: Callable[[str], str] = lambda url: url,
) -> None:
    failed = 0
    for result in results:
        if result.ok:
            sys.stdout.write(f"{label(result)}\t{shown(result.url)}\n")  # tab-separated, for scripts
            continue
        failed += 1
        reason = str(result.error)
        where = "" if result.url in reason else f"{shown(result.url)}: "
        errors.print(f"[red]failed:[/red] {escape(where + reason)}", highlight=False, soft_wrap=True)
    if failed:
        if failed == len(results):
            summary = "the transfer failed" if failed == 1 else f"all {failed} transfers failed"
        else:
            done = len(results) - failed
            summary = f"{failed} of {len(results)} transfers failed; the other {done} completed"
        errors.print(f"{summary}.")
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
