"""import_file / export_file: every URL scheme on every store backend, against real servers.

The matrix (5 schemes x 6 backends) runs each round trip at several sizes on one store, so it
costs one store per cell: 0 and 1 byte, 1 MiB (the streaming chunk) and 1 MiB + 1 (which also
crosses the 256 KiB GCS chunk of the test Config). Same-backend pairs (s3 -> S3 store, gs -> GCS
store, file -> local store) go through the fast paths; every other pair streams.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from jobstore.blobs.checksum import checksum_of_bytes
from tests.conftest import Backend
from tests.urls.conftest import Place, make_place

MiB = 1024 * 1024
SIZES = [0, 1, MiB, MiB + 1]


def test_round_trip_every_scheme_on_every_backend(backend: Backend, place: Place, url_config: dict[str, Any]) -> None:
    store = backend.new_store(**url_config)
    for size in SIZES:
        data = os.urandom(size)
        url = place.put(f"data-{size}.bin", data)
        file_id = store.import_file(url)
        assert file_id is not None
        row = store.file_info(file_id)
        assert (row.size, row.checksum) == (size, checksum_of_bytes(data))
        assert row.source_url == url
        assert row.basename == f"data-{size}.bin"
        with store.read_file_stream(file_id) as stream:
            assert stream.read() == data
        store.export_file(file_id, place.target(f"copy-{size}.bin"))
        assert place.fetch(f"copy-{size}.bin") == data

    # A shared import: no ID, readable by name, provenance recorded; a second import replaces it.
    for size in (1, MiB + 1):
        data = os.urandom(size)
        url = place.put(f"shared-{size}.bin", data)
        assert store.import_file(url, shared_file_name="inputs.bin") is None
        with store.read_shared_file_stream("inputs.bin") as stream:
            assert stream.read() == data
        shared = [store.file_info(fid) for fid in store.get_all_file_ids()]
        [row] = [row for row in shared if row.shared_name == "inputs.bin"]
        assert (row.size, row.checksum, row.source_url) == (size, checksum_of_bytes(data), url)


def test_executable_bit_survives_a_file_round_trip(backend: Backend, tmp_path: Path) -> None:
    store = backend.new_store()
    script = tmp_path / "tool.sh"
    script.write_bytes(b"#!/bin/sh\necho hello\n")
    script.chmod(0o755)
    plain = tmp_path / "data.txt"
    plain.write_bytes(b"data")
    plain.chmod(0o644)
    for source, executable in ((script, True), (plain, False)):
        file_id = store.import_file(str(source))
        assert file_id is not None
        assert store.file_info(file_id).executable is executable
        target = tmp_path / "out" / "nested" / source.name
        store.export_file(file_id, target.as_uri())
        assert bool(target.stat().st_mode & stat.S_IXUSR) is executable
        assert target.read_bytes() == source.read_bytes()
        assert [name for name in os.listdir(target.parent) if ".jobstore-" in name] == []


def test_camel_case_names(backend: Backend, tmp_path: Path) -> None:
    store = backend.new_store()
    source = tmp_path / "in.txt"
    source.write_bytes(b"seed")
    file_id = store.importFile(source.as_uri())
    assert file_id is not None
    assert store.importFile(source.as_uri(), sharedFileName="seed.txt") is None
    store.exportFile(file_id, (tmp_path / "out.txt").as_uri())
    assert (tmp_path / "out.txt").read_bytes() == b"seed"


@pytest.mark.parametrize("backend", ["sqlite-local", "sqlite-s3"], indirect=True)
@pytest.mark.parametrize("size", [5 * MiB, 5 * MiB + 1])
def test_multipart_boundaries_to_and_from_s3(
    backend: Backend, request: pytest.FixtureRequest, tmp_path: Path, url_config: dict[str, Any], size: int
) -> None:
    """With 5 MiB parts, exactly one part and one part plus a byte (a multipart upload) both arrive,
    streamed (local store) and server-side copied (S3 store)."""
    s3 = make_place("s3", request, tmp_path)
    store = backend.new_store(s3PartSize=5 * MiB, **url_config)
    data = os.urandom(size)
    file_id = store.import_file(s3.put("big.bin", data))
    assert file_id is not None
    assert store.file_info(file_id).checksum == checksum_of_bytes(data)
    store.export_file(file_id, s3.target("big.bin"))
    assert s3.fetch("big.bin") == data


@pytest.mark.parametrize("backend", ["sqlite-local", "sqlite-gcs"], indirect=True)
@pytest.mark.parametrize("size", [256 * 1024 - 1, 256 * 1024, 256 * 1024 + 1, 3 * 256 * 1024])
def test_chunk_boundaries_to_and_from_gcs(
    backend: Backend, request: pytest.FixtureRequest, tmp_path: Path, url_config: dict[str, Any], size: int
) -> None:
    """Around the 256 KiB resumable-upload chunk of the test Config, both ways."""
    gs = make_place("gs", request, tmp_path)
    store = backend.new_store(**url_config)
    data = os.urandom(size)
    file_id = store.import_file(gs.put("chunked.bin", data))
    assert file_id is not None
    assert store.file_info(file_id).checksum == checksum_of_bytes(data)
    store.export_file(file_id, gs.target("chunked.bin"))
    assert gs.fetch("chunked.bin") == data
