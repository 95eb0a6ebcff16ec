"""A query's result written for people (`din query`, portal downloads): a terminal table, CSV or JSON.

Results arrive as Arrow record batches and are written batch by batch, so a large result costs the
memory of one batch. CSV and JSON are often opened in a spreadsheet, so their text goes through the one
formula rule (`reports.spreadsheet`), column names included; nested values are JSON text in CSV. The
terminal table shows control characters as visible escapes: a value a partner wrote cannot move the
cursor, retitle the terminal or reorder the text around it.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable
from typing import TextIO

import polars as pl
import pyarrow as pa

from reports.export import prepare
from reports.spreadsheet import neutralise, neutralise_value

FORMATS = ("table", "csv", "json")
TABLE_ROWS = 50  # rows the terminal table shows; csv and json always hold every row
#: C0 and C1 controls (except none: a newline in a cell is shown too), and Unicode's bidirectional
#: overrides and isolates, which can make text read differently from what it is.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def write_result(batches: Iterable[pa.RecordBatch], fmt: str, out: TextIO) -> int:
    """Write the result in `fmt` to `out`; returns the number of rows."""
    if fmt == "csv":
        return write_csv(batches, out)
    if fmt == "json":
        return write_json(batches, out)
    if fmt == "table":
        return write_table(batches, out)
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def write_csv(batches: Iterable[pa.RecordBatch], out: TextIO) -> int:
    """CSV with one header row; formula-like text (and column names) escaped, nested values as JSON text."""
    rows, header = 0, True
    for batch in batches:
        frame = prepare(_frame(batch))
        frame = frame.rename({c: neutralise(c) for c in frame.columns})
        buffer = io.StringIO()
        frame.write_csv(buffer, include_header=header)
        out.write(buffer.getvalue())
        rows, header = rows + frame.height, False
    return rows


def write_json(batches: Iterable[pa.RecordBatch], out: TextIO) -> int:
    """A JSON array of objects, one per row; every text inside escaped by the formula rule."""
    rows = 0
    out.write("[")
    for batch in batches:
        for record in _frame(batch).to_dicts():
            out.write(("," if rows else "") + "\n  ")
            out.write(json.dumps(neutralise_value(record), default=str, ensure_ascii=False))
            rows += 1
    out.write("\n]\n" if rows else "]\n")
    return rows


def write_table(batches: Iterable[pa.RecordBatch], out: TextIO, limit: int = TABLE_ROWS) -> int:
    """The first `limit` rows as a table, then how many there were in all."""
    shown: list[pl.DataFrame] = []
    rows = 0
    for batch in batches:
        if rows < limit:
            shown.append(_frame(batch).head(limit - rows))
        rows += batch.num_rows
    frame = pl.concat(shown) if shown else pl.DataFrame()
    frame = frame.with_columns(visible(pl.col(c)) for c, t in frame.schema.items() if t == pl.String)
    with pl.Config(tbl_rows=limit, tbl_cols=30, fmt_str_lengths=60, tbl_width_chars=200, tbl_hide_dataframe_shape=True):
        out.write(f"{frame}\n")
    shown_note = f", first {limit} shown (--format csv for all)" if rows > limit else ""
    out.write(f"{rows} row{'s' if rows != 1 else ''}{shown_note}\n")
    return rows


def visible(text: pl.Expr) -> pl.Expr:
    """Control and direction-changing characters as `\\xNN` / `\\uNNNN` escapes."""
    return text.map_elements(lambda value: _UNSAFE.sub(_escape, value), return_dtype=pl.String)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _frame(batch: pa.RecordBatch) -> pl.DataFrame:
    frame = pl.from_arrow(batch)
    assert isinstance(frame, pl.DataFrame)
    return frame
