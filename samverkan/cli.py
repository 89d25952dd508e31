"""``samverkan``: one command line for the hub, with a subcommand per job.

Each subcommand is a module with a ``main(argv)``; it is imported only when it is asked for,
so ``samverkan quarantine list`` does not load Airflow or Great Expectations' renderers.
Product commands are listed here. Development commands (``demo``, ``benchmark``, ``stack``,
``synthetic``, ``leakscan``) come from the dev kit, which the production image does not
contain: they are found through the ``samverkan.devkit`` entry-point group, so the product
never imports the dev kit.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points

# subcommand -> (module with main(argv), one line of help)
COMMANDS: dict[str, tuple[str, str]] = {
    "ops": (
        "samverkan.ops.commands",
        "operator commands: backfill, rotate-key, new-key, add-partner, check-contract, secrets",
    ),
    "quarantine": ("samverkan.quality.quarantine", "list, reprocess or purge quarantined records and files"),
    "suites": ("samverkan.quality.validation", "generate or check the Great Expectations suites from the contracts"),
    "import": ("samverkan.ingest.history", "import a partner's history (many nights) through the nightly steps"),
    "catalog": ("samverkan.analysis.catalog", "create or refresh the analysts' DuckDB catalog over the published data"),
    "lagesbild": ("samverkan.analysis.lagesbild", "build the lägesbild report from the published data"),
    "dpo": (
        "samverkan.ops.accountability",
        "self-test, verify-delivery, erase, withdraw, ack: accountability (issue 15)",
    ),
    "ropa": ("samverkan.sharing.ropa", "write (or --check) the GDPR art. 30 record of processing in docs/"),
}
DEV_GROUP = "samverkan.devkit"


def _dev_commands() -> dict[str, Callable[[list[str]], int]]:
    found = {}
    for ep in entry_points(group=DEV_GROUP):
        found[ep.name] = ep
    return found  # type: ignore[return-value]


def _usage(dev: dict) -> str:
    lines = ["usage: samverkan <command> [arguments]   (samverkan <command> --help for its own)", "", "commands:"]
    lines += [f"  {name:<11} {text}" for name, (_, text) in COMMANDS.items()]
    if dev:
        lines += ["", "development (the dev kit):"] + [f"  {name}" for name in sorted(dev)]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    dev = _dev_commands()
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage(dev))
        return 0
    name, rest = args[0], args[1:]
    if name in COMMANDS:
        module = importlib.import_module(COMMANDS[name][0])
        return int(module.main(rest) or 0)
    if name in dev:
        try:
            entry = dev[name].load()  # type: ignore[attr-defined]
        except ModuleNotFoundError:
            print(
                f"samverkan: '{name}' is a development command and the dev kit is not installed here "
                "(install the project from a checkout: pip install -e '.[test]')",
                file=sys.stderr,
            )
            return 2
        return int(entry(rest) or 0)
    print(f"samverkan: unknown command '{name}'\n\n{_usage(dev)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
