"""Durable file-system steps shared by the landing area (connectors) and publishing (samverkan)."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """Flush a directory entry, so a rename into it survives a crash (data is only safe once both
    the file and the directory that names it are on disk)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
