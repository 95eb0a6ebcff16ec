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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TextIO

import polars as pl
import pyarrow as pa

from reports.export import prepare
from reports.spreadsheet import neutralise, neutralise_value

FORMATS = ("table", "csv", "json")
#: C0 and C1 controls (except none: a newline in a cell is shown too), and Unicode's bidirectional
#: overrides and isolates, which can make text read differently from what it is.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class Written:
    """How many rows a result had and how many of them were written."""

    shown: int
    total: int

    @property
    def cut(self) -> bool:
        return self.shown < self.total

    def count_line(self) -> str:
        """`108 rows`, or `showing 50 of 108 rows` when the limit cut the result short."""
        if self.cut:
            return f"showing {self.shown} of {self.total} rows"
        return f"{self.total} row{'s' if self.total != 1 else ''}"


def write_result(batches: Iterable[pa.RecordBatch], fmt: str, out: TextIO, limit: int | None = None) -> Written:
    """Write at most `limit` rows (None: all) of the result in `fmt` to `out`; every row is counted."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    counted = _Counted(batches, limit)
    if fmt == "csv":
        write_csv(counted, out)
    elif fmt == "json":
        write_json(counted, out)
    else:
        write_table(counted, out)
    return Written(counted.shown, counted.total)


class _Counted:
    """The batches cut to `limit` rows, counting every row of the result as they pass (bounded memory)."""

    def __init__(self, batches: Iterable[pa.RecordBatch], limit: int | None) -> None:
        self._batches, self._limit = batches, limit
        self.shown = self.total = 0

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        schema_given = False
        for batch in self._batches:
            self.total += batch.num_rows
            room = batch.num_rows if self._limit is None else max(0, self._limit - self.shown)
            if room or not schema_given:  # an empty first slice still says which columns there are
                part = batch.slice(0, min(room, batch.num_rows))
                self.shown += part.num_rows
                schema_given = True
                yield part


def write_csv(batches: Iterable[pa.RecordBatch], out: TextIO) -> int:
    """CSV with one header row; formula-like text (and column names) escaped, nested values as JSON text."""
    rows, header = 0, True
    for batch in batches:
        if not header and not batch.num_rows:
            continue
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


def write_table(batches: Iterable[pa.RecordBatch], out: TextIO) -> int:
    """The rows as a table (the caller cuts them to what a screen should show)."""
    parts = [_frame(batch) for batch in batches]
    frame = pl.concat(parts) if parts else pl.DataFrame()
    frame = frame.with_columns(visible(pl.col(c)) for c, t in frame.schema.items() if t == pl.String)
    with pl.Config(
        tbl_rows=max(frame.height, 1),
        tbl_cols=30,
        fmt_str_lengths=60,
        tbl_width_chars=200,
        tbl_hide_dataframe_shape=True,
    ):
        out.write(f"{frame}\n")
    return frame.height


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
