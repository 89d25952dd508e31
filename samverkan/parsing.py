"""Reading partner files into Arrow record batches of raw text, a batch at a time.

Every value stays text here: typing happens after validation, so a bad value is reported as
the partner wrote it instead of being lost in a failed cast. Each record carries ``_row``, its
1-based number in the file, so quarantine entries and receipts can point at it. Memory is bounded
by the batch size, not the file size.

Structural problems are handled at the level they occur: a record that cannot be split into
fields (wrong field count, a JSON line that is not an object) becomes a ``BadRecord`` and the
file goes on; a file that cannot be read at all (wrong encoding, truncated gzip, missing required
columns) raises ``FileRejected`` and is quarantined whole.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import logging
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import pyarrow as pa

from samverkan.contracts import Column, Contract

log = logging.getLogger(__name__)

DEFAULT_BATCH_ROWS = 100_000
MAX_FIELD_BYTES = 1 << 20  # a single field larger than 1 MiB is not a partner export
ROW = "_row"


class FileRejected(Exception):
    """The file as a whole cannot be used; the message is a reason a partner can act on."""


@dataclass(frozen=True)
class BadRecord:
    row: int
    reason: str
    raw: str  # the record as the partner sent it (private zone only)


@dataclass
class Batch:
    table: pa.Table  # _row + one string column per top-level contract column (+ list<struct> for arrays)
    bad_records: list[BadRecord] = field(default_factory=list)


@dataclass
class FileInfo:
    """What the reader learned about the file besides its records."""

    header: list[str] = field(default_factory=list)
    unexpected_columns: list[str] = field(default_factory=list)
    records: int = 0


def _arrow_type(column: Column) -> pa.DataType:
    if column.type == "array":
        return pa.list_(pa.struct([pa.field(f.name, pa.string()) for f in column.fields]))
    return pa.string()


def raw_schema(contract: Contract) -> pa.Schema:
    return pa.schema([pa.field(ROW, pa.int64())] + [pa.field(c.name, _arrow_type(c)) for c in contract.columns])


def read_batches(
    contract: Contract, path: Path, *, batch_rows: int = DEFAULT_BATCH_ROWS, info: FileInfo | None = None
) -> Iterator[Batch]:
    """Yield batches of raw records; ``info`` is filled in as the file is read."""
    info = info if info is not None else FileInfo()
    kind = contract.format["kind"]
    if kind == "csv":
        return _csv_batches(contract, path, batch_rows, info)
    if kind == "jsonl":
        return _jsonl_batches(contract, path, batch_rows, info)
    raise FileRejected(f"unsupported format kind {kind!r}")  # the contract schema prevents this


# --- opening -----------------------------------------------------------------------------


def _open_binary(contract: Contract, path: Path) -> BinaryIO:
    if contract.format["compression"] == "gzip":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def _decode_errors_as_rejection(exc: Exception, contract: Contract) -> FileRejected:
    if isinstance(exc, UnicodeDecodeError):
        return FileRejected(
            f"file is not valid {contract.format['encoding']} text (byte offset {exc.start} in a read block)"
        )
    if isinstance(exc, (EOFError, gzip.BadGzipFile, zlib.error)):
        return FileRejected(f"file is not a complete gzip stream ({type(exc).__name__}: {exc})")
    return FileRejected(f"file cannot be read: {type(exc).__name__}: {exc}")


# --- CSV ---------------------------------------------------------------------------------


def _csv_text(contract: Contract, raw: BinaryIO) -> io.TextIOBase:
    encoding = contract.format["encoding"]
    codecs.lookup(encoding)  # a typo in a contract fails here, loudly
    # newline="" hands CR/LF to the csv module untouched, so quoted multi-line values survive.
    return io.TextIOWrapper(raw, encoding=encoding, errors="strict", newline="")


def _check_header(contract: Contract, header: list[str], info: FileInfo) -> list[int | None]:
    """Map contract columns to header positions; refuse the file when a required one is missing."""
    if header and header[0].startswith("\ufeff"):
        header[0] = header[0][1:]  # a BOM where the contract did not announce one
    clean = [h.strip() for h in header]
    info.header = clean
    positions: list[int | None] = []
    missing = []
    for c in contract.columns:
        if c.source in clean:
            positions.append(clean.index(c.source))
        else:
            positions.append(None)
            if c.required:
                missing.append(c.source)
    known = {c.source for c in contract.columns}
    info.unexpected_columns = [h for h in clean if h not in known]
    if missing:
        raise FileRejected(
            f"missing required column(s) {', '.join(missing)}; header was: {', '.join(clean) or '(empty)'}"
        )
    if len(set(clean)) != len(clean):
        raise FileRejected(f"duplicate column names in header: {', '.join(clean)}")
    return positions


def _csv_batches(contract: Contract, path: Path, batch_rows: int, info: FileInfo) -> Iterator[Batch]:
    fmt = contract.format
    csv.field_size_limit(MAX_FIELD_BYTES)
    with _open_binary(contract, path) as raw:
        text = _csv_text(contract, raw)
        reader = csv.reader(text, delimiter=fmt["delimiter"], quotechar=fmt["quotechar"], doublequote=True, strict=True)
        try:
            header = next(reader, None)
            if header is None:
                raise FileRejected("file is empty (no header row)")
            positions = _check_header(contract, header, info)
            width = len(header)
            yield from _csv_records(contract, reader, positions, width, batch_rows, info)
        except FileRejected:
            raise
        except csv.Error as exc:
            raise FileRejected(f"CSV structure broken near record {info.records + 1}: {exc}") from exc
        except (UnicodeDecodeError, EOFError, OSError, zlib.error) as exc:
            raise _decode_errors_as_rejection(exc, contract) from exc


def _csv_records(contract, reader, positions, width, batch_rows, info) -> Iterator[Batch]:
    columns: list[list[Any]] = [[] for _ in contract.columns]
    rows: list[int] = []
    bad: list[BadRecord] = []
    for fields in reader:
        if not fields or fields == [""] and width > 1:
            continue  # a blank line carries no record
        info.records += 1
        if len(fields) != width:
            bad.append(BadRecord(info.records, f"expected {width} fields, found {len(fields)}", fmt_raw(fields)))
        else:
            rows.append(info.records)
            for values, pos in zip(columns, positions):
                v = fields[pos] if pos is not None else None
                values.append(v if v != "" else None)
        if len(rows) + len(bad) >= batch_rows:
            yield _csv_batch(contract, rows, columns, bad)
            columns, rows, bad = [[] for _ in contract.columns], [], []
    if rows or bad:
        yield _csv_batch(contract, rows, columns, bad)


def fmt_raw(fields: list[str]) -> str:
    return json.dumps(fields, ensure_ascii=False)


def _csv_batch(contract: Contract, rows: list[int], columns: list[list[Any]], bad: list[BadRecord]) -> Batch:
    arrays = [pa.array(rows, pa.int64())] + [pa.array(v, pa.string()) for v in columns]
    return Batch(pa.Table.from_arrays(arrays, schema=raw_schema(contract)), bad)


# --- JSON Lines --------------------------------------------------------------------------


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value != "" else None
    if isinstance(value, (int, float)):
        return json.dumps(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _lookup(obj: dict[str, Any], dotted: str) -> Any:
    cur: Any = obj
    for part in dotted.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


class _RecordError(ValueError):
    pass


def _array_items(column: Column, value: Any) -> list[dict[str, str | None]] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise _RecordError(f"{column.source} is not a list")
    items = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise _RecordError(f"{column.source}[{i}] is not an object")
        items.append({f.name: _as_text(_lookup(item, f.source)) for f in column.fields})
    return items


def _json_record(contract: Contract, obj: dict[str, Any]) -> list[Any]:
    values = []
    for c in contract.columns:
        v = _lookup(obj, c.source)
        values.append(_array_items(c, v) if c.type == "array" else _as_text(v))
    return values


def _jsonl_batches(contract: Contract, path: Path, batch_rows: int, info: FileInfo) -> Iterator[Batch]:
    columns: list[list[Any]] = [[] for _ in contract.columns]
    rows: list[int] = []
    bad: list[BadRecord] = []
    encoding = contract.format["encoding"]
    try:
        with _open_binary(contract, path) as raw:
            for line in raw:
                if len(line) > MAX_FIELD_BYTES * 4:
                    info.records += 1
                    bad.append(BadRecord(info.records, f"line longer than {MAX_FIELD_BYTES * 4} bytes", "(too long to keep)"))
                    continue
                stripped = line.strip()
                if not stripped:
                    continue  # a blank line carries no record
                info.records += 1
                try:
                    text = stripped.decode(encoding)
                    obj = json.loads(text)
                    if not isinstance(obj, dict):
                        raise _RecordError(f"line is JSON but not an object ({type(obj).__name__})")
                    record = _json_record(contract, obj)
                except UnicodeDecodeError:
                    bad.append(BadRecord(info.records, f"line is not valid {encoding}", stripped.decode(encoding, "replace")))
                except json.JSONDecodeError as exc:
                    bad.append(BadRecord(info.records, f"line is not valid JSON ({exc.msg} at column {exc.colno})", text))
                except _RecordError as exc:
                    bad.append(BadRecord(info.records, str(exc), text))
                else:
                    rows.append(info.records)
                    for values, v in zip(columns, record):
                        values.append(v)
                if len(rows) + len(bad) >= batch_rows:
                    yield _json_batch(contract, rows, columns, bad)
                    columns, rows, bad = [[] for _ in contract.columns], [], []
    except (EOFError, OSError, zlib.error) as exc:
        raise _decode_errors_as_rejection(exc, contract) from exc
    if info.records == 0:
        raise FileRejected("file holds no records")
    if rows or bad:
        yield _json_batch(contract, rows, columns, bad)


def _json_batch(contract: Contract, rows: list[int], columns: list[list[Any]], bad: list[BadRecord]) -> Batch:
    schema = raw_schema(contract)
    arrays = [pa.array(rows, pa.int64())] + [
        pa.array(v, schema.field(c.name).type) for v, c in zip(columns, contract.columns)
    ]
    return Batch(pa.Table.from_arrays(arrays, schema=schema), bad)
