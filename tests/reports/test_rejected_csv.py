"""rejected_rows.csv, made set-wise a batch of records at a time, is line for line what `csv_row` (the one
rule for a line: cells joined, values shown, formulas neutralised) and Python's csv module give, for any
number of records, whatever their values hold."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reports import feedback
from reports.feedback import CSV_COLUMNS, DeliveryRecord, Rejected, csv_row, rejected_cells, write_rejected_csv
from warehouse.schema import connect, create_schema

RUN = "run-1"
# what a partner may have typed, after scrubbing: formulas, numbers, quotes, line ends, delimiters, nothing
TEXT = st.one_of(
    st.none(),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8),
    st.text(alphabet=st.sampled_from(["=", "+", "-", "@", "\t", "\r", "\n", '"', ",", ";", "1", ".", "a", " "])),
)
COLUMN = st.sampled_from(["answer", "score", "panel_id", "question_id"])
RECORD = st.tuples(
    st.integers(1, 3),  # delivery
    st.one_of(st.none(), st.integers(2, 10**6)),  # row (none: the whole file)
    st.lists(st.sampled_from(["answer_required", "=rule", "score_range"]), min_size=1, max_size=2),
    st.lists(TEXT.map(lambda t: t or "why"), min_size=1, max_size=2),
    st.lists(COLUMN, max_size=3),
    st.dictionaries(COLUMN, TEXT, max_size=4),
)


def deliveries() -> list[DeliveryRecord]:
    from tests.reports.test_feedback import record

    return [record(1, ()), record(2, ()), record(3, ())]


def store(tmp_path: Path, records: list[tuple[Any, ...]]) -> Any:
    con = connect(tmp_path / "warehouse.duckdb")
    create_schema(con)
    if records:
        con.executemany(
            'INSERT INTO ops.quarantine (delivery_id, source_row, rules, reasons, columns, "values", run_id) '
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [[*r, RUN] for r in records],
        )
    return con


def expected_text(records: list[tuple[Any, ...]], files: dict[int, str]) -> str:
    """The file as Python's csv module writes each record's `csv_row`, in file and row order."""
    ordered = sorted(records, key=lambda r: (r[0], r[1] is not None, r[1] or 0))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for d, row, rules, reasons, columns, values in ordered:
        writer.writerow(
            csv_row(Rejected(d, row, tuple(rules), tuple(reasons), tuple(columns), json.loads(values)), files[d])
        )
    return out.getvalue()


@settings(max_examples=40, deadline=None, database=None)
@given(st.lists(RECORD, max_size=30), st.integers(1, 7))
def test_the_csv_is_what_csv_row_gives_line_for_line(
    tmp_path_factory: pytest.TempPathFactory, drawn: list[tuple[Any, ...]], batch: int
) -> None:
    folder = tmp_path_factory.mktemp("csv")
    records = [
        (d, row, rules, reasons, columns, json.dumps(values, ensure_ascii=False))
        for d, row, rules, reasons, columns, values in drawn
    ]
    records = list({(r[0], r[1]): r for r in records}.values())  # one record per delivery and row
    con = store(folder, records)
    files = {d.delivery_id: d.file for d in deliveries()}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(feedback, "CSV_BATCH_ROWS", batch)  # many batches, each made on its own
        path = write_rejected_csv(con, folder / "rejected_rows.csv", RUN, deliveries())
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # spreadsheets then read it as UTF-8
    assert data.decode("utf-8-sig") == expected_text(records, files)  # byte for byte, as the csv module wrote it


def test_values_that_are_not_all_text_are_shown_as_csv_row_shows_them() -> None:
    """A record whose values hold a number, a list or broken JSON takes csv_row's path, line for line."""
    records = pl.DataFrame(
        {
            "delivery_id": [1, 1, 2],
            "source_row": [2, None, 5],
            "rules": [["score_range"], ["file_unreadable"], ["answer_required"]],
            "reasons": [["too high"], ["=bad"], ["empty"]],
            "columns": [["score"], [], ["answer", "tags"]],
            "values": ['{"score": 9}', "{}", '{"answer": "=1+1", "tags": ["a", "b"]}'],
        }
    )
    cells = rejected_cells(records, {1: "a.csv"})
    assert cells.rows() == [
        ("a.csv", "1", "2", "score", "9", "score_range", "too high"),
        ("a.csv", "1", "", "", "", "file_unreadable", "'=bad"),
        ("", "2", "5", "answer; tags", 'answer = =1+1; tags = ["a", "b"]', "answer_required", "empty"),
    ]
    text_only = records.with_columns(pl.Series("values", ['{"score": "9"}', "{}", '{"answer": "=1+1", "tags": null}']))
    assert rejected_cells(text_only, {1: "a.csv"}).rows() == [
        ("a.csv", "1", "2", "score", "9", "score_range", "too high"),
        ("a.csv", "1", "", "", "", "file_unreadable", "'=bad"),
        ("", "2", "5", "answer; tags", "answer = =1+1; tags = (empty)", "answer_required", "empty"),
    ]


def test_an_empty_quarantine_writes_the_header_only(tmp_path: Path) -> None:
    con = store(tmp_path, [])
    path = write_rejected_csv(con, tmp_path / "out" / "rejected_rows.csv", RUN, deliveries())
    assert path.read_bytes() == b"\xef\xbb\xbf" + ",".join(CSV_COLUMNS).encode() + b"\r\n"
