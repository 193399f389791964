"""Shared files (named, overwritable) and logs (delivered once)."""

from __future__ import annotations

import threading

import pytest

from jobstore import EncryptionKeyError, FileJobStore, InvalidNameError, NoSuchFileException
from tests.conftest import Backend
from tests.statement_log import record_statements, writes

BAD_NAMES = [
    "",
    ".",
    "..",
    "../x",
    "a/b",
    "/abs",
    "a\\b",
    "a\x00b",
    "naïve",
    "名前",
    "sp ace",
    "x" * 256,
    "a\nb",
]


def test_shared_file_round_trip_and_overwrite(store: FileJobStore) -> None:
    with store.write_shared_file_stream("config.json", encoding="utf-8") as handle:
        handle.write('{"a": 1}')
    with store.read_shared_file_stream("config.json", encoding="utf-8") as handle:
        assert handle.read() == '{"a": 1}'
    with store.writeSharedFileStream("config.json") as handle:
        handle.write(b'{"a": 2}')
    with store.readSharedFileStream("config.json") as handle:
        assert handle.read() == b'{"a": 2}'
    assert store.stats()["shared_files"] == 1
    assert len(list(store.blob_store.list_keys())) == 1


def test_shared_write_failure_keeps_old_content(store: FileJobStore) -> None:
    with store.write_shared_file_stream("state") as handle:
        handle.write(b"good")
    with pytest.raises(ZeroDivisionError):
        with store.write_shared_file_stream("state") as handle:
            handle.write(b"bad")
            raise ZeroDivisionError
    with store.read_shared_file_stream("state") as handle:
        assert handle.read() == b"good"


def test_missing_shared_file(store: FileJobStore) -> None:
    with pytest.raises(NoSuchFileException):
        with store.read_shared_file_stream("nothing-here"):
            pass


def test_shared_file_info_names_the_stored_file(store: FileJobStore) -> None:
    with store.write_shared_file_stream("greeting") as handle:
        handle.write(b"hello")
    info = store.shared_file_info("greeting")
    assert info.size == 5
    with store.read_file_stream(str(info.id)) as stream:  # the ID the CLI's shared:NAME resolves to
        assert stream.read() == b"hello"
    with pytest.raises(NoSuchFileException):
        store.shared_file_info("nothing-here")
    with pytest.raises(InvalidNameError):
        store.shared_file_info("../x")


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_shared_names_are_refused_and_nothing_changes(store: FileJobStore, name: str) -> None:
    with store.write_shared_file_stream("keep") as handle:
        handle.write(b"kept")
    with pytest.raises(InvalidNameError):
        with store.write_shared_file_stream(name) as handle:
            handle.write(b"x")
    with pytest.raises(InvalidNameError):
        with store.read_shared_file_stream(name):
            pass
    with pytest.raises(InvalidNameError):
        store.get_shared_public_url(name)
    assert store.stats()["files"] == 1
    with store.read_shared_file_stream("keep") as handle:
        assert handle.read() == b"kept"


def test_encrypted_shared_file_needs_a_key(store: FileJobStore) -> None:
    if store.blob_store.encrypted:
        pytest.fail("the default backends are configured without keys")
    with pytest.raises(EncryptionKeyError):
        with store.write_shared_file_stream("secret", encrypted=True) as handle:
            handle.write(b"x")


def test_concurrent_shared_overwrites_leave_one_winner(backend: Backend) -> None:
    store = backend.new_store()
    others = [backend.reopen(store) for _ in range(3)]
    errors: list[BaseException] = []

    def write(instance: FileJobStore, value: bytes) -> None:
        try:
            for _ in range(10):
                with instance.write_shared_file_stream("leader") as handle:
                    handle.write(value)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(s, bytes([65 + i]) * 100)) for i, s in enumerate([store, *others])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with store.read_shared_file_stream("leader") as handle:
        content = handle.read()
    assert content in {bytes([65 + i]) * 100 for i in range(4)}
    assert store.stats()["shared_files"] == 1
    assert len(list(store.blob_store.list_keys())) == 1


def test_logs_are_delivered_once_in_order(backend: Backend) -> None:
    store = backend.new_store()
    other = backend.reopen(store)
    for i in range(5):
        store.write_logs(f"message {i}")
    other.write_logs(b"bytes message")
    received: list[bytes] = []
    assert store.read_logs(lambda stream: received.append(stream.read())) == 6
    assert received == [f"message {i}".encode() for i in range(5)] + [b"bytes message"]
    assert other.read_logs(lambda stream: received.append(stream.read())) == 0
    everything: list[bytes] = []
    assert other.read_logs(lambda stream: everything.append(stream.read()), read_all=True) == 6
    assert everything == received


def test_an_empty_log_poll_takes_no_write_transaction(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    """Toil's leader polls read_logs about twice a second; with nothing unread a poll only reads
    (no write transaction, no write lock for the workers to wait on), and it still finds a message
    written by another process, and replays with read_all."""
    store = backend.new_store()
    other = backend.reopen(store)
    other.write_logs("first")
    assert store.read_logs(lambda stream: None) == 1
    recording = record_statements(store)
    for _ in range(3):
        assert store.read_logs(lambda stream: None) == 0
    assert recording.sent and writes(recording.sent) == []
    replayed: list[bytes] = []
    assert store.read_logs(lambda stream: replayed.append(stream.read()), read_all=True) == 1
    assert replayed == [b"first"] and writes(recording.sent) == []
    other.write_logs("second")
    received: list[bytes] = []
    assert store.read_logs(lambda stream: received.append(stream.read())) == 1
    assert received == [b"second"]
    assert [sql.split(None, 1)[0] for sql in writes(recording.sent)] == ["UPDATE"]  # the claim, one statement


def test_failed_log_callback_returns_undelivered_messages(store: FileJobStore) -> None:
    for i in range(3):
        store.write_logs(f"m{i}")
    seen: list[bytes] = []

    def flaky(stream) -> None:  # type: ignore[no-untyped-def]
        data = stream.read()
        if data == b"m1":
            raise OSError("callback failed")
        seen.append(data)

    with pytest.raises(OSError):
        store.read_logs(flaky)
    assert seen == [b"m0"]
    assert store.read_logs(lambda stream: seen.append(stream.read())) == 2
    assert seen == [b"m0", b"m1", b"m2"]


def test_concurrent_log_readers_never_share_a_message(backend: Backend) -> None:
    store = backend.new_store()
    readers = [backend.reopen(store) for _ in range(3)]
    for i in range(200):
        store.write_logs(f"{i}")
    got: list[list[bytes]] = [[] for _ in readers]

    def drain(index: int) -> None:
        while readers[index].read_logs(lambda s: got[index].append(s.read())):
            pass

    threads = [threading.Thread(target=drain, args=(i,)) for i in range(len(readers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    delivered = [m for messages in got for m in messages]
    assert sorted(delivered, key=int) == [str(i).encode() for i in range(200)]


def test_write_logs_type_check(store: FileJobStore) -> None:
    with pytest.raises(TypeError):
        store.write_logs(123)  # type: ignore[arg-type]


def test_public_urls_are_fetchable(store: FileJobStore, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import urllib.request

    source = tmp_path / "f"
    source.write_bytes(b"public bytes")
    file_id = store.write_file(str(source))
    with store.write_shared_file_stream("shared-thing") as handle:
        handle.write(b"shared bytes")
    try:
        url = store.get_public_url(file_id)
        shared_url = store.get_shared_public_url("shared-thing")
    except Exception as error:  # a backend that cannot sign must say so with a typed error
        from jobstore import PublicURLError

        assert isinstance(error, PublicURLError)
        return
    with urllib.request.urlopen(url) as response:
        assert response.read() == b"public bytes"
    with urllib.request.urlopen(shared_url) as response:
        assert response.read() == b"shared bytes"
    with pytest.raises(NoSuchFileException):
        store.get_public_url("0" * 32)
