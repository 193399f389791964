"""Orphans both ways: file rows whose job is gone, and blobs that no row references.

Rows whose job is gone are one anti-join in the catalog. Blobs without a row need the blob store's
listing: the keys are listed once, loaded into a temporary table on one catalog connection, and
anti-joined against ``files`` in both directions (so the same pass also finds rows whose blob is
missing). Nothing here changes the store; :mod:`jobstore.maintenance.gc` and
:mod:`jobstore.maintenance.fsck` act on what it finds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from jobstore.blobs.maintenance import check_key
from jobstore.catalog.maintenance import FileCheckRow, OrphanRow
from jobstore.errors import UnsafeLocationError
from jobstore.maintenance.progress import Progress, no_progress
from jobstore.redact import redact_url
from jobstore.store import JobStore

T = TypeVar("T")
R = TypeVar("R")

#: Threads for per-blob calls (HEAD, delete, read): blob stores are network-bound.
DEFAULT_WORKERS = 8


def orphaned_files(store: JobStore, *, cleanup_only: bool = False) -> list[OrphanRow]:
    """Files whose owning job no longer exists (one anti-join), with their keys and sizes."""
    return store.maintenance_catalog.orphaned_files(cleanup_only=cleanup_only)


@dataclass
class BlobComparison:
    """The blob store's listing compared with the catalog's rows."""

    #: How many keys the listing held.
    listed: int = 0
    #: Listed keys that no file row references.
    unreferenced: list[str] = field(default_factory=list)
    #: File rows whose key was not in the listing.
    missing: list[FileCheckRow] = field(default_factory=list)
    #: Listed names that are not keys jobstore could have written (left alone, reported).
    foreign: list[str] = field(default_factory=list)


def compare_blobs(store: JobStore, progress: Progress = no_progress) -> BlobComparison:
    """List the store's blobs and anti-join them against its file rows, both ways.

    The listing happens outside any transaction (it can take minutes on a large bucket); the
    comparison is one short read transaction on one connection, so it never blocks writers.
    """
    comparison = BlobComparison()
    keys: list[str] = []
    for name in store.blob_store.list_keys():
        try:
            keys.append(check_key(name))
        except UnsafeLocationError:
            comparison.foreign.append(name)
        if len(keys) % 10000 == 0:
            progress("list blobs", len(keys), None)
    comparison.listed = len(keys) + len(comparison.foreign)
    progress("list blobs", len(keys), len(keys))
    comparison.unreferenced, comparison.missing = store.maintenance_catalog.compare_listing(keys)
    return comparison


def unreferenced_blobs(store: JobStore) -> list[str]:
    """Blobs in the store's blob store that no catalog row references."""
    return compare_blobs(store).unreferenced


def check_blobs_not_shared(store: JobStore) -> None:
    """Refuse to judge blobs when another store of the catalog keeps its blobs inside ours.

    Garbage collection treats every listed key without a row *of this store* as garbage; if another
    store's blob URL is the same as ours or nested under it, its blobs would look like ours.
    """
    own = store.blob_store.url.rstrip("/")
    others = store.maintenance_catalog.other_stores()
    for name, url in others:
        theirs = url.rstrip("/")
        if theirs == own or theirs.startswith(own + "/"):
            raise UnsafeLocationError(
                f"Store {name!r} of the same catalog keeps its blobs at {redact_url(url)}, inside this store's "
                f"blob store {redact_url(own)}, so its blobs would look unreferenced here. Give each store its "
                "own blob prefix (copy one of them elsewhere with `jobstore copy`) before collecting garbage."
            )


def parallel_map(function: Callable[[T], R], items: Sequence[T] | Iterable[T], workers: int) -> list[R]:
    """``map`` over a thread pool (results in order): blob calls are I/O-bound."""
    items = list(items)
    if workers <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(function, items))
