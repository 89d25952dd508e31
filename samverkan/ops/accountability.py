"""``samverkan dpo``: the accountability commands (issue 15).

  self-test         the data-protection officer's check of the outboxes and the register (read-only)
  verify-delivery   what a recipient runs on a delivery it received (also a partner's own check)
  erase             erase one person everywhere (personnummer on stdin, never on the command line)
  withdraw          a partner withdraws records: a file of its incident keys, one a line
  ack               record a recipient's signed acknowledgement of a delivery

The logic lives in samverkan.sharing (selftest, attestation, erasure); these are thin.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from samverkan.core.settings import paths as data_paths


def _self_test(args: argparse.Namespace) -> int:
    from samverkan.sharing.selftest import run

    root = data_paths()
    report = run(args.outbox or root.outbox, args.register or root.register, args.allowed_signers)
    print("\n".join(report.lines))
    return 0 if report.passed else 1


def _verify(args: argparse.Namespace) -> int:
    from samverkan.sharing.attestation import verify_delivery
    from samverkan.sharing.register import Register

    anchors = [json.loads(Path(r).read_text(encoding="utf-8"))["register_event"] for r in args.anchor]
    problems = verify_delivery(
        args.delivery, args.allowed_signers, anchors, Register(args.register) if args.register else None
    )
    print(
        "\n".join(problems)
        if problems
        else f"{args.delivery}: verified (signature, files, receipt, {len(anchors)} anchor(s))"
    )
    return 1 if problems else 0


def _keys() -> tuple[bytes, bytes]:
    """The hub's and the sharing key from the key files the tasks read (``SAMVERKAN_*_FILE``)."""
    from samverkan.core.settings import PSEUDONYM_SECRET_VARIABLE, secret_file_env
    from samverkan.privacy.pseudonymise import key_from_secret
    from samverkan.sharing.recipient_pseudonyms import SHARING_SECRET_VARIABLE

    def read(variable: str) -> bytes:
        name = os.environ.get(secret_file_env(variable))
        if not name:
            raise SystemExit(f"set {secret_file_env(variable)} to the key file")
        return key_from_secret(Path(name).read_text(encoding="utf-8").strip())

    return read(PSEUDONYM_SECRET_VARIABLE), read(SHARING_SECRET_VARIABLE)


def _erase(args: argparse.Namespace) -> int:
    from samverkan.privacy.pseudonymise import Pseudonymiser
    from samverkan.sharing import erasure
    from samverkan.sharing.agreements import load_agreements
    from samverkan.sharing.delivery import register_for

    paths = data_paths()
    hub_key, sharing_key = _keys()
    if args.command == "erase":
        try:
            target = erasure.person_target(sys.stdin.readline().strip(), Pseudonymiser(hub_key), args.reason)
        except ValueError as exc:  # the message names the status, never the value
            print(f"samverkan dpo erase: {exc}", file=sys.stderr)
            return 2
    else:
        keys = [line.strip() for line in args.list.read_text(encoding="utf-8").splitlines() if line.strip()]
        target = erasure.withdrawal_target(paths, args.feed, keys, args.reason)
    summary = erasure.erase(paths, target, load_agreements(), sharing_key, register_for(paths), "operator")
    print(json.dumps(summary, indent=2))
    return 0


def _ack(args: argparse.Namespace) -> int:
    from samverkan.sharing.agreements import load_agreements
    from samverkan.sharing.attestation import record_acknowledgement
    from samverkan.sharing.delivery import register_for

    key = load_agreements()[args.recipient].raw["recipient"].get("ack_key")
    if not key:
        raise SystemExit(f"{args.recipient}: the agreement names no recipient.ack_key")
    event = record_acknowledgement(register_for(data_paths()), args.directory, key, "operator")
    print(f"{args.recipient}: acknowledgement recorded as register event {event['seq']}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="samverkan dpo", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    st = sub.add_parser("self-test", help="check the outboxes and the register (read-only)")
    st.add_argument("--allowed-signers", type=Path, required=True, help="the hub's published allowed-signers file")
    st.add_argument("--outbox", type=Path, help="default: $SAMVERKAN_DATA_ROOT/outbox")
    st.add_argument("--register", type=Path, help="default: $SAMVERKAN_DATA_ROOT/register")
    st.set_defaults(run=_self_test)
    vd = sub.add_parser("verify-delivery", help="a recipient's check of one delivery")
    vd.add_argument("delivery", type=Path)
    vd.add_argument("--allowed-signers", type=Path, required=True)
    vd.add_argument("--anchor", action="append", default=[], help="an earlier receipt.json the recipient holds")
    vd.add_argument("--register", type=Path, help="a (read-only) copy of the hub's register")
    vd.set_defaults(run=_verify)
    er = sub.add_parser("erase", help="erase one person (personnummer on stdin)")
    er.add_argument("--reason", required=True, help="e.g. the request's case number (no personal data)")
    er.set_defaults(run=_erase)
    wd = sub.add_parser("withdraw", help="a partner withdraws records")
    wd.add_argument("--feed", required=True)
    wd.add_argument("--list", type=Path, required=True, help="the partner's incident keys, one a line")
    wd.add_argument("--reason", required=True)
    wd.set_defaults(run=_erase)
    ak = sub.add_parser("ack", help="record a recipient's signed ack.json (with ack.json.sig) in the register")
    ak.add_argument("recipient")
    ak.add_argument("directory", type=Path)
    ak.set_defaults(run=_ack)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
