"""Maintenance of stores: orphans, garbage collection, fsck, copying between backends, retention.

Each function takes an open :class:`~jobstore.store.JobStore` (``initialize``-d or ``resume``-d);
they reach its rows through ``store.maintenance_catalog`` and its bytes through ``store.blob_store``
(the maintenance interface of docs/MAINTENANCE.md). ``JobStore.stats()`` is the store's
own; the ``jobstore`` command wraps everything here (``status``, ``gc``, ``fsck``, ``copy``,
``prune``, ``destroy``). See docs/MAINTENANCE.md.
"""

from jobstore.maintenance.copy import CopyReport, copy_store, destination_config, open_destination, verify_blobs
from jobstore.maintenance.durations import InvalidDurationError, format_duration, parse_duration
from jobstore.maintenance.fsck import FsckReport, Problem, fsck
from jobstore.maintenance.gc import DEFAULT_GRACE, GCReport, collect_garbage
from jobstore.maintenance.orphans import BlobComparison, compare_blobs, orphaned_files, unreferenced_blobs
from jobstore.maintenance.prune import PruneReport, prune

__all__ = [
    "DEFAULT_GRACE",
    "BlobComparison",
    "CopyReport",
    "FsckReport",
    "GCReport",
    "InvalidDurationError",
    "Problem",
    "PruneReport",
    "collect_garbage",
    "compare_blobs",
    "copy_store",
    "destination_config",
    "format_duration",
    "fsck",
    "open_destination",
    "orphaned_files",
    "parse_duration",
    "prune",
    "unreferenced_blobs",
    "verify_blobs",
]
