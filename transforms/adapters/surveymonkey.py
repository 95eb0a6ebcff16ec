"""SurveyMonkey "All individual responses" export, Expanded columns + Actual Answer Text (CSV or XLSX).

Two header rows. Row 1 holds the metadata names and each question's text in the first column of its
block (the rest of the block is blank); row 2 is blank under metadata and holds `Response`,
`Open-Ended Response`, a matrix row label, a checkbox choice label or `Other (please specify)` per column.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from din.contract import normalise_header
from transforms.dates import DateOrder

from ._common import (
    AdapterResult,
    Respondent,
    Row,
    Unit,
    answer_text,
    answered_at_values,
    assemble,
    cell,
    clean_label,
    data_rows,
    declared,
    find_one_column,
    norm_key,
    read_table,
    resolve_day_first,
    text,
    with_text_ids,
    wrong_layout,
)
from .mapping import SurveyMapping

HEADER_ROWS = 2
_SINGLE_LABELS = {"response", "open-ended response", "open ended response"}
_DATE_COLUMNS = ("Start Date", "End Date")
_EXPECTED = (
    "expected SurveyMonkey's two header rows (row 1 'Respondent ID, Collector ID, Start Date, ...' and question "
    "texts; row 2 'Response', choice or row labels)"
)

Block = tuple[str, list[tuple[int, str]]]  # question text, [(column, row-2 label)]


def read_surveymonkey(path: Path | str, mapping: SurveyMapping, date_order: DateOrder | None = None) -> AdapterResult:
    """Canonical rows from a SurveyMonkey export; every respondent row is loaded (the file marks no partials)."""
    path = Path(path)
    rows = read_table(path)
    names = _check_header(rows, path)
    aliases = [(n,) for n in names]
    panellist = find_one_column(aliases, [mapping.panellist_column], path, "panellist")
    answered = find_one_column(
        aliases, mapping.answered_at_candidates, path, "answered_at", required=mapping.answered_at_column is not None
    )
    records = list(data_rows(rows, HEADER_ROWS + 1))
    date_columns = [
        i for name in _DATE_COLUMNS for i in [find_one_column(aliases, [name], path, name, False)] if i is not None
    ]
    day_first = resolve_day_first(
        {names[i]: [cell(row, i) for _, row in records] for i in date_columns}, date_order, path
    )
    times = answered_at_values(records, answered, day_first, path, names[answered] if answered is not None else "")
    blocks = _blocks(rows[0], rows[1], skip={panellist, answered})
    units = with_text_ids([u for block in blocks for u in _block_units(block, records, mapping)])
    respondents = (
        Respondent(number, text(cell(row, panellist)).strip(), times.get(number), row) for number, row in records
    )
    return assemble(units, respondents, mapping, path)


def _check_header(rows: Sequence[Row], path: Path) -> list[str]:
    """Row 1's cells as column names; AdapterError if the layout is not SurveyMonkey's."""
    if len(rows) < HEADER_ROWS:
        raise wrong_layout(path, "surveymonkey", _EXPECTED)
    names = [text(v).strip() for v in rows[0]]
    keys = [normalise_header(n) for n in names]
    if "respondentid" not in keys:
        raise wrong_layout(path, "surveymonkey", _EXPECTED + "; row 1 has no 'Respondent ID'")
    if text(cell(rows[1], keys.index("respondentid"))).strip():
        raise wrong_layout(path, "surveymonkey", _EXPECTED + "; row 2 holds data, not labels")
    return names


def _blocks(row1: Row, row2: Row, skip: set[int | None]) -> list[Block]:
    """Question blocks: a block starts at a row-1 text and runs over the blank row-1 cells after it."""
    blocks: list[Block] = []
    for index in range(max(len(row1), len(row2))):
        question, label = clean_label(cell(row1, index)), clean_label(cell(row2, index))
        if not label or index in skip:
            continue  # metadata columns have no row-2 label
        if question or not blocks:
            blocks.append((question, []))
        blocks[-1][1].append((index, label))
    return blocks


def _block_units(block: Block, records: Sequence[tuple[int, Row]], mapping: SurveyMapping) -> list[Unit]:
    """The block's questions (ids from their texts, by with_text_ids)."""
    question, columns = block
    if len(columns) > 1 and (declared(mapping.multi_select, [question]) or _looks_multi_select(columns, records)):
        return [
            Unit(
                default_id="",
                text=question,
                keys=(question,),
                columns=tuple(i for i, _ in columns),
                headers=tuple(f"{question} - {label}" for _, label in columns),
                shape="split",
                choices=tuple(label for _, label in columns),
            )
        ]
    units = []
    for index, label in columns:
        if norm_key(label) in _SINGLE_LABELS:
            units.append(Unit("", question, (question,), (index,), (question,)))
        else:
            # A matrix row, or the 'Other (please specify)' text of a single-choice question.
            full = f"{question} - {label}"
            units.append(Unit("", full, (full, f"{question} [{label}]"), (index,), (full,)))
    return units


def _looks_multi_select(columns: list[tuple[int, str]], records: Sequence[tuple[int, Row]]) -> bool:
    """Checkbox columns hold their own choice label when ticked; matrix rows hold a scale label instead.

    The last column is left out of the test: in a checkbox block it may be the typed 'Other' text.
    """
    if any(norm_key(label) in _SINGLE_LABELS for _, label in columns):
        return False
    ticked = False
    for index, label in columns[:-1]:
        for _, row in records:
            value = answer_text(cell(row, index))
            if value and norm_key(value) != norm_key(label):
                return False
            ticked |= bool(value)
    return ticked
