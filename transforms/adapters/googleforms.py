"""Google Forms: "Download responses (.csv)" or the linked Sheet ("Form responses 1") downloaded as CSV/XLSX.

One header row: `Timestamp`, `Email address` when collected, then one column per question headed with
its title; a grid has one column per row, headed `Question [Row]`. Checkboxes join the ticked labels with
", " in one cell, which the file cannot tell from free text: the mapping lists them under `multi_select`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from din.contract import normalise_header
from transforms.dates import DateOrder

from ._common import (
    AdapterResult,
    Respondent,
    Unit,
    answered_at_values,
    assemble,
    cell,
    clean_label,
    data_rows,
    declared,
    find_one_column,
    read_table,
    resolve_day_first,
    text,
    with_text_ids,
    wrong_layout,
)
from .mapping import SurveyMapping

CHECKBOX_SEPARATOR = ", "
_METADATA = {"timestamp", "emailaddress", "score"}
_GRID = re.compile(r"^(?P<question>.+?)\s*\[(?P<row>[^\[\]]+)\]$")


def read_googleforms(path: Path | str, mapping: SurveyMapping, date_order: DateOrder | None = None) -> AdapterResult:
    """Canonical rows from a Google Forms responses file (Forms download or linked-Sheet download)."""
    path = Path(path)
    rows = read_table(path)
    headers = [text(v).strip() for v in rows[0]] if rows else []
    aliases = [(h,) for h in headers]
    if not headers or (normalise_header(headers[0]) != "timestamp" and mapping.answered_at_column is None):
        raise wrong_layout(path, "googleforms", "expected Google Forms' header row starting 'Timestamp'")
    panellist = find_one_column(aliases, [mapping.panellist_column], path, "panellist")
    answered = find_one_column(
        aliases, mapping.answered_at_candidates, path, "answered_at", required=mapping.answered_at_column is not None
    )
    records = list(data_rows(rows, 2))
    stamps = {headers[answered]: [cell(row, answered) for _, row in records]} if answered is not None else {}
    day_first = resolve_day_first(stamps, date_order, path)
    times = answered_at_values(records, answered, day_first, path, headers[answered] if answered is not None else "")
    questions = [
        i
        for i, h in enumerate(headers)
        if h and normalise_header(h) not in _METADATA and i not in (panellist, answered)
    ]
    respondents = (
        Respondent(number, text(cell(row, panellist)).strip(), times.get(number), row) for number, row in records
    )
    return assemble(_units(headers, questions, mapping), respondents, mapping, path)


def _units(headers: Sequence[str], questions: Sequence[int], mapping: SurveyMapping) -> list[Unit]:
    """A unit per question column (a grid row `Question [Row]` is one), its id made from its header's text:
    a form gains, loses and reorders questions between deliveries, and its headers are all it has."""
    units: list[Unit] = []
    for index in questions:
        header = clean_label(headers[index])
        match = _GRID.match(header)
        keys = (header, f"{match['question']} - {match['row']}") if match else (header,)
        multi = declared(mapping.multi_select, keys + ((match["question"],) if match else ()))
        units.append(
            Unit(
                default_id="",
                text=header,
                keys=keys,
                columns=(index,),
                headers=(headers[index],),
                shape="joined" if multi else "single",
                separator=CHECKBOX_SEPARATOR,
            )
        )
    return with_text_ids(units)
