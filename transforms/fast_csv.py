"""Read a plain CSV's records with polars' reader instead of Python's csv module.

`transforms.readers` reads a CSV record by record in Python, so that every way a file can be damaged
(a ragged row, a quote left open, a NUL byte, a blank line) is marked on its own record with a reason.
That costs about 7 µs a record, most of a batch's time, and holds the GIL, so batches in threads
do not run in parallel. Most deliveries are plain: for those, polars' reader (Rust, without the GIL)
gives the same records, and this module reads them. (It was DuckDB's reader until polars measured
four times as fast on the same files, its result already a polars frame: 77 files of 5,000 records,
0.36 s against 0.08 s.)

It is taken only where the two readers are known to agree; anything else returns None and the
file is read record by record as before:

- the file is UTF-8 (with or without its byte-order mark) and holds no NUL byte, and its delimiter is
  one the readers sniff for (`transforms.readers.DELIMITERS`, checked by the caller);
- no blank line (Python's csv counts one as a record, and the spreadsheet row numbers after it must
  agree: the line-end and delimiter check below finds it);
- line ends are all LF or all CRLF (a lone CR is a line end to Python's csv module only);
- no quote follows spaces at the start of a field, nor precedes spaces before its delimiter (Python
  keeps such a quote as text, or refuses the record);
- every header is named (an unnamed column's fate is decided on its values) and there are at least
  two;
- the quotes pair up as fields' quoting: each opens a field or closes one (a quote inside an unquoted
  value, or one left open, is Python's csv module's to read and explain);
- polars reads it without an error (a record with more fields than the header is one);
- every line end of the file ends the header or a record, and every delimiter separates two of their
  fields, or else sits inside a quoted value (counted from the bytes): polars pads a record with fewer
  fields than the header, and reads a blank line as a record of empty fields, where the
  record-by-record reader marks the first and numbers the second.

`tests/transforms/test_fast_csv.py` checks on generated files full of what breaks readers that
whatever this reads, it reads exactly as the record-by-record reader does (values, row numbers).
`DIN_CSV_READER=python` turns it off (the tests run the demo both ways and compare what is published).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl

READER_ENV = "DIN_CSV_READER"
#: Larger files are read record by record (the checks above hold the file's bytes in memory; the gate
#: streams a file this large a chunk at a time anyway).
LARGEST_BYTES = 64 * 1024 * 1024
_ENCODINGS = ("utf-8", "utf-8-sig")
_SPACES = b" \t"


def enabled() -> bool:
    """Whether plain CSVs are read by polars (`DIN_CSV_READER=python`: every CSV record by record)."""
    return os.environ.get(READER_ENV, "auto") != "python"


def is_plain(data: bytes, encoding: str, delimiter: str, delivered: list[str]) -> bool:
    """Whether polars' reader is known to read `data` as the record-by-record reader does (module doc)."""
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
    or that polars does not read as plain (the caller reads it record by record)."""
    if path.stat().st_size > LARGEST_BYTES:
        return None
    data = path.read_bytes()
    if not is_plain(data, encoding, delimiter, delivered):
        return None
    return read_records(data, delimiter, delivered, names, row)


def read_records(data: bytes, delimiter: str, delivered: list[str], names: list[str], row: str) -> pl.DataFrame | None:
    """The data records of a file whose bytes are `data` as text (an empty field as `''`), under `names`,
    with their spreadsheet row (the header is row 1) in column `row`; None when its quotes do not pair up as
    fields' quoting, polars cannot read it strictly, or its reading does not account for every line end and
    delimiter of it (the caller then reads it record by record, and says what is wrong with it)."""
    inside = _inside_quotes(data, delimiter)
    if inside is None:  # a quote inside a value, or one left open: the record-by-record reader decides
        return None
    positional = [f"c{index}" for index in range(len(names))]
    try:
        frame = pl.read_csv(
            data,
            has_header=True,
            new_columns=positional,
            infer_schema=False,
            separator=delimiter,
            quote_char='"',
            comment_prefix=None,
            empty_string_is_null=False,
            encoding="utf8",
            raise_if_empty=False,
            truncate_ragged_lines=False,
        )
    except pl.exceptions.PolarsError:  # a record with more fields than the header, not UTF-8, ...
        return None
    if frame.width != len(names) or not _every_line_and_field_accounted_for(
        data, frame.height, inside, delimiter, delivered
    ):
        return None
    renamed = frame.rename(dict(zip(positional, names, strict=True)))
    return renamed.with_columns(pl.int_range(2, frame.height + 2, dtype=pl.Int64).alias(row))


def _every_line_and_field_accounted_for(
    data: bytes, records: int, inside: dict[str, int], delimiter: str, delivered: list[str]
) -> bool:
    """Whether each line end of the file ends the header or one of the `records` data records read, and each
    delimiter separates two of their fields, or else sits inside a quoted value (`inside`: `_inside_quotes`).

    Polars' reader skips nothing, but pads a record with fewer fields than the header with empty ones and
    reads a blank line as a record of empty fields; the record-by-record reader marks the first and numbers
    the second as Python's csv module does. Their delimiters are then unaccounted for here, and the file is
    read record by record."""
    records += 1  # the header
    line_ends, delimiters = data.count(b"\n"), data.count(delimiter.encode())
    return (
        line_ends == inside["\n"] + records - (0 if data.endswith(b"\n") else 1)
        and delimiters == inside[delimiter] + (len(delivered) - 1) * records
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
