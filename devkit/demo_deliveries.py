"""The demo's deliveries: every recipient's delivery DAG, one pull over SFTP, and what landed where.

Push recipients (police, the bus operator) get their deliveries on their own OpenSSH servers,
which the embedded hub starts with pinned host keys (``EmbeddedHub.start_inboxes``); the delivery
DAGs push there through Airflow connections, as in production. Pull recipients (the municipality,
the security company) log in to the hub's pull service with their own key, pin its host key and
download their outbox, as a recipient would. Every delivery that landed is then checked the way
a recipient checks it (``samverkan dpo verify-delivery``: signature, SHA-256 of every file,
receipt), and the disclosure register is the list of what was handed over.
"""

from __future__ import annotations

import stat
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from devkit.embedded import EmbeddedHub
from samverkan.connectors.sftp import SFTPConnector, SFTPSettings
from samverkan.connectors.sshd import SFTPServerError, generate_keypair
from samverkan.sharing.agreements import Agreement, load_agreements
from samverkan.sharing.attestation import verify_delivery
from samverkan.sharing.delivery import register_for
from samverkan.sharing.pull_service import PullAccount, start_pull_service


@dataclass
class Landed:
    """One registered delivery as its recipient holds it."""

    recipient: str
    mode: str
    night: str
    files: list[str]
    where: Path
    problems: list[str]

    def line(self) -> str:
        status = "verified" if not self.problems else "NOT VERIFIED: " + "; ".join(self.problems)
        return (
            f"  {self.recipient:<13} {self.mode:<5} {self.night}  {len(self.files):>3} files  {self.where}  [{status}]"
        )


def dag_test_failed(done: subprocess.CompletedProcess, dag_id: str, night: date) -> bool:
    """Say how one ``airflow dags test`` went, in the demo's words; a failure's output goes to
    stderr, so the demo can carry on with the other DAGs and count what failed."""
    status = "ok" if done.returncode == 0 else f"FAILED (exit {done.returncode})"
    print(f"airflow dags test {dag_id} for night {night}: {status}")
    if done.returncode != 0:
        print(done.stdout[-4000:], file=sys.stderr)
    return done.returncode != 0


def run_deliveries(hub: EmbeddedHub, night: date) -> int:
    """Each recipient's delivery DAG for ``night`` (and its look-back window); returns failures."""
    return sum(
        dag_test_failed(hub.run_delivery(recipient, night, check=False), f"samverkan_deliver_{recipient}", night)
        for recipient in load_agreements()
    )


def received(hub: EmbeddedHub, agreement: Agreement) -> Path:
    """Where a recipient's copies are: its own server's inbox, or the folder it pulled into."""
    if agreement.mode == "push":
        return hub.inbox(agreement.id)
    return hub.recipients_root / agreement.id


def recipient_key(hub: EmbeddedHub, recipient: str) -> tuple[Path, str]:
    """The recipient's own login key (generated once; its public half goes to the pull service)."""
    private = hub.root / "recipient-keys" / f"{recipient}_ed25519"
    if private.exists():
        return private, Path(f"{private}.pub").read_text(encoding="ascii").strip()
    return generate_keypair(private)


def pull_outboxes(hub: EmbeddedHub) -> list[str]:
    """Start the pull service and let each pull recipient download its whole outbox (host key
    pinned); returns the recipients that pulled (none without root: the service chroots)."""
    pulls = [a for a in load_agreements().values() if a.mode == "pull"]
    keys = {a.id: recipient_key(hub, a.id) for a in pulls}
    accounts = [PullAccount(a.delivery["account"], a.id, keys[a.id][1]) for a in pulls]
    try:
        service = start_pull_service(hub.data.outbox, accounts, hub.root / "sshd" / "pull-service")
    except SFTPServerError as e:
        print(f"pull service not started ({e}): the pull recipients' outboxes stay in {hub.data.outbox}")
        return []
    with service:
        print(f"pull service: 127.0.0.1:{service.port} (accounts {', '.join(a.account for a in accounts)})")
        for a in pulls:
            settings = SFTPSettings(
                host=service.host,
                port=service.port,
                username=a.delivery["account"],
                key_file=str(keys[a.id][0]),
                host_key=service.host_key_line,
            )
            with SFTPConnector(settings) as sftp:
                count = _download_all(sftp, received(hub, a))
            print(f"  {a.id} ({a.delivery['account']}) pulled {count} files into {received(hub, a)}")
    return [a.id for a in pulls]


def _download_all(sftp: SFTPConnector, target: Path) -> int:
    """Every delivery folder in the account's ``/`` (its outbox), file by file."""
    count = 0
    for entry in sftp.sftp.listdir_attr("/"):
        if stat.S_ISDIR(entry.st_mode or 0):
            for f in sftp.list(f"/{entry.filename}"):
                sftp.download(f"/{entry.filename}/{f.name}", target / entry.filename / f.name)
                count += 1
    return count


def landed(hub: EmbeddedHub, pulled: list[str]) -> list[Landed]:
    """Every delivery in the register, checked where its recipient holds it (a pull recipient
    that did not pull is checked in its outbox)."""
    agreements = load_agreements()
    signers = hub.keys / "allowed_signers"
    out = []
    for event in register_for(hub.data).events():
        if event["event"] != "delivery":
            continue
        agreement = agreements[event["recipient"]]
        base = received(hub, agreement)
        if agreement.mode == "pull" and agreement.id not in pulled:
            base = hub.data.outbox / agreement.id
        where = base / event["delivery_id"]
        files = sorted(p.name for p in where.iterdir()) if where.is_dir() else []
        problems = verify_delivery(where, signers) if files else [f"nothing at {where}"]
        out.append(Landed(agreement.id, event["mode"], event["delivery_id"], files, where, problems))
    return sorted(out, key=lambda d: (d.recipient, d.night))


def deliver_and_fetch(hub: EmbeddedHub, night: date) -> int:
    """The demo's delivery step; prints where everything is and returns the number of failures."""
    failures = run_deliveries(hub, night)
    pulled = pull_outboxes(hub)
    deliveries = landed(hub, pulled)
    print(f"\ndeliveries ({len(deliveries)}; recipient, method, night, files, where it landed):")
    for d in deliveries:
        print(d.line())
    for recipient in sorted({d.recipient for d in deliveries}):
        names = sorted({n for d in deliveries if d.recipient == recipient for n in d.files})
        print(f"  {recipient} holds per night: {', '.join(names)}")
    for recipient, server in hub.inboxes.items():
        print(f"{recipient}'s own SFTP server (push inbox): 127.0.0.1:{server.port}, files in {hub.inbox(recipient)}")
    register = hub.data.register
    print(f"disclosure register (signed, hash-chained events): {register}")
    print(
        f'  read it: .venv/bin/python -c "from samverkan.sharing.register import Register; '
        f"print(Register('{register}').connect().sql('SELECT seq, recipient, delivery_id, mode, destination "
        f"FROM disclosures'))\""
    )
    print(
        f"a recipient's check of one delivery: samverkan dpo verify-delivery <folder> "
        f"--allowed-signers {hub.keys / 'allowed_signers'}"
    )
    return failures + sum(1 for d in deliveries if d.problems) + (0 if deliveries else 1)
