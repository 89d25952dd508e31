"""The main job on the embedded default: ``python -m devkit.demo`` (via ``scripts/demo``).

Generates two synthetic nights for the three partners, serves them from three local OpenSSH
SFTP servers, runs every feed DAG for both nights with ``airflow dags test``, and ends by
printing where the published Parquet is and what DuckDB reads from it. ``--ui`` then keeps the
partner servers up and starts ``airflow standalone`` on the same setup.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from samverkan.core.contracts import load_contracts
from devkit.embedded import REPO, EmbeddedHub

DEFAULT_ROOT = REPO / "var" / "demo"
DEFAULT_NIGHTS = [date(2026, 11, 20), date(2026, 11, 21)]
DEFAULT_SIZES = {"police": 400, "transit": 150, "guards": 80}


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
        f"SELECT night, source, count(*) FROM read_parquet('{glob}', hive_partitioning = true) GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    people = con.execute(
        f"""SELECT count(DISTINCT person_pseudonym) FILTER (WHERE person_pseudonym IS NOT NULL), count(*)
            FROM read_parquet('{published / "involvements" / "**" / "*.parquet"}', hive_partitioning = true)"""
    ).fetchone()
    lines = ["incidents per source and category (DuckDB over the published dataset):",
             f"  {'source':<10} {'category':<15} {'incidents':>9}"]
    lines += [f"  {s:<10} {c or '(unmapped)':<15} {n:>9}" for s, c, n in rows]
    lines.append("incidents per night and source:")
    lines += [f"  {n} {s:<10} {c:>6}" for n, s, c in nights]
    lines.append(f"involvements: {people[1]} rows, {people[0]} distinct pseudonymised persons")
    return "\n".join(lines)


def generate(hub: EmbeddedHub, nights: list[date], sizes: dict[str, int], seed: int) -> None:
    from devkit.synthetic import write_nights

    truths = write_nights(hub.partners_root, nights, sizes, seed, None)
    print(f"generated {len(truths)} partner files for nights {', '.join(n.isoformat() for n in nights)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="where the embedded hub lives (default var/demo)")
    parser.add_argument("--nights", nargs="+", type=date.fromisoformat, default=DEFAULT_NIGHTS)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--ui", action="store_true", help="afterwards, start `airflow standalone` on this setup")
    args = parser.parse_args(argv)

    hub = EmbeddedHub(args.root.resolve())
    with hub:
        generate(hub, args.nights, DEFAULT_SIZES, args.seed)
        hub.start_servers()
        for feed, server in hub.servers.items():
            print(f"partner SFTP server {feed}: 127.0.0.1:{server.port} (host key pinned in connection)")
        env_file = hub.write_env_file()
        hub.migrate()
        failures = 0
        for night in args.nights:
            for feed in load_contracts():
                done = hub.run_feed(feed, night, check=False)
                status = "ok" if done.returncode == 0 else f"FAILED (exit {done.returncode})"
                print(f"airflow dags test samverkan_{feed} for night {night}: {status}")
                if done.returncode != 0:
                    failures += 1
                    print(done.stdout[-4000:], file=sys.stderr)
        published = hub.data.published
        print(f"\npublished Parquet: {published}")
        for dataset in ("incidents", "involvements"):
            print(f"  {published / dataset}/night=YYYY-MM-DD/source=<feed>/<file>.parquet")
        print(f"run manifests: {published / '_manifests'}")
        print(f"private zone (landing, ledger, quarantine): {hub.data.private}\n")
        print(duckdb_summary(published))
        print(f"\nAirflow on this setup: source {env_file} && airflow standalone   (or: scripts/demo --ui)")
        if args.ui:
            print("starting airflow standalone; partner servers stay up until you press Ctrl-C")
            hub.airflow("standalone", check=False)
        return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
