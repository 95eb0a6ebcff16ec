"""Microsoft Forms: Responses → "Open in Excel" download (sheet `Sheet1`) or the synced workbook (`Form1`).

One header row (the Excel Table `Table1`'s header): `ID, Start time, Completion time, Email, Name`,
`Last modified time` in newer exports, then one column per question. A Likert question becomes one column
per statement, headed with the statement only. Multi-selects hold `A;B;` with a trailing `;`.
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
    Sheet,
    Unit,
    answer_text,
    answered_at_values,
    assemble,
    cell,
    clean_label,
    data_rows,
    declared,
    find_one_column,
    read_sheets,
    resolve_day_first,
    text,
    with_text_ids,
    wrong_layout,
)
from .mapping import SurveyMapping

MULTI_SEPARATOR = ";"
_METADATA = {
    "id",
    "starttime",
    "completiontime",
    "email",
    "name",
    "lastmodifiedtime",
    "language",
    "totalpoints",
    "quizfeedback",
}
_QUIZ_PREFIXES = ("Points - ", "Feedback - ")
_EXPECTED = "expected Microsoft Forms' header row 'ID, Start time, Completion time, Email, Name, ...'"


def read_msforms(path: Path | str, mapping: SurveyMapping, date_order: DateOrder | None = None) -> AdapterResult:
    """Canonical rows from a Microsoft Forms responses workbook (every row is a submitted response)."""
    path = Path(path)
    sheet = _response_sheet(read_sheets(path))
    header_row = sheet.table_header_row or 1
    rows = sheet.rows
    headers = [text(v).strip() for v in rows[header_row - 1]] if len(rows) >= header_row else []
    keys = {normalise_header(h) for h in headers}
    if "id" not in keys or not {"starttime", "completiontime"} & keys:
        raise wrong_layout(path, "msforms", _EXPECTED)
    aliases = [(h,) for h in headers]
    panellist = find_one_column(aliases, [mapping.panellist_column], path, "panellist")
    answered = find_one_column(
        aliases, mapping.answered_at_candidates, path, "answered_at", required=mapping.answered_at_column is not None
    )
    records = list(data_rows(rows, header_row + 1))
    stamps = {headers[answered]: [cell(row, answered) for _, row in records]} if answered is not None else {}
    day_first = resolve_day_first(stamps, date_order, path)
    times = answered_at_values(records, answered, day_first, path, headers[answered] if answered is not None else "")
    questions = [i for i, h in enumerate(headers) if _is_question(h) and i not in (panellist, answered)]
    units = with_text_ids([_unit(headers[i], i, records, mapping) for i in questions])
    respondents = (
        Respondent(number, text(cell(row, panellist)).strip(), times.get(number), row) for number, row in records
    )
    return assemble(units, respondents, mapping, path)


def _response_sheet(sheets: Sequence[Sheet]) -> Sheet:
    """The sheet holding the responses Table (a synced workbook also has a hidden form-id sheet)."""
    for sheet in sheets:
        if sheet.table_header_row is not None:
            return sheet
    named = [s for s in sheets if s.name in ("Sheet1", "Form1")]
    return (named or list(sheets) or [Sheet("", [])])[0]


def _is_question(header: str) -> bool:
    # Blank headers trail after manual edits; quiz scoring columns are not answers.
    return bool(header) and normalise_header(header) not in _METADATA and not header.startswith(_QUIZ_PREFIXES)


def _unit(header: str, index: int, records: Sequence[tuple[int, Row]], mapping: SurveyMapping) -> Unit:
    label = clean_label(header)
    multi = declared(mapping.multi_select, [label]) or _looks_multi_select(index, records)
    return Unit(
        default_id="",  # from the text (with_text_ids)
        text=label,
        keys=(label,),
        columns=(index,),
        headers=(header,),
        shape="joined" if multi else "single",
        separator=MULTI_SEPARATOR,
    )


def _looks_multi_select(index: int, records: Sequence[tuple[int, Row]]) -> bool:
    """Forms ends every multi-select (and ranking) cell with ';', which free text practically never does throughout."""
    values = [v for _, row in records if (v := answer_text(cell(row, index)))]
    return bool(values) and all(v.endswith(MULTI_SEPARATOR) for v in values)
