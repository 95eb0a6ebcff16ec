"""Shared machinery of the survey adapters: reading files, parsing dates, and turning questions into rows.

Each tool module finds the file's questions (`Unit`s) and respondents (`Respondent`s); `assemble` then
applies the mapping and builds the canonical frames the same way for every tool.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import html
import io
import re
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from itertools import islice
from pathlib import Path
from typing import Literal

import polars as pl

from din.contract import ACCEPTABILITY, KINDS, SURVEY_EXPORT_UNREADABLE, normalise_header
from transforms.dates import DateOrder, DateOrderProblem, evidence_of, resolve_date_order

from .mapping import FEEDBACK_FIELDS, FeedbackMapping, SurveyMapping

Cell = str | int | float | bool | datetime | date | time | None
Row = Sequence[Cell]

SOURCE_ROW = "source_row"
RESPONSE_COLUMNS = KINDS["responses"].column_names
FEEDBACK_COLUMNS = KINDS["project_feedback"].column_names
TOOL_NAMES = {
    "qualtrics": "Qualtrics",
    "surveymonkey": "SurveyMonkey",
    "msforms": "Microsoft Forms",
    "googleforms": "Google Forms",
    "mentimeter": "Mentimeter",
    "polis": "Polis",
}
CSV_SUFFIXES = {".csv", ".tsv", ".txt"}
EXCEL_SUFFIXES = {".xlsx", ".xlsm"}


class AdapterError(ValueError):
    """The file is not what the mapping declares (or does not match it); refuse it with this message.

    `rule` names what it breaks (a wrong layout by default; an undecidable date order has its own rule)."""

    def __init__(self, message: str, rule: str = SURVEY_EXPORT_UNREADABLE) -> None:
        super().__init__(message)
        self.rule = rule


@dataclass
class AdapterResult:
    """Canonical rows read from one survey export, and the account of what was left out.

    `respondents` counts people (those with at least one answer loaded); the rows of `responses`
    are answers. A deliberation export also yields the statements voted on and the earlier votes
    that later ones replaced; a file that only accompanies the others says why in `companion`."""

    responses: pl.DataFrame
    project_feedback: pl.DataFrame
    respondents: int
    excluded: dict[str, int]
    unmapped_columns: list[str]
    statements: pl.DataFrame | None = None
    response_history: pl.DataFrame | None = None
    companion: str | None = None  # nothing of its own to load: why (a Polis summary.csv, ...)
    notes: list[str] = field(default_factory=list)  # what a contributor should know (checks against the export)

    def frames(self) -> dict[str, pl.DataFrame]:
        """The canonical rows by kind, kinds without rows left out."""
        found = {
            "responses": self.responses,
            "project_feedback": self.project_feedback,
            "statements": self.statements,
            "response_history": self.response_history,
        }
        return {kind: frame for kind, frame in found.items() if frame is not None and frame.height}

    @property
    def answers(self) -> int:
        return self.responses.height


# --------------------------------------------------------------------------------------------------
# Reading files


@dataclass(frozen=True)
class Sheet:
    """One worksheet (or a whole CSV file) as rows of cells; row i of `rows` is spreadsheet row i + 1."""

    name: str
    rows: list[list[Cell]]
    table_header_row: int | None = None  # 1-based row of the first Excel Table's header, if any


def read_sheets(path: Path, limit: int | None = None) -> list[Sheet]:
    """Every visible sheet of a workbook, or the one table of a CSV file."""
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return [Sheet(path.name, read_csv_rows(path, limit))]
    if suffix in EXCEL_SUFFIXES:
        return _read_workbook(path, limit)
    if suffix == ".xls":
        raise AdapterError(f"{path.name}: old binary .xls workbooks are not read; export as .xlsx or .csv")
    raise AdapterError(f"{path.name}: expected a .csv or .xlsx survey export, not {suffix or 'a file without suffix'}")


def read_table(path: Path, limit: int | None = None) -> list[list[Cell]]:
    """The rows of a CSV file or of a workbook's first visible sheet."""
    sheets = read_sheets(path, limit)
    if not sheets:
        raise AdapterError(f"{path.name}: the workbook has no visible sheet")
    return sheets[0].rows


def decode(data: bytes) -> str:
    """Text of a delivered file: UTF-8 (BOM stripped), UTF-16 with BOM, or cp1252 after an Excel re-save."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        # cp1252 leaves five bytes undefined; latin-1 decodes anything rather than lose the row.
        return data.decode("latin-1")


def read_csv_rows(path: Path, limit: int | None = None) -> list[list[Cell]]:
    """Records of a CSV/TSV file, with quoted newlines kept inside their cell."""
    text = decode(path.read_bytes())
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        rows: list[list[Cell]] = [
            list(r) for r in islice(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), limit)
        ]
        return rows
    except csv.Error as exc:
        raise AdapterError(f"{path.name}: not a readable CSV file ({exc})") from exc


def _read_workbook(path: Path, limit: int | None) -> list[Sheet]:
    import openpyxl  # imported here: only Excel deliveries need it

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # openpyxl warns about missing default styles in tool exports
            book = openpyxl.load_workbook(path, data_only=True)
    except Exception as exc:  # openpyxl raises a variety of errors for a damaged or mislabelled file
        raise AdapterError(f"{path.name}: cannot be opened as an Excel workbook ({exc})") from exc
    sheets = []
    for sheet in book.worksheets:
        if sheet.sheet_state != "visible":
            continue
        rows = [list(row) for row in islice(sheet.iter_rows(min_row=1, values_only=True), limit)]
        sheets.append(Sheet(sheet.title, rows, _table_header_row(sheet)))
    return sheets


def _table_header_row(sheet: object) -> int | None:
    from openpyxl.utils.cell import range_boundaries

    tables = getattr(sheet, "tables", {})
    for ref in tables.values():
        ref = getattr(ref, "ref", ref)
        top: int | None = range_boundaries(ref)[1]
        return top
    return None


def cell(row: Row, index: int | None) -> Cell:
    """The cell at `index`, or None past the end of a short row (or for a column the file lacks)."""
    return row[index] if index is not None and index < len(row) else None


def text(value: Cell) -> str:
    """A cell as text: spreadsheet numbers without a spurious `.0`, datetimes in ISO form."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, (date, time)):
        return value.isoformat()
    return str(value)


def answer_text(value: Cell) -> str:
    """An answer cell as stored: trimmed, line breaks normalised to \\n (an Excel re-save may add \\r)."""
    return text(value).replace("\r\n", "\n").replace("\r", "\n").strip()


def is_blank(row: Row) -> bool:
    return all(not text(v).strip() for v in row)


def data_rows(rows: Sequence[Row], first_row: int) -> Iterator[tuple[int, Row]]:
    """(spreadsheet row number, row) for each non-blank row from 1-based `first_row` on."""
    for number, row in enumerate(rows[first_row - 1 :], start=first_row):
        if not is_blank(row):
            yield number, row


def clean_label(label: Cell) -> str:
    """A header label as readable text: HTML tags and entities removed, whitespace collapsed."""
    without_tags = re.sub(r"<[^>]+>", " ", text(label))
    return " ".join(html.unescape(without_tags).split())


def norm_key(value: str) -> str:
    """Selector matching key: case-, spacing- and curly-quote-insensitive."""
    straight = value.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    return " ".join(straight.casefold().split())


def find_columns(aliases: Sequence[Sequence[str]], wanted: str) -> list[int]:
    """Indexes of the columns any of whose aliases (name, label, id) matches `wanted`, ignoring case and spacing."""
    key = normalise_header(wanted)
    return [i for i, names in enumerate(aliases) if any(normalise_header(n) == key for n in names if n)]


def find_one_column(
    aliases: Sequence[Sequence[str]], wanted: Sequence[str], path: Path, role: str, required: bool = True
) -> int | None:
    """The column playing `role`, trying each name in `wanted`; AdapterError if missing (when required) or ambiguous."""
    for name in wanted:
        found = find_columns(aliases, name)
        if len(found) > 1:
            raise AdapterError(f"{path.name}: {len(found)} columns are called {name!r}; the {role} column is ambiguous")
        if found:
            return found[0]
    if not required:
        return None
    headers = ", ".join(names[0] for names in aliases if names and names[0])
    raise AdapterError(f"{path.name}: no {role} column {' or '.join(map(repr, wanted))}; the columns are: {headers}")


# --------------------------------------------------------------------------------------------------
# Dates

_TIME = r"(?:[ T,]+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?\s*([AaPp]\.?[Mm]\.?)?)?"
_ZONE = r"\s*(?:Z|(?:GMT|UTC)(?:\s*[+-]\d{1,2}(?::?\d{2})?)?|[+-]\d{2}:?\d{2})?"
_YEAR_FIRST = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})" + _TIME + _ZONE + "$")
_SLASHED = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4}|\d{2})" + _TIME + _ZONE + "$")
_EXCEL_EPOCH = datetime(1899, 12, 30)


def resolve_day_first(columns: Mapping[str, Iterable[Cell]], declared: DateOrder | None, path: Path) -> bool:
    """Whether the export's slashed dates are day-first: as the source declares, else as the values prove.

    The rule of `transforms.dates`, shared with canonical files: when nothing decides and a value
    could be read both ways, the file is refused (AdapterError with the date-order rule)."""
    texts = {name: [v for v in values if isinstance(v, str)] for name, values in columns.items()}
    decided = resolve_date_order(evidence_of(texts), declared)
    if isinstance(decided, DateOrderProblem):
        raise AdapterError(f"{path.name}: {decided.message}", rule=decided.rule)
    return decided is not DateOrder.MONTH_FIRST


def parse_datetime(value: Cell, day_first: bool) -> str | None:
    """`value` as 'YYYY-MM-DDTHH:MM:SS' wall-clock time (no zone conversion); None if empty; ValueError if no date."""
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, date):
        return _iso(datetime.combine(value, time()))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        # An Excel date serial whose cell lost its date format.
        return _iso(_EXCEL_EPOCH + timedelta(days=float(value)))
    raw = text(value).strip()
    if not raw:
        return None
    if match := _YEAR_FIRST.match(raw):
        year, month, day = int(match[1]), int(match[2]), int(match[3])
    elif match := _SLASHED.match(raw):
        first, second, year = int(match[1]), int(match[2]), int(match[3])
        day, month = (first, second) if day_first else (second, first)
        year += 2000 if year < 100 else 0
    else:
        raise ValueError(f"{raw!r} is not a date and time")
    hour = _hour(int(match[4] or 0), match[7])
    return _iso(datetime(year, month, day, hour, int(match[5] or 0), int(match[6] or 0)))


def _hour(hour: int, meridiem: str | None) -> int:
    if not meridiem:
        return hour
    pm = meridiem.lower().startswith("p")
    return hour % 12 + (12 if pm else 0)


def _iso(moment: datetime) -> str:
    # Excel stores times as fractions of a day: round, so 18:10:52.9999 reads as 18:10:53.
    rounded = (moment + timedelta(microseconds=500_000)).replace(microsecond=0)
    return rounded.isoformat(timespec="seconds")


def answered_at_values(
    rows: Iterable[tuple[int, Row]], column: int | None, day_first: bool, path: Path, header: str
) -> dict[int, str | None]:
    """answered_at per spreadsheet row number; AdapterError naming the row for a value that is no date."""
    if column is None:
        return {}
    parsed = {}
    for number, row in rows:
        try:
            parsed[number] = parse_datetime(cell(row, column), day_first)
        except ValueError as exc:
            raise AdapterError(f"{path.name}: row {number}, column {header!r}: {exc}") from exc
    return parsed


# --------------------------------------------------------------------------------------------------
# Questions and respondents

Shape = Literal["single", "split", "joined"]


@dataclass(frozen=True)
class Unit:
    """One canonical question of an export: where its answer sits and how to read it.

    single: one cell holds the answer. split: one column per choice, non-empty = ticked (a multi-select).
    joined: one cell holds the ticked labels separated by `separator`.
    """

    default_id: str  # question_id when the mapping lists no questions (Qualtrics: the tag; others: `with_text_ids`)
    text: str  # question_text
    keys: tuple[str, ...]  # selectors that name it
    columns: tuple[int, ...]
    headers: tuple[str, ...]  # the columns as the file names them, for unmapped_columns
    shape: Shape = "single"
    choices: tuple[str, ...] = ()  # split: the choice label of each column
    label_from_header: bool = False  # split: cells hold a code, not the label (numeric exports)
    typed_text: tuple[tuple[int, int], ...] = ()  # split: (choice column, its typed "Other" text column)
    separator: str = ""  # joined


@dataclass(frozen=True)
class Respondent:
    """One data row of an export (or one participant of a long layout)."""

    source_row: int
    panellist_ref: str
    answered_at: str | None
    cells: Row
    excluded: str | None = None  # why the row is left out (preview, incomplete), if it is
    cell_rows: Mapping[int, int] = field(default_factory=dict)  # long layouts: the file row of each cell
    cell_times: Mapping[int, str | None] = field(default_factory=dict)  # long layouts: each cell's time


def text_question_id(question_text: str) -> str:
    """The generated question_id of a question known only by its text: `Q` + 8 hex of its hash.

    The same text (ignoring case, spacing and quote style) gives the same id in every delivery, however
    the form's questions are added, removed or reordered, and in every tool."""
    return "Q" + hashlib.sha256(norm_key(question_text).encode("utf-8")).hexdigest()[:8]


def with_text_ids(units: Sequence[Unit]) -> list[Unit]:
    """`units` with generated ids from their texts; a text repeated in one file gets `_2`, `_3`, ..."""
    seen: Counter[str] = Counter()
    named = []
    for unit in units:
        base = text_question_id(unit.text)
        seen[base] += 1
        named.append(replace(unit, default_id=base if seen[base] == 1 else f"{base}_{seen[base]}"))
    return named


def unit_answer(unit: Unit, cells: Row, labels: Mapping[str, str], choices: Sequence[str]) -> str | None:
    """The respondent's answer to `unit`, or None when unanswered."""
    if unit.shape == "single":
        value = answer_text(cell(cells, unit.columns[0]))
        return labels.get(value, value) or None
    if unit.shape == "joined":
        raw = answer_text(cell(cells, unit.columns[0]))
        items = split_joined(raw, unit.separator, choices) if raw else []
    else:
        items = _ticked(unit, cells)
    return "; ".join(labels.get(item, item) for item in items) or None


def _ticked(unit: Unit, cells: Row) -> list[str]:
    typed_for = dict(unit.typed_text)
    items = []
    for position, column in enumerate(unit.columns):
        value = answer_text(cell(cells, column))
        typed = answer_text(cell(cells, typed_for[column])) if column in typed_for else ""
        # Typed "Other" text replaces the "Other" label, as Google and Microsoft Forms record it natively.
        if typed:
            items.append(typed)
        elif value:
            items.append(unit.choices[position] if unit.label_from_header else value)
    return items


def split_joined(raw: str, separator: str, choices: Sequence[str] = ()) -> list[str]:
    """Labels of a one-cell multi-select; with the options known, labels containing the separator survive."""
    pieces = raw.split(separator)
    if not choices:
        return [p.strip() for p in pieces if p.strip()]
    known = {norm_key(c): c for c in choices}
    found: list[str] = []
    typed: list[str] = []
    pending: list[str] = []
    start = 0
    while start < len(pieces):
        for end in range(len(pieces), start, -1):
            label = known.get(norm_key(separator.join(pieces[start:end])))
            if label:
                found.append(label)
                start = end
                break
        else:
            pending.append(pieces[start])
            start += 1
            continue
        _flush(pending, separator, typed)
    _flush(pending, separator, typed)
    order = {c: i for i, c in enumerate(choices)}
    return sorted(found, key=order.__getitem__) + typed


def _flush(pending: list[str], separator: str, into: list[str]) -> None:
    # Consecutive unknown pieces are one typed "Other" answer that itself contained the separator.
    joined = separator.join(pending).strip()
    if joined:
        into.append(joined)
    pending.clear()


def declared(selectors: Iterable[str], unit_keys: Iterable[str]) -> bool:
    """Whether any of the mapping's `selectors` names a question with these keys."""
    wanted = {norm_key(s) for s in selectors}
    return any(norm_key(k) in wanted for k in unit_keys)


# --------------------------------------------------------------------------------------------------
# Applying the mapping


@dataclass
class _Plan:
    questions: list[tuple[int, str]]  # (unit index, question_id)
    feedback: list[tuple[FeedbackMapping, dict[str, int]]]  # (mapping, field -> unit index)
    labels: dict[int, dict[str, str]]
    choices: dict[int, tuple[str, ...]]
    unmapped: list[str]


class _Resolver:
    """Finds the question a selector names: by export tag, ImportId, or question text."""

    def __init__(self, units: Sequence[Unit], path: Path, tool: str) -> None:
        self.units, self.path, self.tool = units, path, tool
        self.index: dict[str, list[int]] = {}
        for i, unit in enumerate(units):
            for key in dict.fromkeys(norm_key(k) for k in unit.keys):
                self.index.setdefault(key, []).append(i)

    def one(self, selector: str, where: str) -> int:
        found = self.index.get(norm_key(selector), [])
        if len(found) == 1:
            return found[0]
        name = TOOL_NAMES[self.tool]
        if not found:
            listed = "; ".join(f"{u.keys[0]!r}" for u in self.units)
            raise AdapterError(
                f"{self.path.name}: the mapping's {where} names {selector!r}, which is not a question of this "
                f"{name} export; its questions are: {listed}"
            )
        raise AdapterError(
            f"{self.path.name}: the mapping's {where} selector {selector!r} matches {len(found)} questions; "
            f"use a more specific one: {'; '.join(repr(self.units[i].keys[0]) for i in found)}"
        )


def _plan(units: Sequence[Unit], mapping: SurveyMapping, path: Path) -> _Plan:
    resolver = _Resolver(units, path, mapping.tool)
    feedback = [
        (
            fb,
            {
                name: resolver.one(sel, f"project_feedback ({fb.project_id}) {name}")
                for name, sel in fb.selectors().items()
            },
        )
        for fb in mapping.project_feedback
    ]
    feedback_units = {i for _, fields in feedback for i in fields.values()}
    if mapping.questions:
        questions = [(resolver.one(sel, "questions"), qid) for sel, qid in mapping.questions.items()]
        _reject_twice_named(questions, units, mapping, path)
    else:
        # Feedback questions are routed to project_feedback; loading them again as responses would double count.
        questions = [(i, u.default_id) for i, u in enumerate(units) if i not in feedback_units]
    labels: dict[int, dict[str, str]] = {}
    for selector, codes in mapping.value_labels.items():
        labels.setdefault(resolver.one(selector, "value_labels"), {}).update(codes)
    choices = {resolver.one(sel, "choices"): tuple(options) for sel, options in mapping.choices.items()}
    used = {i for i, _ in questions} | feedback_units
    unmapped = [h for i, u in enumerate(units) if i not in used for h in u.headers] if mapping.questions else []
    return _Plan(questions, feedback, labels, choices, unmapped)


def _reject_twice_named(
    questions: list[tuple[int, str]], units: Sequence[Unit], mapping: SurveyMapping, path: Path
) -> None:
    seen: dict[int, str] = {}
    for (index, _), selector in zip(questions, mapping.questions, strict=True):
        if index in seen:
            raise AdapterError(
                f"{path.name}: the mapping's questions {seen[index]!r} and {selector!r} both name "
                f"{units[index].keys[0]!r}; name each question once"
            )
        seen[index] = selector


def feedback_value(field_name: str, answer: str | None, fb: FeedbackMapping) -> str | None:
    """A feedback answer as its canonical value; unmapped values pass through for validation to judge."""
    if answer is None:
        return None
    values = {norm_key(k): v for k, v in fb.values_for(field_name).items()}
    mapped = values.get(norm_key(answer))
    if mapped is not None:
        return mapped
    if field_name == "acceptability":
        code = norm_key(answer).replace(" ", "_")
        if code in ACCEPTABILITY:
            return code
    return answer


def assemble(
    units: Sequence[Unit], respondents: Iterable[Respondent], mapping: SurveyMapping, path: Path
) -> AdapterResult:
    """Canonical rows for the mapped questions of every respondent, and the account of what was left out."""
    plan = _plan(units, mapping, path)
    excluded: Counter[str] = Counter()
    responses: list[dict[str, object]] = []
    feedback: list[dict[str, object]] = []
    loaded = 0
    for person in respondents:
        reason = person.excluded or ("no_panellist_ref" if not person.panellist_ref else None)
        if reason:
            excluded[reason] += 1
            continue
        answers = _Answers(units, person, plan)
        rows = _response_rows(units, person, plan, answers, mapping)
        rows_fb = _feedback_rows(person, plan, answers, mapping)
        if not rows and not rows_fb:
            excluded["no_answers"] += 1
            continue
        loaded += 1
        responses.extend(rows)
        feedback.extend(rows_fb)
    return AdapterResult(
        responses=_frame(responses, RESPONSE_COLUMNS),
        project_feedback=_frame(feedback, FEEDBACK_COLUMNS),
        respondents=loaded,
        excluded=dict(excluded),
        unmapped_columns=plan.unmapped,
    )


class _Answers:
    """One respondent's answers, each unit read once even when both a question and feedback use it."""

    def __init__(self, units: Sequence[Unit], person: Respondent, plan: _Plan) -> None:
        self.units, self.person, self.plan = units, person, plan
        self.cache: dict[int, str | None] = {}

    def __getitem__(self, index: int) -> str | None:
        if index not in self.cache:
            unit = self.units[index]
            self.cache[index] = unit_answer(
                unit, self.person.cells, self.plan.labels.get(index, {}), self.plan.choices.get(index, ())
            )
        return self.cache[index]

    def row_of(self, index: int) -> int:
        return self.person.cell_rows.get(self.units[index].columns[0], self.person.source_row)

    def time_of(self, index: int) -> str | None:
        return self.person.cell_times.get(self.units[index].columns[0], self.person.answered_at)


def _response_rows(
    units: Sequence[Unit], person: Respondent, plan: _Plan, answers: _Answers, mapping: SurveyMapping
) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for index, question_id in plan.questions:
        answer = answers[index]
        if answer is None:
            continue
        rows.append(
            {
                "panel_id": mapping.panel_id,
                "workshop_id": mapping.workshop_id,
                "panellist_ref": person.panellist_ref,
                "question_id": question_id,
                "question_text": units[index].text,
                "answer": answer,
                "answered_at": answers.time_of(index),
                SOURCE_ROW: answers.row_of(index),
            }
        )
    return rows


def _feedback_rows(
    person: Respondent, plan: _Plan, answers: _Answers, mapping: SurveyMapping
) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for fb, fields in plan.feedback:
        values = {name: feedback_value(name, answers[index], fb) for name, index in fields.items()}
        if all(v is None for v in values.values()):
            continue
        rows.append(
            {
                "panel_id": mapping.panel_id,
                "workshop_id": mapping.workshop_id,
                "project_id": fb.project_id,
                "panellist_ref": person.panellist_ref,
                **{name: values.get(name) for name in FEEDBACK_FIELDS},
                SOURCE_ROW: min(answers.row_of(index) for index in fields.values()),
            }
        )
    return rows


def _frame(rows: list[dict[str, object]], columns: Sequence[str]) -> pl.DataFrame:
    schema = {name: pl.String for name in columns} | {SOURCE_ROW: pl.Int64}
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)


# --------------------------------------------------------------------------------------------------
# Recognising a tool


def detect_tool(path: Path | str) -> str | None:
    """The tool whose export `path` looks like, judged from its header rows; None if none fits."""
    try:
        sheets = read_sheets(Path(path), limit=40)
    except (AdapterError, OSError):
        return None
    for sheet in sheets:
        tool = guess_tool(sheet.rows)
        if tool:
            return tool
    return None


def guess_tool(rows: Sequence[Row]) -> str | None:
    """The tool whose header layout `rows` (the first rows of a sheet) has."""
    if not rows:
        return None
    first = {normalise_header(text(v)) for v in rows[0]}
    if len(rows) >= 3 and sum(is_import_id(v) for v in rows[2]) >= 2:
        return "qualtrics"
    if polis_role(rows) is not None:  # before Google: both start with a `timestamp` column
        return "polis"
    if "respondentid" in first:
        return "surveymonkey"
    if "id" in first and {"starttime", "completiontime"} & first:
        return "msforms"
    if normalise_header(text(rows[0][0])) == "timestamp":
        return "googleforms"
    for row in rows[:15]:
        names = {normalise_header(text(v)) for v in row}
        if {"question", "answer"} <= names or "voter" in names:
            return "mentimeter"
    return None


#: The headers that tell each file of a Polis export (normalised: `comment-id` is `commentid`).
POLIS_ROLES: dict[str, tuple[str, ...]] = {
    "comments": ("commentid", "authorid", "moderated", "commentbody"),
    "votes": ("commentid", "voterid", "vote"),
    "participants_votes": ("participant", "groupid", "nvotes"),
    "comment_groups": ("commentid", "comment", "totalvotes"),
}


def polis_role(rows: Sequence[Row]) -> str | None:
    """Which file of a Polis export these first rows are from (`comments`, `votes`, ...), if any."""
    if not rows:
        return None
    first = [normalise_header(text(v)) for v in rows[0]]
    keys = set(first)
    for role, needed in POLIS_ROLES.items():
        if set(needed) <= keys:
            return role
    if first[:1] == ["topic"] and len(first) <= 2 and any(normalise_header(text(r[0])) == "voters" for r in rows if r):
        return "summary"
    if keys == {"participant", "xid"}:
        return "xids"
    return None


def is_import_id(value: Cell) -> bool:
    """Whether a cell holds a Qualtrics ImportId JSON object (header row 3)."""
    raw = text(value).strip()
    return raw.startswith("{") and "importid" in raw.lower()


def wrong_layout(path: Path, tool: str, expected: str) -> AdapterError:
    """The error for a file that lacks `tool`'s layout, with a hint at what it looks like instead."""
    guess = detect_tool(path)
    hint = f" (it looks like a {TOOL_NAMES[guess]} export)" if guess and guess != tool else ""
    return AdapterError(f"{path.name}: not a {TOOL_NAMES[tool]} export as the mapping declares: {expected}{hint}")
