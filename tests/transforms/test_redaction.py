"""Redaction takes one person out of a delivered file in its own format and touches nothing else.

Each test builds a real file, redacts one panellist, and checks three things: the person's records are
blank (and nothing of them is left in the file), every other record is byte for byte what it was
(where the format allows), and the pipeline's own reader reads every other row back identically, at
the same row number.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import SAMPLES as SAMPLE_ROOT
from transforms.adapters import load_mapping, read_survey
from transforms.readers import ROW, ReadOptions, read_table
from transforms.redaction import Layout, Person, redact
from transforms.scrub import Mentions, PersonIdentifiers

REPO = Path(__file__).parents[2]
SAMPLES = SAMPLE_ROOT / "survey-exports"
MAPPINGS = REPO / "examples" / "mappings"
MENTIMETER = REPO / "tests" / "fixtures" / "survey" / "mentimeter_participant_results.xlsx"

PERSON = Person("p1", frozenset({"P2"}))
ROWAN = PersonIdentifiers(
    frozenset({"Rowan Kerr"}),
    frozenset({"rowan.kerr@example.org"}),
    frozenset({"07700 900385"}),
    frozenset({"KY1 1ER"}),
)
MENTIONS = Mentions(ROWAN)
TRACES = ("Rowan Kerr", "rowan.kerr@example.org", "07700 900385", "KY1 1ER", "P2,")


def reread(data: bytes, name: str, tmp_path: Path, options: ReadOptions) -> dict[int, dict[str, str | None]]:
    """The rows the pipeline reads from `data`, by row number."""
    path = tmp_path / f"reread-{len(list(tmp_path.iterdir()))}-{name}"
    path.write_bytes(data)
    table = read_table(path, name, options)
    return {row.pop(ROW): row for row in table.frame.select(*table.headers, ROW).to_dicts()}


# --- CSV ------------------------------------------------------------------------------------------

HEADER = ["panel_id", "panellist_ref", "full_name", "email", "phone", "postcode", "answer"]
RECORDS = [
    ["p1", "P1", "Morag Henderson", "morag@example.com", "07700 900461", "DD2 3AB", 'said "yes", twice'],
    ["p1", "P2", "Rowan Kerr", "rowan.kerr@example.org", "07700 900385", "KY1 1ER", "line one\nline two"],
    ["p2", "P2", "Other Panel", "other@example.com", "07700 900111", "EH1 1YZ", "same ref, other panel: kept"],
    ["p1", "P3", "Dana Okafor", "dana@example.org", "07700 900982", "G12 8QQ", "I agreed with Rowan Kerr; café"],
]


def csv_text(delimiter: str, newline: str, records: list[list[str]]) -> tuple[str, list[str]]:
    """The file's text and each record's text, quoting fields the way spreadsheets do."""

    def field(value: str) -> str:
        needs = any(c in value for c in (delimiter, '"', "\n", "\r"))
        return '"' + value.replace('"', '""') + '"' if needs else value

    lines = [delimiter.join(field(v) for v in record) for record in [HEADER, *records]]
    return newline.join(lines) + newline, lines


@pytest.mark.parametrize(
    ("bom", "encoding", "delimiter", "newline"),
    [
        (b"\xef\xbb\xbf", "utf-8", ",", "\r\n"),
        (b"", "cp1252", ";", "\n"),
        (b"", "latin-1", "\t", "\r\n"),
        (b"", "utf-8", "|", "\n"),
    ],
    ids=["utf8-bom-crlf-comma", "cp1252-semicolon", "latin1-tab", "utf8-pipe"],
)
def test_csv_blanks_the_persons_record_and_keeps_every_other_byte(
    tmp_path: Path, bom: bytes, encoding: str, delimiter: str, newline: str
) -> None:
    text, lines = csv_text(delimiter, newline, RECORDS)
    data = bom + text.encode(encoding)
    options = ReadOptions("csv", None, delimiter, None if bom else encoding)
    result = redact(data, "responses.csv", Layout("csv", options.encoding, delimiter), PERSON, MENTIONS)

    assert result.rows == ["row 3"]  # the header is row 1
    assert result.identities == {"P2"}
    expected = list(lines)
    expected[2] = delimiter * (len(HEADER) - 1)  # blank, delimiters kept: the row stays a row
    expected[4] = lines[4].replace("Rowan Kerr", "[name]")
    assert result.data == bom + (newline.join(expected) + newline).encode(encoding)
    assert result.mentions == 1

    before, after = reread(data, "r.csv", tmp_path, options), reread(result.data, "r.csv", tmp_path, options)
    assert sorted(after) == [2, 4, 5]
    assert after[2] == before[2] and after[4] == before[4]  # same values at the same row numbers
    assert after[5] == {**before[5], "answer": "I agreed with [name]; café"}


def test_csv_finds_the_person_by_header_not_by_position_and_keeps_an_unterminated_last_line(tmp_path: Path) -> None:
    text = "Answer,Panellist Ref,Panel ID\nfine,P1,p1\nmine,P2,p1"  # headers as people type them
    result = redact(text.encode(), "r.csv", Layout("csv"), PERSON)
    assert result.data == b"Answer,Panellist Ref,Panel ID\nfine,P1,p1\n,,"
    assert reread(result.data, "r.csv", tmp_path, ReadOptions()) == {
        2: {"Answer": "fine", "Panellist Ref": "P1", "Panel ID": "p1"}
    }


def test_csv_without_the_person_is_returned_unchanged() -> None:
    text, _ = csv_text(",", "\n", [RECORDS[0], RECORDS[3]])
    result = redact(
        text.encode(), "r.csv", Layout("csv"), Person("p1", frozenset({"P9"})), Mentions(PersonIdentifiers())
    )
    assert not result.changed and result.data == text.encode()


def test_a_malformed_csv_is_redacted_line_by_line(tmp_path: Path) -> None:
    text = 'panel_id,panellist_ref,answer\np1,P1,"never closed\np1,P2,mine\np1,P3,about Rowan Kerr\n'
    result = redact(text.encode(), "r.csv", Layout("csv"), PERSON, MENTIONS)
    assert result.rows == ["line 3"]
    assert result.note is not None and "line by line" in result.note
    assert result.data == b'panel_id,panellist_ref,answer\np1,P1,"never closed\n\np1,P3,about [name]\n'


# --- XLSX -----------------------------------------------------------------------------------------


def roster_workbook() -> bytes:
    """A roster as a recruiter keeps it: a data sheet, a hidden contacts sheet, a formula and a comment."""
    import xlsxwriter

    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    roster = book.add_worksheet("Panel roster")
    roster.write_row(0, 0, [*HEADER[:6], "buddy"])
    for row, record in enumerate(RECORDS, start=1):
        roster.write_row(row, 0, record[:6])
    roster.write_formula(4, 6, '=C3&" is my buddy"', None, "Rowan Kerr is my buddy")  # another row, cached value
    roster.write_comment(1, 2, "Rowan Kerr asked to be called back")
    contacts = book.add_worksheet("Contacts")
    contacts.write_row(0, 0, ["Panellist Ref", "Email"])
    contacts.write_row(1, 0, ["P1", "morag@example.com"])
    contacts.write_row(2, 0, ["P2", "rowan.kerr@example.org"])
    contacts.hide()
    book.close()
    return out.getvalue()


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_xlsx_blanks_the_person_on_every_sheet_and_leaves_nothing_of_them(tmp_path: Path) -> None:
    import openpyxl

    data = roster_workbook()
    result = redact(data, "roster.xlsx", Layout("xlsx"), PERSON, MENTIONS)
    assert result.rows == ["sheet 'Panel roster' row 3", "sheet 'Contacts' row 3"]
    assert result.identifiers == ROWAN  # harvested from their own row, for mentions elsewhere

    options = ReadOptions("xlsx", "Panel roster")
    before, after = reread(data, "r.xlsx", tmp_path, options), reread(result.data, "r.xlsx", tmp_path, options)
    assert sorted(after) == [2, 4, 5]
    assert after[2] == before[2] and after[4] == before[4]
    assert after[5] == {**before[5], "buddy": "[name] is my buddy"}

    old, new = members(data), members(result.data)
    assert list(new) == list(old)  # every part kept, in order
    assert new["xl/styles.xml"] == old["xl/styles.xml"] and new["xl/workbook.xml"] == old["xl/workbook.xml"]
    for part, content in new.items():
        text = content.decode("utf-8", errors="replace")
        for trace in ("Rowan Kerr", "rowan.kerr@example.org", "07700 900385", "KY1 1ER"):
            assert trace not in text, (part, trace)
    book = openpyxl.load_workbook(io.BytesIO(result.data))  # still a workbook Excel's reader opens
    assert [c.value for c in book["Panel roster"][4]][:2] == ["p2", "P2"]  # same reference, another panel: kept
    assert all(c.value is None for c in book["Panel roster"][3])
    assert [c.value for c in book["Contacts"][2]] == ["P1", "morag@example.com"]
    assert all(c.value is None for c in book["Contacts"][3])  # no panel column there: the reference decides


def test_xlsx_keeps_a_shared_formula_others_use_when_its_defining_row_is_blanked() -> None:
    import xlsxwriter

    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    sheet = book.add_worksheet("Data")
    sheet.write_row(0, 0, ["panel_id", "panellist_ref", "score", "double"])
    for row, ref in enumerate(["P2", "P1", "P3"], start=1):
        sheet.write_row(row, 0, ["p1", ref, row])
        sheet.write_formula(row, 3, f"=C{row + 1}*2", None, row * 2)
    book.close()
    parts = members(out.getvalue())
    xml = parts["xl/worksheets/sheet1.xml"].decode()
    # Excel writes a filled-down formula once, in the first row, and shares it with the rows below.
    xml = xml.replace("<f>C2*2</f>", '<f t="shared" ref="D2:D4" si="0">C2*2</f>')
    xml = xml.replace("<f>C3*2</f>", '<f t="shared" si="0"/>').replace("<f>C4*2</f>", '<f t="shared" si="0"/>')
    rebuilt = io.BytesIO()
    with zipfile.ZipFile(rebuilt, "w") as archive:
        for name, content in parts.items():
            archive.writestr(name, xml.encode() if name == "xl/worksheets/sheet1.xml" else content)
    result = redact(rebuilt.getvalue(), "d.xlsx", Layout("xlsx"), PERSON)
    new_xml = members(result.data)["xl/worksheets/sheet1.xml"].decode()
    assert 'si="0"' not in new_xml  # no cell is left sharing a formula nobody defines
    assert "<v>4</v>" in new_xml and "<v>6</v>" in new_xml  # the others keep their values


def test_an_unreadable_workbook_is_left_as_it_was_and_said_so() -> None:
    result = redact(b"PK\x03\x04 not really a zip", "broken.xlsx", Layout("xlsx"), PERSON, MENTIONS)
    assert result.data == b"PK\x03\x04 not really a zip" and not result.changed
    assert result.note is not None and "could not be read" in result.note


# --- JSON, NDJSON, Parquet ------------------------------------------------------------------------


def records_json(wrapped: bool, blank: bool = False) -> str:
    """The records as a JSON document; with `blank`, as the redaction should leave it."""
    records: list[object] = [dict(zip(HEADER, r, strict=True)) for r in RECORDS]
    records[0]["scores"] = {"benefit": 4, "note": "nested"}  # type: ignore[index]  # kept by the reader as JSON
    if blank:
        records[1] = "BLANK"
        records[3]["answer"] = records[3]["answer"].replace("Rowan Kerr", "[name]")  # type: ignore[index]
    document = {"exported_by": "tool", "rows": records} if wrapped else records
    return json.dumps(document, indent=2, ensure_ascii=False).replace('"BLANK"', "{}")


@pytest.mark.parametrize("wrapped", [False, True], ids=["array", "rows-object"])
def test_json_replaces_the_persons_record_with_an_empty_one(tmp_path: Path, wrapped: bool) -> None:
    text = records_json(wrapped)
    result = redact(text.encode(), "f.json", Layout("json"), PERSON, MENTIONS)
    assert result.rows == ["record 2"]
    assert result.data.decode() == records_json(wrapped, blank=True)  # every other character as it was
    before, after = (
        reread(text.encode(), "f.json", tmp_path, ReadOptions()),
        reread(result.data, "f.json", tmp_path, ReadOptions()),
    )
    assert sorted(after) == [1, 3, 4]
    assert after[1] == before[1] and after[3] == before[3]
    assert after[4]["answer"] == "I agreed with [name]; café"


def test_ndjson_blanks_the_persons_line(tmp_path: Path) -> None:
    lines = [json.dumps(dict(zip(HEADER, r, strict=True)), ensure_ascii=False) for r in RECORDS]
    text = "\r\n".join(lines) + "\r\n"
    result = redact(text.encode(), "f.ndjson", Layout("ndjson"), PERSON, MENTIONS)
    new_lines = result.data.decode().split("\r\n")
    assert new_lines[0] == lines[0] and new_lines[1] == "{}" and new_lines[2] == lines[2]
    after = reread(result.data, "f.ndjson", tmp_path, ReadOptions())
    assert sorted(after) == [1, 3, 4] and after[4]["answer"] == "I agreed with [name]; café"


def test_parquet_keeps_schema_metadata_and_compression_with_the_persons_row_all_null(tmp_path: Path) -> None:
    table = pa.table({name: [r[i] for r in RECORDS] for i, name in enumerate(HEADER)})
    schema = pa.schema(
        [pa.field(f.name, f.type, nullable=f.name != "panel_id") for f in table.schema], metadata={b"tool": b"x"}
    )
    out = io.BytesIO()
    pq.write_table(table.cast(schema), out, compression="zstd")
    data = out.getvalue()
    result = redact(data, "f.parquet", Layout("parquet"), PERSON, MENTIONS)
    assert result.rows == ["row 2"]
    redacted = pq.ParquetFile(io.BytesIO(result.data))
    assert redacted.schema_arrow.metadata[b"tool"] == b"x"
    assert redacted.metadata.row_group(0).column(0).compression == "ZSTD"
    rows = redacted.read().to_pylist()
    assert rows[1] == dict.fromkeys(HEADER)
    assert rows[0] == dict(zip(HEADER, RECORDS[0], strict=True))
    assert rows[3]["answer"] == "I agreed with [name]; café"
    after = reread(result.data, "f.parquet", tmp_path, ReadOptions())
    assert sorted(after) == [1, 3, 4]


# --- survey-tool exports --------------------------------------------------------------------------

SURVEYS = [
    ("qualtrics_choice_text.csv", "qualtrics"),
    ("qualtrics_numeric_values.csv", "qualtrics"),
    ("qualtrics_choice_text_resaved_excel_uk_cp1252.csv", "qualtrics"),
    ("surveymonkey_expanded_answer_text.csv", "surveymonkey"),
    ("surveymonkey_expanded_answer_text.xlsx", "surveymonkey"),
    ("Community climate workshop feedback(1-8).xlsx", "msforms"),
    ("google_forms_download_responses.csv", "googleforms"),
    ("google_sheets_form_responses_1_uk_locale.csv", "googleforms"),
]


def survey_cases() -> list[tuple[Path, str]]:
    return [(SAMPLES / name, tool) for name, tool in SURVEYS] + [(MENTIMETER, "mentimeter")]


@pytest.mark.parametrize(("path", "tool"), survey_cases(), ids=lambda v: v.name if isinstance(v, Path) else v)
def test_every_respondent_of_a_survey_export_can_be_taken_out_and_the_rest_reads_the_same(
    tmp_path: Path, path: Path, tool: str
) -> None:
    mapping = load_mapping(MAPPINGS / f"{tool}.yaml")
    before = read_survey(path, mapping)
    layout = Layout(
        "xlsx" if path.suffix == ".xlsx" else "csv",
        survey_column=mapping.panellist_column,
        survey_panel=mapping.panel_id,
        keep=frozenset({"question"}) if tool == "mentimeter" else frozenset(),
    )
    refs = before.responses["panellist_ref"].unique(maintain_order=True).to_list()
    assert len(refs) >= 3
    for ref in refs:
        person = Person(mapping.panel_id, frozenset({ref}), frozenset({ref.casefold()} if "@" in ref else ()))
        result = redact(path.read_bytes(), path.name, layout, person, Mentions(PersonIdentifiers()))
        assert result.rows and result.identities == {ref}
        redacted = tmp_path / path.name
        redacted.write_bytes(result.data)
        after = read_survey(redacted, mapping)
        others = before.responses.filter(pl.col("panellist_ref") != ref)
        assert after.responses.sort("source_row", "question_id").equals(others.sort("source_row", "question_id")), ref
        assert after.respondents == before.respondents - 1
        assert ref not in every_cell(redacted)  # not even in a partial or excluded response


def every_cell(path: Path) -> set[str]:
    """Every cell of every sheet (hidden ones too) or of the CSV file, as text."""
    from transforms.adapters._common import read_csv_rows, text

    if path.suffix == ".csv":
        return {text(c).strip() for row in read_csv_rows(path) for c in row}
    import openpyxl

    book = openpyxl.load_workbook(path, data_only=True)
    return {text(c).strip() for sheet in book.worksheets for row in sheet.iter_rows(values_only=True) for c in row}


def test_a_survey_export_of_another_panel_is_not_touched() -> None:
    mapping = load_mapping(MAPPINGS / "googleforms.yaml")
    path = SAMPLES / "google_forms_download_responses.csv"
    layout = Layout("csv", survey_column=mapping.panellist_column, survey_panel="another-panel")
    result = redact(path.read_bytes(), path.name, layout, Person(mapping.panel_id, frozenset({"k.ross@example.com"})))
    assert not result.rows
