"""Durable file steps: starting writeback early."""

from __future__ import annotations

import os
import sys

import pytest

from samverkan.core import fsutil

pytestmark = pytest.mark.unit


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sync_file_range is Linux's")
def test_writeback_is_found_and_accepted_by_the_kernel(tmp_path):
    """On Linux (where the hub runs) libc's sync_file_range is found and takes a written range;
    were it missing, downloads would silently lose their head start on the closing fsync."""
    assert fsutil._SYNC_FILE_RANGE is not None
    path = tmp_path / "f.bin"
    with open(path, "wb") as out:
        out.write(os.urandom(1 << 20))
        out.flush()
        assert fsutil._SYNC_FILE_RANGE(out.fileno(), 0, 1 << 20, fsutil.SYNC_FILE_RANGE_WRITE) == 0
        fsutil.start_writeback(out.fileno(), 0, 1 << 20)
    assert path.stat().st_size == 1 << 20


def test_writeback_on_a_closed_descriptor_is_only_a_missed_hint(tmp_path):
    """The call is a hint: a failure (here EBADF) raises nothing; the closing fsync still decides."""
    fd = os.open(tmp_path / "f.bin", os.O_WRONLY | os.O_CREAT, 0o600)
    os.close(fd)
    fsutil.start_writeback(fd, 0, 4096)
