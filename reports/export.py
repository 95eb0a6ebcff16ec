"""Spreadsheet exports of published tables (issue 7.5): CSV and XLSX, safe to open in Excel.

* Formula injection is neutralised (`reports.spreadsheet`): formula-like text gets a leading
  apostrophe, and XLSX cells are always written as text, never as formulas (numbers stay numbers:
  only text is touched).
* XLSX dates read dd/mm/yyyy and datetimes dd/mm/yyyy hh:mm (real date cells, so they sort);
  the header row is bold and frozen, with a filter.
* CSV is UTF-8 with a byte-order mark (so Excel reads accents right), dates in ISO form.
* Lists and structs are written as JSON text. Timezone-aware datetimes are written in UTC.
* Exports of restricted or ops tables get mode 0640, like the tables they come from.
* Every XLSX export has a second sheet, `Notes`: what the table is, its tier (RESTRICTED marked on
  restricted and ops tables), the DEMO notice when the data is demo output, the disclosure rule, and each
  column's meaning, unit and valid values. The notes come from the Parquet file's own metadata
  (`warehouse.mart_files`), so an export says what the file it was made from says. The data sheet's
  printed header repeats the marking.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import polars as pl

from reports.spreadsheet import neutralise, neutralise_expr
from warehouse.mart_files import read_documentation, scan_table
from warehouse.marts import TIERS, table_files

FORMATS = ("csv", "xlsx")
DATE_FORMAT = "dd/mm/yyyy"
DATETIME_FORMAT = "dd/mm/yyyy hh:mm"
TIME_FORMAT = "hh:mm:ss"
TIER_MODES = {"open": 0o644, "restricted": 0o640, "ops": 0o640}
NOTES_SHEET = "Notes"
NOTES_COLUMNS = ("column", "meaning", "unit", "valid values", "example")


@dataclass(frozen=True)
class Notes:
    """What a spreadsheet's Notes sheet says: a title, marking lines, facts about the table, its columns."""

    title: str
    markings: tuple[str, ...] = ()  # e.g. "RESTRICTED: ...", "DEMO OUTPUT: ..."; also the data sheet's header
    facts: tuple[tuple[str, str], ...] = ()
    columns: tuple[tuple[str, str, str, str, str], ...] = ()  # NOTES_COLUMNS


def table_notes(parquet: Path) -> Notes:
    """The notes of a published table, from its Parquet file's metadata (a partitioned table: its folder)."""
    table, columns = read_documentation(parquet)
    tier = table.get("tier", "")
    markings = []
    if tier in ("restricted", "ops"):
        markings.append(f"RESTRICTED ({tier} tier): {table.get('audience', 'not for publication')}")
    if table.get("demo") == "true":
        markings.append(table.get("notice") or "DEMO OUTPUT")
    facts = [
        ("table", table.get("table", parquet.name.removesuffix(".parquet"))),
        ("tier", f"{tier}: {table.get('audience', '')}".strip(": ")),
        ("what it is", table.get("description", "")),
        ("one row per", table.get("grain", "")),
        ("disclosure rule", table.get("disclosure_rule", "")),
        ("schema version", table.get("schema_version", "")),
        ("published by", table.get("title", "")),
    ]
    return Notes(
        title=table.get("table", parquet.name.removesuffix(".parquet")),
        markings=tuple(markings),
        facts=tuple((k, v) for k, v in facts if v),
        columns=tuple(
            (name, doc.get("description", ""), doc.get("unit", ""), doc.get("allowed", ""), doc.get("example", ""))
            for name, doc in columns.items()
        ),
    )


def find_table(published_dir: Path, table: str, tier: str | None = None) -> tuple[Path, str]:
    """The Parquet file of `table` (a partitioned table: its folder) and its tier: in `tier` only, or
    searching open, restricted, ops."""
    current = _current(Path(published_dir))
    if tier is not None and tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}; the tiers are {', '.join(TIERS)}")
    tiers = (tier,) if tier else TIERS
    for candidate in tiers:
        for location in (current / candidate / f"{table}.parquet", current / candidate / table):
            if location.is_file() or (location.is_dir() and table_files(location)):
                return location, candidate
    where = f"the {tier} tier" if tier else "any tier"
    available = sorted(
        p.name.removesuffix(".parquet")
        for t in tiers
        if (current / t).is_dir()
        for p in (current / t).iterdir()
        if p.suffix == ".parquet" or (p.is_dir() and table_files(p))
    )
    raise LookupError(f"no table {table!r} in {where}; available: {', '.join(available) or 'none'}")


def _current(published_dir: Path) -> Path:
    for candidate in (published_dir / "current", published_dir):
        if any((candidate / t).is_dir() for t in TIERS):
            return candidate
    raise FileNotFoundError(f"{published_dir}: no published version here; run `din run` first")


def prepare(frame: pl.DataFrame) -> pl.DataFrame:
    """Nested columns as JSON text, aware datetimes in naive UTC, formula-like text neutralised."""
    return frame.select(_prepared(pl.col(name), dtype).alias(name) for name, dtype in frame.schema.items())


def _prepared(column: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if isinstance(dtype, pl.Array):  # as a list: a fixed-size array reaches map_elements as a bare PySeries
        column, dtype = column.cast(pl.List(dtype.inner)), pl.List(dtype.inner)
    if isinstance(dtype, pl.List | pl.Array | pl.Struct):
        return column.map_elements(_json, return_dtype=pl.String)
    if isinstance(dtype, pl.Datetime) and dtype.time_zone:
        return column.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    if isinstance(dtype, pl.Decimal):
        return column.cast(pl.Float64)
    if isinstance(dtype, pl.Binary):
        return column.bin.encode("hex")
    if isinstance(dtype, pl.Duration | pl.Object):
        return column.map_elements(str, return_dtype=pl.String)
    if isinstance(dtype, pl.String | pl.Categorical | pl.Enum):
        text = column.cast(pl.String)
        return neutralise_expr(text)
    return column


def _json(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, pl.Series):
        value = value.to_list()
    return neutralise(json.dumps(value, default=str, ensure_ascii=False))


def write_csv(frame: pl.DataFrame, out: Path) -> None:
    frame.rename({c: neutralise(c) for c in frame.columns}).write_csv(out, include_bom=True)


def write_xlsx(frame: pl.DataFrame, out: Path, sheet: str, notes: Notes | None = None) -> None:
    """The data sheet (bold frozen header with a filter, every cell written by its type, text never as a
    formula), then the Notes sheet when there are notes."""
    import xlsxwriter

    workbook = xlsxwriter.Workbook(
        str(out), {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}
    )
    try:
        sheet_ = workbook.add_worksheet(sheet[:31])
        formats = {
            "header": workbook.add_format({"bold": True, "bottom": 1}),
            "date": workbook.add_format({"num_format": DATE_FORMAT}),
            "datetime": workbook.add_format({"num_format": DATETIME_FORMAT}),
            "time": workbook.add_format({"num_format": TIME_FORMAT}),
        }
        for col, name in enumerate(frame.columns):
            sheet_.write_string(0, col, neutralise(name), formats["header"])
        for row_index, row in enumerate(frame.iter_rows(), start=1):
            for col, value in enumerate(row):
                _write_cell(sheet_, row_index, col, value, formats)
        sheet_.freeze_panes(1, 0)
        if frame.width:
            sheet_.autofilter(0, 0, max(frame.height, 1), frame.width - 1)
        for col, width in enumerate(_widths(frame)):
            sheet_.set_column(col, col, width)
        if notes is not None:
            if notes.markings:
                sheet_.set_header("&L" + _header_text(" | ".join(notes.markings)))
            _write_notes(workbook, notes, formats["header"])
    finally:
        workbook.close()


def _header_text(text: str) -> str:
    """Text for a printed page header: `&` doubled (it starts a control code), within Excel's 255 characters."""
    return text.replace("&", "&&")[:240]


def _write_notes(workbook: Any, notes: Notes, bold: Any) -> None:
    """The Notes sheet: markings first (bold), then the table's facts, then one row per column."""
    sheet = workbook.add_worksheet(NOTES_SHEET)
    sheet.write_string(0, 0, neutralise(notes.title), bold)
    row = 1
    for marking in notes.markings:
        sheet.write_string(row, 0, neutralise(marking), bold)
        row += 1
    row += 1
    for label, value in notes.facts:
        sheet.write_string(row, 0, label, bold)
        sheet.write_string(row, 1, neutralise(value))
        row += 1
    if notes.columns:
        row += 1
        for col, name in enumerate(NOTES_COLUMNS):
            sheet.write_string(row, col, name, bold)
        for entry in notes.columns:
            row += 1
            for col, value in enumerate(entry):
                if value:
                    sheet.write_string(row, col, neutralise(value))
    sheet.set_column(0, 0, 28)
    sheet.set_column(1, 1, 90)
    sheet.set_column(2, 4, 24)


def _write_cell(sheet: Any, row: int, col: int, value: Any, formats: dict[str, Any]) -> None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return
    if isinstance(value, bool):
        sheet.write_boolean(row, col, value)
    elif isinstance(value, int | float):
        sheet.write_number(row, col, value)
    elif isinstance(value, datetime):
        sheet.write_datetime(row, col, value, formats["datetime"])
    elif isinstance(value, date):
        sheet.write_datetime(row, col, value, formats["date"])
    elif isinstance(value, time):
        sheet.write_datetime(row, col, value, formats["time"])
    else:
        sheet.write_string(row, col, neutralise(str(value)))


def _widths(frame: pl.DataFrame, sample: int = 200) -> Sequence[float]:
    """Column widths from the header and the first rows, between 8 and 60 characters."""
    widths = []
    for name in frame.columns:
        values = [len(str(v)) for v in frame[name].head(sample).to_list() if v is not None]
        widths.append(min(max([len(name), *values, 6]) + 2, 60))
    return widths


def export_table(published_dir: Path, table: str, fmt: str, out: Path, tier: str | None = None) -> Path:
    """Export one published table to CSV or XLSX at `out` (written aside, then renamed into place)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose {' or '.join(FORMATS)}")
    source, found_tier = find_table(Path(published_dir), table, tier)
    frame = prepare(scan_table(source).collect())
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    if fmt == "csv":
        write_csv(frame, temporary)
    else:
        write_xlsx(frame, temporary, table, table_notes(source))
    os.chmod(temporary, TIER_MODES[found_tier])
    os.replace(temporary, out)
    return out
