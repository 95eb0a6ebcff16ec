"""Downloads: published tables as CSV, XLSX (formula-safe, through `reports.export`, the one
formula-escaping rule) or the Parquet file itself, and a delivery's problem rows as CSV or XLSX.

Files are written into a private temporary folder and streamed from there; nothing a download
writes stays behind.
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterable
from pathlib import Path

import polars as pl

from reports.export import Notes, prepare, table_notes, write_csv, write_xlsx
from reports.spreadsheet import neutralise
from warehouse.mart_files import one_file, scan_table

FORMATS = ("csv", "xlsx", "parquet")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "parquet": "application/vnd.apache.parquet",
}
PROBLEM_COLUMNS = ("row", "column", "value as typed", "rule", "what is wrong")
PROBLEM_MEANINGS = {
    "file": "The delivered file the row is in.",
    "row": "The row's number in the file as you see it (spreadsheet: the header is row 1).",
    "column": "The column the problem is in (empty when it concerns the whole row or file).",
    "value as typed": "The value exactly as it is in the file.",
    "rule": "The name of the check that failed.",
    "what is wrong": "What the check expected, in words.",
}


def scratch() -> Path:
    """A private folder for one download (the caller removes it once the file is sent)."""
    return Path(tempfile.mkdtemp(prefix="din-portal-"))


def table_file(parquet: Path, name: str, fmt: str, folder: Path) -> Path:
    """The published table at `parquet` (a file, or a partitioned table's folder) as `fmt`, written into
    `folder` (a partitioned table's Parquet as one file)."""
    if fmt == "parquet":
        return one_file(parquet, folder)
    out = folder / f"{name}.{fmt}"
    frame = prepare(scan_table(parquet).collect())
    if fmt == "csv":
        write_csv(frame, out)
    else:
        write_xlsx(frame, out, name, table_notes(parquet))
    return out


def problems_file(
    rows: Iterable[tuple[object, ...]], name: str, fmt: str, folder: Path, with_file: bool = False
) -> Path:
    """Problem rows (row, column, value as typed, rule, reason; first the file when `with_file`) as CSV or XLSX."""
    out = folder / f"{name}.{fmt}"
    header = ("file", *PROBLEM_COLUMNS) if with_file else PROBLEM_COLUMNS
    if fmt == "csv":
        with open(out, "w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\r\n")
            writer.writerow(header)
            for row in rows:
                writer.writerow(["" if v is None else neutralise(str(v)) for v in row])
        return out
    frame = pl.DataFrame(
        [["" if v is None else str(v) for v in row] for row in rows],
        schema=dict.fromkeys(header, pl.String),
        orient="row",
    )
    notes = Notes(
        title=f"problems: {name}",
        markings=("RESTRICTED: your organisation's own rows, as delivered; do not publish",),
        facts=(("what it is", "The rows of your delivery that were not accepted, each with the reason."),),
        columns=tuple((c, PROBLEM_MEANINGS[c], "", "", "") for c in header),
    )
    write_xlsx(frame, out, "problems", notes)  # neutralises every text cell
    return out
