"""Legal basis per granted column: why a recipient may have each value, checked when an agreement loads.

An agreement says *what* a recipient gets; a data-protection officer must also be able to say
*why* for every column: the GDPR art. 6 ground (or, for the police, the law-enforcement regime of
brottsdatalagen), the art. 9/10 ground where the data need one, the national provision, and the
purpose. Agreements name a basis and a purpose by id from a small vocabulary kept in the
repository (``agreements/vocabulary/legal_bases.yaml``, checked against its JSON schema), per
dataset with per-column overrides::

    incidents:
      columns: [incident_id, area, category]
      legal_basis: {basis: kommun_brottsforebyggande, purpose: orsaksanalys}
      column_legal_basis:
        category: {basis: kommun_brottsuppgifter}     # purpose from the dataset

A granted row-level column with no basis is refused, naming the file and the field, and so is
criminal-offence data (the vocabulary's ``article_10_data``: e.g. the police feed's offence
categories at row level) under a basis with no art. 10 ground. Aggregates and reports carry no
personal data (small counts suppressed); a basis there is optional and, when given, checked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from samverkan.core.settings import CONFIG_ROOT
from samverkan.core.yamlconfig import load_mapping

VOCABULARY = CONFIG_ROOT / "agreements" / "vocabulary" / "legal_bases.yaml"
VOCABULARY_SCHEMA = VOCABULARY.with_name("legal_bases.schema.json")
ROW_DATASETS = ("incidents", "involvements")


class LegalBasisError(ValueError):
    """The vocabulary itself is invalid; the message names the file and the field."""


@dataclass(frozen=True)
class Basis:
    """One resolved basis for one column: the vocabulary's entry and the purpose's text."""

    id: str
    purpose: str
    entry: dict[str, Any]
    purpose_text: str

    @property
    def article_10(self) -> bool:
        """A ground for criminal-offence data: an explicit art. 10 ground, or the police's own
        law-enforcement regime (brottsdatalagen, outside the GDPR)."""
        return bool(self.entry.get("article_10")) or self.entry["regime"] == "brottsdatalagen"

    def summary(self) -> str:
        parts = [f"GDPR art. {self.entry['gdpr_art6']}" if self.entry.get("gdpr_art6") else "brottsdatalagen"]
        parts += [self.entry[k] for k in ("article_9", "article_10") if self.entry.get(k)]
        return "; ".join(parts + [self.entry["national"]])


@cache
def vocabulary(path: Path = VOCABULARY) -> dict[str, Any]:
    """The vocabulary, schema-checked (an error names the file and the field)."""
    import jsonschema

    data = load_mapping(path, LegalBasisError)
    schema = json.loads(path.with_name("legal_bases.schema.json").read_text(encoding="utf-8"))
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(data), key=lambda e: list(map(str, e.path)))
    if errors:
        raise LegalBasisError(
            "\n".join(
                f"{path.name}: {'.'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message}" for e in errors[:10]
            )
        )
    return data


def article_10_columns(dataset: str, sources: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Columns of ``dataset`` that are criminal-offence data when rows come from ``sources``."""
    spec = vocabulary()["article_10_data"]
    if not set(sources) & set(spec["sources"]):
        return ()
    return tuple(spec["columns"].get(dataset, ()))


def _reference(spec: dict[str, Any], column: str) -> tuple[dict[str, Any], str]:
    """The column's own reference merged over the dataset's, and where it came from (for errors)."""
    default = spec.get("legal_basis") or {}
    own = (spec.get("column_legal_basis") or {}).get(column) or {}
    where = "column_legal_basis." + column if "basis" in own else "legal_basis"
    return {**default, **own}, where


def resolve(spec: dict[str, Any], column: str) -> Basis | None:
    """The basis for one granted column of a dataset spec, or None when it names none (or an
    unknown id: ``problems`` reports those)."""
    vocab = vocabulary()
    ref, _ = _reference(spec, column)
    basis, purpose = str(ref.get("basis")), str(ref.get("purpose"))
    if basis not in vocab["bases"] or purpose not in vocab["purposes"]:
        return None
    return Basis(basis, purpose, vocab["bases"][basis], vocab["purposes"][purpose])


def problems(data: dict[str, Any]) -> list[str]:
    """Every granted column's basis, for ``agreements._check_references`` (paths, no file name)."""
    found: list[str] = []
    for name, spec in data["datasets"].items():
        spec = spec or {}
        found += _reference_problems(name, spec)
        if name not in ROW_DATASETS:
            continue
        offence = article_10_columns(name, data["scope"]["sources"])
        for i, column in enumerate(spec.get("columns", ())):
            found += _column_problems(name, spec, i, column, offence, data["scope"]["sources"])
    return found


def _reference_problems(name: str, spec: dict[str, Any]) -> list[str]:
    """Ids that are not in the vocabulary, wherever they are named."""
    vocab = vocabulary()
    refs = [(f"datasets.{name}.legal_basis", spec.get("legal_basis") or {})]
    refs += [
        (f"datasets.{name}.column_legal_basis.{c}", r or {}) for c, r in (spec.get("column_legal_basis") or {}).items()
    ]
    out = []
    for at, ref in refs:
        if "basis" in ref and ref["basis"] not in vocab["bases"]:
            out.append(f"{at}.basis: unknown legal basis {ref['basis']!r} (known: {', '.join(sorted(vocab['bases']))})")
        if "purpose" in ref and ref["purpose"] not in vocab["purposes"]:
            out.append(
                f"{at}.purpose: unknown purpose {ref['purpose']!r} (known: {', '.join(sorted(vocab['purposes']))})"
            )
    granted = set(spec.get("columns", ()))
    out += [
        f"datasets.{name}.column_legal_basis.{c}: {c!r} is not a granted column"
        for c in (spec.get("column_legal_basis") or {})
        if c not in granted
    ]
    return out


def _column_problems(
    name: str, spec: dict[str, Any], i: int, column: str, offence: tuple[str, ...], sources: list[str]
) -> list[str]:
    ref, where = _reference(spec, column)
    missing = [k for k in ("basis", "purpose") if k not in ref]
    if missing:
        return [
            (
                f"datasets.{name}.columns.{i}: {column!r} has no legal {' or '.join(missing)} (set "
                f"datasets.{name}.legal_basis or datasets.{name}.column_legal_basis.{column})"
            )
        ]
    basis = resolve(spec, column)
    if basis is None or column not in offence or basis.article_10:
        return []
    art10_sources = sorted(set(sources) & set(vocabulary()["article_10_data"]["sources"]))
    return [
        (
            f"datasets.{name}.{where}: {column!r} of {', '.join(art10_sources)} rows is criminal-offence data "
            f"(GDPR art. 10) and basis {basis.id!r} has no art. 10 ground: grant it under a basis with one, "
            "or leave those sources or the column out"
        )
    ]


def column_bases(data: dict[str, Any]) -> dict[str, dict[str, Basis]]:
    """Per granted row dataset, per column, its resolved basis (for the record of processing)."""
    return {
        name: {c: b for c in (spec or {}).get("columns", ()) if (b := resolve(spec or {}, c)) is not None}
        for name, spec in data["datasets"].items()
        if name in ROW_DATASETS
    }


def dataset_basis(spec: dict[str, Any] | None) -> Basis | None:
    """An aggregate or report dataset's optional basis (its own ``legal_basis``)."""
    ref = (spec or {}).get("legal_basis") or {}
    vocab = vocabulary()
    if ref.get("basis") not in vocab["bases"] or ref.get("purpose") not in vocab["purposes"]:
        return None
    return Basis(ref["basis"], ref["purpose"], vocab["bases"][ref["basis"]], vocab["purposes"][ref["purpose"]])
