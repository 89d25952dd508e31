"""Weeks of synthetic partner history with a known measure effect, and the truth to check it by.

``write_history`` writes every night of ``weeks`` whole weeks for each feed with
``devkit.synthetic.write_night`` and then, for every measure of the register with an effect,
thins the incidents in that measure's areas from its start on: each incident is kept with
probability ``keep`` (drawn from a seed and its id, so the same seed gives the same files). A
measure without an effect (``keep`` 1.0, or not listed) is left alone, so an honest report says it
cannot tell. ``history_truth.json`` then holds, per feed, area and week, the incidents actually
written, and per measure the weekly means in its areas before and after its start: the figures
the lägesbild and the catalog must reproduce from the published data.

Faults are not injected here (the resilience tests do that), so every written incident is
published and the truth is exact.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import os
import random
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from devkit.leakscan import PersonalValues
from devkit.synthetic import Population, derive_seed, write_night

# Demo sizes per night, scaled down from Östersund's (police 400, transit 150, guards 80) so
# twelve weeks import within the demo's time.
HISTORY_SIZES = {"police": 120, "transit": 50, "guards": 30, "felanmalan": 15, "uppsokande": 6}
DEFAULT_EFFECTS = {"gustav_iii_torg_lighting": 0.5}  # keep half: incidents halve after the start
TRUTH_FILE = "history_truth.json"


@dataclass(frozen=True)
class Effect:
    """Incidents in ``areas`` on nights from ``start`` on are kept with probability ``keep``."""

    measure: str
    areas: frozenset[str]
    start: date
    keep: float


@dataclass(frozen=True)
class _Format:
    encoding: str
    delimiter: str
    newline: str
    bom: bool
    id_column: int
    place_column: int


CSV_FORMATS = {
    "police": _Format("cp1252", ";", "\r\n", False, 0, 3),
    "guards": _Format("utf-8", ",", "\n", True, 0, 3),
    "felanmalan": _Format("utf-8", ";", "\r\n", True, 0, 2),
}
COUNTS_ONLY = {"uppsokande"}  # aggregate feeds: counts per place and slot, no incidents to thin


# --- areas, independently of the pipeline ---------------------------------------------------------


def area_matcher() -> dict[str, str]:
    """Alias (before the first comma, no house number, case-folded) → shared area id."""
    from samverkan.core.contracts import common_model

    aliases: dict[str, str] = {}
    for area, spec in common_model()["areas"].items():
        names = spec.get("aliases", spec.get("names", [])) if isinstance(spec, dict) else spec
        for name in names:
            aliases[_place_key(name)] = area
    return aliases


def _place_key(text: str) -> str:
    head = text.split(",")[0]
    return re.sub(r"\s+", " ", re.sub(r"\b\d+[A-Za-z]?\b", " ", head)).strip().casefold()


def area_of(place: str | None, aliases: dict[str, str]) -> str | None:
    return aliases.get(_place_key(place)) if place else None


# --- thinning --------------------------------------------------------------------------------


def _kept(seed: int, feed: str, incident: str, keep: float) -> bool:
    return random.Random(derive_seed(seed, "thin", feed, incident)).random() < keep


def _read_csv(path: Path, fmt: _Format) -> tuple[list[str], list[list[str]]]:
    text = path.read_bytes().decode("utf-8-sig" if fmt.bom else fmt.encoding)
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=fmt.delimiter, quotechar='"'))
    return rows[0], rows[1:]


def _write_csv(path: Path, fmt: _Format, header: list[str], rows: list[list[str]]) -> None:
    buf = io.StringIO(newline="")
    writer = csv.writer(
        buf, delimiter=fmt.delimiter, quotechar='"', lineterminator=fmt.newline, quoting=csv.QUOTE_MINIMAL
    )
    writer.writerow(header)
    writer.writerows(rows)
    data = buf.getvalue().encode(fmt.encoding)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes((b"\xef\xbb\xbf" if fmt.bom else b"") + data)
    os.replace(tmp, path)


def _incidents_csv(feed: str, path: Path, aliases: dict[str, str]) -> dict[str, str | None]:
    fmt = CSV_FORMATS[feed]
    _, rows = _read_csv(path, fmt)
    return {r[fmt.id_column]: area_of(r[fmt.place_column], aliases) for r in rows}


def _thin_csv(feed: str, path: Path, drop: set[str]) -> None:
    fmt = CSV_FORMATS[feed]
    header, rows = _read_csv(path, fmt)
    _write_csv(path, fmt, header, [r for r in rows if r[fmt.id_column] not in drop])


def _transit_objects(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _incidents_transit(path: Path, aliases: dict[str, str]) -> dict[str, str | None]:
    return {o["incident_id"]: area_of(o.get("stop_name"), aliases) for o in _transit_objects(path)}


def _thin_transit(path: Path, drop: set[str]) -> None:
    kept = [o for o in _transit_objects(path) if o["incident_id"] not in drop]
    tmp = path.with_name(path.name + ".tmp")  # the partner's own upload convention
    with open(tmp, "wb") as raw, gzip.GzipFile(filename=path.name[:-3], mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write("".join(json.dumps(o, ensure_ascii=False) + "\n" for o in kept).encode("utf-8"))
    os.replace(tmp, path)


def incidents_in(feed: str, path: Path, aliases: dict[str, str]) -> dict[str, str | None]:
    """Incident id → area of every incident in a written partner file."""
    if feed in COUNTS_ONLY:
        return {}
    return _incidents_transit(path, aliases) if feed == "transit" else _incidents_csv(feed, path, aliases)


def thin(feed: str, path: Path, drop: set[str]) -> None:
    """Rewrite the partner file without the incidents in ``drop``, in the partner's own format."""
    if not drop:
        return
    if feed == "transit":
        _thin_transit(path, drop)
    else:
        _thin_csv(feed, path, drop)


# --- the history -----------------------------------------------------------------------------


def effects_from_register(effects: dict[str, float]) -> list[Effect]:
    """The register's measures that get an effect, with their areas and start from measures/."""
    from samverkan.analysis.measures import load_measures

    measures = {m.id: m for m in load_measures()}
    unknown = set(effects) - set(measures)
    if unknown:
        raise ValueError(f"no measure {', '.join(sorted(unknown))} in the register (measures/)")
    return [Effect(m, frozenset(measures[m].areas), measures[m].start, keep) for m, keep in effects.items()]


def history_nights(first_monday: date, weeks: int) -> list[date]:
    if first_monday.weekday() != 0:
        raise ValueError(f"{first_monday} is not a Monday: the history is whole ISO weeks")
    return [first_monday + timedelta(days=d) for d in range(7 * weeks)]


def week_of(night: date) -> str:
    return (night - timedelta(days=night.weekday())).isoformat()


def write_history(
    out_root: Path,
    first_monday: date,
    weeks: int,
    *,
    sizes: dict[str, int] | None = None,
    seed: int = 2026,
    effects: Iterable[Effect] = (),
    population: Population | None = None,
    truth_path: Path | None = None,
    collect: PersonalValues | None = None,
) -> dict[str, Any]:
    """Write the partner files of every night and return (and write) the truth.

    ``collect`` gathers every personal value written, for a leak scan of what the hub makes of it.
    """
    sizes = sizes or HISTORY_SIZES
    effects = list(effects)
    population = population or Population(seed)
    aliases = area_matcher()
    weekly: dict[str, dict[str, dict[str, int]]] = {}  # feed -> area -> week -> incidents
    nights = history_nights(first_monday, weeks)
    for night in nights:
        for feed, rows in sizes.items():
            written = write_night(feed, night, out_root, rows=rows, population=population, seed=seed)
            path = written.path
            if collect is not None:
                for f in fields(PersonalValues):
                    getattr(collect, f.name).update(getattr(written.personal_values, f.name))
            areas = incidents_in(feed, path, aliases)
            drop = {
                i
                for i, a in areas.items()
                for e in effects
                if a in e.areas and night >= e.start and not _kept(seed, feed, i, e.keep)
            }
            thin(feed, path, drop)
            for incident, area in areas.items():
                if incident not in drop:
                    cell = weekly.setdefault(feed, {}).setdefault(area or "(none)", {})
                    cell[week_of(night)] = cell.get(week_of(night), 0) + 1
    truth = {
        "first_night": nights[0].isoformat(),
        "last_night": nights[-1].isoformat(),
        "weeks": weeks,
        "seed": seed,
        "sizes": sizes,
        "weekly_incidents": weekly,
        "measures": [_measure_truth(e, weekly, nights) for e in effects],
    }
    if truth_path is not None:
        truth_path.parent.mkdir(parents=True, exist_ok=True)
        truth_path.write_text(json.dumps(truth, indent=2, ensure_ascii=False), encoding="utf-8")
    return truth


def _mean(xs: list[int]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _measure_truth(effect: Effect, weekly: dict[str, dict[str, dict[str, int]]], nights: list[date]) -> dict[str, Any]:
    """Weekly incidents (all feeds) in the measure's areas before and after its start."""
    weeks = sorted({week_of(n) for n in nights})
    per_week = {w: sum(weekly[f].get(a, {}).get(w, 0) for f in weekly for a in effect.areas) for w in weeks}
    before = [per_week[w] for w in weeks if w < effect.start.isoformat()]
    after = [per_week[w] for w in weeks if w >= effect.start.isoformat()]
    return {
        "measure": effect.measure,
        "areas": sorted(effect.areas),
        "start": effect.start.isoformat(),
        "keep": effect.keep,
        "expected_rate_ratio": effect.keep,
        "weekly": per_week,
        "mean_weekly_before": _mean(before),
        "mean_weekly_after": _mean(after),
        "observed_rate_ratio": (_mean(after) / _mean(before)) if after and _mean(before) else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.history", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="partners' root (one folder per feed below it)")
    parser.add_argument("--first-monday", type=date.fromisoformat, required=True)
    parser.add_argument("--weeks", type=int, default=12)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--truth", type=Path, help=f"where to write the truth (default <out>/{TRUTH_FILE})")
    args = parser.parse_args(argv)
    truth = write_history(
        args.out,
        args.first_monday,
        args.weeks,
        seed=args.seed,
        effects=effects_from_register(DEFAULT_EFFECTS),
        truth_path=args.truth or args.out / TRUTH_FILE,
    )
    json.dump(truth["measures"], sys.stdout, indent=2, ensure_ascii=False)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
