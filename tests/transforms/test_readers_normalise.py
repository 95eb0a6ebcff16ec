"""Parsing into canonical frames: encodings, delimiters, formats, header matching, dates, booleans."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter

from din.contract import KINDS, ColumnType
from transforms.headers import match_headers
from transforms.normalise import canonical_frame, normalise_expr, typed
from transforms.readers import ROW, ROW_RULE, ReadError, read_table, text_encoding


def norm(values: list[str | None], column_type: ColumnType) -> list[str | None]:
    return (
        pl.DataFrame({"v": values}, schema={"v": pl.String})
        .select(normalise_expr(pl.col("v"), column_type).alias("v"))["v"]
        .to_list()
    )


def test_dates_accept_iso_uk_and_excel_serials() -> None:
    assert norm(
        [
            "2026-03-12",
            "2026-3-5",
            "12/03/2026",
            "5/3/2026",
            "46093",
            "2026-03-12 00:00:00",
            "31/02/2026",
            "soon",
            " ",
            None,
        ],
        ColumnType.DATE,
    ) == [
        "2026-03-12",
        "2026-03-05",
        "2026-03-12",
        "2026-03-05",
        "2026-03-12",
        "2026-03-12",
        "2026-02-31",
        "soon",
        None,
        None,
    ]


def test_datetimes_accept_iso_uk_and_excel_serials() -> None:
    assert norm(
        ["2026-03-12T18:10:53", "2026-03-12 18:10", "12/03/2026 18:10:53", "46093.5", "2026-03-12"], ColumnType.DATETIME
    ) == [
        "2026-03-12T18:10:53",
        "2026-03-12T18:10:00",
        "2026-03-12T18:10:53",
        "2026-03-12T12:00:00",
        "2026-03-12T00:00:00",
    ]


def test_booleans_enums_and_numbers() -> None:
    assert norm(["Yes", "no", "TRUE", "f", "1", "0", "maybe"], ColumnType.BOOLEAN) == [
        "true",
        "false",
        "true",
        "false",
        "true",
        "false",
        "maybe",
    ]
    assert norm(["Acceptable with conditions", "Social-care", " UNSURE "], ColumnType.ENUM) == [
        "acceptable_with_conditions",
        "social_care",
        "unsure",
    ]
    assert norm(["1,200", "3.0", "12", "1,2"], ColumnType.INTEGER) == ["1200", "3", "12", "1,2"]
    assert norm(["25%", "0.25", "x%"], ColumnType.DECIMAL) == ["0.25", "0.25", "x%"]


def test_prefer_not_to_say_is_an_answer_and_empty_is_missing() -> None:
    assert norm(["Prefer not to say", "Don't know", "", "  "], ColumnType.TEXT) == [
        "Prefer not to say",
        "Don't know",
        None,
        None,
    ]


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
def test_csv_encodings_and_delimiters_are_detected(tmp_path: Path, delimiter: str, encoding: str) -> None:
    text = delimiter.join(["Panel ID", "Org", "Answer"]) + "\r\n" + delimiter.join(["p1", "Café", "£5 – ok"]) + "\r\n"
    path = tmp_path / "f.csv"
    path.write_bytes(text.encode(encoding))
    table = read_table(path, "f.csv")
    assert table.headers == ["Panel ID", "Org", "Answer"]
    assert table.frame.select(*table.headers, ROW).row(0) == ("p1", "Café", "£5 – ok", 2)
    assert table.delimiter == delimiter


def test_a_file_not_in_its_declared_encoding_is_refused_with_the_reason(tmp_path: Path) -> None:
    """A source that declares UTF-16 for a file without its byte-order mark (Python's decoder raises a bare
    UnicodeError for it, not a decoding error) gets the same reason as any other wrong declaration."""
    path = tmp_path / "responses.csv"
    path.write_bytes(b"panel_id,answer\np1,yes\n")
    with pytest.raises(ReadError, match=r"not valid utf-16 text \(as its source declares\)"):
        text_encoding(path, "utf-16")
    path.write_bytes(b"panel_id,answer\np1,caf\xe9\n")
    with pytest.raises(ReadError, match=r"not valid utf-8 text"):
        text_encoding(path, "utf-8")
    assert text_encoding(path) == "cp1252"


def test_json_ndjson_parquet_and_xlsx_read_as_strings_with_rows(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps([{"panel_id": "p1", "n": 3}, {"panel_id": "p2", "n": 4.0}]))
    (tmp_path / "b.ndjson").write_text('{"panel_id": "p1", "ok": true}\n\n{"panel_id": "p2", "ok": false}\n')
    pl.DataFrame({"panel_id": ["p1"], "n": [3]}).write_parquet(tmp_path / "c.parquet")
    workbook = xlsxwriter.Workbook(tmp_path / "d.xlsx")
    notes = workbook.add_worksheet("notes")
    notes.write_row(0, 0, ["this sheet explains the columns"])
    sheet = workbook.add_worksheet("data")
    sheet.write_row(0, 0, ["panel_id", "n"])
    sheet.write_row(1, 0, ["p1", 3])
    workbook.worksheets_objs.reverse()  # data sheet first, as our templates do
    workbook.close()

    def rows(name: str) -> list[tuple[object, ...]]:
        table = read_table(tmp_path / name, name)
        assert table.frame[ROW_RULE].is_null().all()  # every record read as its header says
        return table.frame.select(*table.headers, ROW).rows()

    assert rows("a.json") == [("p1", "3", 1), ("p2", "4", 2)]
    assert rows("b.ndjson") == [("p1", "true", 1), ("p2", "false", 3)]
    assert rows("c.parquet") == [("p1", "3", 1)]
    xlsx = read_table(tmp_path / "d.xlsx", "d.xlsx")
    assert xlsx.frame.select("panel_id", ROW).rows() == [("p1", 2)]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "the file is empty"),
        (b"\x00\x01\x02" * 100, "binary data"),
        (b"[{]", "not valid JSON"),
    ],
)
def test_unreadable_files_explain_themselves(tmp_path: Path, content: bytes, words: str) -> None:
    name = "f.json" if content == b"[{]" else "f.csv"
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ReadError, match=words):
        read_table(tmp_path / name, name)


def test_headers_match_case_space_and_punctuation_insensitively() -> None:
    kind = KINDS["attendance"]
    match = match_headers(["Panel ID", "WORKSHOP_id", "panellist-ref.", "Attended?", "Notes"], kind)
    assert match.mapping == {
        "Panel ID": "panel_id",
        "WORKSHOP_id": "workshop_id",
        "panellist-ref.": "panellist_ref",
        "Attended?": "attended",
    }
    assert match.extra == ("Notes",)
    assert match.usable


def test_near_miss_header_is_a_suggestion_never_a_silent_match() -> None:
    match = match_headers(["panel_id", "workshop_id", "panelist_ref", "attended"], KINDS["attendance"])
    assert not match.usable
    assert match.missing_required == ("panellist_ref",)
    assert "did you mean `panellist_ref`?" in (match.problem() or "")


def test_typed_frame_has_contract_types() -> None:
    kind = KINDS["workshops"]
    raw = pl.DataFrame(
        {
            "panel_id": ["p1"],
            "workshop_id": ["W1"],
            "number": ["1"],
            "held_on": ["12/03/2026"],
            "title": ["t"],
            "facilitator_org_id": ["O"],
            ROW: [2],
        }
    )
    frame = typed(canonical_frame(raw, kind, match_headers(raw.columns[:-1], kind)), kind)
    assert frame.schema["number"] == pl.Int64 and frame.schema["held_on"] == pl.Date
    assert str(frame["held_on"][0]) == "2026-03-12"


def test_a_source_s_own_headers_mean_contract_columns_and_a_missing_one_is_explained() -> None:
    attendance = KINDS["attendance"]
    columns = {"Name of attendee": "panellist_ref", "Came?": "attended"}
    match = match_headers(["Panel ID", "workshop_id", "name of attendee", "Came?", "Notes"], attendance, columns)
    assert match.mapping == {
        "Panel ID": "panel_id",
        "workshop_id": "workshop_id",
        "name of attendee": "panellist_ref",  # matched like any header: case, spaces, punctuation forgiven
        "Came?": "attended",
    }
    assert match.extra == ("Notes",) and match.usable
    renamed = match_headers(["panel_id", "workshop_id", "Attendee name", "attended"], attendance, columns)
    assert renamed.missing_required == ("panellist_ref",)
    assert renamed.problem() == (
        "required column `panellist_ref` is missing from the file (the source's format.columns reads "
        "`panellist_ref` from a header 'Name of attendee', which this file does not have)"
    )
    both = match_headers(
        ["panel_id", "workshop_id", "Name of attendee", "panellist_ref", "attended"], attendance, columns
    )
    assert both.duplicates == {"panellist_ref": ("Name of attendee", "panellist_ref")}


@pytest.mark.parametrize("column_type", [ColumnType.TEXT, ColumnType.STRING])
def test_trimming_never_turns_text_into_a_formula(column_type: ColumnType) -> None:
    values = [" =1+1", "\t@SUM(A1)", "  +cmd", " -2+3", "  plain  ", " =", "=already", "   "]
    frame = pl.DataFrame({"v": values}, schema={"v": pl.String})
    got = frame.select(normalise_expr(pl.col("v"), column_type)).to_series().to_list()
    # a leading space before =, +, - or @ is kept (a spreadsheet reads ` =1+1` as text, `=1+1` as a formula);
    # trailing space and every other leading space still go; what was a formula already stays as delivered
    assert got == [" =1+1", "\t@SUM(A1)", "  +cmd", " -2+3", "plain", " =", "=already", None]


def test_numbers_and_codes_are_still_trimmed_around_signs() -> None:
    frame = pl.DataFrame({"v": [" -5", " +3 "]}, schema={"v": pl.String})
    assert frame.select(normalise_expr(pl.col("v"), ColumnType.INTEGER)).to_series().to_list() == ["-5", "+3"]
