"""The main job on the embedded default: ``python -m devkit.demo`` (via ``scripts/demo``).

Generates twelve weeks of synthetic history for the partners (with the effect of a measure from
the register: fewer incidents at the bus square after the new lighting; the truth goes to
``history_truth.json``), serves them from local OpenSSH SFTP servers, loads all but the last
nights with the history import (as when a partner is onboarded), runs every feed DAG for the
last nights with ``airflow dags test``, builds the analysts' catalog and the lägesbild, runs every
recipient's delivery DAG for the last night (pushes to the police's and the bus operator's own
SFTP servers; the municipality and the security company pull their outboxes from the pull
service; devkit.demo_deliveries), and ends by printing where the published Parquet, the catalog,
the report, each delivery and the disclosure register are. ``--ui``
then keeps the partner servers up and starts ``airflow standalone`` on the same setup.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, timedelta
from pathlib import Path

from devkit.demo_deliveries import dag_test_failed, deliver_and_fetch
from devkit.embedded import REPO, EmbeddedHub
from devkit.leakscan import PersonalValues
from samverkan.core.contracts import load_contracts

DEFAULT_ROOT = REPO / "var" / "demo"
HISTORY_FIRST = date(2026, 8, 31)  # a Monday; the register's lighting measure starts six weeks in
HISTORY_WEEKS = 12
DAG_NIGHTS = 2  # the last nights go through the feed DAGs (one run each), the rest through the history import


def duckdb_summary(published: Path) -> str:
    """Incidents per source and category, read straight from the dataset root."""
    import duckdb

    glob = str(published / "incidents" / "**" / "*.parquet")
    con = duckdb.connect()
    rows = con.execute(
        f"""
        SELECT source, category, count(*) AS incidents
        FROM read_parquet('{glob}', hive_partitioning = true)
        GROUP BY ALL ORDER BY source, incidents DESC, category
        """
    ).fetchall()
    nights = con.execute(
        f"SELECT strftime(date_trunc('week', night), '%Y-%m-%d'), source, count(*) "
        f"FROM read_parquet('{glob}', hive_partitioning = true) GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    people = con.execute(
        f"""SELECT count(DISTINCT person_pseudonym) FILTER (WHERE person_pseudonym IS NOT NULL), count(*)
            FROM read_parquet('{published / "involvements" / "**" / "*.parquet"}', hive_partitioning = true)"""
    ).fetchone()
    lines = [
        "incidents per source and category (DuckDB over the published dataset):",
        f"  {'source':<10} {'category':<15} {'incidents':>9}",
    ]
    lines += [f"  {s:<10} {c or '(unmapped)':<15} {n:>9}" for s, c, n in rows]
    lines.append("incidents per week (starting Monday) and source:")
    lines += [f"  {n} {s:<10} {c:>6}" for n, s, c in nights]
    lines.append(f"involvements: {people[1]} rows, {people[0]} distinct pseudonymised persons")
    lines += _sources_summary(con, published)
    return "\n".join(lines)


def _sources_summary(con, published: Path) -> list[str]:
    """Rows per source in each published dataset: incident-only feeds have no involvements,
    aggregate feeds publish observations (counts) instead of incidents."""
    parts = [
        f"SELECT '{d}' AS dataset, source, count(*) AS n FROM read_parquet("
        f"'{published / d / '**' / '*.parquet'}', hive_partitioning = true) GROUP BY ALL"
        for d in ("incidents", "involvements", "observations")
        if any((published / d).glob("night=*"))
    ]
    rows = con.execute(" UNION ALL ".join(parts) + " ORDER BY source, dataset").fetchall() if parts else []
    sources = sorted({str(s) for _, s, _ in rows})
    lines = [
        f"published rows per source ({len(sources)} sources: {', '.join(sources)}):",
        f"  {'source':<12} {'dataset':<13} {'rows':>7}",
    ]
    return lines + [f"  {s:<12} {d:<13} {n:>7}" for d, s, n in rows]


def generate(hub: EmbeddedHub, weeks: int, seed: int, collect: PersonalValues | None = None) -> list[date]:
    """Every night of the history, with the register's measure effect; returns the nights.
    ``collect`` (tests) receives every personal value generated, for a leak scan of the outputs."""
    from devkit.history import DEFAULT_EFFECTS, TRUTH_FILE, effects_from_register, history_nights, write_history

    truth = write_history(
        hub.partners_root,
        HISTORY_FIRST,
        weeks,
        seed=seed,
        effects=effects_from_register(DEFAULT_EFFECTS),
        truth_path=hub.root / TRUTH_FILE,
        collect=collect,
    )
    nights = history_nights(HISTORY_FIRST, weeks)
    print(
        f"generated {len(nights)} nights ({nights[0]}..{nights[-1]}) for {', '.join(truth['sizes'])}; "
        f"measure effect and expected weekly counts in {hub.root / TRUTH_FILE}"
    )
    for m in truth["measures"]:
        if m["mean_weekly_before"] is None or m["mean_weekly_after"] is None:  # history too short to see it
            print(f"  {m['measure']} from {m['start']}: not both before and after in {weeks} weeks")
            continue
        print(
            f"  {m['measure']} from {m['start']}: incidents per week in {', '.join(m['areas'])} "
            f"{m['mean_weekly_before']:.0f} before, {m['mean_weekly_after']:.0f} after (generator keeps {m['keep']:.0%})"
        )
    return nights


def import_history(hub: EmbeddedHub, first: date, last: date) -> None:
    """The onboarding import over the partners' servers, in this process (no Airflow)."""
    from devkit.local_sftp import connect_to
    from samverkan.ingest.history import import_history as run_import
    from samverkan.privacy.pseudonymise import Pseudonymiser, key_from_secret
    from samverkan.quality.validation import Validator

    contracts = load_contracts()
    feeds = [contracts[f] for f in hub.servers]
    print(f"history import of {first}..{last} for {', '.join(c.id for c in feeds)} (progress on stderr)")
    for outcome in run_import(
        feeds,
        first,
        last,
        connect=connect_to(hub.servers, hub.client_key()[0]),
        data=hub.data,
        pseudonymiser=Pseudonymiser(key_from_secret(hub.secret())),
        validator=Validator(),
        expectations_dir=REPO / "expectations",
        quiet_period_seconds=hub.quiet_period_seconds,
    ):
        print(f"  {outcome.line()}")


def build_catalog(hub: EmbeddedHub) -> Path:
    from samverkan.analysis.catalog import build_catalog as build
    from samverkan.analysis.catalog import default_location

    catalog = build(default_location(hub.data), hub.data)
    for note in catalog.notes:
        print(f"catalog note: {note}")
    return catalog.database


def build_report(hub: EmbeddedHub) -> Path:
    """The lägesbild over the published data, where the DAG would write it (``samverkan lagesbild``)."""
    from samverkan.analysis.lagesbild import build_report as build
    from samverkan.analysis.lagesbild import report_dir

    return build(hub.data.published, report_dir(hub.data)).html


def main(argv: list[str] | None = None, *, collect: PersonalValues | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root", type=Path, default=DEFAULT_ROOT, help="where the embedded hub lives (default var/demo)"
    )
    parser.add_argument("--weeks", type=int, default=HISTORY_WEEKS, help="weeks of generated history (default 12)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--ui", action="store_true", help="afterwards, start `airflow standalone` on this setup")
    args = parser.parse_args(argv)

    hub = EmbeddedHub(args.root.resolve())
    with hub:
        nights = generate(hub, args.weeks, args.seed, collect)
        dag_nights = nights[-DAG_NIGHTS:]
        hub.start_servers()
        for feed, server in hub.servers.items():
            print(f"partner SFTP server {feed}: 127.0.0.1:{server.port} (host key pinned in connection)")
        for recipient, server in hub.start_inboxes().items():
            print(f"recipient SFTP server {recipient} (push inbox): 127.0.0.1:{server.port} (host key pinned)")
        env_file = hub.write_env_file()
        if len(nights) > DAG_NIGHTS:
            import_history(hub, nights[0], dag_nights[0] - timedelta(days=1))
        hub.migrate()
        failures = 0
        # One scheduled run per feed, for the last night: its look-back window takes the night
        # before as well (a late file), so both nights go through the DAGs in half the runs.
        print(
            f"feed DAGs for night {dag_nights[-1]}; their look-back also takes {', '.join(map(str, dag_nights[:-1]))}"
        )
        for feed in hub.servers:
            failures += dag_test_failed(
                hub.run_feed(feed, dag_nights[-1], check=False), f"samverkan_{feed}", dag_nights[-1]
            )
        published = hub.data.published
        print(f"\npublished Parquet: {published}")
        for dataset in ("incidents", "involvements", "observations"):
            print(f"  {published / dataset}/night=YYYY-MM-DD/source=<feed>/<file>.parquet")
        print(f"run manifests: {published / '_manifests'}")
        print(f"private zone (landing, ledger, quarantine): {hub.data.private}")
        print(f"recipients verify signed deliveries with: {hub.keys / 'allowed_signers'} (docs/partners.md)\n")
        print(duckdb_summary(published))
        catalog = build_catalog(hub)
        print(f"\nanalyst catalog (DuckDB, views only): {catalog}")
        print(f"  data dictionary: {catalog.parent / 'DATA_DICTIONARY.md'}")
        print(
            f"  open it: .venv/bin/python -c \"import duckdb; print(duckdb.connect('{catalog}', read_only=True)"
            ".sql('SELECT * FROM incidents LIMIT 5'))\"   (docs/analysts.md)"
        )
        print(f"lägesbild report: {build_report(hub)}")
        print()
        failures += deliver_and_fetch(hub, dag_nights[-1])
        print(f"\nAirflow on this setup: source {env_file} && airflow standalone   (or: scripts/demo --ui)")
        if args.ui:
            print("starting airflow standalone; partner servers stay up until you press Ctrl-C")
            hub.airflow("standalone", check=False)
        return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
