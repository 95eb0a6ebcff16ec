"""Qualtrics "Download Data Table" CSV/TSV: three header rows (export tags, labels, ImportId JSON).

Row 3's ImportIds are the stable keys: metadata columns carry names like `startDate` or `_recordId`, question
columns `QID<n>...`. Split multi-selects carry a `choiceId`; their typed "Other" text sits in
`QID<n>_<choiceId>_TEXT`. Choice-text and numeric-values exports share the header; only the values differ.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from transforms.dates import DateOrder

from ._common import (
    AdapterError,
    AdapterResult,
    Cell,
    Respondent,
    Row,
    Unit,
    answered_at_values,
    assemble,
    cell,
    clean_label,
    data_rows,
    find_one_column,
    read_table,
    resolve_day_first,
    text,
    wrong_layout,
)
from .mapping import SurveyMapping

HEADER_ROWS = 3
_QUESTION = re.compile(r"^QID\d+(?:_\d+)*(?:_TEXT)?$")  # not timing, display-order or Text iQ columns
_CHOICE_TEXT = re.compile(r"^(QID\d+)_(\d+)_TEXT$")
_FREE_TEXT = re.compile(r"^(QID\d+)_TEXT$")
_DATE_IDS = ("startDate", "endDate", "recordedDate")
_PREVIEW_STATUS = ("Survey Preview", "1")  # choice-text / numeric export
_UNFINISHED = ("false", "0")
_SELECTED_CHOICE = " - Selected Choice"


@dataclass(frozen=True)
class _Column:
    index: int
    tag: str  # row 1: export tag (renamable, may repeat)
    label: str  # row 2: question label, HTML removed
    import_id: str  # row 3: the stable key
    choice_id: str | None

    @property
    def aliases(self) -> tuple[str, str, str]:
        return (self.tag, self.label, self.import_id)


def read_qualtrics(path: Path | str, mapping: SurveyMapping, date_order: DateOrder | None = None) -> AdapterResult:
    """Canonical rows from a Qualtrics export; survey previews and unfinished responses are left out and counted."""
    path = Path(path)
    rows = read_table(path)
    columns, appended = _header(rows, path)
    by_index = {c.index: c for c in columns}
    aliases = [by_index[i].aliases if i in by_index else () for i in range(max(by_index, default=-1) + 1)]
    panellist = find_one_column(aliases, [mapping.panellist_column], path, "panellist")
    answered = find_one_column(
        aliases, mapping.answered_at_candidates, path, "answered_at", required=mapping.answered_at_column is not None
    )
    by_id = {c.import_id: c.index for c in columns if c.import_id}
    records = list(data_rows(rows, HEADER_ROWS + 1))
    numeric = _is_numeric(records, [by_id.get("status"), by_id.get("finished")])
    questions = [c for c in columns if _QUESTION.match(c.import_id) and c.index not in (panellist, answered)]
    dates = {by_index[by_id[i]].tag: [cell(row, by_id[i]) for _, row in records] for i in _DATE_IDS if i in by_id}
    day_first = resolve_day_first(dates, date_order, path)
    header = by_index[answered].tag if answered is not None else ""
    times = answered_at_values(records, answered, day_first, path, header)
    respondents = (
        Respondent(
            source_row=number,
            panellist_ref=text(cell(row, panellist)).strip(),
            answered_at=times.get(number),
            cells=row,
            excluded=_exclusion(row, by_id),
        )
        for number, row in records
    )
    result = assemble(_units(questions, numeric), respondents, mapping, path)
    used = {by_index[i].tag for i in (panellist, answered) if i is not None}
    appended = [tag for tag in appended if tag not in used]
    if appended:
        # Added to the export after Qualtrics wrote it (no ImportId): kept out, reported, the rest loads.
        result.unmapped_columns = [*result.unmapped_columns, *appended]
        result.notes.append(
            f"column(s) {', '.join(repr(a) for a in appended)} have no ImportId in header row 3 (added after "
            "Qualtrics exported the file): not loaded"
        )
    return result


def _header(rows: Sequence[Row], path: Path) -> tuple[list[_Column], list[str]]:
    """The columns described by the three header rows, and the headers of columns appended without an
    ImportId (by hand, after the export); AdapterError if the file lacks Qualtrics' header rows."""
    if rows and text(cell(rows[0], 0)).strip() == "V1":
        raise AdapterError(
            f"{path.name}: a legacy (pre-2017) Qualtrics export with 'V1..V10' headers; re-export it from "
            "Qualtrics as 'Download Data Table' CSV, which has three header rows"
        )
    if len(rows) < HEADER_ROWS:
        raise wrong_layout(path, "qualtrics", f"expected Qualtrics' three header rows; the file has {len(rows)} row(s)")
    names, labels, ids = rows[:HEADER_ROWS]
    columns = []
    appended = []
    for index, name in enumerate(names):
        tag = text(name).strip()
        if not tag:
            continue  # Qualtrics may end each line with a comma: an unnamed, empty last column
        parsed = _import_id(cell(ids, index))
        if parsed is None:
            # Named by its header only: usable as the panellist column, never a question.
            appended.append(tag)
            parsed = ("", None)
        import_id, choice_id = parsed
        columns.append(_Column(index, tag, clean_label(cell(labels, index)), import_id, choice_id))
    if len(appended) == len(columns) or any("'ImportId'" in text(v) for v in ids):
        raise _no_import_ids(path, ids, appended[0] if appended else "")
    return columns, appended


def _import_id(value: Cell) -> tuple[str, str | None] | None:
    """(ImportId, choiceId) from a row-3 cell, or None if it holds no ImportId JSON."""
    try:
        parsed = json.loads(text(value))
    except ValueError:
        return None
    if not isinstance(parsed, dict) or not parsed.get("ImportId"):
        return None
    choice = parsed.get("choiceId")
    return str(parsed["ImportId"]), (str(choice) if choice is not None else None)


def _no_import_ids(path: Path, ids: Row, tag: str) -> AdapterError:
    if any("'ImportId'" in text(v) for v in ids):
        return AdapterError(
            f"{path.name}: row 3 holds Python-style {{'ImportId': ...}} cells (an old 'Insights' export); "
            "re-export it from Qualtrics as 'Download Data Table' CSV"
        )
    if not any(_import_id(v) for v in ids):
        return wrong_layout(path, "qualtrics", "expected Qualtrics' three header rows; row 3 holds no ImportId JSON")
    return AdapterError(f"{path.name}: row 3 holds no ImportId JSON for column {tag!r}; was the header edited?")


def _is_numeric(records: Sequence[tuple[int, Row]], status_columns: Iterable[int | None]) -> bool:
    """Whether this is a numeric-values export: the header cannot tell, Status/Finished codes can."""
    for column in status_columns:
        if column is None:
            continue
        values = {text(cell(row, column)).strip() for _, row in records} - {""}
        if values:
            return all(v.lstrip("-").isdigit() for v in values)
    return False


def _exclusion(row: Row, by_id: dict[str, int]) -> str | None:
    def value(import_id: str) -> str:
        return text(cell(row, by_id[import_id])).strip() if import_id in by_id else ""

    if value("status") in _PREVIEW_STATUS or value("distributionChannel").lower() == "preview":
        return "preview"
    if value("finished").lower() in _UNFINISHED:
        return "incomplete"
    return None


def _units(columns: Sequence[_Column], numeric: bool) -> list[Unit]:
    """One unit per question column, except that a split multi-select's columns make one unit."""
    choices: dict[str, list[_Column]] = {}
    for column in columns:
        if column.choice_id is not None:
            choices.setdefault(column.import_id, []).append(column)
    typed = {(m[1], m[2]): c for c in columns if (m := _CHOICE_TEXT.match(c.import_id)) and m[1] in choices}
    units = []
    for column in columns:
        if column.choice_id is not None:
            if column is choices[column.import_id][0]:
                units.append(_multi_select(choices[column.import_id], typed, numeric))
        elif not ((m := _CHOICE_TEXT.match(column.import_id)) and (m[1], m[2]) in typed):
            units.append(_single(column))
    return _unique_default_ids(units)


def _single(column: _Column) -> Unit:
    # A single choice with a text-entry option is labelled 'question - Selected Choice'.
    text = column.label.removesuffix(_SELECTED_CHOICE)
    keys = [column.tag, column.import_id, text, column.label]
    if m := _FREE_TEXT.match(column.import_id):
        keys.append(m[1])  # QID6_TEXT is question QID6
    return Unit(default_id=column.tag, text=text, keys=tuple(keys), columns=(column.index,), headers=(column.tag,))


def _multi_select(columns: list[_Column], typed: dict[tuple[str, str | None], _Column], numeric: bool) -> Unit:
    import_id = columns[0].import_id
    stem, labels = _split_labels([c.label for c in columns])
    first_tag = columns[0].tag
    tag = first_tag.removesuffix(f"_{columns[0].choice_id}")
    text_columns = [
        (c.index, typed[(import_id, c.choice_id)].index) for c in columns if (import_id, c.choice_id) in typed
    ]
    extra_headers = tuple(typed[(import_id, c.choice_id)].tag for c in columns if (import_id, c.choice_id) in typed)
    return Unit(
        default_id=tag,
        text=stem,
        keys=(tag, import_id, stem),
        columns=tuple(c.index for c in columns),
        headers=tuple(c.tag for c in columns) + extra_headers,
        shape="split",
        choices=tuple(labels),
        label_from_header=numeric,
        typed_text=tuple(text_columns),
    )


def _split_labels(labels: Sequence[str]) -> tuple[str, list[str]]:
    """('question', ['choice', ...]) from labels 'question - [Selected Choice - ]choice'."""
    cut = _common_prefix(labels).rfind(" - ")
    if cut < 0:
        return labels[0], list(labels)
    return labels[0][:cut].removesuffix(_SELECTED_CHOICE), [label[cut + 3 :] for label in labels]


def _common_prefix(labels: Sequence[str]) -> str:
    first, last = min(labels), max(labels)  # the sorted extremes differ earliest
    for position, (a, b) in enumerate(zip(first, last, strict=False)):
        if a != b:
            return first[:position]
    return first if len(first) <= len(last) else last


def _unique_default_ids(units: list[Unit]) -> list[Unit]:
    # Export tags can repeat (a real export had two Q2_1 columns); the ImportId (keys[1]) never does.
    counts = Counter(u.default_id for u in units)
    return [replace(u, default_id=u.keys[1]) if counts[u.default_id] > 1 else u for u in units]
