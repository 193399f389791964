"""Blob stores, chosen by URL scheme. Provider libraries are imported only when selected."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from jobstore.blobs.base import BlobInfo, BlobStore, check_key, new_key
from jobstore.errors import InvalidLocatorError, MissingDependencyError

if TYPE_CHECKING:
    from jobstore.config import Config

__all__ = ["BlobInfo", "BlobStore", "check_key", "new_key", "open_blob_store"]


def open_blob_store(url: str, config: Config) -> BlobStore:
    """The blob store at ``url`` (``file:///dir``, ``s3://bucket/prefix``, ``gs://bucket/prefix``)."""
    scheme = urlsplit(url).scheme
    if scheme == "file":
        from jobstore.blobs.local import LocalBlobStore

        return LocalBlobStore.from_url(url, config)
    if scheme == "s3":
        try:
            import boto3  # noqa: F401
        except ImportError:
            raise MissingDependencyError("boto3", "s3", "An S3 blob store") from None
        from jobstore.blobs.s3 import S3BlobStore

        return S3BlobStore.from_url(url, config)
    if scheme == "gs":
        try:
            from google.cloud import storage  # noqa: F401
        except ImportError:
            raise MissingDependencyError("google-cloud-storage", "gcs", "A Google Cloud Storage blob store") from None
        from jobstore.blobs.gcs import GCSBlobStore

        return GCSBlobStore.from_url(url, config)
    raise InvalidLocatorError(
        f"Blob store URL {url!r} has an unsupported scheme {scheme!r}; use one of "
        "file:///directory, s3://bucket/prefix, gs://bucket/prefix."
    )
