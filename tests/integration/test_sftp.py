"""The SFTP connector against real sshd: listing, exact downloads, pinned host keys, failures."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
import subprocess
from pathlib import Path

import pytest

from samverkan.connectors.sftp import (
    FileChangedError,
    HostKeyError,
    SFTPConnectionError,
    SFTPConnector,
    SFTPSettings,
    host_key_fingerprint,
)
from samverkan.connectors.sshd import SFTPServerError, free_port, generate_keypair

pytestmark = pytest.mark.integration

MTIME = 1_795_000_000


def put(server, relative: str, data: bytes, mtime: int | None = MTIME) -> Path:
    path = server.root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# --- listing and stat ---------------------------------------------------------------------


def test_list_gives_regular_files_with_size_and_mtime(sftp_server, settings_for):
    put(sftp_server, "outbound/trygghet/polisen_handelser_20261120.csv", b"a;b\r\n1;2\r\n")
    put(sftp_server, "outbound/trygghet/polisen_handelser_20261120.csv.ok", b"", mtime=MTIME + 5)
    (sftp_server.root / "outbound/trygghet/archive").mkdir()
    (sftp_server.root / "outbound/trygghet/link.csv").symlink_to("polisen_handelser_20261120.csv")

    with SFTPConnector(settings_for(sftp_server)) as sftp:
        listing = sftp.list("/outbound/trygghet")

    assert [(f.name, f.size, f.mtime) for f in listing] == [
        ("polisen_handelser_20261120.csv", 10, MTIME),
        ("polisen_handelser_20261120.csv.ok", 0, MTIME + 5),
    ]


def test_list_of_missing_directory_is_file_not_found(sftp_server, settings_for):
    with SFTPConnector(settings_for(sftp_server)) as sftp, pytest.raises(FileNotFoundError):
        sftp.list("/no/such/dir")


def test_stat(sftp_server, settings_for):
    put(sftp_server, "rapporter/vaktrapport_2026-11-20.csv", b"x" * 1234)
    with SFTPConnector(settings_for(sftp_server)) as sftp:
        remote = sftp.stat("/rapporter/vaktrapport_2026-11-20.csv")
    assert (remote.name, remote.size, remote.mtime) == ("vaktrapport_2026-11-20.csv", 1234, MTIME)


def test_server_root_is_the_remote_root(sftp_server, settings_for):
    """Chrooted (as root) or prefixed (otherwise), the contract's absolute paths mean the same."""
    put(sftp_server, "top.txt", b"1")
    with SFTPConnector(settings_for(sftp_server)) as sftp:
        assert [f.name for f in sftp.list("/")] == ["top.txt"]


def test_three_servers_side_by_side(start_server, settings_for):
    servers = [start_server() for _ in range(3)]
    for i, server in enumerate(servers):
        put(server, f"export/file{i}.txt", b"x" * i)
    assert len({s.port for s in servers}) == 3
    assert len({s.host_key_line for s in servers}) == 3
    for i, server in enumerate(servers):
        with SFTPConnector(settings_for(server)) as sftp:
            assert [(f.name, f.size) for f in sftp.list("/export")] == [(f"file{i}.txt", i)]


# --- downloads ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 32768, 100_003, 20 * 1024 * 1024], ids=["empty", "1B", "32KiB", "100kB", "20MiB"])
def test_download_is_byte_identical_with_its_sha256(sftp_server, settings_for, tmp_path, size):
    data = os.urandom(size)
    put(sftp_server, "export/incidents/incidents-2026-11-20.jsonl.gz", data)
    target = tmp_path / "landing" / "transit" / "2026-11-20" / "incidents-2026-11-20.jsonl.gz"

    with SFTPConnector(settings_for(sftp_server)) as sftp:
        download = sftp.download("/export/incidents/incidents-2026-11-20.jsonl.gz", target)

    assert target.read_bytes() == data
    assert (download.sha256, download.size, download.mtime) == (hashlib.sha256(data).hexdigest(), size, MTIME)
    assert leftovers(target.parent) == [target.name]


def test_download_hands_what_it_wrote_to_writeback_in_order(sftp_server, settings_for, tmp_path, monkeypatch):
    """Writeback is started for consecutive ranges as the file is written, and the file is still
    byte-identical (the closing fsync is what makes it durable; this only gives it a head start)."""
    import samverkan.connectors.sftp as connector

    ranges: list[tuple[int, int]] = []
    monkeypatch.setattr(connector, "WRITEBACK_BYTES", 1 << 20)
    monkeypatch.setattr(connector, "start_writeback", lambda fd, offset, length: ranges.append((offset, length)))
    data = os.urandom(5 * (1 << 20) + 12345)
    put(sftp_server, "export/big.bin", data)
    target = tmp_path / "big.bin"
    with SFTPConnector(settings_for(sftp_server)) as sftp:
        sftp.download("/export/big.bin", target)
    assert target.read_bytes() == data
    assert ranges and all(1 << 20 <= length < (1 << 20) + connector.READ_REQUEST_BYTES for _, length in ranges)
    assert [offset for offset, _ in ranges] == [sum(length for _, length in ranges[:i]) for i in range(len(ranges))]
    assert len(data) - sum(length for _, length in ranges) < 1 << 20  # the rest is the closing fsync's


def test_the_connection_sends_small_messages_at_once(sftp_server, settings_for):
    """Nagle's algorithm is off: with it, every small SSH message sent behind an unacknowledged one
    waited out the server's delayed ACK (40 ms per round on Linux)."""
    with SFTPConnector(settings_for(sftp_server)) as sftp:
        sock = sftp.sftp.get_channel().get_transport().sock
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_download_lands_privately(sftp_server, settings_for, tmp_path):
    put(sftp_server, "export/a.csv", b"personal data")
    target = tmp_path / "landing" / "feed" / "night" / "a.csv"
    with SFTPConnector(settings_for(sftp_server)) as sftp:
        sftp.download("/export/a.csv", target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    for directory in (tmp_path / "landing", tmp_path / "landing/feed", target.parent):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_download_replaces_an_earlier_copy(sftp_server, settings_for, tmp_path):
    put(sftp_server, "export/a.csv", b"corrected")
    target = tmp_path / "a.csv"
    target.write_bytes(b"first version")
    with SFTPConnector(settings_for(sftp_server)) as sftp:
        sftp.download("/export/a.csv", target)
    assert target.read_bytes() == b"corrected"
    assert leftovers(tmp_path) == ["a.csv"]


def test_missing_remote_file_leaves_nothing(sftp_server, settings_for, tmp_path):
    put(sftp_server, "export/other.csv", b"x")
    with SFTPConnector(settings_for(sftp_server)) as sftp, pytest.raises(FileNotFoundError):
        sftp.download("/export/missing.csv", tmp_path / "missing.csv")
    assert leftovers(tmp_path) == []


def _grow(path: Path) -> None:
    with path.open("ab") as f:
        f.write(b"one more row\n")


def _touch(path: Path) -> None:
    os.utime(path, (MTIME + 60, MTIME + 60))


@pytest.mark.parametrize("when", ["before_read", "after_read"])
@pytest.mark.parametrize("change", [_grow, _touch], ids=["appended", "mtime_only"])
def test_file_changed_during_transfer_raises_and_leaves_nothing(sftp_server, settings_for, tmp_path, monkeypatch,
                                                                 change, when):
    """The partner re-sends or keeps writing while we read: the real file on the server changes
    between our first stat and the end of the transfer."""
    remote = put(sftp_server, "rapporter/vaktrapport_2026-11-20.csv", os.urandom(300_000))
    landing = tmp_path / "landing"
    connector = SFTPConnector(settings_for(sftp_server))
    original_copy = connector._copy

    def copy_while_partner_writes(*args):
        if when == "before_read":
            change(remote)
        result = original_copy(*args)
        if when == "after_read":
            change(remote)
        return result

    monkeypatch.setattr(connector, "_copy", copy_while_partner_writes)
    with connector, pytest.raises(FileChangedError, match="changed during the transfer"):
        connector.download("/rapporter/vaktrapport_2026-11-20.csv", landing / "vaktrapport_2026-11-20.csv")
    assert leftovers(landing) == []

    with SFTPConnector(settings_for(sftp_server)) as sftp:  # the next run gets the settled file
        download = sftp.download("/rapporter/vaktrapport_2026-11-20.csv", landing / "vaktrapport_2026-11-20.csv")
    assert download.sha256 == hashlib.sha256(remote.read_bytes()).hexdigest()


# --- host keys ----------------------------------------------------------------------------


def test_unknown_host_key_is_refused(sftp_server, settings_for, tmp_path):
    _, other_key = generate_keypair(tmp_path / "some_other_host_key")
    settings = settings_for(sftp_server, host_key=other_key)

    with pytest.raises(HostKeyError) as raised:
        SFTPConnector(settings).connect()

    message = str(raised.value)
    assert f"127.0.0.1:{sftp_server.port}" in message
    assert host_key_fingerprint(other_key) in message  # what we expected
    assert host_key_fingerprint(sftp_server.host_key_line) in message  # what was offered
    assert isinstance(raised.value, ConnectionError)


def test_host_key_of_another_type_is_refused(sftp_server, settings_for, tmp_path):
    _, rsa_key = generate_keypair(tmp_path / "rsa_host_key", kind="rsa")
    with pytest.raises(HostKeyError, match="ssh-rsa SHA256:.*ssh-ed25519 SHA256:"):
        SFTPConnector(settings_for(sftp_server, host_key=rsa_key)).connect()


def test_changed_host_key_is_refused(start_server, settings_for):
    """Same address, new host key: what a man-in-the-middle (or a reinstalled server) looks like."""
    first = start_server()
    put(first, "export/a.csv", b"x")
    pinned = settings_for(first)
    with SFTPConnector(pinned) as sftp:
        assert [f.name for f in sftp.list("/export")] == ["a.csv"]
    first.stop()

    second = start_server(first.root, port=first.port)  # same root and port, freshly generated host key
    assert second.host_key_line != first.host_key_line

    with pytest.raises(HostKeyError, match=f"127.0.0.1:{first.port}: host key mismatch"):
        SFTPConnector(pinned).connect()
    with SFTPConnector(settings_for(second)) as sftp:  # once the new key is confirmed and pinned
        assert [f.name for f in sftp.list("/export")] == ["a.csv"]


def test_host_key_is_required():
    with pytest.raises(ValueError, match="no host_key pinned"):
        SFTPSettings(host="127.0.0.1", port=2222, username="hub", key_file="/k", host_key="")


def test_no_known_hosts_file_is_consulted(sftp_server, settings_for, tmp_path, monkeypatch):
    """A user's known_hosts naming the server's real key must not rescue a wrong pin."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh/known_hosts").write_text(f"[127.0.0.1]:{sftp_server.port} {sftp_server.host_key_line}\n")
    monkeypatch.setenv("HOME", str(home))
    _, other_key = generate_keypair(tmp_path / "other")
    with pytest.raises(HostKeyError):
        SFTPConnector(settings_for(sftp_server, host_key=other_key)).connect()


# --- settings from Airflow ----------------------------------------------------------------


def test_settings_from_airflow_connection_env_var(sftp_server, client_key, monkeypatch):
    put(sftp_server, "outbound/trygghet/a.csv", b"x")
    conn = json.loads(sftp_server.airflow_conn_json(client_key[0]))
    conn["extra"].update(prefetch_requests="32", timeout=12)
    monkeypatch.setenv("AIRFLOW_CONN_SFTP_TEST", json.dumps(conn))

    settings = SFTPSettings.from_airflow_connection("sftp_test")

    assert (settings.host, settings.port, settings.username) == ("127.0.0.1", sftp_server.port, sftp_server.username)
    assert (settings.key_file, settings.host_key, settings.path_prefix) == (
        str(client_key[0]), sftp_server.host_key_line, sftp_server.path_prefix)
    assert (settings.prefetch_requests, settings.timeout, settings.passphrase) == (32, 12.0, None)
    with SFTPConnector(settings) as sftp:
        assert [f.name for f in sftp.list("/outbound/trygghet")] == ["a.csv"]


def test_airflow_connection_without_host_key_is_refused(monkeypatch):
    conn = {"conn_type": "sftp", "host": "127.0.0.1", "port": 2222, "login": "hub", "extra": {"key_file": "/k"}}
    monkeypatch.setenv("AIRFLOW_CONN_SFTP_NOPIN", json.dumps(conn))
    with pytest.raises(ValueError, match="'sftp_nopin' has no host_key"):
        SFTPSettings.from_airflow_connection("sftp_nopin")


def test_private_key_text_with_passphrase_from_the_connection(start_server, tmp_path, monkeypatch):
    private = tmp_path / "hub_encrypted"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "correct horse", "-f", str(private)], check=True)
    server = start_server(authorized_key=(tmp_path / "hub_encrypted.pub").read_text())
    put(server, "x/a.csv", b"x")
    conn = json.loads(server.airflow_conn_json(private))
    del conn["extra"]["key_file"]
    conn["extra"]["private_key"] = private.read_text()
    conn["password"] = "correct horse"
    monkeypatch.setenv("AIRFLOW_CONN_SFTP_PEM", json.dumps(conn))

    settings = SFTPSettings.from_airflow_connection("sftp_pem")

    with SFTPConnector(settings) as sftp:
        assert [f.name for f in sftp.list("/x")] == ["a.csv"]
    wrong = SFTPSettings(**{**_fields(settings), "passphrase": "not-the-passphrase"})
    with pytest.raises(SFTPConnectionError, match="client key from private_key extra could not be loaded") as raised:
        SFTPConnector(wrong).connect()
    assert "BEGIN" not in str(raised.value) and "not-the-passphrase" not in str(raised.value)


def _fields(settings: SFTPSettings) -> dict:
    return {name: getattr(settings, name) for name in SFTPSettings.__dataclass_fields__}


def test_repr_hides_secrets(tmp_path):
    private, _ = generate_keypair(tmp_path / "k")
    _, host = generate_keypair(tmp_path / "h")
    key_text = private.read_text()
    settings = SFTPSettings(host="sftp.example.se", port=2222, username="hub", private_key=key_text,
                            passphrase="hemligt-lösenord", host_key=host)
    for text in (repr(settings), str(settings), repr(SFTPConnector(settings))):
        assert "hemligt" not in text
        assert "PRIVATE KEY" not in text and key_text.splitlines()[1][:20] not in text
    assert "private_key=<hidden>" in repr(settings)
    assert host_key_fingerprint(host) in repr(settings)


# --- connection failures ------------------------------------------------------------------


def test_connection_refused(sftp_server, settings_for):
    port = free_port()
    with pytest.raises(SFTPConnectionError, match=f"127.0.0.1:{port}: connection refused"):
        SFTPConnector(settings_for(sftp_server, port=port)).connect()


def test_server_that_never_answers_times_out(sftp_server, settings_for):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        with pytest.raises(SFTPConnectionError, match=f"127.0.0.1:{port}: no SSH handshake within 1 s"):
            SFTPConnector(settings_for(sftp_server, port=port, timeout=1)).connect()


def test_key_not_authorized(sftp_server, settings_for, tmp_path):
    stranger, _ = generate_keypair(tmp_path / "stranger")
    with pytest.raises(SFTPConnectionError, match="authentication failed for user") as raised:
        SFTPConnector(settings_for(sftp_server, key_file=str(stranger))).connect()
    assert f"127.0.0.1:{sftp_server.port}" in str(raised.value)
    assert stranger.read_text().splitlines()[1][:20] not in str(raised.value)


def test_missing_key_file(sftp_server, settings_for, tmp_path):
    with pytest.raises(SFTPConnectionError, match="key_file .* does not exist"):
        SFTPConnector(settings_for(sftp_server, key_file=str(tmp_path / "nope"))).connect()


# --- the embedded server itself -----------------------------------------------------------


def test_server_that_cannot_start_reports_sshds_own_words(start_server):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(SFTPServerError, match="Address already in use"):
            start_server(port=taken.getsockname()[1])


def test_write_bytes_creates_the_directory_and_leaves_the_whole_file_only(sftp_server, settings_for):
    data = b'{"receipt": 1}\n' * 1000
    with SFTPConnector(settings_for(sftp_server)) as sftp:
        sent = sftp.write_bytes("receipts/2026/r.json", data)
        again = sftp.write_bytes("receipts/2026/r.json", b"replaced\n")
    folder = sftp_server.root / "receipts" / "2026"
    assert sorted(p.name for p in folder.iterdir()) == ["r.json"]  # no .part left behind
    assert (folder / "r.json").read_bytes() == b"replaced\n"
    assert sent.sha256 == hashlib.sha256(data).hexdigest() and sent.size == len(data)
    assert again.sha256 == hashlib.sha256(b"replaced\n").hexdigest()
