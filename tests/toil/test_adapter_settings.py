"""Settings a Toil-created store takes from the environment, and where the locator overrides them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from toil.common import Config as ToilConfig

from jobstore.errors import InvalidLocatorError
from jobstore.toil.adapter import ToilJobStore


def _toil_config(locator: str) -> ToilConfig:
    config = ToilConfig()
    config.jobStore = f"jobstore:{locator}"
    return config


def test_a_blob_store_default_does_not_apply_to_a_locator_with_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """JOBSTORE_BLOB_STORE is where a sql: store's bytes go; a file: store keeps its own blobs."""
    monkeypatch.setenv("JOBSTORE_BLOB_STORE", "s3://elsewhere/prefix")
    locator = f"file:{tmp_path / 'store'}"
    store = ToilJobStore(locator)
    store.initialize(_toil_config(locator))
    with store.write_shared_file_stream("probe") as handle:
        handle.write(b"here")
    store.resume()
    with store.read_shared_file_stream("probe") as handle:
        assert handle.read() == b"here"
    assert any((tmp_path / "store" / "blobs").rglob("*"))


def test_explicit_settings_that_contradict_the_locator_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBSTORE_SETTINGS", json.dumps({"blobStore": "s3://elsewhere/prefix"}))
    locator = f"file:{tmp_path / 'store'}"
    with pytest.raises(InvalidLocatorError, match=r"Config\.blobStore='s3://elsewhere/prefix' conflicts"):
        ToilJobStore(locator).initialize(_toil_config(locator))
    assert not (tmp_path / "store").exists()
