"""The connector's fast read path against a real sshd, held to the straightforward one.

For sizes around the read size (255 KiB) and the read-ahead depth (32 reads), with a short final
read, what lands is the source byte for byte with its SHA-256, the same bytes paramiko's own
``getfo`` reads over the same session afterwards (which also shows the session is left in order
for paramiko's requests). tests/unit/test_sftp_reads.py covers servers that answer short or out
of order.
"""

from __future__ import annotations

import hashlib
import io
import os
import random

import pytest

from samverkan.connectors.sftp import DEFAULT_PREFETCH_REQUESTS, READ_REQUEST_BYTES, SFTPConnector

pytestmark = pytest.mark.integration

R, DEPTH = READ_REQUEST_BYTES, DEFAULT_PREFETCH_REQUESTS
SIZES = [R - 1, R, R + 1, 2 * R + 7, DEPTH * R - 1, DEPTH * R, DEPTH * R + 1, (DEPTH + 1) * R + 12_345]


@pytest.mark.parametrize("size", SIZES)
def test_download_is_the_source_and_what_paramikos_own_get_reads(sftp_server, settings_for, tmp_path, size):
    data = random.Random(size).randbytes(size)
    source = sftp_server.root / "export" / "vaktrapport.csv"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(data)
    os.utime(source, (1_795_000_000, 1_795_000_000))
    target = tmp_path / "landing" / "vaktrapport.csv"

    with SFTPConnector(settings_for(sftp_server)) as sftp:
        download = sftp.download("/export/vaktrapport.csv", target)
        plain = io.BytesIO()
        sftp.sftp.getfo(sftp.remote_path("/export/vaktrapport.csv"), plain)
        second = sftp.download("/export/vaktrapport.csv", tmp_path / "again.csv")

    assert target.read_bytes() == data
    assert plain.getvalue() == data
    assert (download.sha256, download.size) == (hashlib.sha256(data).hexdigest(), size)
    assert second == download
