"""The lägesbild: the partnership's shared picture of the bus square, as one offline HTML file.

``build_report`` reads the published Parquet (DuckDB, ``lagesbild_data``), protects every table
(``disclosure``: the shared small-count rule per table, then the LP attacker across all tables of
this release *and the previous release*, which is already out), evaluates every measure of the
register, and writes a release folder::

    <out>/<release>/lagesbild.html     self-contained: figures inline as data: PNGs, no script,
                                       a Content-Security-Policy that allows no remote origin
    <out>/<release>/figures/*.png      each figure on its own
    <out>/<release>/lagesbild.json     every released number (withheld ones as null): what the
                                       next release is audited against

``<release>`` is the ISO week the period ends in (e.g. ``2026-W47``): the report covers whole
weeks only, so it changes once a week, or when late files correct the past. Headings and text are
Swedish: the readers are the partnership's analysts and its steering group.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import math
import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from samverkan.analysis import lagesbild_figures as figures
from samverkan.analysis.disclosure import CountTable, audit
from samverkan.analysis.lagesbild_data import (
    HOUR_BANDS,
    WEEKDAYS,
    Period,
    Release,
    build,
    common_model,
    connect,
    scopes,
    since,
)
from samverkan.analysis.measures import Measure, load_measures
from samverkan.core.settings import Paths
from samverkan.sharing.agreements import DEFAULT_SUPPRESSION_THRESHOLD

log = logging.getLogger(__name__)

DATASET = "lagesbild"  # the dataset name agreements grant; also the folder under reports/
HTML_FILE, JSON_FILE, FIGURES = "lagesbild.html", "lagesbild.json", "figures"
TOO_FEW = "För få händelser för att avgöra"
Z95 = 1.959963984540054
CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
    "object-src 'none'"
)


@dataclass(frozen=True)
class ReportResult:
    release: str
    directory: Path
    html: Path
    figures: list[Path]
    data: Path


def report_dir(paths: Paths) -> Path:
    """Where releases are written: ``reports/lagesbild/`` (the outbox's report_release reads it)."""
    return paths.reports / DATASET


def release_id(release: Release) -> str:
    year, week, _ = release.period.end.isocalendar()
    return f"{year}-W{week:02d}"


# --- measures: the rate ratio ------------------------------------------------------------------


def rate_ratio(a0: int | None, a1: int | None, c0: int | None, c1: int | None, threshold: int) -> dict[str, Any]:
    """Difference in differences on the log scale: (after/before in the measure's areas) divided by
    (after/before in the comparison areas), same weeks for both, Poisson counts; a 95 % interval
    from the usual variance 1/a0 + 1/a1 + 1/c0 + 1/c1. Withheld or small counts tell nothing."""
    if a0 is None or a1 is None or c0 is None or c1 is None or min(a0, a1, c0, c1) < threshold:
        return {"rate_ratio": None, "low": None, "high": None, "verdict": TOO_FEW + "."}
    ratio = (a1 / a0) / (c1 / c0)
    se = math.sqrt(1 / a0 + 1 / a1 + 1 / c0 + 1 / c1)
    low, high = ratio * math.exp(-Z95 * se), ratio * math.exp(Z95 * se)
    if low > 1:
        verdict = f"Ökning: omkring {round((ratio - 1) * 100)} % fler händelser än i jämförelseområdena."
    elif high < 1:
        verdict = f"Minskning: omkring {round((1 - ratio) * 100)} % färre händelser än i jämförelseområdena."
    else:
        verdict = f"{TOO_FEW}: skillnaden mot jämförelseområdena ryms inom slumpen (intervallet omfattar 1)."
    return {"rate_ratio": ratio, "low": low, "high": high, "verdict": verdict}


def measure_results(release: Release, threshold: int) -> list[dict[str, Any]]:
    out = []
    for info in release.measures:
        m: Measure = info["measure"]
        summary = release.tables.get(f"measure:{m.id}:summary")
        if summary is None:
            result = {
                "rate_ratio": None,
                "low": None,
                "high": None,
                "verdict": f"{TOO_FEW}: inga veckor efter starten ännu, eller inga jämförelseområden.",
            }
            counts: tuple[int | None, ...] = (None, None, None, None)
        else:
            counts = (summary.value(0, 0), summary.value(0, 1), summary.value(1, 0), summary.value(1, 1))
            result = rate_ratio(*counts, threshold)
        out.append(
            {
                "measure": m.id,
                "title": m.title,
                "kind": m.kind,
                "areas": list(m.areas),
                "start": m.start.isoformat(),
                "end": m.end.isoformat() if m.end else None,
                "owner": m.owner,
                "weeks_before": len(info["before"]),
                "weeks_after": len(info["after"]),
                "control_areas": list(info["control"]),
                "counts": dict(zip(("measure_before", "measure_after", "control_before", "control_after"), counts)),
                **result,
            }
        )
    return out


# --- releases: the previous one, as it went out -----------------------------------------------------


def releases(out: Path) -> list[Path]:
    return sorted(p.parent for p in Path(out).glob(f"*/{JSON_FILE}"))


def _previous(out: Path) -> dict[str, Any] | None:
    """The latest release's released numbers, or None before the first release."""
    found = releases(out)
    return json.loads((found[-1] / JSON_FILE).read_text(encoding="utf-8")) if found else None


def released_tables(
    release: Path | dict[str, Any], published: Path, measures: Sequence[Measure], threshold: int, *, con=None
) -> list[CountTable]:
    """A release's tables, rebuilt from the data it was built from and carrying exactly the
    suppression it was released with, marked fixed. A table whose published numbers differ from the
    rebuild (a late file corrected the past) cannot be laid over another release and is left out."""
    stored = release if isinstance(release, dict) else json.loads((release / JSON_FILE).read_text(encoding="utf-8"))
    rebuilt = build(published, date.fromisoformat(stored["as_of"]), measures, threshold, weeks=stored["weeks"], con=con)
    tables = []
    for spec in stored["tables"]:
        t = rebuilt.tables.get(spec["name"])
        if t is None or not _apply(t, spec, threshold):
            log.info(
                "lägesbild: %s of release %s cannot be compared with this one; not audited together",
                spec["name"],
                stored["release"],
            )
            continue
        t.name = f"{stored['release']}:{t.name}"
        t.fixed = True
        tables.append(t)
    return tables


def _apply(t: CountTable, spec: dict[str, Any], threshold: int) -> bool:
    values = spec["values"]
    if [str(r) for r in t.rows] != spec["rows"] or [str(c) for c in t.cols] != spec["cols"]:
        return False
    if spec.get("margins", True) != t.margins:
        return False
    for i, row in enumerate(values):
        for j, v in enumerate(row):
            if v is not None and v != t.extended[i, j]:
                return False
            t.suppressed[i, j] = v is None and t.shown[i, j]
    t.primary = (t.extended > 0) & t.suppressed & (t.extended < threshold)
    return True


# --- building -----------------------------------------------------------------------------------


def build_report(
    published: Path,
    out: Path,
    *,
    as_of: date | None = None,
    threshold: int = DEFAULT_SUPPRESSION_THRESHOLD,
    weeks: int = 12,
    measures: Sequence[Measure] | None = None,
    now: datetime | None = None,
) -> ReportResult:
    """Build, protect, audit against the previous release, and write the release folder atomically."""
    measures = list(load_measures() if measures is None else measures)
    as_of = as_of or _latest_night(published)
    stored = _previous(out)
    dates = [(as_of, weeks)] + ([(date.fromisoformat(stored["as_of"]), stored["weeks"])] if stored else [])
    con = connect(published, max(Period(d, w).end for d, w in dates), min(since(d, measures, w) for d, w in dates))
    try:
        release = build(published, as_of, measures, threshold, weeks=weeks, con=con)
        previous = released_tables(stored, published, measures, threshold, con=con) if stored else []
    finally:
        con.close()
    audit([*release.tables.values(), *previous], threshold)
    results = measure_results(release, threshold)
    rid = release_id(release)
    pngs = _figures(release, results)
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    document = _document(release, rid, results, pngs, threshold, now)
    data = {
        "release": rid,
        "as_of": as_of.isoformat(),
        "weeks": weeks,
        "threshold": threshold,
        "period": {
            "current": [release.period.current[0].isoformat(), release.period.end.isoformat()],
            "previous": [
                release.period.previous[0].isoformat(),
                (release.period.current[0] - timedelta(days=1)).isoformat(),
            ],
        },
        "created_at_utc": now.isoformat(),
        "sources": release.sources,
        "tables": [t.released() for t in release.tables.values()],
        "measures": results,
    }
    return _write(Path(out), rid, document, pngs, data)


def _latest_night(published: Path) -> date:
    nights = [date.fromisoformat(p.name.split("=", 1)[1]) for p in (published / "incidents").glob("night=*")]
    if not nights:
        raise FileNotFoundError(f"no published incidents under {published}")
    return max(nights)


def _write(out: Path, rid: str, document: str, pngs: dict[str, bytes], data: dict[str, Any]) -> ReportResult:
    """Stage beside the releases, then rename: a reader sees a whole release or the old one."""
    out.mkdir(parents=True, exist_ok=True)
    staging = out / f".{rid}-{uuid.uuid4().hex}"
    (staging / FIGURES).mkdir(parents=True)
    try:
        for name, content in pngs.items():
            (staging / FIGURES / f"{name}.png").write_bytes(content)
        (staging / HTML_FILE).write_text(document, encoding="utf-8")
        (staging / JSON_FILE).write_text(
            json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8"
        )
        final = out / rid
        old = None
        if final.exists():
            old = out / f".replaced-{uuid.uuid4().hex}"
            os.rename(final, old)
        os.rename(staging, final)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ReportResult(rid, final, final / HTML_FILE, sorted((final / FIGURES).glob("*.png")), final / JSON_FILE)


# --- figures and page ------------------------------------------------------------------------------


def _figures(release: Release, results: list[dict[str, Any]]) -> dict[str, bytes]:
    t, n = release.tables, release.period.weeks
    pngs: dict[str, bytes] = {}
    for scope in scopes():
        weeks = t[f"weekly:{scope.id}"]
        pngs[f"veckor-{scope.id}"] = figures.weekly(
            weeks, n, f"Händelser per vecka: {scope.title}", release.without_data(weeks.cols)
        )
        pngs[f"heatmap-{scope.id}"] = figures.grids(
            [
                (
                    t[f"heatmap:{scope.id}:{s}"],
                    _source(s),
                    WEEKDAYS,
                    [str(c) for c in t[f"heatmap:{scope.id}:{s}"].cols],
                )
                for s in [*release.sources, "alla"]
            ],
            f"Veckodag × tid på dygnet, {scope.title}",
        )
    pngs["karta"] = figures.cell_map(
        t["map"], common_model().get("area_outlines") or {}, "Händelser per 100 m-ruta (denna period)"
    )
    areas = list(common_model()["areas"])
    pngs["unga"] = figures.grids(
        [
            (t["youth:weekday"], "område × veckodag", areas, WEEKDAYS),
            (t["youth:hours"], "område × tid på dygnet", areas, HOUR_BANDS),
        ],
        "Unga 15–24 år, inblandningar",
    )
    for r, info in zip(results, release.measures):
        weekly = t.get(f"measure:{r['measure']}:weekly")
        if weekly is not None:
            pngs[f"atgard-{r['measure']}"] = figures.measure(weekly, len(info["before"]), r["title"])
    return pngs


def _source(source: str) -> str:
    return "alla källor" if source == "alla" else source


NO_DATA = '<span class="n">ingen data</span>'


def _fmt(value: int | None) -> str:
    return '<span class="s">undertryckt</span>' if value is None else str(value)


def _table(
    t: CountTable,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    *,
    total: str = "totalt",
    no_data: Sequence[bool] = (),
) -> str:
    """``no_data``: columns (weeks) before the first published night, written "ingen data"."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in [*col_labels, total])
    body = []
    empty = [*no_data, *[False] * (len(col_labels) + 1 - len(no_data))]
    for i, label in enumerate([*row_labels, total]):
        cells = "".join(f"<td>{NO_DATA if empty[j] else _fmt(t.value(i, j))}</td>" for j in range(len(col_labels) + 1))
        body.append(f"<tr><th>{html.escape(str(label))}</th>{cells}</tr>")
    return f"<table><tr><th></th>{head}</tr>{''.join(body)}</table>"


def _coverage(release: Release) -> str:
    """Where the history starts inside the compared weeks, the page says so once."""
    p = release.period
    if not any(release.without_data(p.previous + p.current)):
        return ""
    first = release.first_night.isoformat() if release.first_night else "–"
    return (
        f"<p>Publicerade data finns från {first}. Veckor före det visas som {NO_DATA} (grått i "
        "figurerna), inte som 0, och ingen förändring räknas mot dem.</p>"
    )


def _img(pngs: dict[str, bytes], name: str, alt: str) -> str:
    data = base64.b64encode(pngs[name]).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"><figcaption>'
        f"{html.escape(alt)} (figures/{html.escape(name)}.png)</figcaption></figure>"
    )


def _categories(release: Release, scope_id: str) -> str:
    cur, prev = release.tables[f"categories:{scope_id}:current"], release.tables[f"categories:{scope_id}:previous"]
    cols = [*release.sources, "alla"]
    no_previous = all(release.without_data(release.period.previous))
    head = "".join(f"<th>{html.escape(c)}: denna</th><th>föregående</th><th>förändring</th>" for c in cols)
    rows = []
    for i, label in enumerate([*map(str, cur.rows), "totalt"]):
        cells = []
        for j in range(len(cols)):
            a, b = cur.value(i, j), prev.value(i, j)
            change = "–" if a is None or b is None or no_previous else f"{a - b:+d}"
            cells.append(f"<td>{_fmt(a)}</td><td>{NO_DATA if no_previous else _fmt(b)}</td><td>{change}</td>")
        rows.append(f"<tr><th>{html.escape(label)}</th>{''.join(cells)}</tr>")
    return f"<table><tr><th>slag</th>{head}</tr>{''.join(rows)}</table>"


def _overlap(release: Release, threshold: int) -> str:
    """Weekdays and times where two or more partners each report at least ``threshold`` incidents,
    read off the heatmaps (no new numbers: every count shown is one the heatmaps already show)."""
    parts = []
    for scope in scopes():
        tables = {s: release.tables[f"heatmap:{scope.id}:{s}"] for s in release.sources}
        cols = next(iter(tables.values())).cols if tables else []
        rows = []
        for i, day in enumerate(WEEKDAYS):
            for j, slot in enumerate(cols):
                counts = {s: t.value(i, j) for s, t in tables.items()}
                if sum(1 for v in counts.values() if v is not None and v >= threshold) >= 2:
                    cells = "".join(f"<td>{_fmt(counts[s])}</td>" for s in release.sources)
                    rows.append(f"<tr><th>{day}</th><th>{html.escape(str(slot))}</th>{cells}</tr>")
        head = "".join(f"<th>{html.escape(s)}</th>" for s in release.sources)
        body = (
            f"<table><tr><th>dag</th><th>tid</th>{head}</tr>{''.join(rows)}</table>"
            if rows
            else f"<p>Ingen dag och tid där två eller fler partner vardera rapporterar minst {threshold} händelser.</p>"
        )
        parts.append(f"<h3>{html.escape(scope.title)}</h3>{body}")
    return "".join(parts)


def _measures(results: list[dict[str, Any]], pngs: dict[str, bytes]) -> str:
    if not results:
        return "<p>Åtgärdsregistret (measures/) är tomt.</p>"
    parts = []
    for r in results:
        c = r["counts"]
        interval = (
            "–" if r["rate_ratio"] is None else f"{r['rate_ratio']:.2f} (95 % intervall {r['low']:.2f}–{r['high']:.2f})"
        )
        parts.append(f"""<h3>{html.escape(r["title"])}</h3>
<p>Område: {html.escape(", ".join(r["areas"]))}. Från {r["start"]}{" till " + r["end"] if r["end"] else ""}.
Ansvarig: {html.escape(r["owner"])}. Jämförelse: {html.escape(", ".join(r["control_areas"]) or "inga")}.
Veckor före: {r["weeks_before"]}, efter: {r["weeks_after"]}.</p>
<table><tr><th></th><th>före</th><th>efter</th></tr>
<tr><th>åtgärdens område</th><td>{_fmt(c["measure_before"])}</td><td>{_fmt(c["measure_after"])}</td></tr>
<tr><th>jämförelseområden</th><td>{_fmt(c["control_before"])}</td><td>{_fmt(c["control_after"])}</td></tr></table>
<p>Kvot (rate ratio): {interval}</p>
<p class="verdict"><strong>{html.escape(r["verdict"])}</strong></p>""")
        if f"atgard-{r['measure']}" in pngs:
            parts.append(_img(pngs, f"atgard-{r['measure']}", f"Händelser per vecka: {r['title']}"))
    return "\n".join(parts)


STYLE = """body{font-family:sans-serif;max-width:1200px;margin:1em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px;
text-align:right}th{background:#f4f4f4}.s{color:#c0392b;font-style:italic}img{max-width:100%}
figure{margin:.5em 0}figcaption{font-size:11px;color:#666}.verdict{font-size:14px}.n{color:#777}"""


def _document(
    release: Release, rid: str, results: list[dict[str, Any]], pngs: dict[str, bytes], threshold: int, now: datetime
) -> str:
    p, t = release.period, release.tables
    areas = list(common_model()["areas"])
    sections = [
        f"""<h1>Lägesbild: Gustav III:s torg och centrala Östersund</h1>
<p>Utgåva {rid}. Period: {p.current[0]}–{p.end} ({p.weeks} veckor) jämfört med
{p.previous[0]}–{p.current[0] - timedelta(days=1)}.
Källor: {html.escape(", ".join(release.sources))}. Byggd {now.isoformat()} ur de publicerade
(pseudonymiserade) data.</p>
{_coverage(release)}<p>Alla tal följer regeln för små tal: färre än {threshold} visas inte (<span class="s">undertryckt</span>,
randat i figurerna, aldrig som 0), och fler tal döljs där en summa annars skulle avslöja dem.</p>""",
        "<h2>1. Händelser per vecka</h2>",
    ]
    for scope in scopes():
        weekly = t[f"weekly:{scope.id}"]
        sections.append(_img(pngs, f"veckor-{scope.id}", f"Händelser per vecka: {scope.title}"))
        sections.append(
            f"<details><summary>Tabell: {html.escape(scope.title)}</summary>"
            f"{_table(weekly, weekly.rows, [str(w) for w in weekly.cols], no_data=release.without_data(weekly.cols))}"
            "</details>"
        )
    sections.append("<h2>2. Veckodag och timme</h2>")
    for scope in scopes():
        sections.append(
            _img(pngs, f"heatmap-{scope.id}", f"Veckodag × tid på dygnet per källa och alla: {scope.title}")
        )
    sections.append("<h2>3. Typ av händelse per källa och förändring</h2>")
    for scope in scopes():
        sections.append(f"<h3>{html.escape(scope.title)}</h3>{_categories(release, scope.id)}")
    sections.append(
        "<h2>4. Karta: händelser per 100 m-ruta</h2><p>Endast händelser med koordinat "
        "(generaliserade till 100 m). Områdenas gränser ur den gemensamma modellen.</p>"
    )
    sections.append(_img(pngs, "karta", "Händelser per 100 m-ruta"))
    sections.append("<h2>5. Platser och tider där flera partner rapporterar</h2>" + _overlap(release, threshold))
    sections.append(
        "<h2>6. Återkommande inblandning</h2><p>Antal personer (pseudonymiserade, räknade i navet) "
        "inblandade i minst 3 händelser de senaste 90 dagarna, efter åldersgrupp och roll.</p>"
    )
    sections.append(_table(t["repeat"], [str(r) for r in t["repeat"].rows], [str(c) for c in t["repeat"].cols]))
    sections.append("<h2>7. Unga 15–24 år (SSPF)</h2><p>Inblandningar av personer 15–24 år, denna period.</p>")
    sections.append(_img(pngs, "unga", "Unga 15–24 år: område × veckodag och område × tid på dygnet"))
    sections.append(_table(t["youth:weekday"], areas, list(WEEKDAYS)))
    sections.append(_table(t["youth:hours"], areas, list(HOUR_BANDS)))
    sections.append(
        "<h2>8. Åtgärder och deras effekt</h2><p>Händelser per vecka i åtgärdens område före och "
        "efter starten, mot samma veckor i områden utan åtgärd; kvoten (efter/före i området delat "
        "med efter/före i jämförelseområdena) med 95 % intervall.</p>" + _measures(results, pngs)
    )
    return (
        f'<!doctype html><html lang="sv"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>Lägesbild {rid}</title><style>{STYLE}</style></head><body>{''.join(sections)}</body></html>"
    )


def main(argv: list[str] | None = None) -> int:
    """``samverkan lagesbild``: a release from the published data under the data root, as the
    lägesbild DAG builds it (audited against the previous release), and where to look."""
    import argparse
    import sys

    from samverkan.core.settings import paths

    parser = argparse.ArgumentParser(
        prog="samverkan lagesbild", description="Build the lägesbild from the published data (as its DAG does)."
    )
    parser.add_argument(
        "--as-of", type=date.fromisoformat, help="last night, YYYY-MM-DD (default: the newest published)"
    )
    parser.add_argument("--weeks", type=int, default=12, help="whole ISO weeks compared (default 12)")
    args = parser.parse_args(argv)
    p = paths().ensure()
    try:
        result = build_report(p.published, report_dir(p), as_of=args.as_of, weeks=args.weeks)
    except (FileNotFoundError, ValueError) as e:  # no published night yet, a measures file that does not load
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"lägesbild {result.release}: {result.html}")
    print(f"released numbers: {result.data}; figures: {len(result.figures)} in {result.html.parent / FIGURES}")
    return 0
