"""Property and fuzz tests of the CSV, JSON/NDJSON and XLSX readers: whatever a partner delivers, every
record is read exactly as typed, or marked with the rule it breaks and a reason, or the whole file is
refused with a reason (ReadError). Never a crash, never a record padded, cut or silently changed.

Files are written with the standard writers (csv, json, xlsxwriter) from generated values full of what
breaks readers (delimiters, quotes, line breaks, NUL, BOMs, bidi overrides, formula-looking text), then
damaged the ways real uploads are (cut short anywhere, a NUL byte anywhere, a key given twice)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from unittest import mock

import polars as pl
import xlsxwriter
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from din.config import FormatOptions
from din.contract import KINDS, RECORD_RULES
from expectations.engine import DELIVERY, ROW_ID
from expectations.validate import validate
from transforms import readers
from transforms.delivery import (
    DeliveryOutcome,
    DeliveryToProcess,
    FileProblem,
    read_delivery,
    read_delivery_in_chunks,
)
from transforms.readers import DELIMITERS, MARKS, ROW, ROW_REASON, ROW_RULE, RawTable, ReadError, read_table

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
XLSX_FUZZ = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TRICKY = [",", ";", "\t", "|", '"', "'", "\n", "\r", "\r\n", " ", "=", "+", "-", "@", "é", "€", "ß", "\u202e"]
TRICKY += ["\u200b", "\ufeff", "\x0b", "\x1c", "\\", "{", "}", "[", "]", "null", "NA", "007", "1e5", "TRUE"]
value_text = st.lists(st.one_of(st.sampled_from(TRICKY), st.text(max_size=4)), max_size=5).map("".join)
header_name = st.from_regex(r"[A-Za-z][A-Za-z0-9_ ]{0,10}[A-Za-z0-9]", fullmatch=True)
headers = st.lists(header_name, min_size=2, max_size=5, unique_by=str.lower)


@st.composite
def csv_tables(draw: st.DrawFn, values: st.SearchStrategy[str] = value_text) -> tuple[list[str], list[list[str]]]:
    names = draw(headers)
    rows = draw(st.lists(st.lists(values, min_size=len(names), max_size=len(names)), min_size=1, max_size=12))
    return names, rows


def csv_line(values: list[str], delimiter: str, quote_all: bool = False) -> str:
    """One CSV record as RFC 4180 writes it: a value holding the delimiter, a quote or any line break quoted
    (Python 3.11's csv.writer leaves a lone CR unquoted when the line ends in LF, which is no valid CSV)."""

    def field(value: str) -> str:
        if quote_all or any(ch in value for ch in (delimiter, '"', "\r", "\n")):
            return '"' + value.replace('"', '""') + '"'
        return value

    return delimiter.join(field(v) for v in values)


def csv_bytes(
    names: list[str], rows: list[list[str]], delimiter: str, terminator: str, bom: bool, quote_all: bool = False
) -> bytes:
    lines = [csv_line(names, delimiter), *(csv_line(row, delimiter, quote_all) for row in rows)]
    text = "".join(line + terminator for line in lines)
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")


def read_bytes(content: bytes, name: str) -> RawTable | ReadError:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(content)
        try:
            return read_table(path, name)
        except ReadError as error:
            assert str(error).strip(), "a refused file must say why"
            return error


def read_as_typed(table: RawTable) -> list[tuple[int, tuple[str | None, ...]]]:
    """(record number, values) of the records read as the header says; the marked ones must say why."""
    marked = table.frame.filter(pl.col(ROW_RULE).is_not_null())
    for rule, reason in marked.select(ROW_RULE, ROW_REASON).rows():
        assert rule in RECORD_RULES and reason and reason.strip(), (rule, reason)
    clean = table.frame.filter(pl.col(ROW_RULE).is_null())
    values = [c for c in clean.columns if c not in MARKS]
    return [(row[0], tuple(row[1:])) for row in clean.select(ROW, *values).rows()]


NOT_BLANK = "\x1c\x1d\x1e\x1f"  # separators Python's str.strip removes but a spreadsheet shows as a value


def blank(row: list[str]) -> bool:
    """A row of spaces only is padding: the reader drops it (and says so in the notes)."""
    return all(not v.strip() and not any(ch in NOT_BLANK for ch in v) for v in row)


@FUZZ
@given(csv_tables(), st.sampled_from(DELIMITERS), st.sampled_from(["\r\n", "\n"]), st.booleans())
def test_a_well_formed_csv_is_read_exactly_as_typed(
    table: tuple[list[str], list[list[str]]], delimiter: str, terminator: str, bom: bool
) -> None:
    names, rows = table
    read = read_bytes(csv_bytes(names, rows, delimiter, terminator, bom), "f.csv")
    if isinstance(read, ReadError):  # only for a file that is mostly control characters
        assert "binary data" in str(read)
        return
    assert read.delimiter == delimiter
    assert read.delivered_headers == names
    expected = [(n, tuple(r)) for n, r in enumerate(rows, start=2) if not blank(r) and not any("\x00" in v for v in r)]
    assert read_as_typed(read) == expected
    nul_rows = {n for n, r in enumerate(rows, start=2) if not blank(r) and any("\x00" in v for v in r)}
    marked = read.frame.filter(pl.col(ROW_RULE).is_not_null())
    assert set(marked[ROW].to_list()) == nul_rows
    assert set(marked[ROW_RULE].to_list()) <= {"value_nul_byte"}


@FUZZ
@given(csv_tables(), st.sampled_from(DELIMITERS), st.integers(min_value=0), st.booleans())
def test_a_csv_cut_short_anywhere_never_passes_a_changed_record(
    table: tuple[list[str], list[list[str]]], delimiter: str, cut_seed: int, quote_all: bool
) -> None:
    names, rows = table
    content = csv_bytes(names, rows, delimiter, "\r\n", bom=False, quote_all=quote_all)
    header_end = content.index(b"\r\n") + 2
    assume(len(content) > header_end)
    cut = header_end + cut_seed % (len(content) - header_end)
    read = read_bytes(content[:cut], "f.csv")
    if isinstance(read, ReadError):
        return
    assert read.delivered_headers == names
    typed = read_as_typed(read)
    for position, (number, values) in enumerate(typed):
        original = tuple(rows[number - 2])
        if position < len(typed) - 1 or values == original:
            assert values == original, (number, values, original)
            continue
        # The last record read may be the one cut: only an unquoted last value can lose its end unseen
        # (nothing in a CSV says where such a value ends), never a field and never a quoted value; a file
        # quoting every value can only be cut unseen right after a delimiter (an empty unquoted last value).
        assert values[:-1] == original[:-1] and original[-1].startswith(values[-1] or ""), (values, original)
        assert not quote_all or values[-1] == "", (number, values, original)


@FUZZ
@given(csv_tables(), st.integers(min_value=0), st.sampled_from([",", ";"]))
def test_a_nul_byte_anywhere_marks_its_record_or_refuses_the_file(
    table: tuple[list[str], list[list[str]]], position_seed: int, delimiter: str
) -> None:
    names, rows = table
    rows = [[v.replace("\x00", "") for v in row] for row in rows]
    content = csv_bytes(names, rows, delimiter, "\r\n", bom=False)
    position = position_seed % (len(content) + 1)
    read = read_bytes(content[:position] + b"\x00" + content[position:], "f.csv")
    if isinstance(read, ReadError):
        return
    typed = read_as_typed(read)
    assert all("\x00" not in (v or "") for _, values in typed for v in values)
    assert "\x00" not in "".join(read.delivered_headers) or not typed or read.delivered_headers != names
    if read.delivered_headers == names:
        originals = [tuple(r) for r in rows if not blank(r)]
        values_read = [values for _, values in typed]
        assert _is_subsequence(values_read, originals)
        assert len(originals) - len(values_read) <= 1  # only the record the NUL landed in is set aside


def test_a_nul_byte_never_moves_the_records_around_it() -> None:
    """Found by the property above: a NUL in front of an opening quote made that quote literal, and the
    quoted value's delimiter opened a new quoted value that swallowed every later record; a NUL right
    after a closing quote broke the record in the middle, and the rest of it (a quoted line break)
    was read as a record of its own, taking the next record with it."""
    rows = [["a", "b,c"], ["d", "e\r\nf"], ["g", "h"], ["i", "j,k"], ["l", "m"]]
    content = csv_bytes(["x", "y"], rows, ",", "\r\n", bom=False)
    for damaged in (content.replace(b'"b,c"', b'\x00"b,c"'), content.replace(b'f"', b'f"\x00')):
        read = read_bytes(damaged, "f.csv")
        assert not isinstance(read, ReadError), read
        typed = read_as_typed(read)
        marked = read.frame.filter(pl.col(ROW_RULE).is_not_null())
        assert marked.select(ROW, ROW_RULE).rows() == [(2 if b'\x00"b' in damaged else 3, "value_nul_byte")]
        assert [values for _, values in typed] == [tuple(r) for n, r in enumerate(rows, start=2) if n != marked[ROW][0]]
    # a broken quote ("a"b) is followed to its record's true end: the records after it stay whole
    broken = content.replace(b'f"', b'f"x')
    read = read_bytes(broken, "f.csv")
    assert not isinstance(read, ReadError)
    assert read.frame.filter(pl.col(ROW_RULE).is_not_null()).select(ROW, ROW_RULE).rows() == [(3, "record_unreadable")]
    assert [values for _, values in read_as_typed(read)] == [tuple(r) for r in rows if r != rows[1]]
    header = read_bytes(b"panel_id,\x00answer\r\n" + b"p1,yes\r\n" * 20, "f.csv")
    assert isinstance(header, ReadError) and "the header row holds a NUL byte" in str(header)


def _is_subsequence(part: list[tuple[str | None, ...]], whole: list[tuple[str, ...]]) -> bool:
    remaining = iter(whole)
    return all(any(item == candidate for candidate in remaining) for item in part)


@FUZZ
@given(st.lists(header_name, min_size=1, max_size=4), st.integers(min_value=2, max_value=3), value_text)
def test_a_header_given_twice_is_seen_twice_never_first_wins(names: list[str], times: int, value: str) -> None:
    value = value.replace("\x00", "")
    assume(not blank([value]))
    delivered = [*names, *([names[0]] * (times - 1))]
    read = read_bytes(csv_bytes(delivered, [[value] * len(delivered)], ",", "\n", bom=False), "f.csv")
    if isinstance(read, ReadError):
        return
    assert read.delivered_headers == delivered
    assert len(read.headers) == len(delivered)  # each delivered column kept with its own values


json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-(10**15), 10**15), value_text)
json_key = st.one_of(header_name, st.sampled_from(["_source_row", "_row_rule", "answer", ""]))


def json_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@FUZZ
@given(st.lists(st.dictionaries(json_key, json_scalar, min_size=1, max_size=4), min_size=1, max_size=10), st.booleans())
def test_json_and_ndjson_records_are_read_exactly_as_typed(records: list[dict[str, object]], lines: bool) -> None:
    if lines:
        content = "\n".join(json.dumps(r, ensure_ascii=False) for r in records).encode("utf-8")
        name = "f.ndjson"
    else:
        content = json.dumps(records, ensure_ascii=False, indent=1).encode("utf-8")
        name = "f.json"
    read = read_bytes(content, name)
    assert not isinstance(read, ReadError), read
    keys = list(dict.fromkeys(k for r in records for k in r))
    # No key lost, not even one named like the reader's own columns (kept as `_source_row*`).
    by_header = {k: k + "*" if k in MARKS else k for k in keys}
    assert sorted(read.headers) == sorted(by_header.values())
    frame = read.frame
    numbers = frame[ROW].to_list()
    for record_number, record in enumerate(records, start=1):
        if blank([str(json_text(v) or "") for v in record.values()]):
            assert record_number not in numbers  # a record with no value is a blank row
            continue
        row = frame.filter(pl.col(ROW) == record_number).row(0, named=True)
        if any("\x00" in str(v) for v in record.values() if v is not None):
            assert row[ROW_RULE] == "value_nul_byte"
            continue
        assert row[ROW_RULE] is None, row
        assert {k: row[by_header[k]] for k in keys} == {k: json_text(record.get(k)) for k in keys}


@FUZZ
@given(
    st.lists(st.dictionaries(header_name, value_text, min_size=1, max_size=4), min_size=2, max_size=8),
    st.integers(min_value=0),
    st.integers(min_value=0),
)
def test_ndjson_cut_short_or_with_a_key_given_twice_marks_the_record(
    records: list[dict[str, str]], cut_seed: int, twice_seed: int
) -> None:
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    twice = twice_seed % len(lines)
    key = next(iter(records[twice]))
    lines[twice] = lines[twice][:-1] + f', {json.dumps(key)}: "other"}}'
    content = "\n".join(lines).encode("utf-8")
    cut = len(content) - cut_seed % (len(lines[-1]) + 1)
    read = read_bytes(content[:cut], "f.ndjson")
    if isinstance(read, ReadError):
        return
    by_header = dict(zip(read.delivered_headers, read.headers, strict=True))
    for row in read.frame.iter_rows(named=True):
        index = row[ROW] - 1
        if index == twice and (index < len(lines) - 1 or cut == len(content)):
            assert row[ROW_RULE] == "record_unreadable" and repr(key) in row[ROW_REASON]
        elif row[ROW_RULE] is None:
            assert {k: row[by_header[k]] for k in records[index]} == records[index]
            assert index < len(lines) - 1 or cut == len(content)  # a cut last line is never read as a record


xlsx_text = value_text.map(lambda v: "".join(ch for ch in v if ch >= " " or ch in "\n\t"))


@XLSX_FUZZ
@given(csv_tables(xlsx_text), st.lists(st.integers(-(10**9), 10**9), max_size=3))
def test_an_xlsx_sheet_is_read_exactly_as_typed(table: tuple[list[str], list[list[str]]], numbers: list[int]) -> None:
    names, rows = table
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "f.xlsx"
        workbook = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False, "strings_to_formulas": False})
        sheet = workbook.add_worksheet("data")
        sheet.write_row(0, 0, names)
        for r, row in enumerate(rows, start=1):
            for c, value in enumerate(row):
                sheet.write_string(r, c, value)
        for c, number in enumerate(numbers[: len(names)]):
            sheet.write_number(len(rows) + 1, c, number)
        workbook.close()
        read = read_table(path, "f.xlsx")
    assert read.delivered_headers == names
    cells = [list(row) for row in rows]
    if numbers:
        cells.append([str(n) for n in numbers[: len(names)]] + [""] * (len(names) - len(numbers[: len(names)])))
    expected = [(n, tuple(r)) for n, r in enumerate(cells, start=2) if not blank(r)]
    read_back = [(n, tuple(v or "" for v in values)) for n, values in read_as_typed(read)]  # an empty cell: "" or none
    assert read_back == expected


RESPONSE_HEADERS = ["panel_id", "workshop_id", "panellist_ref", "question_id", "question_text", "answer"]
response_rows = st.lists(
    st.lists(st.one_of(st.sampled_from(["p1", "W1", "P1", "Q1", "Q2"]), value_text), min_size=6, max_size=6),
    min_size=1,
    max_size=8,
)
damage = st.one_of(
    st.none(), st.tuples(st.just("cut"), st.integers(min_value=0)), st.tuples(st.just("nul"), st.integers(min_value=0))
)


@FUZZ
@given(response_rows, damage)
def test_every_delivered_row_is_accepted_or_set_aside_with_a_reason_or_the_file_refused(
    rows: list[list[str]], harm: tuple[str, int] | None
) -> None:
    content = csv_bytes(RESPONSE_HEADERS, rows, ",", "\r\n", bom=False)
    if harm is not None:
        at = harm[1] % (len(content) + 1)
        content = content[:at] if harm[0] == "cut" else content[:at] + b"\x00" + content[at:]
    kind = KINDS["responses"]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "responses.csv"
        path.write_bytes(content)
        delivery = DeliveryToProcess(1, "fuzz", "responses", "responses.csv", str(path), len(content), FormatOptions())
        outcome = DeliveryOutcome(1)
        try:
            result = read_delivery(delivery, outcome)
        except ReadError as error:  # read_delivery turns a ReadError into a refusal: never raised
            raise AssertionError(f"read_delivery raised instead of refusing: {error}") from None
    if isinstance(result, FileProblem):
        assert outcome.refused and outcome.message and all(r.strip() for r in result.reasons)
        return
    frame = result["responses"].with_columns(
        pl.int_range(pl.len(), dtype=pl.Int64).alias(ROW_ID), pl.lit(1, dtype=pl.Int64).alias(DELIVERY)
    )
    known = {f"known_{r.name}": ["p1\x1fW1"] for r in kind.references}
    verdict = validate(frame, kind, known)
    assert verdict.accepted.height + verdict.quarantined.height == frame.height == outcome.rows_read
    assert all(reasons and all(r.strip() for r in reasons) for reasons in verdict.quarantined["reasons"].to_list())
    assert set(verdict.accepted[ROW].to_list()).isdisjoint(verdict.quarantined["source_row"].to_list())


@FUZZ
@given(response_rows, damage, st.integers(min_value=1, max_value=4), st.booleans())
def test_a_large_file_read_in_chunks_from_disk_gives_what_the_read_in_memory_gives(
    rows: list[list[str]], harm: tuple[str, int] | None, chunk_rows: int, bom: bool
) -> None:
    """`read_delivery_in_chunks` (read once for the whole file's checks, then a chunk at a time) and
    `validate` from spilled files: the same refusal, the same rows, the same verdict as in memory."""
    content = csv_bytes(RESPONSE_HEADERS, [*rows, *rows[:1]], ",", "\r\n", bom=bom)  # a duplicate key too
    if harm is not None:
        at = harm[1] % (len(content) + 1)
        content = content[:at] if harm[0] == "cut" else content[:at] + b"\x00" + content[at:]
    kind = KINDS["responses"]
    known = {f"known_{r.name}": ["p1\x1fW1"] for r in kind.references}
    with tempfile.TemporaryDirectory() as folder, mock.patch.object(readers, "CHUNK_ROWS", chunk_rows):
        path = Path(folder) / "responses.csv"
        path.write_bytes(content)
        delivery = DeliveryToProcess(1, "fuzz", "responses", "responses.csv", str(path), len(content), FormatOptions())
        whole_outcome, chunked_outcome = DeliveryOutcome(1), DeliveryOutcome(1)
        whole = read_delivery(delivery, whole_outcome)
        chunked = read_delivery_in_chunks(delivery, chunked_outcome)
        assert whole_outcome == chunked_outcome
        if isinstance(whole, FileProblem):
            assert chunked == whole
            return
        assert not isinstance(chunked, FileProblem)
        chunks = list(chunked["responses"])
        frame = whole["responses"]
        assert pl.concat(chunks).equals(frame)
        with_ids = frame.with_columns(
            pl.int_range(pl.len(), dtype=pl.Int64).alias(ROW_ID), pl.lit(1, dtype=pl.Int64).alias(DELIVERY)
        )
        spilled = Path(folder) / "rows.parquet"
        with_ids.write_parquet(spilled)
        in_memory, from_disk = validate(with_ids, kind, known), validate([spilled], kind, known)
        assert from_disk.accepted.collect().sort(ROW_ID).equals(in_memory.accepted.sort(ROW_ID))
        assert from_disk.quarantined.equals(in_memory.quarantined)
        order = ["delivery_id", "rule"]
        assert from_disk.results.sort(order).equals(in_memory.results.sort(order))


# --- what the fuzzing found, pinned ------------------------------------------------------------


def test_utf8_damaged_or_cut_inside_a_character_is_refused_never_read_as_cp1252() -> None:
    good = "panel_id,answer\r\np1,Café\r\np2,£5 – ok\r\n".encode()
    for damaged in (good.replace("é".encode(), b"\xc3\x00\xa9"), good + b"p4,\xe9t\xe9\r\n"):
        read = read_bytes(damaged, "f.csv")
        assert isinstance(read, ReadError), read
        assert "holds bytes that are not UTF-8" in str(read) and "line " in str(read)
    # cut inside a character at the end: with other accented letters before it, or none
    for cut in ("Café\r\np3,€", "Café", "5 €", "ok 🙂"):
        whole = f"panel_id,answer\r\np1,{cut}".encode()
        for length in range(1, len(cut[-1].encode())):
            read = read_bytes(whole[:-length], "f.csv")
            assert isinstance(read, ReadError), (cut, length, read)
            line = 2 + cut.count("\n")
            assert f"ends in the middle of a UTF-8 character (line {line})" in str(read)
    cp1252 = read_bytes("panel_id,answer\r\np1,Café £5 – ok\r\n".encode("cp1252"), "f.csv")
    assert not isinstance(cp1252, ReadError) and cp1252.encoding == "cp1252"
    assert cp1252.frame["answer"].to_list() == ["Café £5 – ok"]


def test_a_json_key_named_like_a_reader_column_keeps_its_values() -> None:
    read = read_bytes(json.dumps([{"_source_row": "7", "answer": "a"}]).encode(), "f.json")
    assert not isinstance(read, ReadError)
    assert read.frame.select("_source_row*", "answer", ROW).rows() == [("7", "a", 1)]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=40), max_size=40))
def test_the_share_of_control_characters_counts_every_one_below_space_but_tab_and_line_ends(text: str) -> None:
    """What decides that a file is binary, not text (`_control_ratio`), against its definition."""
    from transforms.readers import _control_ratio

    control = [c for c in text if ord(c) < 32 and c not in "\r\n\t"]
    assert _control_ratio(text) == (len(control) / len(text) if text else 0.0)
