"""The analysts' catalog: one DuckDB file of views over the published Parquet, documented.

An analyst should not have to know the dataset layout, the partners' own column names or where
the taxonomies live. ``python -m samverkan.analysis.catalog`` writes ``samverkan.duckdb`` holding
only views (no copies of data): ``incidents`` and ``involvements`` over every published night of
every feed, one ``incidents_<feed>`` / ``involvements_<feed>`` view per source, and small views
of the common model (``areas``, ``categories``, ``category_mappings``, ``roles``, ``age_bands``)
and of the measures register (``measures``). Every view and column carries a COMMENT generated
from the contracts and the common model, and the same text is written beside the database as
``DATA_DICTIONARY.md``, so the two cannot drift apart.

The dataset views read a glob with hive partitioning, so nights published after the catalog was
built are seen by the next query without a refresh; the code-list and measure views are
rebuilt by running the command again (the nightly and lägesbild runs may do that).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from samverkan.core.contracts import Contract, common_model, load_contracts
from samverkan.core.settings import Paths
from samverkan.core.settings import paths as default_paths

CATALOG_NAME = "samverkan.duckdb"
DICTIONARY_NAME = "DATA_DICTIONARY.md"
MODEL_SECTION = {"incidents": "incident", "involvements": "involvements", "observations": "observations"}
NIGHT_DOC = "date — the night the partner's file covers (00:00–24:00 local time); the `night=` partition"

# Which published columns a contract's `model:` entry feeds.
MODEL_OUTPUTS = {
    "incidents": {
        "key": ("incident_id",),
        "occurred_at": ("occurred_at_utc", "occurred_at_local"),
        "reported_at": ("reported_at_utc",),
        "place": ("place", "area"),
        "coord_n": ("coord_n",),
        "coord_e": ("coord_e",),
        "stop_id": ("stop_id",),
        "line": ("line",),
        "vehicle_id": ("vehicle_id",),
        "category": ("category", "source_category", "category_kind"),
        "severity": ("severity",),
        "police_notified": ("police_notified",),
        "staff": ("staff_pseudonym",),
        "staff_role": ("staff_role",),
        "description": ("description",),
    },
    "involvements": {
        "person": ("person_pseudonym",),
        "role": ("role", "source_role"),
        "age": ("age_band",),
        "gender": ("gender",),
    },
    "observations": {
        "slot_start": ("slot_start_utc", "slot_start_local"),
        "slot_end": ("slot_end_local",),
        "place": ("place", "area"),
        "counts": ("measure", "count"),
    },
}


class CatalogError(RuntimeError):
    """The catalog cannot be built; the message says what to do."""


@dataclass
class View:
    name: str
    sql: str
    comment: str
    columns: dict[str, str] = field(default_factory=dict)  # column -> comment
    types: dict[str, str] = field(default_factory=dict)  # filled from DuckDB after creation


@dataclass(frozen=True)
class Catalog:
    database: Path
    dictionary: Path
    views: tuple[str, ...]
    notes: tuple[str, ...]


# --- SQL text ----------------------------------------------------------------------------------


def _lit(value: Any) -> str:
    """A SQL literal; values are config text (names, descriptions), never data."""
    if value is None:
        return "NULL"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_lit(v) for v in value) + "]::VARCHAR[]" if value else "[]::VARCHAR[]"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _values_view(rows: list[tuple], columns: list[str], types: list[str]) -> str:
    """A view over literal rows (code lists): typed even when there is no row."""
    casts = ", ".join(f"CAST({_ident(c)} AS {t}) AS {_ident(c)}" for c, t in zip(columns, types))
    if not rows:
        nulls = ", ".join(f"NULL AS {_ident(c)}" for c in columns)
        return f"SELECT {casts} FROM (SELECT {nulls}) WHERE FALSE"
    body = ", ".join("(" + ", ".join(_lit(v) for v in row) + ")" for row in rows)
    return f"SELECT {casts} FROM (VALUES {body}) AS t({', '.join(_ident(c) for c in columns)})"


def dataset_glob(data: Paths, dataset: str) -> str:
    return str(data.dataset(dataset) / "night=*" / "source=*" / "*.parquet")


def _has_files(data: Paths, dataset: str) -> bool:
    return any(data.dataset(dataset).glob("night=*/source=*/*.parquet"))


# --- what the views say ------------------------------------------------------------------------


# What the common model leaves at a bare type ("reported_at_utc: timestamp[us, UTC]").
UNDESCRIBED = {
    "reported_at_utc": "when the partner registered the incident (UTC)",
    "police_notified": "whether the police were notified",
    "staff_role": "role of the reporting employee or guard",
    "source_role": "the partner's own role value",
    "age_band": "age band at the time of the incident (see age_bands); exact ages are never published",
    "gender": "gender as the partner records it",
}
HANDLED = {"pseudonymise": "pseudonymised", "generalise": "generalised", "scrub": "scrubbed"}


def _plain(text: Any) -> str:
    return " ".join(str(text).split())


def _meaning(column: str, text: Any, model: dict[str, Any]) -> str:
    """The common model writes ``"type — meaning"``; the catalog shows the type itself, so only the
    meaning is kept; a bare type borrows the meaning another dataset gives the same column."""
    if " — " in str(text):
        return _plain(str(text).split(" — ", 1)[1])
    for dataset in model.values():
        other = str(dataset.get("columns", {}).get(column, ""))
        if " — " in other:
            return _plain(other.split(" — ", 1)[1])
    return UNDESCRIBED.get(column, column.replace("_", " "))


def _source_names(contract: Contract) -> dict[str, str]:
    names = {}
    for parent, column in contract.all_columns():
        names[column.name] = f"{parent.source}[].{column.source}" if parent else column.source
    return names


def provenance(contract: Contract, ref: Any) -> str:
    """Where a model entry comes from in the partner's file, in the partner's own words."""
    names = _source_names(contract)
    if isinstance(ref, str):
        return f"`{names.get(ref, ref)}`"
    if isinstance(ref, dict):
        if "value" in ref:
            return f"always {ref['value']!r}"
        if "column" in ref:
            mapped = " (mapped to the shared codes)" if ref.get("map") else ""
            return f"`{names.get(ref['column'], ref['column'])}`{mapped}"
        if all(k in names for k in ref):  # {partner column: shared code}, e.g. an aggregate's counts
            return ", ".join(f"`{names[k]}` as {v}" for k, v in ref.items())
        parts = [f"`{names.get(v, v)}`" for v in ref.values() if isinstance(v, str)]
        return " + ".join(parts) or "derived"
    return "derived"


def _handling(contract: Contract, ref: Any) -> str:
    column = ref if isinstance(ref, str) else ref.get("column") if isinstance(ref, dict) else None
    for _, c in contract.all_columns():
        if c.name == column and c.personal:
            return f"; personal data, {HANDLED[c.handling]} before publishing" if c.handling in HANDLED else ""
    return ""


def dataset_columns(dataset: str) -> dict[str, str]:
    datasets = common_model()["datasets"]
    columns = {name: _meaning(name, text, datasets) for name, text in datasets[dataset]["columns"].items()}
    columns["night"] = _meaning("night", NIGHT_DOC, datasets)
    return columns


def source_columns(contract: Contract, dataset: str) -> dict[str, str]:
    """The common model's meaning of each column plus where this partner's value comes from."""
    columns = dataset_columns(dataset)
    spec = contract.raw["model"][MODEL_SECTION[dataset]]
    fed: dict[str, str] = {}
    for key, ref in spec.items():
        for out in MODEL_OUTPUTS[dataset].get(key, ()):
            fed[out] = f"{provenance(contract, ref)}{_handling(contract, ref)}"
    if dataset in ("incidents", "involvements"):  # published keyed, like a pseudonym (ingest.model)
        key = provenance(contract, contract.raw["model"]["incident"]["key"])
        fed["incident_id"] = f"{key}, keyed (the partner's number itself is not published)"
    for column in columns:
        if column in ("source", "night"):
            continue
        where = fed.get(column)
        if where:
            columns[column] += f" — {contract.id}: {'' if where.startswith('always') else 'from '}{where}"
        elif column not in ("source_file", "incident_id"):
            columns[column] += f" — {contract.id}: not sent by this partner (always null)"
    return columns


def _source_comment(contract: Contract, dataset: str) -> str:
    partner = contract.raw.get("partner", {}).get("name", contract.id)
    description = " ".join(str(contract.raw.get("description", "")).split())
    what = {"incidents": "incidents", "involvements": "people involved in incidents"}.get(dataset, dataset)
    spec = contract.raw["model"].get(MODEL_SECTION.get(dataset, ""), {})
    rows = (
        f" One row per entry of the partner's `{_source_names(contract).get(spec['from'], spec['from'])}`."
        if isinstance(spec, dict) and spec.get("from") not in (None, "rows")
        else ""
    )
    return (
        f"{contract.title}: {what} from {partner} only (contract {contract.id} v{contract.version}).{rows} "
        f"{description}"
    ).strip()


def _areas_rows(model: dict[str, Any]) -> list[tuple]:
    rows = []
    for area, spec in model["areas"].items():
        if isinstance(spec, dict):  # read defensively: the model may grow names, outlines …
            names = list(spec.get("aliases") or spec.get("names") or [])
            label = spec.get("label") or spec.get("name") or (names[0] if names else area)
        else:
            names, label = list(spec), (spec[0] if spec else area)
        rows.append((area, label, [str(n) for n in names]))
    return rows


def _category_rows(model: dict[str, Any]) -> list[tuple]:
    rows = []
    kinds = model.get("category_kind") or {}
    for category, spec in model["categories"].items():
        if isinstance(spec, dict):
            rows.append(
                (category, spec.get("description") or spec.get("label") or "", spec.get("kind") or kinds.get(category))
            )
        else:
            rows.append((category, str(spec), kinds.get(category)))
    return rows


def _mapping_rows(contracts: dict[str, Contract]) -> list[tuple]:
    rows = []
    for feed, contract in sorted(contracts.items()):
        spec = contract.raw["model"].get("incident", {}).get("category")
        if isinstance(spec, dict) and spec.get("map"):
            rows += [(feed, str(k), str(v)) for k, v in spec["map"].items()]
    return rows


def _outline_rows(model: dict[str, Any]) -> list[tuple]:
    return [
        (area, i, int(n), int(e))
        for area, corners in (model.get("area_outlines") or {}).items()
        for i, (n, e) in enumerate(corners, start=1)
    ]


def _measure_view(notes: list[str]) -> View | None:
    try:
        from samverkan.analysis.measures import load_measures
    except ImportError:
        notes.append("measures: samverkan.analysis.measures not available; no measures view")
        return None
    measures = load_measures()
    rows = [
        (
            m.id,
            m.title,
            m.kind,
            list(m.areas),
            m.start.isoformat(),
            m.end.isoformat() if m.end else None,
            m.owner,
            list(getattr(m, "partners", ()) or ()),
            getattr(m, "description", ""),
        )
        for m in measures
    ]
    if not rows:
        notes.append("measures: the register (measures/) is empty")
    return View(
        "measures",
        _values_view(
            rows,
            ["measure", "title", "kind", "areas", "start", "end", "owner", "partners", "description"],
            ["VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR[]", "DATE", "DATE", "VARCHAR", "VARCHAR[]", "VARCHAR"],
        ),
        "The measures register (åtgärder, measures/*.yaml): what the partnership did, where and from when.",
        {
            "measure": "measure id (its file name in measures/)",
            "title": "what was done, in the owner's words",
            "kind": "kind of measure (lighting, guards, outreach …)",
            "areas": "shared area ids the measure covers (join with areas.area / incidents.area)",
            "start": "first day in force",
            "end": "last day in force; null while it continues",
            "owner": "who is responsible",
            "partners": "partners taking part (feed ids)",
            "description": "longer description",
        },
    )


def model_views(contracts: dict[str, Contract], notes: list[str]) -> list[View]:
    """The common model's code lists and the measures register, as views over literal rows."""
    model = common_model()
    views = [
        View(
            "areas",
            _values_view(_areas_rows(model), ["area", "label", "place_names"], ["VARCHAR", "VARCHAR", "VARCHAR[]"]),
            "Shared areas of the common model (schemas/common_model.yaml): partners' place names mapped onto them.",
            {
                "area": "shared area id, as in incidents.area",
                "label": "a readable name",
                "place_names": "place texts (before the first comma, house numbers removed) that mean this area",
            },
        ),
        View(
            "categories",
            _values_view(_category_rows(model), ["category", "description", "kind"], ["VARCHAR", "VARCHAR", "VARCHAR"]),
            "Shared incident categories of the common model, as in incidents.category.",
            {
                "category": "shared category id",
                "description": "what it covers",
                "kind": "its kind (see category_kinds); null where the common model gives none",
            },
        ),
        View(
            "category_kinds",
            _values_view(
                [(k, str(v)) for k, v in (model.get("category_kinds") or {}).items()],
                ["kind", "description"],
                ["VARCHAR", "VARCHAR"],
            ),
            "Kinds of category (crime, disorder, environment, care …), as in categories.kind and "
            "incidents.category_kind.",
            {"kind": "kind id", "description": "what it covers"},
        ),
        View(
            "category_mappings",
            _values_view(
                _mapping_rows(contracts), ["source", "source_category", "category"], ["VARCHAR", "VARCHAR", "VARCHAR"]
            ),
            "How each partner's own category values map onto the shared categories (from the contracts).",
            {
                "source": "feed id",
                "source_category": "the partner's own value, as in incidents.source_category",
                "category": "shared category id",
            },
        ),
        View(
            "area_outlines",
            _values_view(
                _outline_rows(model),
                ["area", "corner", "coord_n", "coord_e"],
                ["VARCHAR", "INTEGER", "INTEGER", "INTEGER"],
            ),
            "Outlines of the shared areas, corner by corner (SWEREF 99 TM metres), for maps drawn without web tiles.",
            {
                "area": "shared area id",
                "corner": "corner number, in drawing order",
                "coord_n": "SWEREF 99 TM northing",
                "coord_e": "SWEREF 99 TM easting",
            },
        ),
        View(
            "observation_measures",
            _values_view(
                [(k, str(v)) for k, v in (model.get("observation_measures") or {}).items()],
                ["measure", "description"],
                ["VARCHAR", "VARCHAR"],
            ),
            "What aggregate feeds count per place and time slot, as in observations.measure.",
            {"measure": "shared measure id", "description": "what is counted"},
        ),
        View(
            "roles",
            _values_view(
                [(k, str(v)) for k, v in model["roles"].items()], ["role", "description"], ["VARCHAR", "VARCHAR"]
            ),
            "Shared roles of people in incidents, as in involvements.role.",
            {"role": "shared role id", "description": "what it means"},
        ),
        View(
            "age_bands",
            _values_view(
                [(b["label"], b["min"]) for b in model["age_bands"]], ["age_band", "min_age"], ["VARCHAR", "INTEGER"]
            ),
            "Age bands of the common model, as in involvements.age_band (exact ages are never published).",
            {"age_band": "band label", "min_age": "lowest age in the band (inclusive)"},
        ),
    ]
    measures = _measure_view(notes)
    return views + ([measures] if measures else [])


def dataset_views(data: Paths, contracts: dict[str, Contract], notes: list[str]) -> list[View]:
    """``incidents``/``involvements`` over the published globs, and one view per source of each."""
    if not _has_files(data, "incidents"):
        raise CatalogError(
            f"nothing published yet under {data.dataset('incidents')}: run the feeds "
            "(or the history import) first, then build the catalog again"
        )
    model = common_model()["datasets"]
    views = []
    for dataset in model:
        if not _has_files(data, dataset):
            notes.append(f"{dataset}: no published file yet; view left out (build again once there is one)")
            continue
        reader = (
            f"SELECT * FROM read_parquet({_lit(dataset_glob(data, dataset))}, hive_partitioning = true, "
            "union_by_name = true)"
        )
        views.append(
            View(
                dataset,
                reader,
                f"{model[dataset]['description']} Every feed, every published night; "
                "new nights are seen without rebuilding the catalog.",
                dataset_columns(dataset),
            )
        )
        for feed, contract in sorted(contracts.items()):
            if MODEL_SECTION.get(dataset) not in contract.raw["model"]:
                continue  # e.g. an incident-only feed has no involvements
            views.append(
                View(
                    f"{dataset}_{feed}",
                    f"SELECT * FROM {dataset} WHERE source = {_lit(feed)}",
                    _source_comment(contract, dataset),
                    source_columns(contract, dataset),
                )
            )
    return views


# --- building ----------------------------------------------------------------------------------


def _create(con: Any, view: View) -> None:
    view.comment = _plain(view.comment)
    con.execute(f"CREATE OR REPLACE VIEW {_ident(view.name)} AS {view.sql}")
    con.execute(f"COMMENT ON VIEW {_ident(view.name)} IS {_lit(view.comment)}")
    for name, type_ in con.execute(
        f"SELECT column_name, data_type FROM information_schema.columns "
        f"WHERE table_name = {_lit(view.name)} ORDER BY ordinal_position"
    ).fetchall():
        view.types[name] = type_
        comment = _plain(view.columns.get(name) or "not described in the common model")
        view.columns[name] = comment
        con.execute(f"COMMENT ON COLUMN {_ident(view.name)}.{_ident(name)} IS {_lit(comment)}")
    for missing in set(view.columns) - set(view.types):
        del view.columns[missing]  # described by the model, not (yet) in the published files


def dictionary_markdown(views: list[View], database: Path, notes: list[str]) -> str:
    """The data dictionary: the same comments as the catalog, for reading without DuckDB."""
    lines = [
        "# Samverkan analyst catalog — data dictionary",
        "",
        (
            f"Generated {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} with `{database.name}`, from the "
            "data contracts (schemas/), the common model (schemas/common_model.yaml) and the measures register "
            "(measures/). Every view below is in the catalog with these comments (`duckdb_views()`, "
            "`duckdb_columns()`). Person and staff identifiers are keyed pseudonyms: no name, personnummer or "
            "phone number is ever published."
        ),
        "",
        "| view | what it is |",
        "|---|---|",
    ]
    lines += [f"| [`{v.name}`](#{v.name.replace('_', '-')}) | {v.comment} |" for v in views]
    for v in views:
        lines += ["", f"## {v.name}", "", v.comment, "", "| column | type | meaning |", "|---|---|---|"]
        lines += [f"| `{c}` | {v.types.get(c, '')} | {text} |" for c, text in v.columns.items()]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def build_catalog(out: Path, data: Paths | None = None, contracts: dict[str, Contract] | None = None) -> Catalog:
    """Create or refresh the catalog in ``out`` (a folder): the database and its dictionary.

    Built under a temporary name and moved into place, so a refresh never leaves a half-built
    catalog and analysts with it open keep their old copy until they reconnect.
    """
    import duckdb

    data = data or default_paths()
    contracts = contracts if contracts is not None else load_contracts()
    notes: list[str] = []
    views = dataset_views(data, contracts, notes) + model_views(contracts, notes)
    out.mkdir(parents=True, exist_ok=True)
    database, dictionary = out / CATALOG_NAME, out / DICTIONARY_NAME
    temp = out / f".{CATALOG_NAME}.{os.getpid()}.tmp"
    temp.unlink(missing_ok=True)
    try:
        with duckdb.connect(str(temp)) as con:
            for view in views:
                _create(con, view)
        os.replace(temp, database)
    finally:
        temp.unlink(missing_ok=True)
        Path(str(temp) + ".wal").unlink(missing_ok=True)
    part = dictionary.with_suffix(".md.part")
    part.write_text(dictionary_markdown(views, database, notes), encoding="utf-8")
    os.replace(part, dictionary)
    return Catalog(database, dictionary, tuple(v.name for v in views), tuple(notes))


def default_location(data: Paths | None = None) -> Path:
    """Beside the datasets it describes, so whoever may read those may read it."""
    return (data or default_paths()).published / "catalog"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m samverkan.analysis.catalog", description="Create or refresh the analysts' DuckDB catalog."
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="folder for samverkan.duckdb and DATA_DICTIONARY.md (default: <data root>/published/catalog)",
    )
    args = parser.parse_args(argv)
    try:
        catalog = build_catalog(args.out or default_location())
    except CatalogError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"catalog: {catalog.database} ({len(catalog.views)} views)")
    print(f"data dictionary: {catalog.dictionary}")
    for note in catalog.notes:
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
