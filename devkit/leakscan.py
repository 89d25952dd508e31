"""Leak checker: does anything the hub wrote still contain a raw personal value from its inputs?

Pseudonymisation bugs rarely fail loudly: a forgotten column, a free-text scrubber that misses
one way of writing a number, a debug log line. So the check runs on the *outputs*, knowing the
*inputs'* personal values, and looks for them in every way people write them. It is used by the
tests against the synthetic nights and can be run against any output directory.

Matching is built for volume (outputs can hold millions of strings). Strings are handled in
Arrow arrays (parquet columns on their distinct values, text files line by line): one RE2 pass
per array, vectorised in C++, keeps only the strings that could hold a value; on those few, one
compiled Python regex per kind finds candidates and a set lookup decides. The prefilter is a
superset of the exact match, so it changes speed, never results. A finding never shows the full
value, so the checker's own report cannot become the leak.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from samverkan.quality.assets import is_vendored_copy

KINDS = ("personnummer", "phone", "name", "employee_number", "guard_id")
MAX_FINDINGS_PER_KIND = 200  # per file; the rest are counted, not listed
_CHUNK_BYTES = 8 * 1024 * 1024
_PARQUET_BATCH = 65_536

# Every digit-based value lies inside a run of digits, spaces, '+' and '-': one pass finds the
# runs, the exact patterns then run inside them (or, for whole-token checks, just around them).
_NUMBER_RUN_RE = re.compile(r"[0-9+][0-9 +\-]*[0-9]")
_GUARD_FAST_RE = re.compile(r"[Oo][Vv]-[0-9]{3,6}")
_PNR_RE = re.compile(r"(?<!\d)(\d{8}|\d{6})[-+ ]?(\d{4})(?!\d)")
_DIGITS_RE = re.compile(r"\d+")
_NAME_TOKEN_RE = re.compile(r"[^\W\d_]{3,}")
# In scanned text a name stands apart from digits too: base32 pseudonyms ('c44jan2vs…') are
# letters and digits at random and would otherwise spell short names by chance.
_NAME_IN_TEXT_RE = re.compile(r"(?<![^\W_])[^\W\d_]{3,}(?![^\W_])")
# Whole tokens: letters and digits join a token, '_' separates (snake_case names leak too).
# Employee numbers are all-digit tokens; a digit after "N." or "N," is a decimal, not a token.
# Two numbers the machine writes into logs run through every five-digit value, and only in a
# shape no code writes a person's value into: the microseconds of a datetime or time repr
# ("datetime.datetime(2026, 11, 25, 12, 18, 1, 24876, …", pendulum's "DateTime(…"), and a byte
# count ("{'size': 24876}", '"size": 24876', '"bytes": 24876', "size=24876", "24876 bytes").
# An employee number there is a coincidence; anywhere else, other parts of a datetime and after any other word or
# a colon included, it counts. Ports need no exemption: the generator draws employee numbers
# below the ephemeral port range.
_MICROSECONDS_BEFORE = (
    r"(?:\bdatetime\.datetime|\bDateTime)\(\d{4}, \d{1,2}, \d{1,2}, \d{1,2}, \d{1,2}, \d{1,2}, "
    r"|\bdatetime\.time\(\d{1,2}, \d{1,2}, \d{1,2}, "
)
_SIZE_BEFORE = r"['\"](?:size|bytes)['\"]: ?|(?<![\w.])size="  # "bytes": a delivery manifest's file size
_MEASURE_BEFORE_RE = re.compile(rf"(?:{_MICROSECONDS_BEFORE}|{_SIZE_BEFORE})$")
_MEASURE_AFTER_RE = re.compile(r" bytes\b")
_MEASURE_LOOKBACK = 64
_EMPLOYEE_RE = re.compile(r"(?<![^\W_])(?<!\d[.,])\d+(?![^\W_])")
_GUARD_RE = re.compile(r"(?<![^\W_])(?<!-)OV-\d{3,6}(?![^\W_])", re.IGNORECASE)
_MIN_PHONE_DIGITS, _MAX_PHONE_DIGITS = 8, 13

# RE2 prefilters (Arrow's regex engine): each matches every string the exact check could flag.
_PREFILTERS = {
    "personnummer": r"(?:^|[^0-9])(?:[0-9]{8}|[0-9]{6})[-+ ]?[0-9]{4}(?:[^0-9]|$)",
    "phone": r"(?:^|[^0-9])[%s](?:[ +\-]*[0-9]){%d,}",
    "employee_number": r"(?:^|[^0-9A-Za-z])[0-9]{%d,%d}(?:[^0-9A-Za-z]|$)",
    "guard_id": r"(?i)ov-[0-9]{3}",
}


@dataclass
class PersonalValues:
    """The raw personal values a set of input files contained; what must never come out."""

    personnummer_canonical: set[str] = field(default_factory=set)
    personnummer_as_written: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    name_tokens: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)
    employee_numbers: set[str] = field(default_factory=set)
    guard_ids: set[str] = field(default_factory=set)

    def merge(self, *others: PersonalValues) -> PersonalValues:
        """A new object holding the union, so several nights can be checked in one scan."""
        merged = PersonalValues()
        for source in (self, *others):
            for f in fields(PersonalValues):
                getattr(merged, f.name).update(getattr(source, f.name))
        return merged

    def is_empty(self) -> bool:
        return not any(getattr(self, f.name) for f in fields(PersonalValues))


@dataclass(frozen=True)
class Finding:
    path: Path
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.kind}: {self.detail}"


def _is_measure(text: str, start: int, end: int) -> bool:
    """Whether the number at ``start:end`` is a datetime's microseconds or a byte count (see above)."""
    return bool(
        _MEASURE_BEFORE_RE.search(text, max(0, start - _MEASURE_LOOKBACK), start) or _MEASURE_AFTER_RE.match(text, end)
    )


def mask(value: str) -> str:
    """Enough to recognise the value in a report, too little to be the value."""
    return value[:2] + "…"


def phone_keys(phone: str) -> set[str]:
    """Digit strings a phone number can appear as, whether written nationally or with +46."""
    digits = "".join(_DIGITS_RE.findall(phone))
    if phone.lstrip().startswith("+") or digits.startswith("00"):
        digits = digits.lstrip("0")
        if not digits.startswith("46"):
            return {digits} if digits else set()
        national = "0" + digits[2:]
    elif digits.startswith("0"):
        national = digits
    else:
        return {digits} if len(digits) >= _MIN_PHONE_DIGITS else set()
    return {national, "46" + national[1:], "0046" + national[1:]}


def name_tokens_of(name: str) -> set[str]:
    """Tokens long enough to be distinctive; two-letter tokens would hit ordinary words."""
    return {t.lower() for t in _NAME_TOKEN_RE.findall(name)}


class Matcher:
    """All values of one `PersonalValues`, indexed the way the scanning regexes see text."""

    def __init__(self, values: PersonalValues) -> None:
        self.pnr12: set[str] = set()
        self.pnr10: set[str] = set()
        for raw in (*values.personnummer_canonical, *values.personnummer_as_written):
            self._add_pnr(raw)
        self.phones: set[str] = set()
        for phone in values.phones:
            self.phones |= {k for k in phone_keys(phone) if len(k) >= _MIN_PHONE_DIGITS}
        self.names: set[str] = set()
        for text in (*values.names, *values.name_tokens):
            self.names |= name_tokens_of(text)
        self.phone_starts = "".join(sorted({k[0] for k in self.phones}))
        self.employees = {e.strip() for e in values.employee_numbers}
        self.employee_lengths = sorted({len(e) for e in self.employees}) or [0]
        self.guards = {g.strip().upper() for g in values.guard_ids}

    def _add_pnr(self, raw: str) -> None:
        digits = "".join(_DIGITS_RE.findall(raw))
        if len(digits) == 12:
            self.pnr12.add(digits)
            self.pnr10.add(digits[2:])
        elif len(digits) == 10:
            self.pnr10.add(digits)

    def _has(self, kind: str) -> bool:
        return bool(
            {
                "personnummer": self.pnr10,
                "phone": self.phones,
                "name": self.names,
                "employee_number": self.employees,
                "guard_id": self.guards,
            }[kind]
        )

    def prefilter(self, kinds: Iterable[str]) -> str | None:
        """One RE2 pattern for the kinds that have values; None when there is nothing to find."""
        parts = [self._prefilter_of(k) for k in kinds if k != "name" and self._has(k)]
        if "name" in kinds and self.names:
            parts.append("(?i)(?:" + "|".join(sorted(self.names)) + ")")  # letters only
        return "|".join(f"(?:{p})" for p in parts) or None

    def _prefilter_of(self, kind: str) -> str:
        if kind == "phone":
            return _PREFILTERS[kind] % (self.phone_starts, _MIN_PHONE_DIGITS - 1)
        if kind == "employee_number":
            return _PREFILTERS[kind] % (self.employee_lengths[0], self.employee_lengths[-1])
        return _PREFILTERS[kind]

    def candidates(self, strings: pa.Array, kinds: Iterable[str] = KINDS) -> Iterator[tuple[int, str]]:
        """(index, string) of the strings that could hold a value of `kinds`."""
        pattern = self.prefilter(kinds)
        if pattern is None or len(strings) == 0:
            return iter(())
        if not (pa.types.is_string(strings.type) or pa.types.is_large_string(strings.type)):
            strings = strings.cast(pa.large_string())
        try:
            mask = pc.match_substring_regex(strings, pattern)
        except pa.ArrowInvalid:  # e.g. more names than RE2's memory budget: check everything
            mask = pc.is_valid(strings)
        picked = pc.indices_nonzero(pc.fill_null(mask, False))
        return zip(picked.to_pylist(), strings.take(picked).to_pylist())

    def find(self, text: str, kinds: Iterable[str] = KINDS) -> Iterator[tuple[str, str, int]]:
        """(kind, value as found, offset) for every personal value in `text`."""
        kinds = set(kinds)
        if kinds & {"personnummer", "phone", "employee_number"}:
            yield from self._find_numbers(text, kinds)
        if "name" in kinds:
            yield from self._find_name(text)
        if "guard_id" in kinds:
            yield from self._find_guard_id(text)

    def _find_numbers(self, text: str, kinds: set[str]) -> Iterator[tuple[str, str, int]]:
        """The hot loop: one pass over number runs, inlined because outputs hold millions."""
        pnr = "personnummer" in kinds and bool(self.pnr10)
        phone = "phone" in kinds and bool(self.phones)
        employee = "employee_number" in kinds and bool(self.employees)
        pnr12, pnr10, size = self.pnr12, self.pnr10, len(text)
        for run in _NUMBER_RUN_RE.finditer(text):
            value = run.group(0)
            length = len(value)
            # A run is maximal, so the digit-only boundaries of _PNR_RE hold inside it.
            if pnr and length >= 10:
                for m in _PNR_RE.finditer(value):
                    key = m.group(1) + m.group(2)
                    if key in (pnr12 if len(key) == 12 else pnr10):
                        yield "personnummer", m.group(0), run.start() + m.start()
            if phone and length >= _MIN_PHONE_DIGITS:
                hit = self._phone_in_run(value)
                if hit:
                    yield "phone", hit, run.start()
            if employee:
                yield from self._employee_in(text, run.start(), min(run.end() + 1, size))

    def _employee_in(self, text: str, start: int, end: int) -> Iterator[tuple[str, str, int]]:
        for m in _EMPLOYEE_RE.finditer(text, start, end):
            if m.group(0) in self.employees and not _is_measure(text, m.start(), m.end()):
                yield "employee_number", m.group(0), m.start()

    def _phone_in_run(self, run: str) -> str | None:
        """A phone number made of whole consecutive digit groups of the run, if any."""
        groups = _DIGITS_RE.findall(run)
        for i, first in enumerate(groups):
            if first[0] not in self.phone_starts:  # national keys all start 0… or 46…
                continue
            acc = ""
            for group in groups[i:]:
                acc += group
                if len(acc) > _MAX_PHONE_DIGITS:
                    break
                if len(acc) >= _MIN_PHONE_DIGITS and acc in self.phones:
                    return acc
        return None

    def _find_name(self, text: str) -> Iterator[tuple[str, str, int]]:
        if not self.names:
            return
        names = self.names
        for m in _NAME_IN_TEXT_RE.finditer(text):
            if m.group(0).lower() in names:
                yield "name", m.group(0), m.start()

    def _find_guard_id(self, text: str) -> Iterator[tuple[str, str, int]]:
        if not self.guards:
            return
        size = len(text)
        for candidate in _GUARD_FAST_RE.finditer(text):
            m = _GUARD_RE.match(text, candidate.start(), min(candidate.end() + 1, size))
            if m and m.group(0).upper() in self.guards:
                yield "guard_id", m.group(0), m.start()


class _Report:
    """Findings of one file: deduplicated and capped per kind, so a badly leaking file stays
    readable and one kind flooding the report cannot hide another."""

    def __init__(self, path: Path, limit: int) -> None:
        self.path, self.limit = path, limit
        self.findings: list[Finding] = []
        self.seen: set[tuple[str, str]] = set()
        self.per_kind: dict[str, int] = {}
        self.suppressed = 0

    def add(self, kind: str, where: str, value: str) -> None:
        listed = self.per_kind.get(kind, 0)
        if listed >= self.limit:
            self.suppressed += 1  # counted, not deduplicated: a flood need not be exact
            return
        detail = f"{where}: {mask(value)}"
        if (kind, detail) in self.seen:
            return
        self.seen.add((kind, detail))
        self.per_kind[kind] = listed + 1
        self.findings.append(Finding(self.path, kind, detail))

    def note(self, kind: str, detail: str) -> None:
        self.findings.append(Finding(self.path, kind, detail))

    def close(self) -> list[Finding]:
        if self.suppressed:
            detail = f"about {self.suppressed} further findings not listed"
            self.findings.append(Finding(self.path, "more", detail))
        return self.findings


def scan(
    output_paths: list[Path], values: PersonalValues, *, max_findings_per_kind: int = MAX_FINDINGS_PER_KIND
) -> list[Finding]:
    """Every raw personal value found in any file under `output_paths`; empty means clean.

    A path that does not exist is an error, not a clean result: a leak check that silently
    scanned nothing would pass every time. Untouched copies of the report pages' libraries
    (``reports/data_docs/_assets``) are third-party code, not output, and are skipped.
    """
    matcher = Matcher(values)
    findings: list[Finding] = []
    for root in map(Path, output_paths):
        for file, relative in _files_under(root):
            if is_vendored_copy(file):
                continue
            report = _Report(file, max_findings_per_kind)
            _scan_name(relative, matcher, report)
            _scan_file(file, matcher, report)
            findings.extend(report.close())
    return findings


def _files_under(root: Path) -> Iterator[tuple[Path, str]]:
    if root.is_file():
        yield root, root.name
    elif root.is_dir():
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            yield file, file.relative_to(root).as_posix()
    else:
        raise FileNotFoundError(f"leak scan: {root} does not exist")


def _scan_name(relative: str, matcher: Matcher, report: _Report) -> None:
    """Partition directories and file names are output too (e.g. `person=1999…/`)."""
    for kind, value, _ in matcher.find(relative):
        report.add(kind, "file name", value)


def _scan_file(file: Path, matcher: Matcher, report: _Report) -> None:
    name = file.name.lower()
    try:
        if name.endswith(".parquet"):
            _scan_parquet(file, matcher, report)
        elif name.endswith(".parquet.gz"):
            with gzip.open(file, "rb") as f:
                _scan_parquet(io.BytesIO(f.read()), matcher, report)
        elif name.endswith(".gz"):
            with gzip.open(file, "rb") as f:
                _scan_stream(f, matcher, report)
        else:
            with open(file, "rb") as f:
                _scan_stream(f, matcher, report)
    except (OSError, EOFError, zlib.error, pa.ArrowException) as exc:
        report.note("unreadable", f"{type(exc).__name__}; scanned as raw bytes instead")
        with open(file, "rb") as f:
            _scan_stream(f, matcher, report)


# --- text ---------------------------------------------------------------------------------


def _scan_stream(stream: io.BufferedIOBase, matcher: Matcher, report: _Report) -> None:
    """Scan in newline-aligned chunks, so memory stays bounded and line numbers stay right."""
    line_base, carry = 1, b""
    while True:
        data = stream.read(_CHUNK_BYTES)
        block = carry + data
        if data:
            cut = block.rfind(b"\n") + 1
            if cut == 0:
                carry = block
                continue
            block, carry = block[:cut], block[cut:]
        else:
            carry = b""
        if block:
            _scan_bytes(block, line_base, matcher, report)
            line_base += block.count(b"\n")
        if not data:
            return


def _scan_bytes(block: bytes, line_base: int, matcher: Matcher, report: _Report) -> None:
    """Both decodings, because the inputs are both: a cp1252 'ö' is not valid UTF-8."""
    texts = [(block.decode("utf-8", errors="replace"), KINDS)]
    if not block.isascii():  # digits and their separators are ASCII: one decoding finds them
        texts.append((block.decode("cp1252", errors="replace"), ("name",)))
    for text, kinds in texts:
        lines = pa.array(text.split("\n"), type=pa.large_string())
        for i, line in matcher.candidates(lines, kinds):
            for kind, value, _ in matcher.find(line, kinds):
                report.add(kind, f"line {line_base + i}", value)


# --- parquet ------------------------------------------------------------------------------


def _scan_parquet(source: Path | io.BytesIO, matcher: Matcher, report: _Report) -> None:
    pf = pq.ParquetFile(source)
    _scan_metadata(pf, matcher, report)
    for batch in pf.iter_batches(batch_size=_PARQUET_BATCH):
        for name, column in zip(batch.schema.names, batch.columns):
            for leaf, strings, kinds in _string_leaves(name, column):
                for _, text in matcher.candidates(strings, kinds):
                    for kind, value, _ in matcher.find(text, kinds):
                        report.add(kind, f"column {leaf}", value)


def _scan_metadata(pf: pq.ParquetFile, matcher: Matcher, report: _Report) -> None:
    """Key-value metadata and field names travel with the file as surely as the rows."""
    items: list[tuple[str, str]] = []
    for key, val in (pf.metadata.metadata or {}).items():
        if key != b"ARROW:schema":  # a serialised copy of the schema read below
            items.append((f"metadata {_text(key)}", _text(key) + "\n" + _text(val)))
    for where, text in _schema_texts(pf.schema_arrow):
        items.append((where, text))
    for where, text in items:
        for kind, value, _ in matcher.find(text):
            report.add(kind, where, value)


def _schema_texts(schema: pa.Schema) -> Iterator[tuple[str, str]]:
    for key, val in (schema.metadata or {}).items():
        yield f"schema metadata {_text(key)}", _text(key) + "\n" + _text(val)
    stack = [(f.name, f) for f in schema]
    while stack:
        path, fld = stack.pop()
        yield f"field name {path}", fld.name
        for key, val in (fld.metadata or {}).items():
            yield f"field metadata {path}", _text(key) + "\n" + _text(val)
        stack.extend((f"{path}.{child.name}", child) for child in _children(fld.type))


def _children(typ: pa.DataType) -> list[pa.Field]:
    if pa.types.is_struct(typ):
        return [typ.field(i) for i in range(typ.num_fields)]
    if pa.types.is_map(typ):
        return [typ.key_field, typ.item_field]
    if _is_list(typ):
        return [typ.value_field]
    return []


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw


def _is_list(typ: pa.DataType) -> bool:
    return (
        pa.types.is_list(typ)
        or pa.types.is_large_list(typ)
        or pa.types.is_fixed_size_list(typ)
        or getattr(pa.types, "is_list_view", lambda t: False)(typ)
        or getattr(pa.types, "is_large_list_view", lambda t: False)(typ)
    )


def _string_leaves(path: str, arr: pa.Array) -> Iterator[tuple[str, pa.Array, tuple[str, ...]]]:
    """Distinct text values of every string-bearing leaf, nested ones included."""
    typ = arr.type
    if pa.types.is_dictionary(typ):
        yield from _string_leaves(path, arr.dictionary)
    elif pa.types.is_string(typ) or pa.types.is_large_string(typ) or _is_string_view(typ):
        yield path, _distinct(arr), KINDS
    elif pa.types.is_binary(typ) or pa.types.is_large_binary(typ):
        decoded = [b.decode("utf-8", "replace") for b in _distinct(arr).to_pylist()]
        yield path, pa.array(decoded, pa.large_string()), KINDS
    elif pa.types.is_integer(typ):
        yield path, _long_integers(arr), ("personnummer",)
    elif pa.types.is_struct(typ):
        for i, child in enumerate(arr.flatten()):
            yield from _string_leaves(f"{path}.{typ.field(i).name}", child)
    elif pa.types.is_map(typ):
        yield from _string_leaves(f"{path}.key", arr.keys)
        yield from _string_leaves(f"{path}.value", arr.items)
    elif _is_list(typ):
        yield from _string_leaves(f"{path}[]", arr.flatten())


def _is_string_view(typ: pa.DataType) -> bool:
    return getattr(pa.types, "is_string_view", lambda t: False)(typ)


def _distinct(arr: pa.Array) -> pa.Array:
    return pc.unique(arr.drop_null())


def _long_integers(arr: pa.Array) -> pa.Array:
    """Only integers long enough to be a personnummer stored as a number, as text."""
    values = _distinct(arr)
    long_enough = pc.greater_equal(pc.abs(values.cast(pa.float64())), 1e8)
    return values.filter(long_enough).cast(pa.large_string())


# --- databases ----------------------------------------------------------------------------


def scan_database(
    url: str, values: PersonalValues, *, max_findings_per_kind: int = MAX_FINDINGS_PER_KIND
) -> list[Finding]:
    """Every raw personal value in any text of any table of a database (Airflow's metadata DB:
    XCom, task instances, DAG run conf, the log table…), reported per table and column.

    A database with no tables is an error, not a clean result (a wrong URL would create one).
    Integer columns are not read: they hold the database's own keys, counters and process ids,
    which match short numeric identifiers (a guard's employee number) by chance — a CI run met
    a task instance whose ``pid`` equalled one — and a personal value the hub passes on is text.
    """
    import sqlalchemy as sa

    matcher = Matcher(values)
    findings: list[Finding] = []
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            meta = sa.MetaData()
            meta.reflect(conn)
            if not meta.tables:
                raise FileNotFoundError(f"leak scan: {engine.url.render_as_string()} has no tables")
            for table in meta.sorted_tables:
                report = _Report(Path(f"{engine.url.database}#{table.name}"), max_findings_per_kind)
                for column in table.columns:
                    if isinstance(column.type, sa.Integer):
                        continue
                    texts = [_db_text(v) for (v,) in conn.execute(sa.select(column)) if v is not None]
                    strings = pa.array([t for t in texts if t], type=pa.large_string())
                    for _, text in matcher.candidates(strings):
                        for kind, value, _ in matcher.find(text):
                            report.add(kind, f"column {column.name}", value)
                findings.extend(report.close())
    finally:
        engine.dispose()
    return findings


def _db_text(value: object) -> str:
    """A stored value as the text a reader of the database could see in it."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            raw = zlib.decompress(raw)  # Airflow may compress serialised DAGs and XCom payloads
        except zlib.error:
            pass
        return raw.decode("utf-8", errors="replace")
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)
