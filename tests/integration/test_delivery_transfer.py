"""Delivery transfers against real OpenSSH: the chrooted pull service and push to an inbox.

Pull: every recipient logs in to one sshd with its own key and account and is chrooted into its
own outbox; the tests try, with a real SFTP client, everything a curious recipient would try.
Push: the connection is really cut (the TCP socket shut down) in the middle of a file; the
recipient's side must show no complete-looking delivery, and the next run must finish it.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path

import paramiko
import pytest

from samverkan.connectors.sftp import SFTPConnectionError, SFTPConnector, SFTPSettings
from samverkan.connectors.sshd import generate_keypair, sshd_available
from samverkan.sharing.delivery import push
from samverkan.sharing.outbox import MANIFEST, Delivery
from samverkan.sharing.pull_service import PullAccount, start_pull_service

pytestmark = pytest.mark.integration

NIGHT = "2026-11-20"


def _need_root_sshd() -> None:
    if not sshd_available():
        pytest.skip("OpenSSH server not installed")
    if os.geteuid() != 0:
        pytest.skip("the pull service chroots recipients, which needs root")


def _outbox(root: Path, recipient: str, secret_line: str) -> Path:
    night = root / recipient / NIGHT
    night.mkdir(parents=True)
    (night / "incidents.parquet").write_text(secret_line)
    (night / MANIFEST).write_text(json.dumps({"recipient": recipient}))
    return night


@pytest.fixture
def pull_service(tmp_path):
    _need_root_sshd()
    outbox = tmp_path / "outbox"
    keys = {r: generate_keypair(tmp_path / "keys" / r) for r in ("alpha", "beta")}
    _outbox(outbox, "alpha", "alpha's rows")
    _outbox(outbox, "beta", "beta's rows")
    accounts = [PullAccount(f"sv-t-{r}", r, keys[r][1]) for r in keys]
    service = start_pull_service(outbox, accounts, tmp_path / "pull-sshd")
    yield service, keys, outbox
    service.stop()


def _settings(service, account: str, key: Path) -> SFTPSettings:
    return SFTPSettings(host=service.host, port=service.port, username=account, key_file=str(key),
                        host_key=service.host_key_line)


def test_pull_recipient_sees_and_reads_only_its_own_outbox(pull_service):
    service, keys, outbox = pull_service
    with SFTPConnector(_settings(service, "sv-t-alpha", keys["alpha"][0])) as alpha:
        assert alpha.sftp.listdir("/") == [NIGHT]
        with alpha.sftp.open(f"/{NIGHT}/incidents.parquet") as f:
            assert f.read() == b"alpha's rows"
        # Everything that would lead to beta's outbox: parent paths, the host path, beta's name.
        assert alpha.sftp.listdir("/..") == [NIGHT]
        assert alpha.sftp.listdir("/../../..") == [NIGHT]
        for path in (f"/../beta/{NIGHT}/incidents.parquet", str(outbox / "beta" / NIGHT / "incidents.parquet"),
                     f"/beta/{NIGHT}/incidents.parquet"):
            with pytest.raises(FileNotFoundError):
                alpha.sftp.stat(path)
        with pytest.raises(FileNotFoundError):
            alpha.sftp.listdir(str(outbox / "beta"))


def test_pull_recipient_cannot_log_in_as_another(pull_service):
    service, keys, _ = pull_service
    with pytest.raises(SFTPConnectionError, match="authentication failed"):
        SFTPConnector(_settings(service, "sv-t-beta", keys["alpha"][0])).connect()
    with pytest.raises(SFTPConnectionError, match="authentication failed"):
        SFTPConnector(_settings(service, "root", keys["alpha"][0])).connect()


def test_pull_recipient_cannot_change_its_outbox(pull_service):
    service, keys, outbox = pull_service
    with SFTPConnector(_settings(service, "sv-t-beta", keys["beta"][0])) as beta:
        with pytest.raises(PermissionError):
            beta.sftp.remove(f"/{NIGHT}/incidents.parquet")
        with pytest.raises(PermissionError):
            beta.sftp.open(f"/{NIGHT}/extra.txt", "w")
    assert (outbox / "beta" / NIGHT / "incidents.parquet").read_text() == "beta's rows"


# --- push ----------------------------------------------------------------------------------------


def _delivery(tmp_path: Path) -> Delivery:
    directory = tmp_path / "outbox" / "police" / NIGHT
    directory.mkdir(parents=True)
    files = []
    for name, size in (("incidents.parquet", 300_000), ("involvements.parquet", 6_000_000)):
        (directory / name).write_bytes(os.urandom(size))
        files.append({"name": name, "dataset": name.split(".")[0], "rows": 1, "bytes": size,
                      "sha256": hashlib.sha256((directory / name).read_bytes()).hexdigest()})
    manifest = {"delivery_id": NIGHT, "files": files}
    (directory / MANIFEST).write_text(json.dumps(manifest))
    return Delivery("police", __import__("datetime").date.fromisoformat(NIGHT), directory, manifest)


class DroppedMidUpload(SFTPConnector):
    """The real connector, whose TCP connection is cut once 1 MiB of the big file has gone out."""

    def upload(self, local_path, remote_path, *, progress=None):
        def cut(sent: int) -> None:
            if Path(local_path).name == "involvements.parquet" and sent >= 1 << 20:
                self._client.get_transport().sock.shutdown(socket.SHUT_RDWR)

        return super().upload(local_path, remote_path, progress=cut)


def test_push_interrupted_leaves_nothing_complete_looking_and_the_next_run_completes(tmp_path, sftp_server,
                                                                                        settings_for):
    delivery = _delivery(tmp_path)
    inbox = sftp_server.root / "inbox" / "samverkan" / NIGHT
    with pytest.raises((OSError, EOFError, paramiko.SSHException)):
        with DroppedMidUpload(settings_for(sftp_server)) as connector:
            push(delivery, connector, "/inbox/samverkan")
    present = set(os.listdir(inbox))
    assert MANIFEST not in present and "involvements.parquet" not in present
    assert present <= {"incidents.parquet", ".involvements.parquet.part"}

    with SFTPConnector(settings_for(sftp_server)) as connector:
        where = push(delivery, connector, "/inbox/samverkan")
    assert where.endswith(f"/inbox/samverkan/{NIGHT}")
    assert sorted(os.listdir(inbox)) == sorted(["incidents.parquet", "involvements.parquet", MANIFEST])
    for f in delivery.manifest["files"]:
        assert hashlib.sha256((inbox / f["name"]).read_bytes()).hexdigest() == f["sha256"]
    assert (inbox / MANIFEST).read_bytes() == (delivery.directory / MANIFEST).read_bytes()


class ServerAltersAfterRename(SFTPConnector):
    """The real connector against a server whose disk changes the file once it is in place
    (what a full quota, a virus scanner or a broken mount would do): one byte more (a size
    mismatch), or one byte flipped (same size, another SHA-256)."""

    def __init__(self, settings, server_root: Path, fault: str) -> None:
        super().__init__(settings)
        self.server_root, self.fault = server_root, fault

    def _rename_into_place(self, temp: str, path: str) -> None:
        super()._rename_into_place(temp, path)
        if path.endswith("involvements.parquet"):
            on_disk = self.server_root / path.lstrip("/").removeprefix(self.settings.path_prefix.strip("/")).lstrip("/")
            data = on_disk.read_bytes()
            on_disk.write_bytes(data + b"\0" if self.fault == "size" else data[:-1] + bytes([data[-1] ^ 1]))


@pytest.mark.parametrize("fault", ["size", "sha256"])
def test_push_read_back_refuses_a_file_the_server_altered(tmp_path, sftp_server, settings_for, fault):
    from samverkan.connectors.sftp import FileChangedError

    delivery = _delivery(tmp_path)
    inbox = sftp_server.root / "inbox" / "samverkan" / NIGHT
    with pytest.raises(FileChangedError, match="involvements.parquet: sent 6000000 bytes but the server holds"):
        with ServerAltersAfterRename(settings_for(sftp_server), sftp_server.root, fault) as connector:
            push(delivery, connector, "/inbox/samverkan")
    assert sorted(os.listdir(inbox)) == ["incidents.parquet"]  # the altered file removed, no manifest

    with SFTPConnector(settings_for(sftp_server)) as connector:
        push(delivery, connector, "/inbox/samverkan")
    for f in delivery.manifest["files"]:
        assert hashlib.sha256((inbox / f["name"]).read_bytes()).hexdigest() == f["sha256"]
    assert MANIFEST in os.listdir(inbox)
