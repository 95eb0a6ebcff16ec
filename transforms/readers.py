"""Read a delivered file (CSV, Excel, JSON, NDJSON, Parquet) into an all-string polars frame.

Every reader returns the rows as the contributor sees them: one row per record, all values as
text (typing happens in `transforms.normalise`), and the spreadsheet row number of each record
(header = row 1). A file that cannot be read raises `ReadError` with a reason a contributor can
act on.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

ROW = "_source_row"  # spreadsheet row number of each record (header is row 1)
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

    frame: pl.DataFrame  # delivered headers (as text) + ROW
    format: str
    encoding: str | None = None
    delimiter: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def headers(self) -> list[str]:
        return [c for c in self.frame.columns if c != ROW]


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
    table.frame = _strip_blank_rows(table.frame)
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


def _read_csv(path: Path, options: ReadOptions) -> RawTable:
    data = path.read_bytes()
    text, encoding = decode_text(data, options.encoding)
    if _control_ratio(text[:4096]) > 0.05:
        raise ReadError("the file holds binary data, not text: export it as CSV (UTF-8) or XLSX")
    delimiter = options.delimiter or sniff_delimiter(text)
    payload = text.encode("utf-8") if encoding not in ("utf-8",) or data.startswith(b"\xef\xbb\xbf") else data
    try:
        frame = pl.read_csv(
            io.BytesIO(payload),
            separator=delimiter,
            infer_schema=False,
            has_header=True,
            raise_if_empty=False,
            truncate_ragged_lines=False,
            quote_char='"',
        )
    except pl.exceptions.PolarsError as error:
        detail = _ragged_row(text, delimiter) or _first_line(error)
        raise ReadError(f"the file is not a well-formed {_delimiter_name(delimiter)}-separated CSV: {detail}") from None
    frame = _dedupe_headers(frame)
    return RawTable(_with_rows(frame, first_row=2), "csv", encoding=encoding, delimiter=delimiter)


def _ragged_row(text: str, delimiter: str) -> str | None:
    """Where a CSV's rows stop matching its header (only called once parsing has failed)."""
    rows = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = next(rows, [])
    for number, row in enumerate(rows, start=2):
        if row and len(row) != len(header):
            return (
                f"row {number} has {len(row)} fields but the header has {len(header)}; "
                "check for an unquoted delimiter or a missing column in that row"
            )
    return None


def _delimiter_name(delimiter: str) -> str:
    return {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}.get(delimiter, repr(delimiter))


def _control_ratio(text: str) -> float:
    if not text:
        return 0.0
    control = sum(1 for ch in text if ord(ch) < 32 and ch not in "\r\n\t")
    return control / len(text)


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
        loaded = reader.load_sheet_by_name(sheet, header_row=0, dtypes="string")
        frame = pl.from_arrow(loaded.to_arrow())
    except Exception as error:
        raise ReadError(f"sheet {sheet!r} could not be read: {_first_line(error)}") from None
    assert isinstance(frame, pl.DataFrame)
    frame = frame.select(pl.all().cast(pl.String))
    frame = frame.select([c for c in frame.columns if not c.startswith("__UNNAMED__")])
    frame = _dedupe_headers(frame)
    notes = [f"read sheet {sheet!r}"] if len(sheets) > 1 else []
    return RawTable(_with_rows(frame, first_row=2), "xlsx", notes=notes)


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
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ReadError(
            f"the file is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}"
        ) from None
    records = _records(document)
    return RawTable(_records_frame(records, first_row=1), "json")


def _read_ndjson(path: Path, options: ReadOptions) -> RawTable:
    text, _ = decode_text(path.read_bytes(), options.encoding or "utf-8")
    records: list[dict[str, object]] = []
    rows: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ReadError(f"line {number} is not valid JSON: {error.msg} at column {error.colno}") from None
        if not isinstance(record, dict):
            raise ReadError(f"line {number} is not a JSON object; each line must be one record {{...}}")
        records.append(record)
        rows.append(number)
    frame = _records_frame(records, first_row=1)
    if rows:
        frame = frame.with_columns(pl.Series(ROW, rows, dtype=pl.Int64))
    return RawTable(frame, "ndjson")


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


def _records_frame(records: list[dict[str, object]], first_row: int) -> pl.DataFrame:
    columns: dict[str, None] = {}
    for record in records:
        for key in record:
            columns.setdefault(str(key), None)
    data = {column: [_json_text(record.get(column)) for record in records] for column in columns}
    frame = pl.DataFrame(data, schema={column: pl.String for column in columns})
    return _with_rows(frame, first_row=first_row)


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


def _dedupe_headers(frame: pl.DataFrame) -> pl.DataFrame:
    """polars renames duplicate headers `x_duplicated_0`; keep them visible as `x (2)`."""
    renames = {c: c.replace("_duplicated_", " (dup ") + ")" for c in frame.columns if "_duplicated_" in c}
    return frame.rename(renames) if renames else frame


def _strip_blank_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows where every cell is empty are spreadsheet padding, not records."""
    values = [c for c in frame.columns if c != ROW]
    if not values or frame.height == 0:
        return frame
    blank = pl.all_horizontal(pl.col(values).str.strip_chars().fill_null("") == "")
    return frame.filter(~blank)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
