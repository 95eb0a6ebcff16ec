"""Polars' reader for plain CSVs (`transforms.fast_csv`) reads exactly the records the record-by-record reader
reads: the same values, spreadsheet row numbers, headers and notes; a file it cannot be sure of goes back to the
record-by-record reader. Generated files are damaged the ways that make the two readers disagree (blank lines,
spaces beside quotes, mixed line ends, ragged rows, an empty field after the last, broken quoting, a NUL byte,
a cut), and each is read both ways."""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.conftest import SAMPLES
from tests.transforms.test_readers_properties import FUZZ, csv_bytes, csv_tables
from transforms import fast_csv
from transforms.readers import DELIMITERS, RawTable, ReadError, read_table

PLAIN = (
    "panel_id,workshop_id,panellist_ref,question_id,question_text,answer\r\n"
    'p1,W1,P1,Q1,"Before today, how much did you know?","She said ""no"", then yes"\r\n'
    'p1,W1,P2,Q1,"a line\r\nbreak",\r\n'
    "p1,W1,P3,Q1,,  spaces kept  \r\n"
    ",,,,,\r\n"
    "p1,W1,P4,Q1,é € ß,=1+1\r\n"
)


#: What is inserted into a generated file to damage it: line ends, quotes, spaces, delimiters and their mixtures.
INSERTIONS = [
    "\n",
    "\r\n",
    "\r",
    " ",
    '"',
    "\x00",
    ",",
    ";",
    "\t",
    '" ',
    ' "',
    '""',
    ",\r\n",
    ",\n",
    "\r\n\r\n",
    ',"',
    '",',
]


def read_both(content: bytes, name: str = "f.csv") -> tuple[RawTable | str, RawTable | str]:
    """The file read by the readers as they choose, and record by record only (`DIN_CSV_READER=python`)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(content)
        return _read(path, name), _read(path, name, python_only=True)


def _read(path: Path, name: str, python_only: bool = False) -> RawTable | str:
    with _reader("python" if python_only else "auto"):
        try:
            return read_table(path, name)
        except ReadError as error:
            return f"ReadError: {error}"


@contextmanager
def _reader(value: str) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(fast_csv.READER_ENV, value)
        yield


def assert_same(chosen: RawTable | str, python: RawTable | str) -> None:
    if isinstance(python, str) or isinstance(chosen, str):
        assert chosen == python
        return
    assert python.engine == "python"
    assert chosen.frame.columns == python.frame.columns
    assert chosen.frame.schema == python.frame.schema
    assert chosen.frame.rows() == python.frame.rows()
    assert (chosen.delivered_headers, chosen.notes, chosen.encoding, chosen.delimiter, chosen.format) == (
        python.delivered_headers,
        python.notes,
        python.encoding,
        python.delimiter,
        python.format,
    )


def test_a_plain_file_is_read_by_polars_with_the_same_records() -> None:
    for content in (PLAIN.encode(), b"\xef\xbb\xbf" + PLAIN.replace("\r\n", "\n").encode()):
        chosen, python = read_both(content)
        assert isinstance(chosen, RawTable) and chosen.engine == "polars"
        assert_same(chosen, python)
        assert chosen.frame.height == 4  # the row of empty fields is padding, dropped by both
        assert chosen.notes == ["skipped 1 blank row(s)"]
        assert chosen.frame["_source_row"].to_list() == [2, 3, 4, 6]
        assert chosen.frame["answer"].to_list() == ['She said "no", then yes', "", "  spaces kept  ", "=1+1"]


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda t: t.replace("p1,W1,P3", "\np1,W1,P3"), id="blank-line"),
        pytest.param(lambda t: t.replace(',"Before', ', "Before'), id="space-before-quote"),
        pytest.param(lambda t: t.replace('know?",', 'know?" ,'), id="space-after-quote"),
        pytest.param(lambda t: t.replace("\r\np1,W1,P3", "\np1,W1,P3"), id="mixed-line-ends"),
        pytest.param(lambda t: t.replace(",=1+1", ",=1+1,extra"), id="ragged"),
        pytest.param(lambda t: t.replace(",=1+1", ",=1+1,"), id="empty-field-after-the-last"),
        pytest.param(lambda t: t.replace(",,,,,", ',,,,,,""'), id="quoted-empty-field-after-the-last"),
        pytest.param(lambda t: t.replace("P2,Q1", "P2,Q1\x00"), id="nul-byte"),
        pytest.param(lambda t: t.replace('"a line', '"a"line'), id="broken-quote"),
        pytest.param(lambda t: t.replace("answer", ""), id="unnamed-column"),
        pytest.param(lambda t: t[: t.index("break")], id="cut-inside-quotes"),
    ],
)
def test_a_file_polars_might_read_otherwise_is_read_record_by_record(damage: object) -> None:
    assert callable(damage)
    chosen, python = read_both(damage(PLAIN).encode())
    assert isinstance(chosen, RawTable) and chosen.engine == "python"
    assert_same(chosen, python)


def test_cp1252_and_other_delimiters() -> None:
    cp1252 = PLAIN.replace("é € ß", "caf\xe9").encode("cp1252")
    chosen, python = read_both(cp1252)
    assert isinstance(chosen, RawTable) and chosen.engine == "python" and chosen.encoding == "cp1252"
    assert_same(chosen, python)
    for delimiter in DELIMITERS:
        text = "a,b,c\n1,2,3\n4,,6\n".replace(",", delimiter)
        chosen, python = read_both(text.encode())
        assert isinstance(chosen, RawTable) and chosen.engine == "polars", delimiter
        assert_same(chosen, python)


@FUZZ
@given(csv_tables(), st.sampled_from(DELIMITERS), st.sampled_from(["\r\n", "\n"]), st.booleans(), st.booleans())
def test_a_generated_csv_is_read_the_same_either_way(
    table: tuple[list[str], list[list[str]]], delimiter: str, terminator: str, bom: bool, quote_all: bool
) -> None:
    names, rows = table
    assert_same(*read_both(csv_bytes(names, rows, delimiter, terminator, bom, quote_all)))


@FUZZ
@given(
    csv_tables(),
    st.sampled_from(DELIMITERS),
    st.lists(
        st.tuples(st.integers(min_value=0), st.sampled_from(INSERTIONS)),
        min_size=1,
        max_size=3,
    ),
    st.integers(min_value=0),
)
# Found in 6,000 examples: quotes that do not pair up as fields' quoting, which polars read otherwise (the
# fast path must leave such a file to the record-by-record reader).
@example(
    table=(["A00000000", "A00000000000"], [[";0000", '""""0000000000"\x80']]),
    delimiter=",",
    insertions=[(1_543_382_251_780_297_195_520, '",'), (24, ',"')],
    cut_seed=1,
)
def test_a_damaged_csv_is_read_the_same_either_way(
    table: tuple[list[str], list[list[str]]], delimiter: str, insertions: list[tuple[int, str]], cut_seed: int
) -> None:
    names, rows = table
    content = csv_bytes(names, rows, delimiter, "\r\n", bom=False)
    for position, text in insertions:
        at = position % (len(content) + 1)
        content = content[:at] + text.encode() + content[at:]
    content = content[: len(content) - cut_seed % 4]
    assert_same(*read_both(content))


def test_generated_plain_files_do_take_the_fast_path() -> None:
    """The comparisons above are not vacuous: the plain files among generated ones are read by polars."""
    engines = set()
    for rows in ([["1", "x"], ["2", "y, z"]], [["a b", '"q"'], ["", "é"]]):
        for terminator in ("\n", "\r\n"):
            chosen, python = read_both(csv_bytes(["id", "text"], rows, ",", terminator, bom=False))
            assert_same(chosen, python)
            assert isinstance(chosen, RawTable)
            engines.add(chosen.engine)
    assert engines == {"polars"}


def test_values_are_text_as_typed_not_guessed() -> None:
    chosen, _ = read_both(b"id,n,d\n007,1e5,2026-01-02\nNA,TRUE,null\n")
    assert isinstance(chosen, RawTable) and chosen.engine == "polars"
    assert chosen.frame.schema["n"] == pl.String
    assert chosen.frame.select("id", "n", "d").rows() == [("007", "1e5", "2026-01-02"), ("NA", "TRUE", "null")]


def test_a_path_with_quotes_and_a_semicolon_delimiter_is_read(tmp_path: Path) -> None:
    """The path and the delimiter are bound as parameters, never spliced into the SQL."""
    folder = tmp_path / "O'Brien's \"exports\"; DROP"
    folder.mkdir()
    path = folder / "responses.csv"
    path.write_text("a;b\n1;x'y\n")
    table = read_table(path, path.name)
    assert table.engine == "polars" and table.frame.select("a", "b").rows() == [("1", "x'y")]


def test_every_real_and_sample_export_reads_the_same_either_way() -> None:
    """The survey tools' sample exports and the real Polis and Qualtrics exports (read, never modified)."""
    engines = []
    for path in sorted(SAMPLES.rglob("*")):
        if path.is_file() and path.suffix.lower() in (".csv", ".tsv", ".txt"):
            chosen, python = read_both(path.read_bytes(), path.name)
            assert_same(chosen, python)
            engines.append(getattr(chosen, "engine", "refused"))
    assert engines.count("polars") >= 5 and "python" in engines, engines  # the cp1252 re-save, at least


def _quote_beside_spaces_by_search(data: bytes, delimiter: bytes) -> bool:
    """The rule as first written, a `bytes.find` scan per pattern: the vectorised search must agree."""
    for pattern in (b' "', b'\t"'):
        found = data.find(pattern)
        while found != -1:
            start = found
            while start > 0 and data[start - 1] in b" \t":
                start -= 1
            if start == 0 or data[start - 1] in b"\n" + delimiter:
                return True
            found = data.find(pattern, found + 1)
    for pattern in (b'" ', b'"\t'):
        found = data.find(pattern)
        while found != -1:
            end = found + 1
            while end < len(data) and data[end] in b" \t":
                end += 1
            if end == len(data) or data[end] in b"\r\n" + delimiter:
                return True
            found = data.find(pattern, found + 1)
    return False


@settings(max_examples=600, deadline=None, database=None)
@given(st.binary(max_size=40).map(lambda b: bytes(b' \t",;\n\ra'[x % 8] for x in b)), st.sampled_from(DELIMITERS))
def test_quotes_beside_spaces_are_found_as_a_search_finds_them(data: bytes, delimiter: str) -> None:
    """Spaces and tabs against a quote at a field's edge (which Python keeps as text): one pass."""
    expected = _quote_beside_spaces_by_search(data, delimiter.encode())
    assert fast_csv._quote_beside_spaces(data, delimiter.encode()) is expected


@settings(max_examples=400, deadline=None, database=None)
@given(
    csv_tables(),
    st.sampled_from(DELIMITERS),
    st.sampled_from(["\r\n", "\n"]),
    st.booleans(),
    st.lists(st.tuples(st.integers(min_value=0), st.sampled_from(INSERTIONS)), max_size=2),
)
def test_what_sits_inside_quotes_is_counted_from_the_bytes_as_pythons_csv_reads_the_values(
    table: tuple[list[str], list[list[str]]],
    delimiter: str,
    terminator: str,
    quote_all: bool,
    insertions: list[tuple[int, str]],
) -> None:
    """The byte count (`_inside_quotes`) the fast path relies on, when it is sure, against the values (header
    included) Python's csv module reads of the same file."""
    names, rows = table
    content = csv_bytes(names, rows, delimiter, terminator, False, quote_all)
    for position, text in insertions:
        at = position % (len(content) + 1)
        content = content[:at] + text.encode() + content[at:]
    counted = fast_csv._inside_quotes(content, delimiter)
    if counted is None:
        return
    try:
        text = io.StringIO(content.decode("utf-8", "replace"), newline="")
        values = [value for record in csv.reader(text, delimiter=delimiter, strict=True) for value in record]
    except csv.Error:  # quoting Python refuses: the fast path's own strict reading refuses it too
        return
    assert counted == {"\n": sum(v.count("\n") for v in values), delimiter: sum(v.count(delimiter) for v in values)}
