"""Hand-made police records, column by column as the pipeline's check frame holds them.

One copy for the validation tests, which feed the same records to Great Expectations as a pandas
frame (tests/unit/test_validation.py) and as an Arrow table (test_validation_distinct.py).
"""

from __future__ import annotations

TS = "2026-11-20 23:14"
TS_LATER = "2026-11-21 00:02"
INT_COLUMNS = ("koord_n", "koord_e", "alder")  # each gets an ``<column>__int`` twin, as in check_frame

Changes = dict[int, str | None]  # record number (1-based) -> raw value


def int_or_none(text: str | None) -> float | None:
    """The ``__int`` twin of a raw value: None where it is no whole number (NaN in pandas, null in Arrow)."""
    try:
        return float(int(text))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def put_changes(rows: dict[str, list], changes: dict[str, Changes]) -> None:
    """Put the bad values in: ``changes`` maps column -> {record number: raw value}."""
    for column, values in changes.items():
        for row, value in values.items():
            rows[column][row - 1] = value


def police_columns(n: int, changes: dict[str, Changes], **columns: list[str | None]) -> dict[str, list]:
    """``n`` clean records naming one person each, unless ``columns`` replaces whole columns;
    then ``changes`` (column -> {record number: raw value}) puts in the bad values."""
    rows: dict[str, list] = {
        "_row": list(range(1, n + 1)),
        "diarienr": [f"5000-K{i}-26" for i in range(1, n + 1)],
        "handelsetid": [TS] * n,
        "registrerad": [TS_LATER] * n,
        "plats": ["Stortorget, Östersund"] * n,
        "koord_n": ["6997480"] * n,
        "koord_e": ["497120"] * n,
        "handelsetyp": ["Misshandel"] * n,
        "roll": ["Misstänkt"] * n,
        "personnummer": ["19121212-1212"] * n,
        "namn": ["Testsson, Test"] * n,
        "alder": ["17"] * n,
        "fritext": ["Synthetic text"] * n,
        "personnummer__status": ["valid"] * n,
        **columns,
    }
    put_changes(rows, changes)
    for column in INT_COLUMNS:
        rows[f"{column}__int"] = [int_or_none(v) for v in rows[column]]
    return rows
