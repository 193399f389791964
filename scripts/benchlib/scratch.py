"""The benchmark's scratch directory: keep one run's file-system residue out of the next run.

On ext4 *without a journal* (this project's test machines: ``/proc/fs/jbd2`` is empty), the inode
allocator avoids reusing inodes freed in the last 60 s (360 s while their inode-table block is
still dirty): every file creation in a block group scans past them (``recently_deleted()`` in
``fs/ext4/ialloc.c``; ``perf record`` shows 70-90% of a create there). A run that follows a run
which deleted thousands of files in the same group then pays 200-650 us per created file instead
of ~23 us, whichever store it measures, and which target follows which decides the ratios.

Two measures keep runs independent (``--isolate-runs``, the default; measured in
docs/PERFORMANCE.md):

* the scratch directory is marked as the top of a directory hierarchy (``chattr +T``), so ext4's
  Orlov allocator spreads each run's work directory over the block groups instead of placing it
  next to its siblings, in the group the previous runs just freed;
* work directories are deleted at the end of the benchmark, not after each run.

Neither changes what a store does inside its run: a workload that deletes files (W6, W7) still
pays for its own deletions.
"""

from __future__ import annotations

import fcntl
import os
import struct
from pathlib import Path

# linux/fs.h: the flag that ``chattr +T`` sets, and the ioctls that read and write the flags.
_FS_IOC_GETFLAGS = 0x80086601
_FS_IOC_SETFLAGS = 0x40086602
_FS_TOPDIR_FL = 0x00020000


def mark_top_directory(path: Path) -> bool:
    """Ask the file system to spread ``path``'s subdirectories over its block groups (ext2/3/4's
    ``chattr +T``). Returns False where the flag is not supported (another file system or OS)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return False
    try:
        flags = struct.unpack("l", fcntl.ioctl(fd, _FS_IOC_GETFLAGS, struct.pack("l", 0)))[0]
        fcntl.ioctl(fd, _FS_IOC_SETFLAGS, struct.pack("l", flags | _FS_TOPDIR_FL))
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
