"""A SQLite catalog's file: where it may live and who may read it. (No SQLAlchemy here: a new
catalog can be created on the fast path, without an engine.)"""

from __future__ import annotations

import logging
import os

from jobstore.errors import UnsafeLocationError

log = logging.getLogger(__name__)

#: File systems on which SQLite's locking is unreliable (see the SQLite FAQ on network files).
NETWORK_FILE_SYSTEMS = frozenset(
    {
        "nfs",
        "nfs4",
        "lustre",
        "cifs",
        "smb",
        "smb2",
        "smbfs",
        "gpfs",
        "beegfs",
        "fuse.sshfs",
        "ceph",
        "glusterfs",
        "afs",
    }
)
ALLOW_NETWORK_SQLITE_ENV = "JOBSTORE_ALLOW_NETWORK_SQLITE"


def prepare_sqlite_file(path: str) -> None:
    """Before SQLite first opens ``path``: refuse a network file system, and create the file
    private if it does not exist."""
    check_file_system_for_sqlite(os.path.dirname(path))
    _create_private_database_file(path)


def _create_private_database_file(path: str) -> None:
    """Create a new SQLite catalog file readable by its owner only (0600): SQLite would create it
    with the umask's mode (usually 0644), and it gives its -wal and -shm files the mode of the
    database file. An existing file is left as it is."""
    if os.path.exists(path) or not os.path.isdir(os.path.dirname(path)):
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    except FileExistsError:
        pass  # another process created it first


def check_file_system_for_sqlite(directory: str) -> None:
    """Refuse a SQLite catalog on NFS, Lustre and friends, where its file locking is unreliable."""
    fs_type = file_system_type(directory)
    if fs_type is None or fs_type not in NETWORK_FILE_SYSTEMS:
        return
    message = (
        f"The SQLite catalog would live in {directory!r}, on a {fs_type} file system, where SQLite's "
        "locking is unreliable and concurrent workers can corrupt it. Use a PostgreSQL catalog "
        "(sql:postgresql+psycopg://host/db#name) for stores shared between machines."
    )
    if os.environ.get(ALLOW_NETWORK_SQLITE_ENV) == "1":
        log.warning("%s (allowed by %s=1)", message, ALLOW_NETWORK_SQLITE_ENV)
        return
    raise UnsafeLocationError(f"{message} To accept the risk anyway, set {ALLOW_NETWORK_SQLITE_ENV}=1.")


def file_system_type(path: str) -> str | None:
    """The type of the file system holding ``path`` (from /proc/mounts), or None if unknown."""
    try:
        with open("/proc/mounts", encoding="utf-8") as mounts:
            entries = [line.split() for line in mounts]
    except OSError:
        return None
    path = os.path.realpath(_existing_ancestor(path))
    best: tuple[int, str] | None = None
    for entry in entries:
        if len(entry) < 3:
            continue
        mount_point = entry[1].replace("\\040", " ")
        if path == mount_point or path.startswith(mount_point.rstrip("/") + "/") or mount_point == "/":
            if best is None or len(mount_point) > best[0]:
                best = (len(mount_point), entry[2])
    return best[1] if best else None


def _existing_ancestor(path: str) -> str:
    path = os.path.abspath(path)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path
