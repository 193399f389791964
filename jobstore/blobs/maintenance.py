"""The blob side of the maintenance interface: what ``jobstore.maintenance`` needs of blob stores.

A maintenance task gets the store's :class:`BlobStore` from ``JobStore.blob_store`` and uses its
public methods (``list_keys``, ``exists``, ``size``, ``open_read``, ``open_write``, ``delete``,
``remove_stale_uploads``); this module names the few types and rules it needs besides, so that
nothing above the store imports a blob store's internals.
"""

from __future__ import annotations

import io

from jobstore.blobs.base import CHUNK_SIZE, REFERENCE_KEY_PREFIX, BlobInfo, BlobStore, check_key, is_reference_key

__all__ = ["CHUNK_SIZE", "REFERENCE_KEY_PREFIX", "BlobInfo", "BlobStore", "check_key", "drain", "is_reference_key"]


def drain(reader: io.BufferedIOBase) -> None:
    """Read a blob reader to its end (its checksum is verified as the last bytes arrive)."""
    while reader.read(CHUNK_SIZE):
        pass
