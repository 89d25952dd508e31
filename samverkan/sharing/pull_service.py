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

from samverkan.connectors.sshd import (
    CHROOT_ALIASES,
    HOST,
    PRIVSEP_DIR,
    START_TIMEOUT,
    SFTPServerError,
    generate_keypair,
    launch_sshd,
    public_key_line,
    sshd_available,
    stop_process,
)

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
    subprocess.run(
        [
            useradd,
            "--system",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            NOLOGIN,
            "--password",
            "*",
            "--comment",
            "samverkan recipient (sftp only)",
            name,
        ],
        check=True,
        capture_output=True,
    )
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

    def __enter__(self) -> PullService:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _prepare_outbox(directory: Path) -> None:
    """sshd's chroot rule for the outbox itself: root-owned, writable by root only."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chown(directory, 0, 0)
    directory.chmod(0o755)


def start_pull_service(
    outbox_root: Path,
    accounts: list[PullAccount],
    workdir: Path,
    *,
    port: int | None = None,
    timeout: float = START_TIMEOUT,
    listen: str = HOST,
) -> PullService:
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
        process, chosen = launch_sshd(
            workdir, users, chroots / "%u", port, timeout, keys_file=str(keys_dir / "%u"), listen=listen
        )
    except BaseException:
        shutil.rmtree(alias_dir, ignore_errors=True)
        for name in created:
            remove_system_account(name)
        raise
    return PullService(
        port=chosen,
        host_key_line=public_key_line(workdir / "ssh_host_ed25519_key.pub"),
        workdir=workdir,
        process=process,
        alias_dir=alias_dir,
        created_accounts=created,
    )


# --- the pull service as its own container (docker-compose.yml, pull-service) ------------------
#
# In the compose stack the outboxes are written by the Airflow workers, which run as the airflow
# user: the recipients' folders cannot be root-owned there, as sshd's chroot requires. The
# container therefore serves root-owned copies: ``mirror`` keeps one copy per recipient of what
# its outbox holds (the outbox volume is mounted read-only, so the service can change nothing
# the hub wrote, and the rest of the data root is not mounted at all). A delivery appears in the
# copy whole (copied aside, then renamed in), is replaced whole when the hub rebuilt it, and
# goes when retention removed it from the outbox.

MIRROR_STAGING = ".incoming"


def _signature(path: Path) -> list[tuple[str, int, int]]:
    """What a delivery holds (names, sizes, modification times): a changed one is copied again."""
    if path.is_file():
        st = path.stat()
        return [("", st.st_size, st.st_mtime_ns)]
    return sorted(
        (str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns) for p in path.rglob("*") if p.is_file()
    )


def _copy_root_owned(source: Path, target: Path) -> None:
    """A read-only, root-owned copy (0755 folders, 0644 files) of a delivery (folder or file)."""
    if source.is_file():
        shutil.copy2(source, target)
    else:
        shutil.copytree(source, target)
    for path in [target, *(target.rglob("*") if target.is_dir() else [])]:
        os.chown(path, 0, 0, follow_symlinks=False)
        path.chmod(0o755 if path.is_dir() else 0o644)


def mirror(outbox_root: Path, mirror_root: Path, recipients: list[str]) -> dict[str, int]:
    """Bring ``mirror_root/<recipient>`` in line with ``outbox_root/<recipient>``; returns how many
    entries were copied or removed per recipient. Hidden entries (staging) are never served."""
    staging = mirror_root / MIRROR_STAGING
    staging.mkdir(parents=True, exist_ok=True, mode=0o700)
    changes: dict[str, int] = {}
    for recipient in recipients:
        source, target = outbox_root / recipient, mirror_root / recipient
        _prepare_outbox(target)
        wanted = {p.name: p for p in source.iterdir() if not p.name.startswith(".")} if source.is_dir() else {}
        changed = 0
        for name, path in sorted(wanted.items()):
            current = target / name
            if current.exists() and _signature(current) == _signature(path):
                continue
            fresh = Path(tempfile.mkdtemp(dir=staging)) / name
            _copy_root_owned(path, fresh)
            if current.exists():
                old = Path(tempfile.mkdtemp(dir=staging)) / name
                current.rename(old)
                fresh.rename(current)
                shutil.rmtree(old.parent)
            else:
                fresh.rename(current)
            shutil.rmtree(fresh.parent)
            changed += 1
        for current in target.iterdir():
            if current.name not in wanted:
                shutil.rmtree(current) if current.is_dir() else current.unlink()
                changed += 1
        changes[recipient] = changed
    return changes


def pull_accounts(keys_dir: Path) -> list[PullAccount]:
    """One account per agreement delivered by pull, with the recipient's public key from
    ``keys_dir/<recipient>.pub``."""
    from samverkan.sharing.agreements import load_agreements

    return [
        PullAccount(a.delivery["account"], a.id, (keys_dir / f"{a.id}.pub").read_text(encoding="ascii"))
        for a in sorted(load_agreements().values(), key=lambda a: a.id)
        if a.mode == "pull"
    ]


def _stop_on_signal(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def serve(
    outbox_root: Path,
    mirror_root: Path,
    keys_dir: Path,
    host_key: Path,
    workdir: Path,
    *,
    port: int,
    listen: str,
    interval: float,
) -> int:
    """Run the service until sshd ends or a signal arrives, refreshing the copies every ``interval`` s."""
    import signal
    import time

    accounts = pull_accounts(keys_dir)
    recipients = [a.recipient for a in accounts]
    workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    shutil.copyfile(host_key, workdir / "ssh_host_ed25519_key")
    (workdir / "ssh_host_ed25519_key").chmod(0o600)
    (workdir / "ssh_host_ed25519_key.pub").write_text(public_key_line(Path(f"{host_key}.pub")) + "\n")
    mirror(outbox_root, mirror_root, recipients)
    service = start_pull_service(mirror_root, accounts, workdir, port=port, listen=listen)
    print(f"pull service on {listen}:{service.port} for {', '.join(a.account for a in accounts)}", flush=True)
    signal.signal(signal.SIGTERM, _stop_on_signal)  # `docker stop`: end sshd and tidy up as on Ctrl-C
    try:
        while service.process.poll() is None:
            changes = {r: n for r, n in mirror(outbox_root, mirror_root, recipients).items() if n}
            if changes:
                print(f"pull service: copies refreshed {changes}", flush=True)
            time.sleep(interval)
        print(f"pull service: sshd exited with {service.process.returncode}", flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        service.stop()


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m samverkan.sharing.pull_service",
        description="Serve every pull recipient's outbox over SFTP (as root).",
    )
    parser.add_argument("--outbox", type=Path, required=True, help="the outboxes, as the hub writes them")
    parser.add_argument("--mirror", type=Path, required=True, help="where the root-owned copies are kept")
    parser.add_argument("--keys", type=Path, required=True, help="folder with <recipient>.pub per pull recipient")
    parser.add_argument("--host-key", type=Path, required=True, help="private host key (its .pub beside it)")
    parser.add_argument("--workdir", type=Path, default=Path("/run/samverkan-pull"))
    parser.add_argument("--port", type=int, default=22)
    parser.add_argument("--listen", default=HOST)
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between refreshes of the copies")
    args = parser.parse_args(argv)
    return serve(
        args.outbox,
        args.mirror,
        args.keys,
        args.host_key,
        args.workdir,
        port=args.port,
        listen=args.listen,
        interval=args.interval,
    )


if __name__ == "__main__":
    raise SystemExit(main())
