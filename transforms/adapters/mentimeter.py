"""Mentimeter participant-level results in the long layout: one row per participant, question and answer.

Columns `Participant (ID)`, `Question`, `Answer`, optionally `Slide`, `Session`, `Submitted at`/`Timestamp`;
preamble rows may precede the header, so the first 15 rows of each sheet are searched for it. Several rows
for the same participant and question (a multiple-choice slide) make one answer. A scale statement
appears as `Prompt:: Statement`. The layout is unverified against a real export (see FORMATS.md §5).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from din.contract import normalise_header
from transforms.dates import DateOrder

from ._common import (
    AdapterError,
    AdapterResult,
    Cell,
    Respondent,
    Sheet,
    Unit,
    answer_text,
    answered_at_values,
    assemble,
    cell,
    clean_label,
    data_rows,
    find_one_column,
    read_sheets,
    resolve_day_first,
    text,
    with_text_ids,
    wrong_layout,
)
from .mapping import SurveyMapping

HEADER_SCAN_ROWS = 15
_ITEM_SEPARATOR = "\x1f"  # joins one participant's rows for a question; never occurs in typed text
_SCALE_SEPARATOR = "::"
_EXPECTED = "expected Mentimeter's participant-level layout with 'Participant (ID)', 'Question' and 'Answer' columns"


@dataclass
class _Participant:
    ref: str
    first_row: int
    answers: dict[int, list[str]] = field(default_factory=dict)  # unit column -> answers in file order
    rows: dict[int, int] = field(default_factory=dict)
    times: dict[int, str | None] = field(default_factory=dict)


def read_mentimeter(path: Path | str, mapping: SurveyMapping, date_order: DateOrder | None = None) -> AdapterResult:
    """Canonical rows from a Mentimeter participant-level export (XLSX or CSV)."""
    path = Path(path)
    rows, header_row = _find_table(read_sheets(path), path)
    headers = [text(v).strip() for v in rows[header_row - 1]]
    aliases = [(h,) for h in headers]
    participant = find_one_column(aliases, [mapping.panellist_column], path, "panellist")
    question = find_one_column(aliases, ["Question"], path, "question")
    answer = find_one_column(aliases, ["Answer"], path, "answer")
    answered = find_one_column(
        aliases, mapping.answered_at_candidates, path, "answered_at", required=mapping.answered_at_column is not None
    )
    records = list(data_rows(rows, header_row + 1))
    stamps = {headers[answered]: [cell(row, answered) for _, row in records]} if answered is not None else {}
    day_first = resolve_day_first(stamps, date_order, path)
    times = answered_at_values(records, answered, day_first, path, headers[answered] if answered is not None else "")
    columns: dict[str, int] = {}  # question text -> its column in the pivoted rows
    people: dict[str, _Participant] = {}
    anonymous: list[int] = []
    for number, row in records:
        asked, given = clean_label(cell(row, question)), answer_text(cell(row, answer))
        if not asked:
            continue
        # A question is part of the export even when nobody's answer to it is left (an erasure keeps the
        # question cells of the rows it blanks): a mapping that names it still finds it.
        column = columns.setdefault(asked, len(columns))
        if not given:
            continue  # a question shown but not answered
        ref = text(cell(row, participant)).strip()
        if not ref:
            anonymous.append(number)
            continue
        person = people.setdefault(ref, _Participant(ref, number))
        person.answers.setdefault(column, []).append(given)
        person.rows.setdefault(column, number)
        person.times.setdefault(column, times.get(number))
    respondents = [_respondent(p, len(columns)) for p in people.values()]
    # Menti voting is anonymous by default: each answer row without a participant is counted, not loaded.
    respondents += [Respondent(number, "", None, ()) for number in anonymous]
    return assemble(_units(list(columns)), respondents, mapping, path)


def _find_table(sheets: Sequence[Sheet], path: Path) -> tuple[list[list[Cell]], int]:
    """The rows of the first sheet with a long-layout header, and that header's 1-based row."""
    for sheet in sheets:
        for number, row in enumerate(sheet.rows[:HEADER_SCAN_ROWS], 1):
            names = {normalise_header(text(v)) for v in row}
            if {"question", "answer"} <= names:
                return sheet.rows, number
    for sheet in sheets:
        if any("voter" in {normalise_header(text(v)) for v in row} for row in sheet.rows[:HEADER_SCAN_ROWS]):
            raise AdapterError(
                f"{path.name}: a Mentimeter 'Voters' export (one column per question) is not read yet; "
                "download the participant-level results with 'Participant (ID)', 'Question' and 'Answer' columns"
            )
    raise wrong_layout(path, "mentimeter", _EXPECTED + f" in the first {HEADER_SCAN_ROWS} rows")


def _respondent(person: _Participant, width: int) -> Respondent:
    cells = [_ITEM_SEPARATOR.join(person.answers.get(i, [])) for i in range(width)]
    return Respondent(person.first_row, person.ref, None, cells, cell_rows=person.rows, cell_times=person.times)


def _units(questions: Sequence[str]) -> list[Unit]:
    """A unit per distinct question (a scale statement `Prompt:: Statement` is one), its id from its text."""
    units = []
    for column, asked in enumerate(questions):
        prompt, _, statement = (part.strip() for part in asked.partition(_SCALE_SEPARATOR))
        keys: tuple[str, ...] = (asked,)
        if statement:
            keys += (f"{prompt} - {statement}", f"{prompt} [{statement}]")
        units.append(Unit("", asked, keys, (column,), (asked,), shape="joined", separator=_ITEM_SEPARATOR))
    return with_text_ids(units)
