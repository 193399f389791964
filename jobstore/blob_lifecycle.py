"""When the store deletes blobs: after the commit that stopped referencing them, never before.

A row operation either commits (it now references the blob it was handed and may have stopped
referencing others) or refuses (no row will ever reference the fresh blob written for it). Outside
a batch a commit is final when the operation returns, so released blobs are deleted at once.
Inside ``JobStore.batch()`` nothing is final until the transaction commits: released blobs wait
for that commit, and if the transaction rolls back, the blobs written for its rows are the ones
deleted instead. A delete that fails is logged and left to garbage collection, which finds the blob
unreferenced; no path deletes a blob a committed row still names.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager

from jobstore.blobs import BlobStore
from jobstore.blobs.base import is_reference_key
from jobstore.errors import JobStoreError

__all__ = ["BlobLifecycle"]

log = logging.getLogger(__name__)


class BlobLifecycle:
    """The per-thread record of a batch's written and released blobs (one per store object)."""

    def __init__(self) -> None:
        self._pending = threading.local()

    @contextmanager
    def batch(self, blobs: BlobStore, transaction: AbstractContextManager[object]) -> Iterator[None]:
        """Run ``transaction`` (the catalog's batch) and settle its blobs once its fate is known."""
        written: list[str] = []
        released: list[str] = []
        self._pending.written, self._pending.released = written, released
        committed = False
        try:
            with transaction:
                yield
            committed = True
        finally:
            self._pending.written = self._pending.released = None
            _delete_quietly(blobs, released if committed else written)

    def committed(self, blobs: BlobStore, written: str | None, released: Iterable[str]) -> None:
        """A row operation now references ``written`` (if any) and no longer ``released``."""
        pending_written: list[str] | None = getattr(self._pending, "written", None)
        if pending_written is None:
            _delete_quietly(blobs, released)
            return
        if written is not None:
            pending_written.append(written)
        self._pending.released.extend(released)

    def refused(self, blobs: BlobStore, written: str) -> None:
        """A row operation would not reference the fresh blob ``written``: nothing ever will."""
        _delete_quietly(blobs, (written,))


def _delete_quietly(blobs: BlobStore, keys: Iterable[str]) -> None:
    for key in keys:
        if is_reference_key(key):
            continue  # a reference owns no blob; its source is not the store's to delete
        try:
            blobs.delete(key)
        except JobStoreError as error:
            log.warning("could not delete unreferenced blob %s (gc will retry): %s", key, error)
