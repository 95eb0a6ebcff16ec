"""Read a delivered file (CSV, Excel, JSON, NDJSON, Parquet) into an all-string polars frame.

Every reader returns the rows as the contributor sees them: one row per record, all values as
text (typing happens in `transforms.normalise`), and the spreadsheet row number of each record
(header = row 1). A file that cannot be read raises `ReadError` with a reason a contributor can
act on. A record that cannot be read as the header says (a CSV row with more or fewer fields than the
header, a quote left open, an NDJSON line that is not a JSON object, a JSON record naming a key twice,
a value holding a NUL byte) stays in the frame, marked with its rule and reason (`ROW_RULE`,
`ROW_REASON`), never padded or cut to fit: validation sets it aside with that reason.

Text files are read in chunks (`CHUNK_ROWS` records at a time, decoded as they stream). `read_table`
gathers them into one frame; `open_streamed` reads a large CSV twice instead (once for what is decided
about the whole file, once a chunk at a time), so that reading it costs the memory of one chunk
(`expectations.gate` takes that path from `STREAM_BYTES` on).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import itertools
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from din.contract import RECORD_UNREADABLE, ROW_FIELD_COUNT, VALUE_NUL_BYTE

ROW = "_source_row"  # spreadsheet row number of each record (header is row 1)
ROW_RULE = "_row_rule"  # the rule a record breaks as read (None: read as the header says)
ROW_REASON = "_row_reason"  # why, in words a contributor can act on
EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".json": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".parquet": "parquet",
}
DELIMITERS = (",", ";", "\t", "|")
SNIFF_BYTES = 64 * 1024
CHUNK_BYTES = 1024 * 1024  # bytes decoded at a time while checking an encoding
CHUNK_ROWS = 10_000  # records turned into a frame at a time (more costs memory, not speed)
NUL_BYTE_REASON = (
    "a value in this row holds a NUL byte (character 0), which text never holds: the file is damaged here, "
    "or was saved in another encoding (UTF-16?); export it again as UTF-8"
)
MARKS = (ROW, ROW_RULE, ROW_REASON)  # the columns a reader adds to the delivered ones


class ReadError(ValueError):
    """The file cannot be read as a table; the message says why and what to do."""


@dataclass(frozen=True)
class ReadOptions:
    """Format options from the source registry (all auto-detected when None)."""

    type: str = "auto"
    sheet: str | None = None
    delimiter: str | None = None
    encoding: str | None = None


@dataclass
class RawTable:
    """A file's records as strings, with the headers as delivered."""

    frame: pl.DataFrame  # delivered headers (as text, each once) + ROW, ROW_RULE, ROW_REASON
    format: str
    encoding: str | None = None
    delimiter: str | None = None
    notes: list[str] = field(default_factory=list)
    delivered: list[str] | None = None  # the header row exactly as delivered (a name twice stays twice)
    engine: str = "python"  # what read the records: "polars" for a plain CSV (`transforms.fast_csv`)

    @property
    def headers(self) -> list[str]:
        """The frame's columns of delivered values (a header delivered twice: `x` and `x (2)`)."""
        return [c for c in self.frame.columns if c not in MARKS]

    @property
    def delivered_headers(self) -> list[str]:
        """The header row as delivered, so that a header given twice is seen twice (never first-wins)."""
        return list(self.delivered) if self.delivered is not None else self.headers


def detect_format(name: str, head: bytes, declared: str = "auto") -> str:
    """The file's format: as declared, else from its extension, else from its first bytes."""
    if declared not in ("auto", "", None):
        return declared
    suffix = Path(name).suffix.lower()
    if suffix == ".json" and _looks_like_ndjson(head):
        return "ndjson"
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    if head.startswith(b"PAR1"):
        return "parquet"
    stripped = head.lstrip(b"\xef\xbb\xbf \r\n\t")
    if stripped.startswith((b"[", b"{")):
        return "ndjson" if _looks_like_ndjson(head) else "json"
    return "csv"


def read_table(path: Path, name: str, options: ReadOptions | None = None) -> RawTable:
    """Read `path` (a landed copy of the delivered file `name`) into a RawTable."""
    options = options or ReadOptions()
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if not head.strip():
        raise ReadError("the file is empty: it has no header row and no data")
    fmt = detect_format(name, head, options.type)
    reader = {
        "csv": _read_csv,
        "xlsx": _read_xlsx,
        "json": _read_json,
        "ndjson": _read_ndjson,
        "parquet": _read_parquet,
    }.get(fmt)
    if reader is None:
        raise ReadError(f"format {fmt!r} is not a table format this pipeline reads (csv, xlsx, json, ndjson, parquet)")
    table = reader(path, options)
    before = table.frame.height
    table.frame = _with_marks(_strip_blank_rows(table.frame))
    if table.engine != "polars":  # polars reads only a file without a NUL byte (`fast_csv.is_plain`)
        table.frame = _mark_nul_bytes(table.frame)
    if table.frame.height < before:
        table.notes.append(f"skipped {before - table.frame.height} blank row(s)")
    return table


# --- CSV -------------------------------------------------------------------------------------


def decode_text(data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """Decode bytes as the declared encoding, else UTF-8 (BOM stripped), else cp1252."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        if encoding is None:
            encoding = "utf-8"
    if encoding:
        try:
            return data.decode(encoding), encoding
        except (UnicodeDecodeError, LookupError) as error:
            raise ReadError(f"the file is not valid {encoding} text ({error}); save it as UTF-8 CSV") from None
    if b"\x00" in data[:4096]:
        raise ReadError("the file holds binary data, not text: export it as CSV (UTF-8) or XLSX")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        # Excel (UK) saves "CSV" as cp1252; latin-1 would also decode but mangles € and curly quotes.
        try:
            return data.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            return data.decode("latin-1"), "latin-1"


_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def text_encoding(path: Path, declared: str | None = None) -> str:
    """The encoding to read `path` with (a codec name Python streams with): as declared, else UTF-8
    (`utf-8-sig` when it starts with a BOM; UTF-16 with its BOM), else cp1252, else latin-1. The whole
    file is checked, a chunk at a time, so a stray byte near the end is never decoded wrongly."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if declared is None and head.startswith(_UTF16_BOMS):
        return "utf-16"
    if declared is not None:
        normalised = codecs.lookup(declared).name
        if normalised == "utf-8" and head.startswith(codecs.BOM_UTF8):
            normalised = "utf-8-sig"
        if not _decodes(path, normalised):
            raise ReadError(
                f"the file is not valid {declared} text (as its source declares); save it as UTF-8 CSV, or correct "
                "format.encoding"
            )
        return normalised
    if head.count(b"\x00") > len(head) // 20:  # a stray NUL marks its row; many mean this is no text at all
        raise ReadError(
            "the file holds binary data, not text (or UTF-16 text without its byte-order mark): export it as CSV "
            "(UTF-8) or XLSX"
        )
    if _decodes(path, "utf-8"):
        return "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"
    cut = _cut_inside_a_character(path)
    if cut is not None:
        raise ReadError(
            f"the file ends in the middle of a UTF-8 character (line {cut}): it was cut off in transfer, so "
            "upload or export it again, complete; if it is Windows-1252 text instead, its source must declare "
            "format.encoding: cp1252"
        )
    damaged = _damaged_utf8_line(path)
    if damaged is not None:
        raise ReadError(
            f"the file is UTF-8 text, but line {damaged} holds bytes that are not UTF-8: it was damaged or cut short "
            "in transfer, or text in two encodings was pasted together (read as Windows-1252 instead, every accented "
            "letter in it would change); export it again as UTF-8, or declare its format.encoding"
        )
    return "cp1252" if _decodes(path, "cp1252") else "latin-1"  # latin-1 decodes any byte


_UNDECODABLE = re.compile("[\udc80-\udcff]")  # a byte that is not UTF-8, as surrogateescape decodes it
_MULTIBYTE = re.compile("[^\x00-\x7f\udc80-\udcff]")  # a character UTF-8 writes as several bytes


def _cut_inside_a_character(path: Path) -> int | None:
    """The last line, when every byte of the file is UTF-8 except its final one to three, which begin a
    multi-byte character that never ends: a UTF-8 file cut short, even one whose only accented letter was
    the one cut (read as Windows-1252, its last letter would become `Ã` or `â€`). A Windows-1252 file whose
    only accented letter is its very last byte, with no line end after it, looks the same: it is refused
    too, with the way to declare it, rather than guessed."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines = 1
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK_BYTES):
                lines += decoder.decode(chunk).count("\n")
    except UnicodeDecodeError:
        return None  # a bad byte before the end: not (only) a cut
    pending, _ = decoder.getstate()
    return lines if pending else None


def _damaged_utf8_line(path: Path) -> int | None:
    """The line of the first byte that is not UTF-8, when the file also holds well-formed multi-byte UTF-8:
    such a file is UTF-8 damaged (or cut inside a character), not text in a one-byte encoding."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
    lines, first_bad, multibyte = 1, None, False
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(CHUNK_BYTES)
            text = decoder.decode(chunk, final=not chunk)
            if first_bad is None:
                bad = _UNDECODABLE.search(text)
                if bad is not None:
                    first_bad = lines + text.count("\n", 0, bad.start())
                lines += text.count("\n")
            multibyte = multibyte or _MULTIBYTE.search(text) is not None
            if (first_bad is not None and multibyte) or not chunk:
                break
    return first_bad if multibyte else None


def _decodes(path: Path, encoding: str) -> bool:
    """Whether the whole file is valid text in `encoding`, read a chunk at a time."""
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK_BYTES):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeError:  # a byte that is not `encoding`, or UTF-16 without its byte-order mark
        return False
    return True


def sniff_delimiter(text: str) -> str:
    """The delimiter that splits the header line into the most fields, consistently."""
    sample = text[:SNIFF_BYTES]
    lines = [line for line in sample.splitlines()[:20] if line.strip()]
    if not lines:
        return ","
    best, best_score = ",", 0
    for delimiter in DELIMITERS:
        try:
            rows = list(csv.reader(io.StringIO("\n".join(lines[:10])), delimiter=delimiter))
        except csv.Error:
            continue
        header_fields = len(rows[0]) if rows else 0
        if header_fields <= 1:
            continue
        consistent = sum(1 for row in rows[1:] if len(row) == header_fields)
        score = header_fields * 10 + consistent
        if score > best_score:
            best, best_score = delimiter, score
    return best


@dataclass(frozen=True)
class _CsvHead:
    encoding: str
    delimiter: str
    delivered: list[str]
    names: list[str]

    @property
    def shown_encoding(self) -> str:
        """The encoding as a contributor names it (a BOM is part of UTF-8 to them)."""
        return {"utf-8-sig": "utf-8", "utf_16": "utf-16"}.get(self.encoding, self.encoding)


@contextlib.contextmanager
def _csv_records(path: Path, options: ReadOptions) -> Iterator[tuple[_CsvHead, Iterator[pl.DataFrame]]]:
    """The file's header and its records as frames of `CHUNK_ROWS`, decoded and parsed as they stream."""
    encoding = text_encoding(path, options.encoding)
    with open(path, encoding=encoding, newline="") as handle:
        head = handle.read(SNIFF_BYTES)
    if _control_ratio(head[:4096]) > 0.05:
        raise ReadError("the file holds binary data, not text: export it as CSV (UTF-8) or XLSX")
    delimiter = options.delimiter or sniff_delimiter(head)
    with open(path, encoding=encoding, newline="") as handle:
        records = _records_of(_RecordLines(handle), delimiter)
        first = next(records, None)
        if first is None or first[1] is None:
            raise ReadError(
                f"the header row is not a well-formed {_delimiter_name(delimiter)}-separated CSV line: check its quotes"
                if first is not None
                else "the file is empty: it has no header row and no data"
            )
        if first[2] is not None:
            raise ReadError(
                "the header row holds a NUL byte (character 0), which text never holds: the file is damaged, "
                "or was saved in another encoding (UTF-16?); export it again as UTF-8"
            )
        delivered = first[1]
        names = _column_names(delivered)
        yield _CsvHead(encoding, delimiter, delivered, names), _field_chunks(records, names, delimiter)


def _read_csv(path: Path, options: ReadOptions) -> RawTable:
    """A CSV read record by record (Python's csv module, strict quoting), a chunk of records at a time; or,
    when it is plain, by polars, with the same records (`transforms.fast_csv`).

    Each record keeps its own fields: one with more or fewer fields than the header, or whose quoting is
    broken (a quote left open at the end of a file cut short), is marked with why, never padded or cut to
    fit silently."""
    with _csv_records(path, options) as (head, chunks):
        plain = _plain_records(path, head)
        frame = _frames(chunks, head.names) if plain is None else plain
    frame = _drop_empty_unnamed(frame, head.delivered, head.names)
    return RawTable(
        frame,
        "csv",
        encoding=head.shown_encoding,
        delimiter=head.delimiter,
        delivered=_kept(frame.columns, head.delivered, head.names),
        engine="python" if plain is None else "polars",
    )


def _plain_records(path: Path, head: _CsvHead) -> pl.DataFrame | None:
    """The records `_frames` gives (without the marks, which `read_table` adds: none is marked), read by
    polars when the file is plain (`transforms.fast_csv`); else None."""
    from transforms import fast_csv

    if not fast_csv.enabled() or head.delimiter not in DELIMITERS:  # a declared delimiter of another kind
        return None
    return fast_csv.read_plain(path, head.encoding, head.delimiter, head.delivered, head.names, ROW)


@dataclass
class StreamedTable:
    """A large CSV that is never held whole: read once by `index` for what is decided about the file as a
    whole (how many records, which could not be read, the values of a few columns), then again by `chunks`,
    a chunk of records at a time, exactly as `read_table` would have read them. Nothing of it is written
    anywhere: its values stay in memory a chunk at a time, and what is kept of them is for the caller to
    protect first (a delivery's direct identifiers never leave landing)."""

    path: Path
    options: ReadOptions
    encoding: str  # as RawTable.encoding shows it (reading again works it out afresh)
    delimiter: str
    header: list[str]  # the header row as delivered
    names: list[str]  # the column name of each delivered header (`x (2)`, `(column N)`)
    format: str = "csv"
    columns: list[str] = field(default_factory=list)  # kept columns (an unnamed column without values is none)
    height: int = 0
    notes: list[str] = field(default_factory=list)
    indexed: bool = False

    @property
    def all_headers(self) -> list[str]:
        """Every delivered header, an unnamed one by its `(column N)`, before `index` drops empty ones."""
        return _kept(self.names, self.header, self.names)

    @property
    def delivered_headers(self) -> list[str]:
        """As RawTable.delivered_headers (known once `index` has read the file)."""
        if not self.indexed:
            raise RuntimeError("StreamedTable.delivered_headers is known after index()")
        return _kept(self.columns, self.header, self.names)

    def index(self, keep: Sequence[str] = ()) -> pl.DataFrame:
        """Read the file once: every record's ROW, ROW_RULE and ROW_REASON, with the values of the columns
        `keep` names (delivered headers, or `(column N)`); settles the kept columns, height and notes."""
        kept_names = [self.names[self.all_headers.index(h)] for h in dict.fromkeys(keep) if h in self.all_headers]
        unnamed = {n for h, n in zip(self.header, self.names, strict=True) if not h.strip()}
        with_values: set[str] = set()
        parts: list[pl.DataFrame] = []
        blank = 0
        for chunk, prepared in self._prepared_chunks():
            for column in unnamed - with_values:
                if not chunk[column].str.strip_chars().fill_null("").eq("").all():
                    with_values.add(column)
            blank += chunk.height - prepared.height
            parts.append(prepared.select(*kept_names, ROW, ROW_RULE, ROW_REASON))
        self.columns = [n for n in self.names if n not in unnamed or n in with_values]
        self.height = sum(part.height for part in parts)
        self.notes = [f"skipped {blank} blank row(s)"] if blank else []
        self.indexed = True
        schema = {
            **{n: pl.String() for n in kept_names},
            ROW: pl.Int64(),
            ROW_RULE: pl.String(),
            ROW_REASON: pl.String(),
        }
        index = pl.concat(parts, how="vertical") if parts else pl.DataFrame(schema=schema)
        return index.rename({n: h for n, h in zip(self.names, self.all_headers, strict=True) if n in kept_names})

    def chunks(self) -> Iterator[pl.DataFrame]:
        """Read the file again, a chunk of records at a time: the kept columns (as RawTable.frame names them)
        and ROW, ROW_RULE, ROW_REASON; the same records `read_table` returns, in the same order."""
        if not self.indexed:
            raise RuntimeError("StreamedTable.chunks() comes after index()")
        for _, prepared in self._prepared_chunks():
            yield prepared.select(*self.columns, ROW, ROW_RULE, ROW_REASON)

    def _prepared_chunks(self) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
        with _csv_records(self.path, self.options) as (_, chunks):
            for chunk in chunks:
                yield chunk, _mark_nul_bytes(_with_marks(_strip_blank_rows(chunk)))


def open_streamed(path: Path, name: str, options: ReadOptions | None = None) -> RawTable | StreamedTable:
    """A CSV as a StreamedTable (only its header read so far); any other format read whole by `read_table`.
    A file that cannot be read raises ReadError, as `read_table` does."""
    options = options or ReadOptions()
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if not head.strip() or detect_format(name, head, options.type) != "csv":
        return read_table(path, name, options)
    with _csv_records(path, options) as (csv_head, _):
        return StreamedTable(
            path, options, csv_head.shown_encoding, csv_head.delimiter, csv_head.delivered, csv_head.names
        )


def _kept(kept: Iterable[str], delivered: list[str], names: list[str]) -> list[str]:
    """The delivered headers of the columns kept (a header-less column with values by its `(column N)`)."""
    columns = set(kept)
    return [
        header if header.strip() else name for header, name in zip(delivered, names, strict=True) if name in columns
    ]


class _RecordLines:
    """The lines of a text file, keeping those of the record being read, so that a record whose quoting is
    broken can be followed to its true end."""

    def __init__(self, handle: Iterable[str]) -> None:
        self._lines = iter(handle)
        self.of_record: list[str] = []
        self.nul_in_record = False

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        if "\x00" in line:
            # Text never holds a NUL byte: it is damage, and it must not move the record's structure (a NUL
            # in front of an opening quote would otherwise swallow the records after it). It is taken out
            # for reading, and the record it was in is set aside, never loaded.
            self.nul_in_record = True
            line = line.replace("\x00", "")
        self.of_record.append(line)
        return line

    def rest(self) -> Iterator[str]:
        return self._lines


Problem = tuple[str, str]  # (rule, reason) of a record set aside


def _records_of(lines: _RecordLines, delimiter: str) -> Iterator[tuple[int, list[str] | None, Problem | None]]:
    """(record number, fields, None) per record read as typed; (number, fields or None, (rule, reason)) for
    a record whose quoting is broken (no fields) or that held a NUL byte.

    Strict quoting stops at the first character out of place (`"a"b`), in the middle of the record; the
    rest of that record is then read leniently, as a spreadsheet would, only to find where it ends: a
    quoted line break after the fault belongs to the broken record, and the records after it stay whole."""
    reader = csv.reader(lines, delimiter=delimiter, quotechar='"', strict=True)
    number = 0
    while True:
        number += 1
        lines.of_record.clear()
        lines.nul_in_record = False
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            _skip_to_record_end(lines, delimiter)
            yield number, None, (RECORD_UNREADABLE, _quoting_reason(str(error)))
            continue
        yield number, fields, (VALUE_NUL_BYTE, NUL_BYTE_REASON) if lines.nul_in_record else None


def _skip_to_record_end(lines: _RecordLines, delimiter: str) -> None:
    """Consume what is left of a broken record: its lines so far read again leniently, with as many of the
    following lines as that reading needs to close the record."""
    read_so_far = list(lines.of_record)
    lenient = csv.reader(itertools.chain(read_so_far, lines.rest()), delimiter=delimiter, quotechar='"')
    with contextlib.suppress(csv.Error):  # the file ends inside the broken record: nothing follows it
        next(lenient, None)


def _field_chunks(
    records: Iterable[tuple[int, list[str] | None, Problem | None]], names: list[str], delimiter: str
) -> Iterator[pl.DataFrame]:
    width = len(names)
    kind = _delimiter_name(delimiter)
    while chunk := list(itertools.islice(records, CHUNK_ROWS)):
        rows: list[list[str | None]] = []
        rules: list[str | None] = []
        reasons: list[str | None] = []
        numbers: list[int] = []
        for number, fields, problem in chunk:
            numbers.append(number)  # records count from the header (row 1), as a spreadsheet numbers rows
            rule, reason = problem or (None, None)
            if fields is None:
                values: list[str | None] = [None] * width
            elif not fields or (len(fields) == 1 and not fields[0].strip()):  # a blank line: dropped as blank
                values = [None] * width
            elif len(fields) != width:
                if rule is None:
                    rule, reason = ROW_FIELD_COUNT, _field_count_reason(len(fields), width, kind)
                values = [*fields[:width], *([None] * (width - len(fields)))]
            else:
                values = list(fields)
            rows.append(values)
            rules.append(rule)
            reasons.append(reason)
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
        yield pl.DataFrame(
            {
                **{name: pl.Series(name, column, dtype=pl.String) for name, column in zip(names, columns, strict=True)},
                ROW: pl.Series(ROW, numbers, dtype=pl.Int64),
                ROW_RULE: pl.Series(ROW_RULE, rules, dtype=pl.String),
                ROW_REASON: pl.Series(ROW_REASON, reasons, dtype=pl.String),
            }
        )


def _frames(chunks: Iterable[pl.DataFrame], names: list[str]) -> pl.DataFrame:
    parts = list(chunks)
    if not parts:
        schema = {**{n: pl.String() for n in names}, ROW: pl.Int64(), ROW_RULE: pl.String(), ROW_REASON: pl.String()}
        return pl.DataFrame(schema=schema)
    return pl.concat(parts, how="diagonal", rechunk=True)  # JSON chunks may each bring new keys


def _field_count_reason(found: int, width: int, kind: str) -> str:
    if found < width:
        return (
            f"this row has {found} field(s) but the header has {width}: it was cut short (an unfinished last "
            "line?) or lost a delimiter; its missing values were not filled in"
        )
    return (
        f"this row has {found} fields but the header has {width}: a {kind} inside a value that is not quoted, "
        "or a value in a column without a header; nothing of it was loaded"
    )


def _quoting_reason(complaint: str) -> str:
    if "end of data" in complaint:
        return (
            "the file ends inside a quoted value: this row was cut short (an interrupted upload or export?); "
            "send the whole file again"
        )
    return (
        'this row\'s quotes are broken (a value such as "a"b, with text after its closing quote): '
        "quote the whole value and double any quote inside it"
    )


def _column_names(delivered: list[str]) -> list[str]:
    """Unique column names for delivered headers: a header given again is `x (2)`, a blank one `(column N)`."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for position, header in enumerate(delivered, start=1):
        base = header if header.strip() else f"(column {position})"
        seen[base] = seen.get(base, 0) + 1
        name = base if seen[base] == 1 else f"{base} ({seen[base]})"
        while name in names or name in MARKS:
            name += "*"
        names.append(name)
    return names


def _drop_empty_unnamed(frame: pl.DataFrame, delivered: list[str], names: list[str]) -> pl.DataFrame:
    """A column without a header that holds no value (a trailing delimiter) is no column; one with values
    stays, as `(column N)`, and is reported as an extra column."""
    empty = [
        name
        for header, name in zip(delivered, names, strict=True)
        if not header.strip() and frame[name].str.strip_chars().fill_null("").eq("").all()
    ]
    return frame.drop(empty) if empty else frame


def _delimiter_name(delimiter: str) -> str:
    return {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}.get(delimiter, repr(delimiter))


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")  # below space, but for tab, line feed and return


def _control_ratio(text: str) -> float:
    if not text:
        return 0.0
    return len(_CONTROL.findall(text)) / len(text)


# --- Excel -----------------------------------------------------------------------------------


def _read_xlsx(path: Path, options: ReadOptions) -> RawTable:
    import fastexcel

    try:
        reader = fastexcel.read_excel(str(path))
    except Exception as error:  # calamine raises its own error types for corrupt zips
        raise ReadError(f"the file is not a readable Excel workbook (.xlsx): {_first_line(error)}") from None
    sheets = reader.sheet_names
    sheet = options.sheet if options.sheet is not None else _data_sheet(sheets)
    if sheet not in sheets:
        raise ReadError(f"the workbook has no sheet named {sheet!r}; its sheets are {', '.join(sheets)}")
    try:
        # The header row is read as a row of cells: the reader's own names would hide a header given twice.
        loaded = reader.load_sheet_by_name(sheet, header_row=None, dtypes="string")
        cells = pl.from_arrow(loaded.to_arrow())
    except Exception as error:
        raise ReadError(f"sheet {sheet!r} could not be read: {_first_line(error)}") from None
    assert isinstance(cells, pl.DataFrame)
    cells = cells.select(pl.all().cast(pl.String))
    notes = [f"read sheet {sheet!r}"] if len(sheets) > 1 else []
    if cells.height == 0:
        raise ReadError(f"sheet {sheet!r} is empty: it has no header row and no data")
    delivered = ["" if v is None else str(v) for v in cells.row(0)]
    names = _column_names(delivered)
    frame = _with_rows(cells.slice(1).rename(dict(zip(cells.columns, names, strict=True))), first_row=2)
    frame = _drop_empty_unnamed(frame, delivered, names)
    return RawTable(frame, "xlsx", notes=notes, delivered=_kept(frame.columns, delivered, names))


def _data_sheet(sheets: list[str]) -> str:
    """The first sheet that is not our templates' notes sheet."""
    for sheet in sheets:
        if sheet.strip().lower() not in ("notes", "read me", "readme", "instructions"):
            return sheet
    return sheets[0]


# --- JSON ------------------------------------------------------------------------------------


def _read_json(path: Path, options: ReadOptions) -> RawTable:
    text, _ = decode_text(path.read_bytes(), options.encoding or "utf-8")
    try:
        document = json.loads(text, object_pairs_hook=_pairs)
    except json.JSONDecodeError as error:
        raise ReadError(
            f"the file is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}"
        ) from None
    del text
    records = _records(document)
    numbered = ((index, record, None) for index, record in enumerate(records, start=1))
    return RawTable(_frames(_record_chunks(numbered), []), "json")


def _read_ndjson(path: Path, options: ReadOptions) -> RawTable:
    """One JSON object per line, read a chunk of lines at a time; a line that is not one is marked, not fatal."""
    encoding = text_encoding(path, options.encoding or "utf-8")
    with open(path, encoding=encoding, newline=None) as handle:
        frame = _frames(_record_chunks(_ndjson_records(handle)), [])
    return RawTable(frame, "ndjson")


def _ndjson_records(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, object] | None, str | None]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line, object_pairs_hook=_pairs)
        except json.JSONDecodeError as error:
            yield (
                number,
                None,
                (
                    f"line {number} is not valid JSON ({error.msg} at column {error.colno}): cut short, or two records "
                    "on one line; each line must be one record {...}"
                ),
            )
            continue
        if not isinstance(record, dict):
            yield number, None, f"line {number} is not a JSON object; each line must be one record {{...}}"
            continue
        yield number, record, None


class _Pairs(dict[str, object]):
    """A JSON object that remembers the keys it was given more than once (json keeps only the last)."""

    repeated: tuple[str, ...] = ()


def _pairs(pairs: list[tuple[str, object]]) -> dict[str, object]:
    record = _Pairs(pairs)
    if len(record) < len(pairs):
        counts: dict[str, int] = {}
        for key, _ in pairs:
            counts[key] = counts.get(key, 0) + 1
        record.repeated = tuple(k for k, n in counts.items() if n > 1)
    return record


def _records(document: object) -> list[dict[str, object]]:
    if isinstance(document, dict):
        for key in ("rows", "data", "records", "items"):
            if isinstance(document.get(key), list):
                document = document[key]
                break
        else:
            raise ReadError("expected a JSON array of records, or an object with a 'rows' array")
    if not isinstance(document, list):
        raise ReadError("expected a JSON array of records")
    for index, record in enumerate(document, start=1):
        if not isinstance(record, dict):
            raise ReadError(f'record {index} is not a JSON object; each record must be {{"column": value}}')
    return document


def _record_chunks(
    records: Iterable[tuple[int, dict[str, object] | None, str | None]],
) -> Iterator[pl.DataFrame]:
    """Frames of CHUNK_ROWS records each (their columns in the order first seen; pl.concat lines them up)."""
    iterator = iter(records)
    while chunk := list(itertools.islice(iterator, CHUNK_ROWS)):
        columns: dict[str, None] = {}
        for _, record, _ in chunk:
            for key in record or {}:
                columns.setdefault(str(key), None)
        names = list(columns)
        rules: list[str | None] = []
        reasons: list[str | None] = []
        for _, record, problem in chunk:
            repeated = getattr(record, "repeated", ())
            if problem is not None:
                rules.append(RECORD_UNREADABLE)
                reasons.append(problem)
            elif repeated:
                rules.append(RECORD_UNREADABLE)
                reasons.append(
                    f"this record names {', '.join(repr(k) for k in repeated)} more than once: only one value per "
                    "key can be loaded, and nothing says which is meant"
                )
            else:
                rules.append(None)
                reasons.append(None)
        # A key named like a mark keeps its values, under the name `_column_names` gives it (`_source_row*`).
        data = {_unmarked(name): [_json_text((record or {}).get(name)) for _, record, _ in chunk] for name in names}
        yield pl.DataFrame(
            {
                **{name: pl.Series(name, values, dtype=pl.String) for name, values in data.items()},
                ROW: pl.Series(ROW, [number for number, _, _ in chunk], dtype=pl.Int64),
                ROW_RULE: pl.Series(ROW_RULE, rules, dtype=pl.String),
                ROW_REASON: pl.Series(ROW_REASON, reasons, dtype=pl.String),
            }
        )


def _unmarked(name: str) -> str:
    while name in MARKS:
        name += "*"
    return name


def _json_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _looks_like_ndjson(head: bytes) -> bool:
    lines = [line.strip() for line in head.lstrip(b"\xef\xbb\xbf").splitlines() if line.strip()]
    return len(lines) > 1 and all(line.startswith(b"{") and line.endswith(b"}") for line in lines[:-1])


# --- Parquet ---------------------------------------------------------------------------------


def _read_parquet(path: Path, options: ReadOptions) -> RawTable:
    try:
        frame = pl.read_parquet(path)
    except Exception as error:
        raise ReadError(f"the file is not a readable Parquet file: {_first_line(error)}") from None
    frame = frame.select(
        pl.col(name).dt.strftime("%Y-%m-%d") if dtype == pl.Date else pl.col(name).cast(pl.String)
        for name, dtype in frame.schema.items()
    )
    return RawTable(_with_rows(frame, first_row=1), "parquet")


# --- shared ----------------------------------------------------------------------------------


def _with_rows(frame: pl.DataFrame, first_row: int) -> pl.DataFrame:
    return frame.with_columns(pl.int_range(first_row, first_row + frame.height, dtype=pl.Int64).alias(ROW))


def _with_marks(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame with ROW_RULE and ROW_REASON (null where the record was read as the header says)."""
    missing = [pl.lit(None, dtype=pl.String).alias(c) for c in (ROW_RULE, ROW_REASON) if c not in frame.columns]
    return frame.with_columns(missing) if missing else frame


def _mark_nul_bytes(frame: pl.DataFrame) -> pl.DataFrame:
    """A value holding a NUL byte marks its record: text never holds one, so the file is damaged there."""
    values = [c for c in frame.columns if c not in MARKS]
    if not values or frame.height == 0:
        return frame
    has_nul = pl.any_horizontal(pl.col(values).str.contains("\x00", literal=True).fill_null(False))
    if not frame.select(has_nul.any()).item():
        return frame
    marked = has_nul & pl.col(ROW_RULE).is_null()
    return frame.with_columns(
        pl.when(marked).then(pl.lit(VALUE_NUL_BYTE)).otherwise(pl.col(ROW_RULE)).alias(ROW_RULE),
        pl.when(marked).then(pl.lit(NUL_BYTE_REASON)).otherwise(pl.col(ROW_REASON)).alias(ROW_REASON),
    )


def _strip_blank_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows where every cell is empty are spreadsheet padding, not records (a record marked unreadable stays)."""
    values = [c for c in frame.columns if c not in MARKS]
    if not values or frame.height == 0:
        return frame

    def empty(*columns: str) -> pl.Expr:
        return pl.col(*columns).str.strip_chars().fill_null("") == ""

    # A blank row's first cell is blank: when no first cell is, no row is (one column looked at, not all).
    if not frame.select(empty(values[0]).any()).item():
        return frame
    blank = pl.all_horizontal(empty(*values))
    if ROW_RULE in frame.columns:
        blank = blank & pl.col(ROW_RULE).is_null()
    return frame.filter(~blank)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
