"""The pull service: recipients fetch their deliveries from the hub over SFTP, each locked into
its own outbox.

It is OpenSSH's sshd with ``internal-sftp``, one system account per recipient (the agreement's
``delivery.account``), one authorized key per account, and ``ChrootDirectory`` per account, so
after login a recipient's ``/`` *is* its outbox: other recipients' outboxes are not hidden by
permissions that a mistake could loosen, they do not exist in its view of the filesystem.
Everything is read-only for the recipient (root owns the files, 0644/0755); retention, not the
recipient, removes old deliveries.

sshd only chroots into a path whose every component is root-owned and not group/other writable,
and it needs a real account to switch to; so the service runs as root and the accounts are
system accounts without a password or a shell. The chroot goes through a per-service directory
of symlinks below /run (``<alias dir>/<account> → outbox/<recipient>``), which passes sshd's
check even when the data root lives below a world-writable /tmp.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from samverkan.connectors.sshd import (CHROOT_ALIASES, HOST, PRIVSEP_DIR, START_TIMEOUT, SFTPServerError,
                                       launch_sshd, public_key_line, generate_keypair, sshd_available, stop_process)

NOLOGIN = "/usr/sbin/nologin"


@dataclass
class PullAccount:
    account: str
    recipient: str
    public_key: str


def ensure_system_account(name: str) -> bool:
    """A system account (no usable password, no shell, no home) for one recipient; True when it
    had to be created. sshd needs a real account to switch to after the chroot."""
    try:
        pwd.getpwnam(name)
        return False
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    # Password field "*": no password can match, but the account is not "locked" ("!"), which
    # sshd (without PAM) would refuse even for key logins.
    subprocess.run([useradd, "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", NOLOGIN,
                    "--password", "*", "--comment", "samverkan recipient (sftp only)", name],
                   check=True, capture_output=True)
    return True


def remove_system_account(name: str) -> None:
    userdel = shutil.which("userdel") or "/usr/sbin/userdel"
    subprocess.run([userdel, name], check=False, capture_output=True)


@dataclass
class PullService:
    """A running sshd serving every recipient's outbox; ``stop()`` ends it and tidies up."""

    port: int
    host_key_line: str
    workdir: Path
    process: subprocess.Popen
    alias_dir: Path
    created_accounts: list[str] = field(default_factory=list)
    host: str = HOST

    @property
    def log_path(self) -> Path:
        return self.workdir / "sshd.log"

    def stop(self) -> None:
        stop_process(self.process)
        shutil.rmtree(self.alias_dir, ignore_errors=True)
        for name in self.created_accounts:
            remove_system_account(name)
        self.created_accounts = []

    def __enter__(self) -> "PullService":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _prepare_outbox(directory: Path) -> None:
    """sshd's chroot rule for the outbox itself: root-owned, writable by root only."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chown(directory, 0, 0)
    directory.chmod(0o755)


def start_pull_service(outbox_root: Path, accounts: list[PullAccount], workdir: Path, *,
                       port: int | None = None, timeout: float = START_TIMEOUT, listen: str = HOST) -> PullService:
    """Start the service; each account logs in with its own key and sees only its outbox."""
    if not sshd_available():
        raise SFTPServerError("sshd not found; install openssh-server")
    if os.geteuid() != 0:
        raise SFTPServerError("the pull service chroots each recipient, which needs root")
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not (workdir / "ssh_host_ed25519_key").exists():
        generate_keypair(workdir / "ssh_host_ed25519_key")
    PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
    CHROOT_ALIASES.mkdir(mode=0o755, exist_ok=True)
    # sshd reads a user's authorized keys as that user, so they live beside the chroot links in
    # the root-owned, world-readable directory below /run, not in the (private) workdir.
    alias_dir = Path(tempfile.mkdtemp(prefix="pull-", dir=CHROOT_ALIASES))
    chroots, keys_dir = alias_dir / "chroot", alias_dir / "keys"
    for d in (alias_dir, chroots, keys_dir):
        d.mkdir(mode=0o755, exist_ok=True)
        d.chmod(0o755)
    created = []
    try:
        for a in accounts:
            if ensure_system_account(a.account):
                created.append(a.account)
            target = Path(outbox_root).resolve() / a.recipient
            _prepare_outbox(target)
            (chroots / a.account).symlink_to(target)
            (keys_dir / a.account).write_text(a.public_key.strip() + "\n", encoding="ascii")
            (keys_dir / a.account).chmod(0o644)
        users = " ".join(a.account for a in accounts)
        process, chosen = launch_sshd(workdir, users, chroots / "%u", port, timeout,
                                       keys_file=str(keys_dir / "%u"), listen=listen)
    except BaseException:
        shutil.rmtree(alias_dir, ignore_errors=True)
        for name in created:
            remove_system_account(name)
        raise
    return PullService(port=chosen, host_key_line=public_key_line(workdir / "ssh_host_ed25519_key.pub"),
                       workdir=workdir, process=process, alias_dir=alias_dir, created_accounts=created)
