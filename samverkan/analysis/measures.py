"""The measures register (åtgärder): what the partnership did, where and from when.

One YAML file per measure in ``measures/`` (lighting, more guards, a moved bus stop, outreach
evenings ...), checked like the contracts and the agreements: the JSON schema
(``measures/measure.schema.json``) catches shape errors, the cross-checks what a schema cannot
see (an area the common model does not know, an end before the start, an id that is not the file
name). Every error names the file and the field, because the people who write these files are
analysts, not programmers. The lägesbild report evaluates every measure found here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from samverkan.core.contracts import common_model
from samverkan.core.settings import CONFIG_ROOT
from samverkan.core.yamlconfig import load_mapping

MEASURES_DIR = CONFIG_ROOT / "measures"
MEASURE_SCHEMA = MEASURES_DIR / "measure.schema.json"
DATE_FIELDS = ("start", "end")


class MeasureError(ValueError):
    """A measure file is invalid; the message names the file and the field."""


@dataclass(frozen=True)
class Measure:
    id: str
    title: str
    kind: str
    areas: tuple[str, ...]
    start: date
    end: date | None
    owner: str
    path: Path
    description: str = ""
    partners: tuple[str, ...] = ()

    def active_on(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)


@cache
def _validator():
    import jsonschema

    return jsonschema.Draft202012Validator(json.loads(MEASURE_SCHEMA.read_text(encoding="utf-8")))


def _check_schema(path: Path, data: dict[str, Any]) -> None:
    errors = sorted(_validator().iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        raise MeasureError(
            "\n".join(
                f"{path.name}: {'.'.join(str(p) for p in e.absolute_path) or '(top level)'}: {e.message}"
                for e in errors[:10]
            )
        )


def _check_references(path: Path, data: dict[str, Any]) -> None:
    known = common_model()["areas"]
    problems = [
        f"areas.{i}: unknown area {a!r} (common model: {', '.join(sorted(known))})"
        for i, a in enumerate(data["areas"])
        if a not in known
    ]
    if data.get("end") and data["end"] < data["start"]:
        problems.append(f"end: {data['end']} is before start {data['start']}")
    if path.stem != data["measure"]:
        problems.append(f"measure: id {data['measure']!r} must match the file name")
    if problems:
        raise MeasureError("\n".join(f"{path.name}: {p}" for p in problems))


def load_measure(path: Path | str) -> Measure:
    path = Path(path)
    data = load_mapping(path, MeasureError)
    for key in DATE_FIELDS:
        if isinstance(data.get(key), date):
            data[key] = data[key].isoformat()  # YAML reads an unquoted date as a date
    _check_schema(path, data)
    _check_references(path, data)
    return Measure(
        id=data["measure"],
        title=data["title"],
        kind=data["kind"],
        areas=tuple(data["areas"]),
        start=date.fromisoformat(data["start"]),
        end=date.fromisoformat(data["end"]) if data.get("end") else None,
        owner=data["owner"],
        path=path,
        description=(data.get("description") or "").strip(),
        partners=tuple(data.get("partners") or ()),
    )


def load_measures(directory: Path = MEASURES_DIR) -> list[Measure]:
    """Every measure in ``directory``, by start date; a missing folder is an empty register."""
    return sorted((load_measure(p) for p in sorted(Path(directory).glob("*.yaml"))), key=lambda m: (m.start, m.id))
