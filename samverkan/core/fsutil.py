"""Durable file-system steps shared by the landing area (connectors) and publishing (samverkan)."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Any, overload

# What the hub creates is for the hub's account and a group (analysts, the pull service), never
# for every local user: the umask of every hub process, and the modes set explicitly on what is
# shared (published/, outbox/), so a caller with a loose umask cannot widen them.
HUB_UMASK = 0o027
SHARED_DIR_MODE, SHARED_FILE_MODE = 0o750, 0o640


def restrict_umask() -> int:
    """Set the hub's umask for this process (task runtimes, command line); returns the old one."""
    return os.umask(HUB_UMASK)


def make_dirs(path: Path, mode: int = SHARED_DIR_MODE) -> Path:
    """``mkdir -p`` whose new folders get ``mode`` exactly (mkdir's own mode passes the umask)."""
    missing = []
    current = Path(path)
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        directory.mkdir(exist_ok=True)
        directory.chmod(mode)
    return Path(path)


def fsync_dir(directory: Path) -> None:
    """Flush a directory entry, so a rename into it survives a crash (data is only safe once both
    the file and the directory that names it are on disk)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


SYNC_FILE_RANGE_WRITE = 2  # linux/fs.h: start writeback of the range, do not wait for it


def _sync_file_range() -> Any:
    """libc's ``sync_file_range`` (Linux), or None where there is none. (``CDLL(None)`` is this
    process with the libraries it has loaded, libc among them; ``find_library`` would run
    ``ldconfig`` at every import.)"""
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    function.restype = ctypes.c_int
    return function


_SYNC_FILE_RANGE = _sync_file_range()


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing ``[offset, offset + length)`` of ``fd`` to disk, without
    waiting. A head start, not a guarantee: the ``fsync`` that makes a file durable still comes
    at its end, but finds little left to write, instead of the whole file (about 0.1 s for 300 MiB
    here). Where the call is missing or fails, nothing happens and the ``fsync`` does it all."""
    if _SYNC_FILE_RANGE is not None:
        _SYNC_FILE_RANGE(fd, offset, length, SYNC_FILE_RANGE_WRITE)  # ctypes releases the GIL


class Below:
    """A read-only path attribute below the object's base directory, declared as data:
    ``ledger = Below("private", "ledger.sqlite")`` is ``<obj.root>/private/ledger.sqlite``; a
    layout reads as one table instead of a property per folder."""

    def __init__(self, *parts: str, base: str = "root") -> None:
        self.parts, self.base = parts, base

    @overload
    def __get__(self, obj: None, owner: type) -> Below: ...
    @overload
    def __get__(self, obj: object, owner: type) -> Path: ...
    def __get__(self, obj: Any, owner: type) -> Any:
        return self if obj is None else Path(getattr(obj, self.base)).joinpath(*self.parts)
