"""Reading partner files into Arrow record batches of raw text, a batch at a time.

Every value stays text here: typing happens after validation, so a bad value is reported as
the partner wrote it instead of being lost in a failed cast. Each record carries ``_row``, its
1-based number in the file, so quarantine entries and receipts can point at it. Memory is bounded
by the batch size, not the file size.

Structural problems are handled at the level they occur: a record that cannot be split into
fields (wrong field count, a JSON line that is not an object) becomes a ``BadRecord`` and the
file goes on; a file that cannot be read at all (wrong encoding, truncated gzip, missing required
columns) raises ``FileRejected`` and is quarantined whole.

Memory is bounded whatever the file holds (see docs/resilience.md): every stream goes through
``_Bounded``, which refuses more decompressed bytes, or a higher compression ratio, than the
contract's ``limits`` allow; lines are read with a length limit, so an endless line is never
held whole (a JSON line beyond it is a bad record, a CSV record beyond it refuses the file,
since a CSV reader cannot find the next record after it); a bad record keeps at most
``MAX_RAW_KEPT`` characters of itself; and a batch is handed on when it holds ``BATCH_BYTES`` of
text, however few records that is.
"""

from __future__ import annotations

import codecs
import csv
import functools
import gzip
import io
import json
import logging
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa

from samverkan.core.contracts import Column, Contract, Limits

log = logging.getLogger(__name__)

DEFAULT_BATCH_ROWS = 100_000
MAX_FIELD_BYTES = 1 << 20  # a single field larger than 1 MiB is not a partner export
MAX_RAW_KEPT = 64 << 10  # characters of a bad record kept in the quarantine (enough to fix it)
BATCH_BYTES = 64 << 20  # text held per batch before it is handed on, whatever its record count
RATIO_FLOOR_BYTES = 16 << 20  # the compression ratio is judged only past this (tiny files vary)
ROW = "_row"


class FileRejected(Exception):
    """The file as a whole cannot be used.

    ``str(exc)`` is the public reason: written from the contract and the file's shape only, never
    quoting the file, because it goes into receipts, manifests, XCom, logs and e-mails. Whatever
    was read from the file (a header line that may be a person's record, a decoder's message
    quoting bytes) goes into ``detail``, which stays in the private ledger.
    """

    def __init__(self, reason: str, *, detail: str | None = None) -> None:
        super().__init__(reason)
        self.detail = detail

    @property
    def private_text(self) -> str:
        """Reason and detail, for the private ledger only."""
        return f"{self} [private detail: {self.detail}]" if self.detail else str(self)


class LimitExceeded(FileRejected):
    """The file goes beyond one of its contract's ``limits``: refused whole before more of it is
    read (a decompression bomb, an endless line), so its records were not all counted."""


# A column name that may leave the private zone: a plain identifier. A header cell of any other
# shape (digits, blanks, punctuation) may be a data row sent without its header.
_PLAIN_NAME = re.compile(r"[^\W\d]\w{0,63}")


def public_column_names(names: list[str]) -> tuple[list[str], int]:
    """The names fit to show (plain identifiers) and how many others were withheld."""
    shown = [n for n in names if _PLAIN_NAME.fullmatch(n)]
    return shown, len(names) - len(shown)


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


class _Bounded(io.RawIOBase):
    """The file's (decompressed) bytes, refusing to give more than the contract's limits allow.

    Counting happens as bytes are read, so a bomb is refused after reading at most the limit,
    never after inflating it; every reader of partner content (including the pre-scan and the
    record count of a refused file) opens the file through here.
    """

    def __init__(self, inner: BinaryIO, limits: Limits, stored_bytes: int, compressed: bool) -> None:
        super().__init__()
        self._inner = inner
        self._limits = limits
        self._stored = max(stored_bytes, 1)
        self._compressed = compressed
        self.total = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._inner.readinto(buffer)  # type: ignore[attr-defined]
        self.total += n
        self._check()
        return n

    def _check(self) -> None:
        limits = self._limits
        if self.total > limits.max_decompressed_bytes:
            what = "decompresses to" if self._compressed else "holds"
            raise LimitExceeded(
                f"file {what} more than {limits.max_decompressed_bytes} bytes, the contract's "
                "limit (limits.max_decompressed_bytes); refused whole"
            )
        if (
            self._compressed
            and self.total > RATIO_FLOOR_BYTES
            and self.total > limits.max_compression_ratio * self._stored
        ):
            raise LimitExceeded(
                f"file expands more than {limits.max_compression_ratio:g} times when decompressed "
                "(limits.max_compression_ratio): refused whole as a possible decompression bomb"
            )

    def close(self) -> None:
        self._inner.close()
        super().close()


def _open_binary(contract: Contract, path: Path) -> BinaryIO:
    compressed = contract.format["compression"] == "gzip"
    inner = gzip.open(path, "rb") if compressed else open(path, "rb")
    bounded = _Bounded(inner, contract.limits, path.stat().st_size, compressed)  # type: ignore[arg-type]
    return io.BufferedReader(bounded, buffer_size=1 << 20)


class _TooLong(Exception):
    """A line or CSV record beyond ``limits.max_line_bytes``."""


def _lines(raw: BinaryIO, limit: int) -> Iterator[bytes | int]:
    """The lines of a binary stream, none held longer than ``limit`` bytes: a longer line is read
    past in pieces and given as its length instead of its bytes."""
    while True:
        line = raw.readline(limit + 1)
        if not line:
            return
        if len(line) <= limit or (len(line) == limit + 1 and line.endswith(b"\n")):
            yield line
            continue
        size = len(line)
        while not line.endswith(b"\n"):
            line = raw.readline(1 << 20)
            if not line:
                break
            size += len(line)
        yield size


class _GuardedText:
    """Physical lines of a text stream for the csv module, with the characters of the current
    record counted: more than the limit (one endless line, or a quoted value running on over
    many lines) raises ``_TooLong`` before it is held. ``take()`` ends a record."""

    def __init__(self, text: io.TextIOBase, limit: int) -> None:
        self._text = text
        self._limit = limit
        self.used = 0

    def __iter__(self) -> _GuardedText:
        return self

    def __next__(self) -> str:
        line = self._text.readline(self._limit + 3)
        if not line:
            raise StopIteration
        self.used += len(line)
        if self.used > self._limit + 2:  # the line break (up to 2 characters) is not the record's
            raise _TooLong
        return line

    def take(self) -> int:
        used, self.used = self.used, 0
        return used


def _too_long(contract: Contract, record: int) -> LimitExceeded:
    return LimitExceeded(
        f"record {record} is longer than {contract.limits.max_line_bytes} bytes, the contract's "
        "limit (limits.max_line_bytes); the records after it cannot be found, so the file is "
        "refused whole"
    )


def kept_raw(text: str) -> str:
    """What the quarantine keeps of a bad record: enough to correct it, never an unbounded copy."""
    if len(text) <= MAX_RAW_KEPT:
        return text
    return f"{text[:MAX_RAW_KEPT]}… [cut: {len(text)} characters in all]"


def _decode_errors_as_rejection(exc: Exception, contract: Contract) -> FileRejected:
    if isinstance(exc, UnicodeDecodeError):
        return FileRejected(
            f"file is not valid {contract.format['encoding']} text (byte offset {exc.start} in a read block)"
        )
    # A decoder's message may quote the bytes it choked on ("Not a gzipped file (b'..')").
    if isinstance(exc, (EOFError, gzip.BadGzipFile, zlib.error)):
        return FileRejected(f"file is not a complete gzip stream ({type(exc).__name__})", detail=str(exc))
    return FileRejected(f"file cannot be read: {type(exc).__name__}", detail=str(exc))


def count_records(contract: Contract, path: Path) -> int | None:
    """How many records a file holds that was refused before they were read (a missing column,
    say): the receipt and the balance line then say how many went to quarantine with the file.
    None when the file cannot be read as text at all."""
    limit = contract.limits.max_line_bytes
    try:
        with _open_binary(contract, path) as raw:
            if contract.format["kind"] == "jsonl":
                return sum(1 for line in _lines(raw, limit) if not isinstance(line, bytes) or line.strip())
            fmt = contract.format
            csv.field_size_limit(MAX_FIELD_BYTES)
            text = _GuardedText(_csv_text(contract, raw), limit)
            reader = csv.reader(text, delimiter=fmt["delimiter"], quotechar=fmt["quotechar"])
            records = 0
            for _ in reader:
                text.take()  # the limit is per record
                records += 1
            return max(records - 1, 0)  # the header is no record
    except (csv.Error, UnicodeDecodeError, EOFError, OSError, zlib.error, LimitExceeded, _TooLong):
        return None


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
    known = {c.source for c in contract.columns}
    info.unexpected_columns = [h for h in clean if h not in known]
    positions: list[int | None] = []
    missing = []
    for c in contract.columns:
        if c.source in clean:
            positions.append(clean.index(c.source))
        else:
            positions.append(None)
            if c.required:
                missing.append(c.source)
    if missing:
        hint = "" if known & set(clean) else " (no contract column in the first line: was the header row left out?)"
        raise FileRejected(
            f"missing required column(s) {', '.join(missing)}{hint}",
            detail=f"header was: {', '.join(clean) or '(empty)'}",
        )
    if len(set(clean)) != len(clean):
        raise FileRejected(
            f"{len(clean) - len(set(clean))} duplicate column name(s) in the header",
            detail=f"header was: {', '.join(clean)}",
        )
    return positions


def _csv_batches(contract: Contract, path: Path, batch_rows: int, info: FileInfo) -> Iterator[Batch]:
    """Arrow's multi-threaded CSV reader when it gives exactly what the csv module would; else
    (or from the record where it stops agreeing) the csv module, which has the last word."""
    delivered = 0
    if _quoting_is_plain(contract, path):
        try:
            for batch in _arrow_csv_batches(contract, path, batch_rows, info):
                delivered = info.records
                yield batch
            return
        except _NotPlain as exc:
            log.debug("%s: exact reader takes over after record %d (%s)", path.name, delivered, exc)
    info.records = 0
    yield from _python_csv_batches(contract, path, batch_rows, info, skip=delivered)


def _python_csv_batches(
    contract: Contract, path: Path, batch_rows: int, info: FileInfo, *, skip: int = 0
) -> Iterator[Batch]:
    fmt = contract.format
    csv.field_size_limit(MAX_FIELD_BYTES)
    with _open_binary(contract, path) as raw:
        text = _GuardedText(_csv_text(contract, raw), contract.limits.max_line_bytes)
        reader = csv.reader(text, delimiter=fmt["delimiter"], quotechar=fmt["quotechar"], doublequote=True, strict=True)
        try:
            header = next(reader, None)
            text.take()
            if header is None:
                raise FileRejected("file is empty (no header row)")
            positions = _check_header(contract, header, info)
            width = len(header)
            if skip:
                reader = _skip_records(reader, skip, width, info, text)
            yield from _csv_records(contract, reader, text, positions, width, batch_rows, info)
        except FileRejected:
            raise
        except _TooLong:
            raise _too_long(contract, info.records + 1) from None
        except csv.Error as exc:
            raise FileRejected(f"CSV structure broken near record {info.records + 1}: {exc}") from exc
        except (UnicodeDecodeError, EOFError, OSError, zlib.error) as exc:
            raise _decode_errors_as_rejection(exc, contract) from exc


def _csv_records(contract, reader, text: _GuardedText, positions, width, batch_rows, info) -> Iterator[Batch]:
    columns: list[list[Any]] = [[] for _ in contract.columns]
    rows: list[int] = []
    bad: list[BadRecord] = []
    held = 0
    for fields in reader:
        held += text.take()
        if not fields or fields == [""] and width > 1:
            continue  # a blank line carries no record
        info.records += 1
        if len(fields) != width:
            bad.append(
                BadRecord(info.records, f"expected {width} fields, found {len(fields)}", kept_raw(fmt_raw(fields)))
            )
        else:
            rows.append(info.records)
            for values, pos in zip(columns, positions):
                v = fields[pos] if pos is not None else None
                values.append(v if v != "" else None)
        if len(rows) + len(bad) >= batch_rows or held >= BATCH_BYTES:
            yield _csv_batch(contract, rows, columns, bad)
            columns, rows, bad, held = [[] for _ in contract.columns], [], [], 0
    if rows or bad:
        yield _csv_batch(contract, rows, columns, bad)


def _skip_records(reader, skip: int, width: int, info: FileInfo, text: _GuardedText):
    """Records the fast reader already delivered: parsed again (so errors stay where they are), not kept."""
    for fields in reader:
        text.take()
        if not fields or fields == [""] and width > 1:
            continue
        if info.records == skip:
            yield fields
            break
        info.records += 1
    yield from reader


# --- CSV, fast path ----------------------------------------------------------------------


class _NotPlain(Exception):
    """Arrow's reader met something where it could differ from the csv module; hand over."""


ARROW_BLOCK_BYTES = 4 << 20
_QUOTE_SCAN_BYTES = 16 << 20


def _quoting_is_plain(contract: Contract, path: Path) -> bool:
    """True when every quote in the file is one the csv module (strict) and Arrow read alike.

    Arrow is lenient where ``strict=True`` is not: text after a closing quote (``"ab"c``),
    and a quoted field still open at the end of the file, are accepted as values. Only runs of
    the quote character matter: an odd run toggles between outside and inside a quoted field,
    an even run never does (escaped quotes, or an empty quoted value), so whether a run is
    inside is the parity of odd runs before it, computed with numpy a block at a time.
    Outside, a run must start a field (a quote inside an unquoted field is legal but rare: it
    sends the file to the exact reader too) and an even one must end it; inside, an odd run
    closes the field and must be followed by a delimiter or line end. The file must not end
    inside a quoted field.
    """
    import numpy as np

    fmt = contract.format
    quote = fmt["quotechar"].encode("ascii", "ignore")
    delimiter = fmt["delimiter"].encode("ascii", "ignore")
    if len(quote) != 1 or len(delimiter) != 1:
        return False
    q = quote[0]
    ends = np.zeros(257, bool)  # index 256: "no byte" (start or end of the file)
    ends[[delimiter[0], 0x0D, 0x0A, 256]] = True
    inside = 0
    before = 256
    carry = b""
    try:
        with _open_binary(contract, path) as raw:
            while True:
                block = raw.read(_QUOTE_SCAN_BYTES)
                data = carry + block
                last = not block
                # a run touching the end of a block may go on in the next one
                cut = len(data) if last else len(data.rstrip(quote))
                if cut:
                    arr = np.frombuffer(data, np.uint8, count=cut)
                    at = np.flatnonzero(arr == q)
                    if len(at):
                        new_run = np.concatenate(([True], at[1:] != at[:-1] + 1))
                        starts = at[new_run]
                        stops = np.concatenate((at[np.flatnonzero(new_run)[1:] - 1], at[-1:])) + 1
                        odd = (stops - starts) % 2
                        parity = (np.cumsum(odd) - odd + inside) % 2
                        prev = np.where(starts > 0, arr[np.maximum(starts - 1, 0)].astype(np.int16), before)
                        nxt = np.full(len(stops), 256, np.int16)
                        within = stops < cut
                        nxt[within] = arr[stops[within]]
                        if not last:
                            nxt[~within] = 256 if cut == len(data) else data[cut]
                        out = parity == 0
                        if np.any(out & ~ends[prev]):
                            return False
                        if np.any(out & (odd == 0) & ~ends[nxt]):
                            return False
                        if np.any(~out & (odd == 1) & ~ends[nxt]):
                            return False
                        inside = int((inside + odd.sum()) % 2)
                    before = data[cut - 1]
                carry = data[cut:]
                if len(carry) > _QUOTE_SCAN_BYTES:
                    return False  # an endless run of quotes: the exact reader refuses it, line-bounded
                if last:
                    break
    except (OSError, EOFError, zlib.error):
        return False  # the exact reader reports it
    return inside == 0


# Encodings the fast path reads itself: bytes below 0x80 are ASCII in all of them, so Arrow can
# split records on the raw bytes; values are then decoded as the csv module would (strictly).
_FAST_ENCODINGS = {"utf-8", "utf-8-sig", "cp1252", "latin-1", "iso8859-1", "iso8859-15"}


def _text_column(raw: pa.Array, encoding: str) -> pa.Array:
    """A column of raw field bytes → text, decoded strictly as the csv module decodes it, an
    empty field null; a value that does not decode hands the file to the exact reader.

    Worked out on the column's buffers with numpy, not per value: decoding each distinct cp1252
    narrative in Python, then taking it back to every row and copying the column again to null
    its empty fields, was 1.7 s of a 1M-row police file, the largest part of reading it."""
    import numpy as np

    if encoding in ("utf-8", "utf-8-sig"):
        try:
            raw = raw.cast(pa.string())  # validates UTF-8
        except pa.ArrowInvalid:
            raise _NotPlain("not valid UTF-8") from None
    offsets, data = _offsets_and_data(raw)
    widths = np.diff(offsets)
    if len(widths) and int(widths.max()) > MAX_FIELD_BYTES:
        raise _NotPlain("a field beyond the size limit")  # the exact reader counts characters, and refuses
    if encoding not in ("utf-8", "utf-8-sig"):
        offsets, data = _single_byte_to_utf8(offsets, data, encoding)
    return _empty_as_null(raw, offsets, data)


def _empty_as_null(source: pa.Array, offsets, data: pa.Buffer) -> pa.Array:
    """Text from its offsets and data, null where a value is empty or ``source`` holds a null:
    a validity bitmap over the same buffers, not a copy of the column (as ``if_else`` makes)."""
    import numpy as np

    valid = np.diff(offsets) != 0
    if source.null_count:
        valid &= np.asarray(source.is_valid())
    nulls = len(valid) - int(np.count_nonzero(valid))
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little")) if nulls else None
    return pa.StringArray.from_buffers(len(source), pa.py_buffer(offsets.astype(np.int32)), data, bitmap, nulls)


def _offsets_and_data(values: pa.Array):
    """The value offsets (from 0, int32) and the data buffer they point into, of a binary or
    string array that may be a slice of a larger one."""
    import numpy as np

    _, offsets_buffer, data = values.buffers()
    offsets = np.frombuffer(offsets_buffer, np.int32)[values.offset : values.offset + len(values) + 1]
    start = int(offsets[0])
    data = data.slice(start, int(offsets[-1]) - start) if data is not None else pa.py_buffer(b"")
    return offsets - start, data


def _single_byte_to_utf8(offsets, data: pa.Buffer, encoding: str):
    """(offsets, data) of text in a one-byte-per-character encoding (cp1252, Latin-1/-9) as
    UTF-8. The column's bytes are decoded at once by ``bytes.decode``, strictly (cp1252 leaves
    0x81, 0x8D, 0x8F, 0x90 and 0x9D undefined); each value's offset moves along by the bytes
    that the characters of 0x80 and over added before it (one or two each)."""
    import numpy as np

    raw = np.frombuffer(data, np.uint8)
    high = np.flatnonzero(raw >= 0x80)
    if not len(high):
        return offsets, data  # ASCII is the same bytes in every encoding here
    try:
        text = data.to_pybytes().decode(encoding).encode("utf-8")
    except UnicodeDecodeError:
        raise _NotPlain(f"not valid {encoding}") from None
    added = np.concatenate(([0], np.cumsum(_utf8_bytes_added(encoding)[raw[high]])))
    return offsets + added[np.searchsorted(high, offsets)], pa.py_buffer(text)  # int32 in _empty_as_null


@functools.cache
def _utf8_bytes_added(encoding: str):
    """Per byte value, how many bytes longer its character is in UTF-8 (0 where undefined)."""
    import numpy as np

    added = np.zeros(256, np.int64)
    for byte in range(0x80, 256):
        try:
            added[byte] = len(bytes([byte]).decode(encoding).encode("utf-8")) - 1
        except UnicodeDecodeError:
            continue
    return added


def _arrow_source(contract: Contract, path: Path):
    if contract.format["compression"] == "gzip":
        return pa.CompressedInputStream(pa.OSFile(str(path)), "gzip")
    return pa.OSFile(str(path))


def _python_header(contract: Contract, path: Path) -> list[str] | None:
    fmt = contract.format
    with _open_binary(contract, path) as raw:
        text = _GuardedText(_csv_text(contract, raw), contract.limits.max_line_bytes)
        reader = csv.reader(text, delimiter=fmt["delimiter"], quotechar=fmt["quotechar"], doublequote=True, strict=True)
        return next(reader, None)


def _arrow_csv_batches(contract: Contract, path: Path, batch_rows: int, info: FileInfo) -> Iterator[Batch]:
    import pyarrow.csv as pcsv

    fmt = contract.format
    try:
        header = _python_header(contract, path)
    except Exception as exc:  # the exact reader words the error
        raise _NotPlain(f"header: {type(exc).__name__}") from None
    if not header:
        raise _NotPlain("no header")
    encoding = codecs.lookup(fmt["encoding"]).name
    if encoding not in _FAST_ENCODINGS:
        raise _NotPlain(f"encoding {encoding}")
    header = list(header)
    positions = _check_header(contract, list(header), info)
    width = len(header)
    names = [f"c{i}" for i in range(width)]
    try:
        reader = pcsv.open_csv(
            _arrow_source(contract, path),
            read_options=pcsv.ReadOptions(block_size=ARROW_BLOCK_BYTES, use_threads=True, column_names=names),
            parse_options=pcsv.ParseOptions(
                delimiter=fmt["delimiter"],
                quote_char=fmt["quotechar"],
                double_quote=True,
                escape_char=False,
                newlines_in_values=True,
                ignore_empty_lines=True,
            ),
            convert_options=pcsv.ConvertOptions(
                column_types={n: pa.binary() for n in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except Exception as exc:
        raise _NotPlain(f"open: {type(exc).__name__}") from None
    pending: list[pa.RecordBatch] = []
    pending_rows = pending_bytes = 0
    first = True
    schema = raw_schema(contract)
    while True:
        try:
            record_batch = reader.read_next_batch()
        except StopIteration:
            break
        except Exception as exc:  # field count, encoding, a record longer than a block, ...
            raise _NotPlain(f"{type(exc).__name__}") from None
        if first:
            first = False
            if record_batch.num_rows == 0:
                raise _NotPlain("no header")
            got = [_text_column(record_batch.column(i).slice(0, 1), encoding)[0].as_py() or "" for i in range(width)]
            if encoding == "utf-8" and got[0].startswith("\ufeff") != header[0].startswith("\ufeff"):
                raise _NotPlain("byte order mark")
            if [g.removeprefix("\ufeff") for g in got] != [h.removeprefix("\ufeff") for h in header]:
                raise _NotPlain("header differs")
            record_batch = record_batch.slice(1)
        pending.append(record_batch)
        pending_rows += record_batch.num_rows
        pending_bytes += record_batch.nbytes
        while pending_rows >= batch_rows or (pending_bytes >= BATCH_BYTES and pending_rows):
            table = pa.Table.from_batches(pending)
            take = min(batch_rows, pending_rows)
            yield _arrow_batch(table.slice(0, take), positions, schema, info, encoding)
            rest = table.slice(take)
            pending, pending_rows = rest.to_batches(), rest.num_rows
            pending_bytes = rest.nbytes
    if first:
        raise _NotPlain("no header")
    if pending_rows:
        yield _arrow_batch(pa.Table.from_batches(pending), positions, schema, info, encoding)


def _arrow_batch(table: pa.Table, positions, schema: pa.Schema, info: FileInfo, encoding: str) -> Batch:
    import numpy as np

    n = table.num_rows
    arrays = [pa.array(np.arange(info.records + 1, info.records + n + 1, dtype=np.int64))]  # range(): 34 ms/100k
    for pos in positions:
        arrays.append(
            pa.nulls(n, pa.string()) if pos is None else _text_column(table.column(pos).combine_chunks(), encoding)
        )
    info.records += n
    return Batch(pa.Table.from_arrays(arrays, schema=schema), [])


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


def _json_reader(contract: Contract):
    """``_json_record`` with the column paths split once: the same values, less work per line."""
    plan = [(c, c.source.split("."), c.type == "array") for c in contract.columns]

    def record(obj: dict[str, Any]) -> list[Any]:
        values: list[Any] = []
        for c, path, is_array in plan:
            v = obj.get(path[0])
            for part in path[1:]:
                v = v.get(part) if isinstance(v, dict) else None
            if is_array:
                values.append(_array_items(c, v))
            elif type(v) is str:
                values.append(v or None)
            else:
                values.append(_as_text(v))
        return values

    return record


def _jsonl_batches(contract: Contract, path: Path, batch_rows: int, info: FileInfo) -> Iterator[Batch]:
    """Blocks of lines are read columnar by Arrow wherever they read exactly as the per-line path
    reads them (``_JsonColumnar``), line by line elsewhere; the batches are the per-line path's."""
    columnar = _JsonColumnar.for_contract(contract)
    if columnar is None:
        return _python_jsonl_batches(contract, path, batch_rows, info)
    return _read_jsonl(contract, path, _JsonBatches(contract, batch_rows, info), columnar)


def _python_jsonl_batches(contract: Contract, path: Path, batch_rows: int, info: FileInfo) -> Iterator[Batch]:
    """The straightforward path: every line through Python's json module (the fast path's oracle)."""
    return _read_jsonl(contract, path, _JsonBatches(contract, batch_rows, info), None)


def _read_jsonl(
    contract: Contract, path: Path, batches: _JsonBatches, columnar: _JsonColumnar | None
) -> Iterator[Batch]:
    limit = contract.limits.max_line_bytes
    try:
        with _open_binary(contract, path) as raw:
            if columnar is None:
                for line in _lines(raw, limit):
                    yield from batches.line(line)
            else:
                for block in _line_blocks(raw, limit):
                    for table, lines in columnar.pieces(block):
                        if table is not None:
                            yield from batches.table(table, lines)
                        else:
                            for line in lines:
                                yield from batches.line(line)
    except (EOFError, OSError, zlib.error) as exc:
        raise _decode_errors_as_rejection(exc, contract) from exc
    if batches.info.records == 0:
        raise FileRejected("file holds no records")
    yield from batches.finish()


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _check_no_lone_surrogate(record: list[Any]) -> None:
    """JSON may escape half of a UTF-16 pair (``\\ud800``); Python's json module accepts it, but
    it is no text and could be stored nowhere: the line is a bad record, not a failed file."""
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise _RecordError("a value is a lone surrogate escape (\\ud800-\\udfff), not text") from None


class _JsonBatches:
    """Records gathered into batches where the per-line path hands them on: after the record that
    brings a batch to ``batch_rows`` records (good or bad) or to ``BATCH_BYTES`` of lines (blank
    lines count as bytes, never as records), whichever path read the record."""

    def __init__(self, contract: Contract, batch_rows: int, info: FileInfo) -> None:
        self.contract, self.batch_rows, self.info = contract, batch_rows, info
        self.schema = raw_schema(contract)
        self.encoding = contract.format["encoding"]
        self.limit = contract.limits.max_line_bytes
        self.json_record = _json_reader(contract)
        self.columnar = _JsonColumnar.for_contract(contract)  # for the lines Python's json module cannot hold
        self._reset()

    def _reset(self) -> None:
        self.pieces: list[pa.Table] = []
        self.columns: list[list[Any]] = [[] for _ in self.contract.columns]
        self.rows: list[int] = []
        self.bad: list[BadRecord] = []
        self.count = 0  # records in the batch, good and bad
        self.held = 0

    def line(self, line: bytes | int) -> Iterator[Batch]:
        """One line as ``_lines`` gives it (its bytes, or its length when too long to hold)."""
        if not isinstance(line, bytes):
            # counted, but (as always) the batch is handed on only after the next record
            self._bad(f"line longer than {self.limit} bytes (limits.max_line_bytes)", "(too long to keep)")
            return
        self.held += len(line)
        stripped = line.strip()
        if not stripped:
            return  # a blank line carries no record
        self._record(stripped)
        if self.count >= self.batch_rows or self.held >= BATCH_BYTES:
            yield self._batch()

    def _record(self, stripped: bytes) -> None:
        encoding = self.encoding
        self.info.records += 1
        self.count += 1
        try:
            text = stripped.decode(encoding)
            record = self._read_record(text, stripped)
        except UnicodeDecodeError:
            self.bad.append(
                BadRecord(
                    self.info.records,
                    f"line is not valid {encoding}",
                    kept_raw(stripped[: MAX_RAW_KEPT * 4].decode(encoding, "replace")),
                )
            )
        except json.JSONDecodeError as exc:
            self.bad.append(
                BadRecord(
                    self.info.records, f"line is not valid JSON ({exc.msg} at column {exc.colno})", kept_raw(text)
                )
            )
        except _RecordError as exc:
            self.bad.append(BadRecord(self.info.records, str(exc), kept_raw(text)))
        else:
            self.rows.append(self.info.records)
            for values, v in zip(self.columns, record):
                values.append(v)

    def _read_record(self, text: str, line: bytes) -> list[Any]:
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            raise
        except (RecursionError, ValueError) as exc:
            return self._beyond_python(line, exc)
        if not isinstance(obj, dict):
            raise _RecordError(f"line is JSON but not an object ({type(obj).__name__})")
        record = self.json_record(obj)
        if "\\u" in text and _SURROGATE_ESCAPE.search(text):
            _check_no_lone_surrogate(record)
        return record

    def _beyond_python(self, line: bytes, exc: Exception) -> list[Any]:
        """A line Python's json module cannot hold, read by Arrow as the columnar path reads it.

        The module raises RecursionError near 1,000 levels of nesting (fewer when the stack is
        already deep) and ValueError for an integer of more than ``sys.get_int_max_str_digits()``
        digits, a 4 KB line; either used to fail the whole file, while the columnar path, which
        reads any depth and ignores fields the contract does not name, published the same line.
        Here the line gets the columnar path's reading, so both paths agree; a line Arrow refuses
        too (such a number in a contract field, say) is a bad record."""
        why = "nests JSON too deep" if isinstance(exc, RecursionError) else "holds a number too long"
        if self.columnar is not None and line.startswith(b"{") and line.endswith(b"}"):
            table = self.columnar._read(memoryview(line), 1, len(line))
            if table is not None:
                return [column[0].as_py() for column in table.columns]
        raise _RecordError(f"line {why} for Python's json module, and Arrow's reader refuses it")

    def _bad(self, reason: str, raw: str) -> None:
        self.info.records += 1
        self.count += 1
        self.bad.append(BadRecord(self.info.records, reason, raw))

    def table(self, table: pa.Table, sizes: Any) -> Iterator[Batch]:
        """Records read columnar, one per line; ``sizes`` holds each line's bytes (numpy)."""
        import numpy as np

        start, n = 0, table.num_rows
        while start < n:
            room = min(max(self.batch_rows - self.count, 1), n - start)
            held = self.held + np.cumsum(sizes[start : start + room])
            full = np.flatnonzero(held >= BATCH_BYTES)
            take = int(full[0]) + 1 if len(full) else room
            self._flush_lines()
            first = self.info.records + 1
            rows = pa.array(np.arange(first, first + take, dtype=np.int64))
            self.pieces.append(table.slice(start, take).add_column(0, ROW, rows))
            self.info.records += take
            self.count += take
            self.held = int(held[take - 1])
            start += take
            if self.count >= self.batch_rows or self.held >= BATCH_BYTES:
                yield self._batch()

    def _flush_lines(self, *, always: bool = False) -> None:
        if self.rows or always:
            arrays = [pa.array(self.rows, pa.int64())] + [
                pa.array(v, self.schema.field(c.name).type) for v, c in zip(self.columns, self.contract.columns)
            ]
            self.pieces.append(pa.Table.from_arrays(arrays, schema=self.schema))
            self.columns, self.rows = [[] for _ in self.contract.columns], []

    def _batch(self) -> Batch:
        """The pieces as one table laid out as the per-line path lays it out: one chunk per
        column, starting at offset 0 (a piece may be a slice of a larger block)."""
        self._flush_lines(always=not self.pieces)
        columns = [pa.concat_arrays(c.chunks) for c in pa.concat_tables(self.pieces).columns]
        batch = Batch(pa.Table.from_arrays(columns, schema=self.schema), self.bad)
        self._reset()
        return batch

    def finish(self) -> Iterator[Batch]:
        if self.count:
            yield self._batch()


JSON_BLOCK_BYTES = 8 << 20  # bytes of whole lines read at a time by the columnar path
# Fewer lines than this go line by line: Arrow's fixed cost per call (about 5 ms) is what Python
# spends on some 250 lines. A run of lines that Arrow refuses is halved down to this size.
_JSON_MIN_LINES = 256


def _line_blocks(raw: BinaryIO, limit: int) -> Iterator[bytes | int]:
    """Whole lines, about ``JSON_BLOCK_BYTES`` of them at a time; a line longer than ``limit``
    that does not fit is read past and given as its length, never held whole (as in ``_lines``)."""
    rest = b""
    while True:
        data = raw.read(JSON_BLOCK_BYTES)
        if not data:
            if rest:
                yield rest  # the last line, without a line break
            return
        buf = rest + data if rest else data
        cut = buf.rfind(b"\n") + 1
        if cut:
            yield buf[:cut]
        rest = buf[cut:]
        if len(rest) > limit:  # a line that is already too long: read past the rest of it
            while not rest.endswith(b"\n"):
                rest = raw.readline(1 << 20)
                if not rest:
                    break
            yield limit + 1
            rest = b""


class _JsonColumnar:
    """Lines read by Arrow's JSON reader, columnar, exactly as the per-line path would read them.

    Arrow is given an explicit schema of the contract's fields (nothing is inferred, so a
    timestamp stays the partner's text) and ignores other fields, as ``extra_fields: ignore``
    does. It is stricter than Python's json module (a number where the contract wants text, a
    repeated field, ``NaN`` in a contract field, a lone surrogate escape, an array item that is
    null) and refuses the block, which is then halved until it reads, down to a few hundred
    lines that go through the per-line path (as do short runs of lines, where Arrow saves nothing). Where Arrow is more lenient it is not asked: each line must start
    with ``{`` and end with ``}`` (then no value can run over two lines), Arrow must find as many
    records as lines (so no line holds two), and the bytes must be valid UTF-8 (Arrow does not
    check the fields it ignores). Values become text as ``_as_text`` makes them: an integer its
    digits, a boolean ``true``/``false``, an empty string null. Where Python's json module cannot
    read a line at all (``_JsonBatches._beyond_python``), the per-line path reads it this way too.
    """

    def __init__(self, contract: Contract, schema: pa.Schema) -> None:
        self.contract = contract
        self.schema = schema
        self.limit = contract.limits.max_line_bytes

    @classmethod
    def for_contract(cls, contract: Contract) -> _JsonColumnar | None:
        """None when the contract's encoding or fields cannot be read this way (UTF-8 only)."""
        if codecs.lookup(contract.format["encoding"]).name != "utf-8":
            return None
        tree: dict[str, Any] = {}
        for column in contract.columns:
            if not _plant(tree, column):
                return None
        return cls(contract, pa.schema(_arrow_fields(tree)))

    def pieces(self, block: bytes | int) -> Iterator[tuple[pa.Table | None, Any]]:
        """(table, line sizes) for lines read columnar, (None, lines) for the per-line path."""
        import numpy as np

        if not isinstance(block, bytes):
            yield None, [block]
            return
        arr = np.frombuffer(block, np.uint8)
        ends = np.flatnonzero(arr == 0x0A)
        if not len(ends) or ends[-1] != len(block) - 1:
            ends = np.append(ends, len(block))
        starts = np.concatenate(([0], ends[:-1] + 1))
        sizes = np.diff(np.append(starts, len(block)))
        length = ends - starts
        fit = (length >= 2) & (length <= self.limit)
        last = arr[np.maximum(ends - 1, 0)]
        before = arr[np.maximum(ends - 2, 0)]
        plain = fit & (arr[np.minimum(starts, len(block) - 1)] == 0x7B)
        plain &= (last == 0x7D) | ((last == 0x0D) & (before == 0x7D))
        bounds = np.flatnonzero(np.diff(np.concatenate(([0], plain.astype(np.int8), [0]))))
        at = 0
        for lo, hi in zip(bounds[::2], bounds[1::2]):
            if hi - lo >= _JSON_MIN_LINES:
                yield from self._line_by_line(block, starts, sizes, at, lo)
                yield from self._columnar(block, starts, sizes, lo, hi)
                at = hi
        yield from self._line_by_line(block, starts, sizes, at, len(starts))

    def _line_by_line(self, block: bytes, starts, sizes, lo: int, hi: int) -> Iterator[tuple[None, list[bytes | int]]]:
        if lo < hi:
            lines = [block[s : s + z] for s, z in zip(starts[lo:hi].tolist(), sizes[lo:hi].tolist())]
            yield None, [line if len(line.rstrip(b"\n")) <= self.limit else len(line) for line in lines]

    def _columnar(self, block: bytes, starts, sizes, lo: int, hi: int) -> Iterator[tuple[pa.Table | None, Any]]:
        table = self._read(
            memoryview(block)[starts[lo] : starts[hi - 1] + sizes[hi - 1]], hi - lo, int(sizes[lo:hi].max())
        )
        if table is not None:
            yield table, sizes[lo:hi]
        elif hi - lo < 2 * _JSON_MIN_LINES:
            yield from self._line_by_line(block, starts, sizes, lo, hi)
        else:
            mid = (lo + hi) // 2
            yield from self._columnar(block, starts, sizes, lo, mid)
            yield from self._columnar(block, starts, sizes, mid, hi)

    def _read(self, data: memoryview, lines: int, longest: int) -> pa.Table | None:
        import pyarrow.json as pj

        try:
            str(data, "utf-8")  # strict, as the per-line path decodes each line
            table = pj.read_json(
                pa.BufferReader(pa.py_buffer(data)),
                read_options=pj.ReadOptions(block_size=max(1 << 20, 2 * longest)),
                parse_options=pj.ParseOptions(
                    explicit_schema=self.schema, newlines_in_values=False, unexpected_field_behavior="ignore"
                ),
            )
        except (UnicodeDecodeError, pa.ArrowException, ValueError):
            return None
        if table.num_rows != lines:
            return None
        return _raw_columns(self.contract, table.combine_chunks())


def _arrow_type_of(column: Column) -> pa.DataType | None:
    """The JSON type Arrow is told to expect: what the partner's spec says the value is."""
    if column.type == "integer":
        return pa.int64()
    if column.type == "boolean":
        return pa.bool_()
    if column.type == "array":
        tree: dict[str, Any] = {}
        if any(f.type == "array" for f in column.fields) or not all(_plant(tree, f) for f in column.fields):
            return None
        return pa.list_(pa.struct(_arrow_fields(tree)))
    return pa.string()


def _plant(tree: dict[str, Any], column: Column) -> bool:
    """Put a column's dotted source into a tree of fields; False when two columns clash."""
    kind = _arrow_type_of(column)
    *parents, leaf = column.source.split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            return False
    there = node.get(leaf)
    if kind is None or isinstance(there, dict) or (there is not None and not there.equals(kind)):
        return False
    node[leaf] = kind
    return True


def _arrow_fields(tree: dict[str, Any]) -> list[pa.Field]:
    return [
        pa.field(name, pa.struct(_arrow_fields(node)) if isinstance(node, dict) else node)
        for name, node in tree.items()
    ]


def _raw_columns(contract: Contract, table: pa.Table) -> pa.Table | None:
    """Arrow's typed columns as the per-line path's raw text columns (no ``_row``); None when a
    value would not be what the per-line path makes of it (an array item that is not an object)."""
    schema = raw_schema(contract)
    arrays = []
    for column in contract.columns:
        values = _field(table, column.source)
        if column.type == "array":
            values = _raw_list(column, values, schema.field(column.name).type)
            if values is None:
                return None
        else:
            values = _raw_text(values)
        arrays.append(values)
    return pa.Table.from_arrays(arrays, schema=pa.schema(list(schema)[1:]))


def _field(container: Any, dotted: str) -> pa.Array:
    import pyarrow.compute as pc

    first, *rest = dotted.split(".")
    values = container.column(first).chunk(0) if isinstance(container, pa.Table) else pc.struct_field(container, first)
    for part in rest:
        values = pc.struct_field(values, part)  # null where a parent is null, as _lookup gives None
    return values


def _raw_text(values: pa.Array) -> pa.Array:
    if pa.types.is_string(values.type):
        return _empty_as_null(values, *_offsets_and_data(values))
    return values.cast(pa.string())  # int64: its digits, as json.dumps; bool: "true"/"false"


def _raw_list(column: Column, lists: pa.ListArray, target: pa.DataType) -> pa.Array | None:
    import pyarrow.compute as pc

    offsets = lists.offsets
    first = offsets[0].as_py()
    items = lists.values.slice(first, offsets[-1].as_py() - first)
    if items.null_count:
        return None  # a null item: the per-line path says "is not an object"
    fields = [_raw_text(_field(items, f.source)) for f in column.fields]
    values = pa.StructArray.from_arrays(fields, fields=list(target.value_type))
    return pa.ListArray.from_arrays(pc.subtract(offsets, first), values, type=target, mask=lists.is_null())
