"""Spreadsheet exports of published tables (issue 7.5): CSV and XLSX, safe to open in Excel.

* Formula injection is neutralised (`reports.spreadsheet`): formula-like text gets a leading
  apostrophe, and XLSX cells are always written as text, never as formulas (numbers stay numbers:
  only text is touched).
* XLSX dates read dd/mm/yyyy and datetimes dd/mm/yyyy hh:mm (real date cells, so they sort);
  the header row is bold and frozen, with a filter.
* CSV is UTF-8 with a byte-order mark (so Excel reads accents right), dates in ISO form.
* Lists and structs are written as JSON text. Timezone-aware datetimes are written in UTC.
* Exports of restricted or ops tables get mode 0640, like the tables they come from.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import polars as pl

from reports.spreadsheet import neutralise, neutralise_expr
from warehouse.marts import TIERS

FORMATS = ("csv", "xlsx")
DATE_FORMAT = "dd/mm/yyyy"
DATETIME_FORMAT = "dd/mm/yyyy hh:mm"
TIME_FORMAT = "hh:mm:ss"
TIER_MODES = {"open": 0o644, "restricted": 0o640, "ops": 0o640}


def find_table(published_dir: Path, table: str, tier: str | None = None) -> tuple[Path, str]:
    """The Parquet file of `table` and its tier: in `tier` only, or searching open, restricted, ops."""
    current = _current(Path(published_dir))
    if tier is not None and tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}; the tiers are {', '.join(TIERS)}")
    for candidate in (tier,) if tier else TIERS:
        path = current / candidate / f"{table}.parquet"
        if path.is_file():
            return path, candidate
    where = f"the {tier} tier" if tier else "any tier"
    available = sorted(p.stem for t in ((tier,) if tier else TIERS) for p in (current / t).glob("*.parquet"))
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


def write_xlsx(frame: pl.DataFrame, out: Path, sheet: str) -> None:
    """One sheet: bold frozen header with a filter, every cell written by its type, text never as a formula."""
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
    finally:
        workbook.close()


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
    frame = prepare(pl.read_parquet(source))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    if fmt == "csv":
        write_csv(frame, temporary)
    else:
        write_xlsx(frame, temporary, table)
    os.chmod(temporary, TIER_MODES[found_tier])
    os.replace(temporary, out)
    return out
