"""Toil's linked imports through the adapter: where FileJobStore would symlink a local input
(``symlinkImports``, a caller that accepts links), jobstore records a reference instead."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from toil.common import Config as ToilConfig

from jobstore import ReferenceChangedError
from jobstore.toil.adapter import ToilJobStore
from tests.conftest import Backend


def _adapter(backend: Backend, symlink_imports: bool) -> ToilJobStore:
    locator, settings = backend.make_locator()
    store = ToilJobStore(locator, settings)
    config = ToilConfig()
    config.jobStore = f"jobstore:{locator}"
    config.symlinkImports = symlink_imports
    store.initialize(config)
    return store


@pytest.fixture
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("inputs") / "reads.fastq"
    path.write_bytes(b"@r1\nACGT\n+\n!!!!\n")
    yield path


def test_a_linked_import_is_a_reference_and_reads_hand_out_links(
    backend: Backend, source: Path, tmp_path: Path
) -> None:
    store = _adapter(backend, symlink_imports=True)
    try:
        file_id = store.import_file(source.as_uri())
        assert file_id is not None and file_id.size == source.stat().st_size
        assert store._store.file_info(str(file_id)).reference is not None
        linked = tmp_path / "linked.fastq"
        store.read_file(str(file_id), str(linked), symlink=True)
        assert linked.is_symlink() and linked.read_bytes() == source.read_bytes()
        copied = tmp_path / "copied.fastq"
        store.read_file(str(file_id), str(copied), symlink=False)
        assert not copied.is_symlink() and copied.read_bytes() == source.read_bytes()

        hard = store.import_file(source.as_uri(), hardlink=True)  # the caller cannot take links: a copy
        no_links = store.import_file(source.as_uri(), symlink=False)
        for copied_id in (hard, no_links):
            assert copied_id is not None and store._store.file_info(str(copied_id)).reference is None

        source.write_bytes(b"@r1\nTTTT\n+\n!!!!\n")
        with pytest.raises(ReferenceChangedError):
            store.read_file(str(file_id), str(tmp_path / "after.fastq"), symlink=False)
        with store.read_file_stream(str(hard)) as handle:  # a copy keeps what was imported
            assert handle.read() == b"@r1\nACGT\n+\n!!!!\n"
    finally:
        store.destroy()
    assert source.read_bytes() == b"@r1\nTTTT\n+\n!!!!\n"  # destroy left the source alone


def test_without_symlink_imports_every_import_is_a_copy(backend: Backend, source: Path) -> None:
    store = _adapter(backend, symlink_imports=False)
    try:
        file_id = store.import_file(source.as_uri())
        assert file_id is not None and store._store.file_info(str(file_id)).reference is None
        os.unlink(source)
        with store.read_file_stream(str(file_id)) as handle:
            assert handle.read() == b"@r1\nACGT\n+\n!!!!\n"
    finally:
        store.destroy()
