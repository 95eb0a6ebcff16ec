"""Read a plain CSV's records with DuckDB's reader instead of Python's csv module.

`transforms.readers` reads a CSV record by record in Python, so that every way a file can be damaged
(a ragged row, a quote left open, a NUL byte, a blank line) is marked on its own record with a reason.
That costs about 7 µs a record, most of a batch's time, and holds the GIL, so batches in threads
do not run in parallel. Most deliveries are plain: for those, DuckDB's C++ reader gives the same
records, and this module reads them.

It is taken only where the two readers are known to agree; anything else returns None and the
file is read record by record as before:

- the file is UTF-8 (with or without its byte-order mark) and holds no NUL byte, and its delimiter is
  one the readers sniff for (`transforms.readers.DELIMITERS`, checked by the caller);
- no blank line (Python's csv counts one as a record, DuckDB skips it, and the spreadsheet row
  numbers after it would differ: the line-end check below finds it);
- line ends are all LF or all CRLF (DuckDB refuses a mixture; a lone CR is a line end to neither);
- no quote follows spaces at the start of a field, nor precedes spaces before its delimiter (DuckDB
  trims those spaces, Python keeps them, or refuses the record);
- every header is named (an unnamed column's fate is decided on its values) and there are at least
  two;
- DuckDB, in strict mode with every option given, reads it without an error: a record with more or
  fewer fields than the header, or broken quoting, is an error there, and such a file goes back to
  the record-by-record reader, which says which row and why;
- every line end of the file ends the header or a record, and every delimiter separates two of their
  fields, or else sits inside a quoted value: even in strict mode DuckDB skips a blank line, drops an
  empty field after a record's last one (`1,2,` under two headers), and leaves out a last record whose
  quote is never closed (a file cut short inside a quoted value), where the record-by-record reader
  numbers the first and sets the others aside with their reasons. What sits inside quoted values is
  counted from the bytes when the quotes pair up as fields' quoting, else from the values DuckDB read.

`tests/transforms/test_fast_csv.py` checks on generated files full of what breaks readers that
whatever this reads, it reads exactly as the record-by-record reader does (values, row numbers).
`DIN_CSV_READER=python` turns it off (the tests run the demo both ways and compare what is published).
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from din.sql import literal

READER_ENV = "DIN_CSV_READER"
#: Larger files are read record by record (the checks above hold the file's bytes in memory; the gate
#: streams a file this large a chunk at a time anyway).
LARGEST_BYTES = 64 * 1024 * 1024
_ENCODINGS = ("utf-8", "utf-8-sig")
_SPACES = b" \t"
_CONNECTION: tuple[int, duckdb.DuckDBPyConnection] | None = None  # this process's, for a cursor per file


def enabled() -> bool:
    """Whether plain CSVs are read by DuckDB (`DIN_CSV_READER=python`: every CSV record by record)."""
    return os.environ.get(READER_ENV, "auto") != "python"


def is_plain(data: bytes, encoding: str, delimiter: str, delivered: list[str]) -> bool:
    """Whether DuckDB's reader is known to read `data` as the record-by-record reader does (module doc)."""
    if encoding not in _ENCODINGS:
        return False
    if len(delivered) < 2 or any(not header.strip() for header in delivered):
        return False
    if b"\x00" in data or data.removeprefix(b"\xef\xbb\xbf").startswith((b"\n", b"\r\n")):
        return False  # other blank lines: `_every_line_and_field_accounted_for`
    carriage_returns = data.count(b"\r")
    if carriage_returns and not (carriage_returns == data.count(b"\r\n") == data.count(b"\n")):
        return False
    return b'"' not in data or not _quote_beside_spaces(data, delimiter.encode())


def _quote_beside_spaces(data: bytes, delimiter: bytes) -> bool:
    """A quote after spaces that open a field (` "x"`), or before spaces that close one (`"x" ,`).

    The places where a space or tab touches a quote are found in one vectorised pass (four `bytes.find`
    scans cost 2 ms of a 600 KB file, a third of reading it); only those few are looked at one by one."""
    octets = np.frombuffer(data, dtype=np.uint8)
    quote = octets == ord('"')
    space = (octets == ord(" ")) | (octets == ord("\t"))
    for found in np.flatnonzero(space[:-1] & quote[1:]).tolist():  # ` "`: the space's position
        start = found
        while start > 0 and data[start - 1] in _SPACES:
            start -= 1
        if start == 0 or data[start - 1] in b"\n" + delimiter:
            return True
    for found in np.flatnonzero(quote[:-1] & space[1:]).tolist():  # `" `: the quote's position
        end = found + 1
        while end < len(data) and data[end] in _SPACES:
            end += 1
        if end == len(data) or data[end] in b"\r\n" + delimiter:
            return True
    return False


def read_plain(
    path: Path, encoding: str, delimiter: str, delivered: list[str], names: list[str], row: str
) -> pl.DataFrame | None:
    """A plain file's records as `read_records` gives them; None for a file that is not plain (`is_plain`)
    or that DuckDB does not read as plain (the caller reads it record by record)."""
    if path.stat().st_size > LARGEST_BYTES:
        return None
    data = path.read_bytes()
    if not is_plain(data, encoding, delimiter, delivered):
        return None
    return read_records(path, data, delimiter, delivered, names, row)


def read_records(
    path: Path, data: bytes, delimiter: str, delivered: list[str], names: list[str], row: str
) -> pl.DataFrame | None:
    """The data records of `path` (whose bytes are `data`) as text (an empty field as `''`), under `names`,
    with their spreadsheet row (the header is row 1) in column `row`; None when DuckDB cannot read it strictly,
    or its reading does not account for every line end and delimiter of it (the caller then reads it record
    by record, and says what is wrong with it)."""
    positional = [f"c{index}" for index in range(len(names))]
    columns = "{" + ", ".join(f"{literal(name)}: 'VARCHAR'" for name in positional) + "}"
    values = ", ".join(f"coalesce(c{index}, '') AS c{index}" for index in range(len(names)))
    # Every option given, none guessed; not parallel, so that ordinality is the order of the records.
    sql = (
        f"SELECT {values}, ordinality + 1 AS row_number FROM read_csv($path, delim = $delimiter, quote = '\"', "
        f"escape = '\"', header = true, columns = {columns}, auto_detect = false, strict_mode = true, "
        "null_padding = false, ignore_errors = false, parallel = false, comment = '', skip = 0, "
        "max_line_size = 33554432) WITH ORDINALITY"
    )
    cursor = _connection().cursor()
    try:
        frame: pl.DataFrame = cursor.sql(sql, params={"path": str(path), "delimiter": delimiter}).pl()
    except duckdb.Error:
        return None
    finally:
        cursor.close()
    if not _every_line_and_field_accounted_for(data, frame, delimiter, delivered):
        return None
    renamed = frame.rename({**dict(zip(positional, names, strict=True)), "row_number": row})
    return renamed.with_columns(pl.col(row).cast(pl.Int64))


def _every_line_and_field_accounted_for(data: bytes, frame: pl.DataFrame, delimiter: str, delivered: list[str]) -> bool:
    """Whether each line end of the file ends the header or a record, and each delimiter separates two of
    their fields, or else sits inside a quoted value.

    Even in strict mode, DuckDB's reader skips a blank line, drops an empty field after a record's last
    (`1,2,` under a header of two), and leaves out a last record whose quote is never closed (a file cut
    short inside a quoted value). The record-by-record reader numbers the first, and sets the others
    aside with their reasons. Their line ends or delimiters are then unaccounted for here, and the file
    is read record by record.

    What sits inside quoted values is counted from the file's bytes (`_inside_quotes`); when its quotes
    cannot be paired that way (a quote left open, one inside an unquoted value), from the values DuckDB
    read, as before (2 ms for a 600 KB file, against a fraction of that from the bytes)."""
    records = 1 + frame.height  # the header and the data records
    line_ends, delimiters = data.count(b"\n"), data.count(delimiter.encode())
    inside = _inside_quotes(data, delimiter)
    if inside is None:
        inside = _inside_values(frame, delimiter, delivered)
    fields = len(delivered)
    return (
        line_ends == inside["\n"] + records - (0 if data.endswith(b"\n") else 1)
        and delimiters == inside[delimiter] + (fields - 1) * records
    )


def _inside_quotes(data: bytes, delimiter: str) -> dict[str, int] | None:
    """How many line ends and delimiters of `data` sit between a quote that opens a field and the quote that
    closes it; None when a quote is not where a field opens or closes (the quotes then say nothing sure).

    The quotes are paired in order, the first of each pair opening a quoted value and the second closing
    it; an escaped quote (`""`) inside a value closes and reopens it with nothing between, so it changes
    no count. Each opening quote must start a field (at the start of the file or of a line, or after a
    delimiter) and each closing quote end one (before a delimiter, a line end or the end of the file),
    or the pairing is not the file's quoting."""
    if b'"' not in data:
        return {"\n": 0, delimiter: 0}
    octets = np.frombuffer(data, dtype=np.uint8)
    quotes = np.flatnonzero(octets == ord('"'))
    if len(quotes) % 2:
        return None
    opening, closing = quotes[0::2], quotes[1::2]
    glued = closing[:-1] + 1 == opening[1:]  # `""`: a closing quote and the next opening one side by side
    before = octets[opening - 1] if opening[0] > 0 else np.r_[ord("\n"), octets[opening[1:] - 1]]
    after = np.r_[octets[closing[:-1] + 1], octets[closing[-1] + 1] if closing[-1] + 1 < len(octets) else ord("\n")]
    field_starts = np.isin(before, np.frombuffer(b"\n" + delimiter.encode(), dtype=np.uint8))
    field_ends = np.isin(after, np.frombuffer(b"\r\n" + delimiter.encode(), dtype=np.uint8))
    if not (
        np.all(field_starts[1:] | glued) and field_starts[0] and np.all(field_ends[:-1] | glued) and field_ends[-1]
    ):
        return None
    counts = {}
    for text in ("\n", delimiter):
        at = np.flatnonzero(octets == ord(text))
        counts[text] = int((np.searchsorted(at, closing) - np.searchsorted(at, opening)).sum())
    return counts


def _inside_values(frame: pl.DataFrame, delimiter: str, delivered: list[str]) -> dict[str, int]:
    """How many line ends and delimiters the headers and the values DuckDB read hold."""
    inside = {"\n": sum(h.count("\n") for h in delivered), delimiter: sum(h.count(delimiter) for h in delivered)}
    if frame.height:
        found = frame.select(
            pl.sum_horizontal(pl.exclude("row_number").str.count_matches(text, literal=True).sum()).alias(text)
            for text in inside
        ).row(0, named=True)
        inside = {text: count + int(found[text] or 0) for text, count in inside.items()}
    return inside


def _connection() -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB per process (a forked worker opens its own), each read on a cursor of its own, so
    that batches in threads read at once without paying for a connection each (about 10 ms)."""
    global _CONNECTION
    if _CONNECTION is None or _CONNECTION[0] != os.getpid():
        _CONNECTION = (os.getpid(), duckdb.connect())
    return _CONNECTION[1]
