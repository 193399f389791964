"""Where a store's parts go: the checks and defaults between a locator plus a Config and the
catalog URL, blob URL and directory a store is made or opened in.

Everything here runs before anything is created (or, for ``remove_store_directory``, after
everything else is gone), so a refusal leaves nothing behind. A store's tree belongs to it alone:
a store directory, blob directory or new SQLite catalog inside another store's tree is refused.
"""

from __future__ import annotations

import os
import uuid

from jobstore.catalog.location import sqlite_path
from jobstore.config import Config
from jobstore.errors import InvalidLocatorError, UnsafeLocationError
from jobstore.locator import LOCAL_BLOB_DIR, SQLITE_CATALOG_NAME, StoreLocation
from jobstore.providers.local_target import refuse_inside_a_store
from jobstore.redact import redact_url


def refuse_settings_the_locator_overrides(locator: str, location: StoreLocation, config: Config) -> None:
    """A Config.catalog or Config.blobStore that names another place than the locator implies
    would be silently ignored (the locator wins): refuse it rather than put a workflow's state
    somewhere its author did not ask for. (JOBSTORE_CATALOG is a default for locators without
    a catalog, so it is not a conflict.)"""
    shown = redact_url(locator)
    if config.catalog and location.catalog_url and not _same_catalog(config.catalog, location.catalog_url):
        raise InvalidLocatorError(
            f"Config.catalog={redact_url(config.catalog)!r} conflicts with the locator {shown!r}, whose "
            f"catalog is {redact_url(location.catalog_url)!r}. Unset Config.catalog, or, to keep this "
            "store's catalog there, use the locator 'sql:CATALOG_URL#NAME' with Config.blobStore "
            "naming where file bytes go."
        )
    if config.blobStore and location.blob_url and config.blobStore.rstrip("/") != location.blob_url.rstrip("/"):
        raise InvalidLocatorError(
            f"Config.blobStore={config.blobStore!r} conflicts with the locator {shown!r}, whose file "
            f"bytes go to {location.blob_url!r}. Unset Config.blobStore, or use the locator "
            "'sql:CATALOG_URL#NAME', which takes its blob store from Config.blobStore."
        )


def required_catalog_url(locator: str, location: StoreLocation, config: Config | None) -> str:
    """The catalog's URL: the locator's, else Config.catalog, else JOBSTORE_CATALOG."""
    catalog_url = location.catalog_url or (config or Config()).catalog_url()
    if catalog_url is None:
        raise InvalidLocatorError(
            f"The locator {redact_url(locator)!r} does not say where the catalog is: set "
            "Config.catalog (or the JOBSTORE_CATALOG environment variable) to a SQLAlchemy URL."
        )
    return catalog_url


def required_blob_url(locator: str, location: StoreLocation, config: Config) -> str:
    """Where a new store's file bytes go: the locator's blob URL, else Config.blobStore."""
    blob_url = location.blob_url or config.blobStore
    if blob_url is None:
        raise InvalidLocatorError(
            f"The locator {redact_url(locator)!r} does not say where file bytes go: set "
            "Config.blobStore to file:///dir, s3://bucket/prefix or gs://bucket/prefix."
        )
    return blob_url


def apply_locator_defaults(locator: str, location: StoreLocation, config: Config) -> None:
    """What a new store's Config takes from its locator: the locator itself, a fresh workflow ID
    (unless one was given), and the region / project an ``aws:`` or ``gce:`` locator names."""
    config.jobStore = locator
    if config.workflowID is None:
        config.workflowID = str(uuid.uuid4())
    if location.kind == "aws" and config.awsRegion is None:
        config.awsRegion = location.region
    if location.kind == "google":
        config.googleRegion = config.googleRegion or location.region
        config.googleProject = config.googleProject or location.project


def prepare_new_store(location: StoreLocation, catalog_url: str, config: Config) -> None:
    """Check (and, for a ``file:`` store, make) the place a new store goes, before any of it exists."""
    if location.kind == "file":
        database = sqlite_path(catalog_url)
        assert database is not None  # a file: locator's catalog is its directory's SQLite file
        _prepare_store_directory(os.path.dirname(database), config)
        return
    database = sqlite_path(catalog_url)
    if database is not None and not os.path.exists(database):
        # A new SQLite catalog file inside another store's tree would be that store's to delete.
        refuse_inside_a_store(database, "Will not make the catalog file", "a catalog path")


def blob_owner(store_name: str, workflow_id: str | None) -> str:
    """What a local blob directory's marker records: which store, of which workflow, owns it."""
    return f"store {store_name!r} of workflow {workflow_id}"


def remove_store_directory(location: StoreLocation) -> None:
    """For file: stores, remove the catalog files and the directory if nothing else is left."""
    if location.kind != "file":
        return
    directory = location.locator[len("file:") :]
    for name in (SQLITE_CATALOG_NAME, SQLITE_CATALOG_NAME + "-wal", SQLITE_CATALOG_NAME + "-shm"):
        try:
            os.unlink(os.path.join(directory, name))
        except FileNotFoundError:
            pass
    for leftover in (os.path.join(directory, LOCAL_BLOB_DIR), directory):
        try:
            os.rmdir(leftover)
        except OSError:
            pass


def _prepare_store_directory(directory: str, config: Config) -> None:
    refuse_inside_a_store(directory, "Will not make a job store in", "a directory")
    if os.path.exists(directory):
        if not os.path.isdir(directory):
            raise InvalidLocatorError(f"{directory!r} exists and is not a directory, so it cannot hold a job store.")
        if os.path.exists(os.path.join(directory, SQLITE_CATALOG_NAME)):
            return  # an existing store: initialize() reports JobStoreExistsException
        if any(True for _ in os.scandir(directory)):
            raise UnsafeLocationError(
                f"{directory!r} exists, is not empty and is not a job store; choose a new or empty directory."
            )
        os.chmod(directory, config.dirMode)
    else:
        os.makedirs(directory, mode=config.dirMode)


def _same_catalog(configured: str, implied: str) -> bool:
    if configured == implied:
        return True
    configured_file, implied_file = sqlite_path(configured), sqlite_path(implied)
    return configured_file is not None and configured_file == implied_file
