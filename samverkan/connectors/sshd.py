"""Real OpenSSH SFTP servers on 127.0.0.1: the recipients' pull service, and the partner
servers of the tests, the demo and the benchmark.

Each partner runs OpenSSH's sshd with ``internal-sftp``, so the hub is tested against exactly
that rather than a Python imitation: the same host-key exchange, the same SFTP limits, the same
error messages. Each server is an ordinary sshd with its own config, host key, authorized key,
port and log, so several can run side by side.

Run as root, the server chroots the login into ``root``, so remote paths look like the
partner's (``/outbound/trygghet/...``). Run as anyone else sshd cannot chroot, and clients
prefix remote paths with ``path_prefix`` (the connection extra of the same name) instead.
"""

from __future__ import annotations

import atexit
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

SSHD = Path("/usr/sbin/sshd")
HOST = "127.0.0.1"
START_TIMEOUT = 15.0
PRIVSEP_DIR = Path("/run/sshd")
# sshd only chroots into a path whose every component is root-owned and not group/other
# writable; /tmp (1777) never is, so chroot roots below it are reached through a symlink here.
CHROOT_ALIASES = Path("/run/samverkan-sftp")
PORT_ATTEMPTS = 5


def stop_process(process: subprocess.Popen, grace_seconds: float = 5) -> None:
    """Terminate politely, then kill: a server that ignores SIGTERM must not outlive its test."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class SFTPServerError(RuntimeError):
    """sshd did not come up; the message carries the end of its log."""


def sshd_available() -> bool:
    return SSHD.is_file() and os.access(SSHD, os.X_OK)


def _ssh_keygen() -> str:
    found = shutil.which("ssh-keygen")
    if not found:
        raise SFTPServerError("ssh-keygen not found; install openssh-client")
    return found


def generate_keypair(path: Path, kind: str = "ed25519") -> tuple[Path, str]:
    """A fresh passphrase-less key pair; refuses to overwrite, since that would orphan servers."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} already exists; not overwriting a key")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    subprocess.run(
        [_ssh_keygen(), "-q", "-t", kind, "-N", "", "-C", f"samverkan-{path.name}", "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    return path, public_key_line(Path(f"{path}.pub"))


def public_key_line(pub: Path) -> str:
    """``type base64`` without the comment: the form pinned in the ``host_key`` extra."""
    key_type, data = pub.read_text(encoding="ascii").split()[:2]
    return f"{key_type} {data}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (the one helper for servers the hub, the dev kit
    and the tests start)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _quoted(path: Path | str) -> str:
    text = str(path)
    if any(c in text for c in '"\n\r'):
        raise ValueError(f"path not usable in sshd_config: {text!r}")
    return f'"{text}"'


def _chroot_safe(path: Path) -> bool:
    """Would sshd accept ``path`` as ChrootDirectory (root-owned, no group/other write, all the way up)?"""
    for part in [path, *path.parents]:
        st = part.stat()
        if st.st_uid != 0 or st.st_mode & 0o022:
            return False
    return True


def _prepare_chroot(root: Path, workdir: Path) -> tuple[Path, Path | None]:
    """The ChrootDirectory to configure, and the alias to remove on stop (if one was needed).

    The root itself is made root-owned 0755, as sshd requires. Its parents cannot be changed
    (pytest's and the demo's directories live below /tmp), so when they do not pass sshd's
    check the chroot goes through a symlink in a root-only directory below /run: sshd checks
    and chroots into the path it is given, following the link.
    """
    os.chown(root, 0, 0)
    root.chmod(0o755)
    if _chroot_safe(root):
        return root, None
    CHROOT_ALIASES.mkdir(mode=0o755, exist_ok=True)
    CHROOT_ALIASES.chmod(0o755)
    alias_dir = Path(tempfile.mkdtemp(prefix=f"{workdir.name}-", dir=CHROOT_ALIASES))
    alias = alias_dir / "root"
    alias.symlink_to(root)
    return alias, alias_dir


def _write_config(
    workdir: Path, port: int, username: str, chroot: Path | None, keys_file: str = "authorized_keys", listen: str = HOST
) -> Path:
    """``username`` may list several users (sshd's AllowUsers takes a list); ``keys_file`` and
    ``chroot`` may hold sshd's ``%u`` token, so each user gets its own keys and its own root.
    ``listen``: 127.0.0.1 unless a container must be reached from its network (0.0.0.0)."""
    lines = [
        f"ListenAddress {listen}",
        f"Port {port}",
        f"HostKey {_quoted(workdir / 'ssh_host_ed25519_key')}",
        f"PidFile {_quoted(workdir / 'sshd.pid')}",
        f"AuthorizedKeysFile {_quoted(workdir / keys_file)}",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        # The authorized_keys file sits below /tmp, which StrictModes would reject.
        "StrictModes no",
        f"AllowUsers {username}",
        "AllowTcpForwarding no",
        "AllowAgentForwarding no",
        "X11Forwarding no",
        "PermitTunnel no",
        "PermitTTY no",
        "PrintMotd no",
        "LogLevel VERBOSE",
        "Subsystem sftp internal-sftp",
        "ForceCommand internal-sftp",
    ]
    if chroot is not None:
        lines += ["PermitRootLogin prohibit-password", f"ChrootDirectory {_quoted(chroot)}"]
    config = workdir / "sshd_config"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


class SFTPServer:
    """A running sshd serving ``root`` over SFTP; stop it with ``stop()`` or a ``with`` block."""

    def __init__(
        self,
        *,
        root: Path,
        workdir: Path,
        port: int,
        username: str,
        host_key_line: str,
        path_prefix: str,
        process: subprocess.Popen,
        log_path: Path,
        chroot_alias: Path | None,
    ):
        self.host = HOST
        self.root = root
        self.workdir = workdir
        self.port = port
        self.username = username
        self.host_key_line = host_key_line
        self.path_prefix = path_prefix
        self.process = process
        self.log_path = log_path
        self._chroot_alias = chroot_alias
        atexit.register(self.stop)

    def __repr__(self) -> str:
        return f"SFTPServer({self.username}@{self.host}:{self.port}, root={str(self.root)!r}, pid={self.process.pid})"

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        return _tail(self.log_path, lines=lines)

    def stop(self) -> None:
        stop_process(self.process)
        if self._chroot_alias is not None:
            shutil.rmtree(self._chroot_alias, ignore_errors=True)
            self._chroot_alias = None
        atexit.unregister(self.stop)

    def __enter__(self) -> SFTPServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def airflow_conn(self, private_key_path: Path | str) -> dict[str, Any]:
        return {
            "conn_type": "sftp",
            "host": self.host,
            "port": self.port,
            "login": self.username,
            "extra": {
                "key_file": str(private_key_path),
                "host_key": self.host_key_line,
                "path_prefix": self.path_prefix,
            },
        }

    def airflow_conn_json(self, private_key_path: Path | str) -> str:
        """The value for an ``AIRFLOW_CONN_<ID>`` environment variable (Airflow's JSON form)."""
        return json.dumps(self.airflow_conn(private_key_path))


def _wait_until_serving(process: subprocess.Popen, port: int, log_path: Path, timeout: float) -> None:
    """Ready means sshd sends its SSH banner, not merely that something listens."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SFTPServerError(f"sshd exited with {process.returncode}:\n{_tail(log_path)}")
        try:
            with socket.create_connection((HOST, port), timeout=1) as s:
                if s.recv(64).startswith(b"SSH-") and process.poll() is None:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    process.terminate()
    process.wait()
    raise SFTPServerError(f"sshd on {HOST}:{port} not serving after {timeout:g} s:\n{_tail(log_path)}")


def _tail(path: Path, lines: int = 30, since: int = 0) -> str:
    try:
        with path.open("rb") as f:
            f.seek(since)
            return "\n".join(f.read().decode(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no sshd log)"


def launch_sshd(
    workdir: Path,
    username: str,
    chroot: Path | None,
    port: int | None,
    timeout: float,
    keys_file: str = "authorized_keys",
    listen: str = HOST,
) -> tuple[subprocess.Popen, int]:
    """Start sshd and wait for it; with no fixed port, retry when another process took ours."""
    log_path = workdir / "sshd.log"
    attempt = 1
    while True:
        chosen = port or free_port()
        config = _write_config(workdir, chosen, username, chroot, keys_file, listen)
        with log_path.open("ab") as log:
            log_start = log.tell()
            process = subprocess.Popen(
                [str(SSHD), "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        try:
            _wait_until_serving(process, chosen, log_path, timeout)
            return process, chosen
        except SFTPServerError:
            lost_race = "Address already in use" in _tail(log_path, since=log_start)
            if port is not None or attempt >= PORT_ATTEMPTS or not lost_race:
                raise
        attempt += 1


def start_sftp_server(
    root: Path, authorized_public_key: str, workdir: Path, *, port: int | None = None, timeout: float = START_TIMEOUT
) -> SFTPServer:
    """Start sshd serving ``root`` to whoever holds the private half of ``authorized_public_key``.

    ``workdir`` receives the config, the host key (generated on first use, so a fresh workdir
    means a fresh host key), the pid file and sshd.log. Pass ``port`` to come back on a known
    port (e.g. to present a changed host key there); otherwise a free one is picked.
    """
    if not sshd_available():
        raise SFTPServerError(f"{SSHD} not found; install openssh-server")
    root, workdir = Path(root).resolve(), Path(workdir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = workdir / "ssh_host_ed25519_key"
    if not key.exists():
        generate_keypair(key)
    (workdir / "authorized_keys").write_text(authorized_public_key.strip() + "\n", encoding="ascii")
    username = pwd.getpwuid(os.getuid()).pw_name
    as_root = os.geteuid() == 0
    chroot, alias = (None, None)
    if as_root:
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation chroot
        chroot, alias = _prepare_chroot(root, workdir)
    try:
        process, chosen = launch_sshd(workdir, username, chroot, port, timeout)
    except BaseException:
        if alias is not None:
            shutil.rmtree(alias, ignore_errors=True)
        raise
    return SFTPServer(
        root=root,
        workdir=workdir,
        port=chosen,
        username=username,
        host_key_line=public_key_line(Path(f"{key}.pub")),
        path_prefix="" if as_root else str(root),
        process=process,
        log_path=workdir / "sshd.log",
        chroot_alias=alias,
    )
