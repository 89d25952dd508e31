"""Mutation testing of the privacy-critical modules: how many small faults (mutmut's mutants)
the tests notice. A green suite says the code passes its tests; the killed share says the tests
would notice if the code were wrong. Not run in CI: minutes per module on two cores.

Each module runs alone, with the small test selection that covers it, in a copy of the tree
under a temporary directory (mutmut writes its ``mutants/`` beside the code it mutates, and the
work tree is not the place for it). Scores and the surviving mutants' diffs go to
``var/mutation/`` (or ``--out``); docs/testing.md records the figures and why each survivor
left standing is harmless.

    scripts/mutation                    # every module in TARGETS, one after the other
    scripts/mutation completeness       # one of them
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COPIED = (
    "samverkan",
    "devkit",
    "tests",
    "schemas",
    "expectations",
    "agreements",
    "measures",
    "plugins",
    "dags",
    "pyproject.toml",
)


@dataclass(frozen=True)
class Target:
    source: str
    tests: tuple[str, ...]


TARGETS = {
    "personnummer": Target(
        "samverkan/privacy/personnummer.py", ("tests/unit/test_personnummer.py", "tests/unit/test_luhn_lookup.py")
    ),
    "pseudonymise": Target(
        "samverkan/privacy/pseudonymise.py",
        (
            "tests/unit/test_pseudonymise.py",
            "tests/unit/test_keyed_hash.py",
            "tests/unit/test_scrub_prefilter.py",
            "tests/integration/test_resilience_privacy.py::test_item7_weak_keys_are_refused_with_how_to_make_one",
            "tests/integration/test_resilience_privacy.py::test_item7_generated_keys_pass",
        ),
    ),
    "proper_nouns": Target(
        "samverkan/privacy/proper_nouns.py",
        (
            "tests/unit/test_proper_nouns.py",
            "tests/unit/test_proper_noun_phrases.py",
            "tests/unit/test_proper_noun_rules.py",
        ),
    ),
    "suppression": Target(
        "samverkan/sharing/aggregates.py",
        ("tests/unit/sharing/test_suppression.py", "tests/unit/sharing/test_suppression_observations.py"),
    ),
    "completeness": Target("samverkan/connectors/completeness.py", ("tests/unit/test_completeness.py",)),
    "leakscan": Target("devkit/leakscan.py", ("tests/unit/test_leakscan.py",)),
}


def mutmut_config(target: Target) -> str:
    """The [tool.mutmut] section for one module (appended to the copy's pyproject.toml)."""
    others = [p for p in COPIED if p != "pyproject.toml"]
    return (
        "\n[tool.mutmut]\n"
        f"source_paths = {json.dumps([target.source])}\n"
        f"also_copy = {json.dumps(others)}\n"
        f"pytest_add_cli_args_test_selection = {json.dumps(list(target.tests))}\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-p", "no:randomly", "-q"]\n'
    )


def copy_tree(into: Path) -> None:
    for name in COPIED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, into / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, into / name)


def run(name: str, out: Path, children: int) -> dict:
    target = TARGETS[name]
    with tempfile.TemporaryDirectory(prefix=f"samverkan-mutation-{name}-") as tmp:
        work = Path(tmp)
        copy_tree(work)
        with (work / "pyproject.toml").open("a", encoding="utf-8") as f:
            f.write(mutmut_config(target))
        # The work tree must not be importable from the copy: mutmut puts mutants/ first.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"GX_ANALYTICS_ENABLED": "False"}
        mutmut = [sys.executable, "-m", "mutmut"]
        subprocess.run([*mutmut, "run", "--max-children", str(children)], cwd=work, env=env, check=False)
        subprocess.run([*mutmut, "export-cicd-stats"], cwd=work, env=env, check=True, capture_output=True)
        stats = json.loads((work / "mutants" / "mutmut-cicd-stats.json").read_text())
        survivors = _survivors(mutmut, work, env)
    stats["score"] = round(100 * stats["killed"] / max(1, stats["total"] - stats.get("skipped", 0)), 1)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(stats, indent=2) + "\n")
    (out / f"{name}-survivors.diff").write_text("".join(survivors))
    return stats


def _survivors(mutmut: list[str], work: Path, env: dict[str, str]) -> list[str]:
    listing = subprocess.run([*mutmut, "results"], cwd=work, env=env, check=True, capture_output=True, text=True)
    names = [line.split(":")[0].strip() for line in listing.stdout.splitlines() if line.strip().endswith("survived")]
    shown = [
        subprocess.run([*mutmut, "show", n], cwd=work, env=env, capture_output=True, text=True, check=False)
        for n in names
    ]
    return [s.stdout + "\n" for s in shown]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/mutation", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "modules",
        nargs="*",
        choices=[[], *TARGETS],
        metavar="module",
        help=f"one or more of {', '.join(TARGETS)} (default: all)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "var" / "mutation")
    parser.add_argument("--children", type=int, default=1, help="parallel mutmut workers (default 1: shared cores)")
    args = parser.parse_args(argv)
    for name in args.modules or TARGETS:
        stats = run(name, args.out, args.children)
        print(
            f"{name}: {stats['killed']} of {stats['total']} mutants killed ({stats['score']} %), "
            f"{stats['survived']} survived, {stats.get('no_tests', 0)} not covered by the selection"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
