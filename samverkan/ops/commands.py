"""Operational commands: ``python -m samverkan.ops.commands <command>`` (see README, "Operations").

``backfill``     run the feed DAGs for a range of nights, through Airflow's REST API (a running
                 scheduler: the Celery stack, Compose, or ``airflow standalone``)
``rotate-key``   replace the pseudonymisation key (what that does to linkage: see ``rotate_key``)
``new-key``      print a new random key (weak keys are refused where keys are loaded)
``secrets``      create deploy/secrets/ for docker-compose.yml (keys, passwords, env file; keeps what exists)
``add-partner``  write a contract template for a new feed, check it, and generate its GE suite

Re-processing one partner's night is ``python -m samverkan.quality.quarantine reprocess`` (its own module).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import sys
import time as clock
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from samverkan.core import nights
from samverkan.core.fsutil import restrict_umask
from samverkan.core.settings import CONFIG_ROOT

REPO = CONFIG_ROOT
API_URL_ENV = "SAMVERKAN_API_URL"
API_USER_ENV = "SAMVERKAN_API_USER"
API_PASSWORD_FILE_ENV = "SAMVERKAN_API_PASSWORD_FILE"
FEED_ID = re.compile(r"^[a-z][a-z0-9_]{1,30}$")


# --- backfill ----------------------------------------------------------------------------------


def _password(args: argparse.Namespace) -> str:
    path = args.password_file or os.environ.get(API_PASSWORD_FILE_ENV)
    if not path:
        raise SystemExit(
            f"give --password-file (or {API_PASSWORD_FILE_ENV}): a file holding the API user's password, "
            "or Airflow's simple_auth_manager_passwords.json"
        )
    text = Path(path).read_text(encoding="utf-8").strip()
    if text.startswith("{"):  # the simple auth manager's own file
        return json.loads(text)[args.user]
    return text


def backfill(args: argparse.Namespace) -> int:
    from samverkan.core.contracts import load_contracts
    from samverkan.ops.airflow_api import TERMINAL_RUN_STATES, AirflowAPI

    feeds = args.feed or sorted(load_contracts())
    unknown = set(feeds) - set(load_contracts())
    if unknown:
        raise SystemExit(f"unknown feed(s): {', '.join(sorted(unknown))}")
    api = AirflowAPI(args.api_url, args.user, _password(args))
    start, end = nights.run_window(args.first, args.last)
    for feed in feeds:
        dag_id = f"samverkan_{feed}"
        if api.get(f"/api/v2/dags/{dag_id}").get("is_paused"):
            if args.unpause:
                api.unpause(dag_id)
                print(f"unpaused {dag_id}")
            else:
                print(
                    f"warning: {dag_id} is paused; its backfill runs wait until it is unpaused (or use --unpause)",
                    file=sys.stderr,
                )
    count = (args.last - args.first).days + 1
    created = []
    for feed in feeds:
        dag_id = f"samverkan_{feed}"
        b = api.create_backfill(
            dag_id, start, end, max_active_runs=args.max_active_runs, reprocess_behavior=args.reprocess
        )
        created.append(b)
        print(
            f"backfill {b['id']}: {dag_id}, nights {args.first}..{args.last} ({count}), "
            f"{args.max_active_runs} run(s) at a time",
            flush=True,
        )
    if not args.wait:
        return 0
    deadline = clock.monotonic() + args.timeout
    while True:
        states: dict[str, list[str]] = {}
        done = True
        for b in created:
            runs = [
                r
                for r in api.runs(b["dag_id"])
                if r.get("run_type") == "backfill"
                and start <= datetime.fromisoformat(r["logical_date"].replace("Z", "+00:00")) <= end
            ]
            states[b["dag_id"]] = [r["state"] for r in runs]
            finished = api.backfill(b["id"]).get("completed_at") is not None
            if not finished or any(s not in TERMINAL_RUN_STATES for s in states[b["dag_id"]]):
                done = False
        if done:
            break
        if clock.monotonic() > deadline:
            print(f"backfill not finished after {args.timeout:g} s: {states}", file=sys.stderr)
            return 2
        clock.sleep(5)
    failed = 0
    for dag_id, run_states in states.items():
        ok = run_states.count("success")
        failed += len(run_states) - ok
        print(f"{dag_id}: {len(run_states)} run(s), {ok} succeeded")
    return 1 if failed else 0


# --- rotate-key ---------------------------------------------------------------------------------

FINGERPRINT_LABEL = b"samverkan key fingerprint"


def key_fingerprint(secret: str) -> str:
    """A name for a key that reveals nothing about it: HMAC of a fixed label, first 12 hex digits."""
    from samverkan.privacy.pseudonymise import key_from_secret

    return hmac.new(key_from_secret(secret), FINGERPRINT_LABEL, hashlib.sha256).hexdigest()[:12]


@dataclass(frozen=True)
class Rotation:
    secret_file: Path
    old_fingerprint: str | None
    new_fingerprint: str
    kept_previous: Path | None


def rotate_key(secret_file: Path, *, keep_previous: bool = False, now: datetime | None = None) -> Rotation:
    """Replace the pseudonymisation key in ``secret_file`` with a new random 32-byte key.

    Pseudonyms are HMAC(key, domain, value): under the new key every person, employee and guard
    gets a new pseudonym. Nights published before the rotation keep the old pseudonyms and
    cannot be joined by person with nights published after it; within a night, and across feeds
    from the rotation on, linkage is unchanged. The old key is destroyed unless
    ``keep_previous`` (for a planned re-processing of retained nights with the new key; delete it
    afterwards). A line with the time and both fingerprints (never the key) goes to
    ``<secret_file>.rotations``.
    """
    secret_file = Path(secret_file)
    now = now or datetime.now(UTC)
    old = secret_file.read_text(encoding="utf-8").strip() if secret_file.exists() else None
    old_fp = key_fingerprint(old) if old else None
    new = secrets.token_hex(32)
    kept = None
    if old and keep_previous:
        kept = secret_file.with_name(f"{secret_file.name}.retired-{now.strftime('%Y%m%dT%H%M%SZ')}")
        _write_private(kept, old + "\n")
    temp = secret_file.with_name(f".{secret_file.name}.new")
    _write_private(temp, new + "\n")
    os.replace(temp, secret_file)
    new_fp = key_fingerprint(new)
    log = secret_file.with_name(f"{secret_file.name}.rotations")
    with log.open("a", encoding="utf-8") as f:
        f.write(
            f"{now.isoformat(timespec='seconds')} rotated {old_fp or '(none)'} -> {new_fp}"
            f"{' (previous kept)' if kept else ''}\n"
        )
    return Rotation(secret_file, old_fp, new_fp, kept)


def new_key_command(args: argparse.Namespace) -> int:
    """A fresh random key (32 bytes as hex) for a secret file or Variable; nothing is stored."""
    print(secrets.token_hex(32))
    return 0


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    path.chmod(0o600)


def secrets_command(args: argparse.Namespace) -> int:
    """Every file docker-compose.yml mounts or loads (``samverkan.ops.secrets``); what exists is kept."""
    from samverkan.ops.secrets import COMPOSE_SECRETS_DIR, write_compose_secrets

    files = write_compose_secrets(args.dir or COMPOSE_SECRETS_DIR)
    print(
        f"secrets in {files.dir} (0700): {files.env_file.name}, keys/ (pseudonymisation and sharing keys), "
        f"{files.hub_key.name} (SFTP client), {files.signing_key.name} and {files.allowed_signers.name} "
        "(give recipients allowed_signers), partner host keys, known_hosts. The containers run as uid 50000: "
        f"chown -R 50000:0 {' '.join(str(p) for p in files.mounted_by_airflow())}"
    )
    return 0


def rotate_key_command(args: argparse.Namespace) -> int:
    if args.secrets_dir:
        from samverkan.ops.secrets import SecretFiles, move_keys_into_place

        files = SecretFiles(Path(args.secrets_dir))
        if not files.dir.is_dir():
            raise SystemExit(f"{files.dir} is not a secrets directory (make it with `samverkan ops secrets`)")
        move_keys_into_place(files)
        secret_file = files.path("pseudonym_secret")
    elif args.secret_file:
        secret_file = Path(args.secret_file)
    else:
        raise SystemExit(
            "give --secrets-dir (Compose, deploy/secrets) or --secret-file (e.g. var/demo/keys/pseudonym_secret)"
        )
    if not secret_file.exists() and not args.init:
        raise SystemExit(f"{secret_file} does not exist (use --init to create a first key)")
    rotation = rotate_key(secret_file, keep_previous=args.keep_previous)
    print(f"pseudonymisation key rotated: {rotation.old_fingerprint or '(none)'} -> {rotation.new_fingerprint}")
    if rotation.kept_previous:
        print(f"previous key kept in {rotation.kept_previous}: delete it once retained nights are re-processed")
    if args.secrets_dir:
        print(f"{secret_file}: every task from now on reads the new key (no restart needed)")
    print("published nights keep their old pseudonyms; nights processed from now on cannot be joined to them by person")
    return 0


# --- add-partner -----------------------------------------------------------------------------------

CONTRACT_TEMPLATE = """\
# Data contract: {name} — nightly export. Written by `python -m samverkan.ops.commands add-partner`.
# A TEMPLATE: replace the directory, file pattern, columns and mapping with what the partner
# really sends, then run `python -m samverkan.ops.commands check-contract {path_hint}` again.
contract: {id}
version: 1
title: {title}
description: >
  {name}: one row per incident and person involved, in the night's date (00:00-24:00 local time).
partner:
  id: {id}
  name: {name}
  connection_id: sftp_{id}
schedule:
  cron: "{cron}"
  timezone: Europe/Stockholm

file:
  directory: {directory}
  pattern: '{prefix}_(?P<night>\\d{{8}})\\.csv'
  night_format: "%Y%m%d"
  completeness:
    rule: marker
    marker_suffix: .ok
  lookback_days: 2

format:
  kind: csv
  encoding: utf-8
  delimiter: ";"
  quotechar: '"'
  line_terminator: "\\n"
  header: true
  multiline_values: true
  compression: none

columns:
  - name: handelse_id
    source: handelse_id
    type: string
    nullable: false
    pattern: '^[A-Z0-9-]{{3,40}}$'
  - name: tidpunkt
    source: tidpunkt
    type: timestamp
    format: "%Y-%m-%d %H:%M"
    timezone: local
    nullable: false
  - name: plats
    source: plats
    type: string
    nullable: true
  - name: kategori
    source: kategori
    type: string
    nullable: false
    allowed: [Ordningsstörning, Skadegörelse, Övrigt]
  - name: personnummer
    source: personnummer
    type: personnummer
    nullable: true
    personal:
      handling: pseudonymise
      domain: person
  - name: beskrivning
    source: beskrivning
    type: string
    nullable: true
    personal:
      handling: scrub

model:
  # A feed that names no people: `kind: incidents_only` here and no `involvements` section;
  # counts per place and time slot: `kind: aggregate` (see docs/partners.md).
  incident:
    key: handelse_id
    occurred_at: tidpunkt
    place: plats
    category:
      column: kategori
      map:
        Ordningsstörning: disorder
        Skadegörelse: vandalism
        Övrigt: other
    description: beskrivning
  involvements:
    from: rows
    person: personnummer
    role: {{value: subject}}

quality:
  max_invalid_row_fraction: 0.10
"""


@dataclass(frozen=True)
class NewPartner:
    contract_path: Path
    suites: list[Path]
    dag_id: str
    connection_id: str


def contract_text(
    feed_id: str, name: str, *, directory: str | None = None, cron: str = "10 7 * * *", path_hint: str | None = None
) -> str:
    if not FEED_ID.match(feed_id):
        raise ValueError(f"feed id {feed_id!r}: lower-case letters, digits and _ (2-31 characters, a letter first)")
    if not name.strip() or any(c in name for c in "\n:#{}[]'\""):
        raise ValueError("partner name: one line, without : # { } [ ] or quotes")
    return CONTRACT_TEMPLATE.format(
        id=feed_id,
        name=name.strip(),
        title=f"{name.strip()} — nightly incidents",
        directory=directory or f"/outbound/{feed_id}",
        prefix=feed_id,
        cron=cron,
        path_hint=path_hint or f"schemas/{feed_id}.yaml",
    )


def check_contract(path: Path, expectations_dir: Path | None = None) -> tuple[Any, str]:
    """Load (schema + cross-checks), build its DAG; returns the contract and the DAG id."""
    from samverkan.core.contracts import load_contract
    from samverkan.orchestration.feed_dags import build_feed_dag

    contract = load_contract(path)
    if path.stem != contract.id:
        raise ValueError(f"{path}: the file must be named after its contract id ({contract.id}.yaml)")
    dag = build_feed_dag(contract)
    if expectations_dir is not None:
        from samverkan.quality.validation import parts, suite_is_current, suite_path

        stale = [
            suite_path(expectations_dir, contract, p)
            for p in parts(contract)
            if not suite_is_current(contract, suite_path(expectations_dir, contract, p))
        ]
        if stale:
            raise ValueError(f"Great Expectations suite(s) missing or out of date: {', '.join(map(str, stale))}")
    return contract, dag.dag_id


def _reload_contracts() -> None:
    from samverkan.core.contracts import load_contracts

    if hasattr(load_contracts, "cache_clear"):  # contracts are cached per directory
        load_contracts.cache_clear()


def add_partner(
    feed_id: str,
    name: str,
    *,
    schemas_dir: Path,
    expectations_dir: Path,
    directory: str | None = None,
    cron: str = "10 7 * * *",
) -> NewPartner:
    """Write ``schemas/<id>.yaml`` from the template, check it, write its GE suite(s)."""
    from samverkan.core.contracts import load_contracts
    from samverkan.quality.validation import write_suites

    path = Path(schemas_dir) / f"{feed_id}.yaml"
    if path.exists():
        raise FileExistsError(f"{path} exists; not overwriting a contract")
    existing = load_contracts(Path(schemas_dir))
    if feed_id in existing:
        raise ValueError(f"feed {feed_id!r} already has a contract")
    path.write_text(contract_text(feed_id, name, directory=directory, cron=cron), encoding="utf-8")
    try:
        contract, dag_id = check_contract(path)
        _reload_contracts()
        load_contracts(Path(schemas_dir))  # the whole set still loads with the new one in it
        suites = write_suites(Path(expectations_dir), {feed_id: contract})
        check_contract(path, Path(expectations_dir))
    except BaseException:
        path.unlink(missing_ok=True)
        _reload_contracts()
        raise
    return NewPartner(path, suites, dag_id, contract.connection_id)


def add_partner_command(args: argparse.Namespace) -> int:
    new = add_partner(
        args.id,
        args.name,
        schemas_dir=args.schemas_dir,
        expectations_dir=args.expectations_dir,
        directory=args.directory,
        cron=args.cron,
    )
    print(f"wrote {new.contract_path} (a template: edit columns, pattern and mapping to the partner's real export)")
    for suite in new.suites:
        print(f"wrote {suite} (Great Expectations suite generated from the contract)")
    print(
        f"DAG {new.dag_id} builds from it; next: the Airflow connection {new.connection_id} (host, login, "
        "extras key_file and host_key), then `python -m samverkan.ops.commands check-contract` after every edit"
    )
    return 0


def check_contract_command(args: argparse.Namespace) -> int:
    from samverkan.quality.validation import write_suites

    contract, dag_id = check_contract(args.path)
    if args.write_suites:
        for suite in write_suites(args.expectations_dir, {contract.id: contract}):
            print(f"rewrote {suite}")
    check_contract(args.path, args.expectations_dir)
    print(f"{args.path}: contract {contract.id} v{contract.version} is valid; DAG {dag_id} builds; suites current")
    return 0


# --- the command line ------------------------------------------------------------------------------


def _night(text: str) -> date:
    return date.fromisoformat(text)


def default_log_file() -> Path:
    from samverkan.core.settings import data_root

    return data_root() / "logs" / "ops.log"


@contextmanager
def library_logs_to(log_file: Path, *, uses_airflow: bool) -> Iterator[None]:
    """Send every library's log records (Great Expectations logs dozens of lines on import) to
    ``log_file`` while a command runs, so an operator sees only the command's own output.
    Importing Airflow points logging at stdout, so a command that builds DAGs imports it first
    and is re-routed after. The previous set-up is restored afterwards (a test may call ``main``)."""
    if uses_airflow:
        import airflow  # noqa: F401  (configures logging on import; replaced below)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    loggers = [root] + [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger) and lg.handlers
    ]
    saved = [(lg, lg.handlers[:], lg.propagate, lg.level) for lg in loggers]
    for lg in loggers[1:]:
        lg.handlers[:], lg.propagate = [], True
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        for lg, handlers, propagate, level in saved:
            lg.handlers[:], lg.propagate = handlers, propagate
            lg.setLevel(level)
        handler.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m samverkan.ops.commands", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show library logs (Great Expectations, Airflow) here instead of the log file",
    )
    parser.add_argument(
        "--log-file", type=Path, help="where library logs go (default: $SAMVERKAN_DATA_ROOT/logs/ops.log)"
    )
    parser.set_defaults(uses_airflow=False)
    sub = parser.add_subparsers(dest="command", required=True)

    b = sub.add_parser("backfill", help="run the feed DAGs for a range of nights (Airflow REST API)")
    b.add_argument("--from", dest="first", type=_night, required=True, help="first night, YYYY-MM-DD")
    b.add_argument("--to", dest="last", type=_night, required=True, help="last night, YYYY-MM-DD")
    b.add_argument("--feed", action="append", help="only this feed (repeatable); default: every feed")
    b.add_argument("--api-url", default=os.environ.get(API_URL_ENV, "http://127.0.0.1:8080"))
    b.add_argument("--user", default=os.environ.get(API_USER_ENV, "admin"))
    b.add_argument("--password-file", type=Path)
    b.add_argument(
        "--max-active-runs",
        type=int,
        default=1,
        help="runs at once per feed (default 1: each night's run settles its files before the "
        "next night's look-back window sees them)",
    )
    b.add_argument(
        "--reprocess",
        choices=["none", "failed", "completed"],
        default="none",
        help="nights that already have a run: skip (none), re-run failed, or re-run all",
    )
    b.add_argument("--unpause", action="store_true", help="unpause paused feed DAGs (the scheduler skips paused ones)")
    b.add_argument("--wait", action="store_true", help="wait for every run; exit 1 if any failed")
    b.add_argument("--timeout", type=float, default=6 * 3600)
    b.set_defaults(func=backfill)

    r = sub.add_parser("rotate-key", help="replace the pseudonymisation key (new pseudonyms from now on)")
    where = r.add_mutually_exclusive_group()
    where.add_argument(
        "--secrets-dir",
        type=Path,
        help="Compose or the no-Docker stack: deploy/secrets (the key is keys/pseudonym_secret)",
    )
    where.add_argument("--secret-file", type=Path, help="a key file, e.g. var/demo/keys/pseudonym_secret")
    r.add_argument("--keep-previous", action="store_true", help="keep the old key (for a planned re-processing)")
    r.add_argument("--init", action="store_true", help="create the key file if it does not exist")
    r.set_defaults(func=rotate_key_command)

    s = sub.add_parser("secrets", help="create deploy/secrets/ for docker-compose.yml (keeps what exists)")
    s.add_argument("--dir", type=Path, help="where (default: deploy/secrets)")
    s.set_defaults(func=secrets_command)

    k = sub.add_parser("new-key", help="print a new random key (pseudonymisation or sharing secret)")
    k.set_defaults(func=new_key_command)

    a = sub.add_parser("add-partner", help="write and check a contract template for a new feed")
    a.add_argument("id", help="feed id: lower case, e.g. bibliotek")
    a.add_argument("--name", required=True, help="the partner's name")
    a.add_argument("--directory", help="directory on the partner's SFTP server (default /outbound/<id>)")
    a.add_argument("--cron", default="10 7 * * *", help="when the feed runs (Europe/Stockholm)")
    a.add_argument("--schemas-dir", type=Path, default=REPO / "schemas")
    a.add_argument("--expectations-dir", type=Path, default=REPO / "expectations")
    a.set_defaults(func=add_partner_command, uses_airflow=True)

    c = sub.add_parser("check-contract", help="check a contract: schema, cross-checks, DAG, GE suites")
    c.add_argument("path", type=Path)
    c.add_argument("--expectations-dir", type=Path, default=REPO / "expectations")
    c.add_argument("--write-suites", action="store_true", help="regenerate the contract's GE suites first")
    c.set_defaults(func=check_contract_command, uses_airflow=True)

    for command in sub.choices.values():  # the same options after the command name too
        command.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        command.add_argument("--log-file", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    restrict_umask()
    logs = (
        nullcontext()
        if args.verbose
        else library_logs_to(args.log_file or default_log_file(), uses_airflow=args.uses_airflow)
    )
    try:
        with logs:
            return args.func(args)
    except (ValueError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
