"""Benchmark of the lägesbild build: a year of published data at a given size, two releases.

``python -m devkit.lagesbild_benchmark --work DIR [--per-night 170]`` writes a year of
published-shaped Parquet (devkit.published; about ``per-night`` incidents a night over three
sources and five areas, the demo's size by default) and builds the report twice, each in its own
process: the release of the week before, then the last one (audited against the first, as every
weekly run is). Prints the build time and peak RSS of each as JSON. Not a timed test: figures
depend on the machine (docs/lagesbild.md records them).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

FIRST = date(2025, 11, 24)  # a Monday; 52 weeks end on Sunday 2026-11-22
AREAS, SOURCES = 5, 3


def _build(published: str, out: str, as_of: str) -> int:
    from samverkan.analysis.lagesbild import build_report

    started, cpu = time.perf_counter(), time.process_time()
    result = build_report(Path(published), Path(out), as_of=date.fromisoformat(as_of))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "release": result.release,
                "seconds": round(time.perf_counter() - started, 2),
                "cpu_seconds": round(time.process_time() - cpu, 2),  # a loaded machine inflates the wall time
                "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
                "load_average": os.getloadavg()[0],
            }
        )
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--per-night", type=float, default=170.0, help="incidents per night, all sources (demo: ~170)")
    parser.add_argument("--weeks", type=int, default=52)
    parser.add_argument("--build", nargs=3, metavar=("PUBLISHED", "OUT", "AS_OF"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.build:
        return _build(*args.build)
    from devkit.published import write_published

    started = time.perf_counter()
    published = write_published(
        args.work,
        FIRST,
        7 * args.weeks,
        rate=args.per_night / AREAS / SOURCES,
        effects={"gustav_iii_torg": (date(2026, 10, 12), 0.5)},
    )
    rows = sum(1 for _ in (published / "incidents").rglob("*.parquet"))
    print(json.dumps({"generated_files": rows, "seconds": round(time.perf_counter() - started, 1)}))
    last = FIRST + timedelta(weeks=args.weeks, days=-1)
    for as_of in (last - timedelta(days=7), last):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "devkit.lagesbild_benchmark",
                "--work",
                str(args.work),
                "--build",
                str(published),
                str(args.work / "out"),
                as_of.isoformat(),
            ],
            check=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
