"""`din check`: a contributor's pre-flight check of one file, with no warehouse and no Prefect.

It reads the file the way the run reads it (`transforms.delivery.read_delivery`: the same readers,
header matching, column mapping, date order, survey and deliberation adapters), runs the same suite
the pipeline runs, and reports what the run would accept and set aside, and every problem with the
row number the contributor sees in their spreadsheet (header = row 1), the column, the value, what
was expected, and a suggestion where one is obvious.

A survey or deliberation tool's export (Qualtrics, SurveyMonkey, Microsoft Forms, Google Forms,
Mentimeter, Polis) is recognised from its header rows and read by its adapter: with the source's
mapping (`--source`), a mapping file (`--mapping`), or else a preview mapping that loads every
question, which counts respondents and answers but cannot know the panel and workshop.

References are checked against the network's reference keys (`references`: the warehouse's, in the
portal, or the identifier-free export `din references export` writes) or the files of a folder; with
neither, they are not checked and the report says so. Every value in a problem is the cell as the
contributor typed it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from din.config import FormatOptions
from din.contract import FILE_UNREADABLE, KINDS, RECORD_RULES, SURVEY_EXPORT_UNREADABLE, ColumnType
from expectations.engine import DELIVERY, ROW_ID
from expectations.suites import KEY_SEPARATOR, load_suite
from expectations.validate import reason, validate
from transforms.delivery import DeliveryOutcome, DeliveryToProcess, FileProblem, read_delivery
from transforms.headers import closest, guess_kind, match_headers
from transforms.normalise import canonical_frame
from transforms.readers import ROW, ReadError, ReadOptions, read_table

if TYPE_CHECKING:
    from transforms.adapters import SurveyMapping
    from warehouse.references import ReferenceKeys

GROUPS = {
    "file": "File problems",
    "records": "Rows that could not be read as the header says",
    "not_null": "Required values that are empty",
    "type": "Values of the wrong type",
    "allowed": "Values that are not allowed",
    "range": "Values out of range",
    "unique_key": "Rows that repeat a key",
    "reference": "References to unknown workshops, projects, organisations or panellists",
}
YES_NO = {"yes", "no", "y", "n", "true", "false"}
#: The respondent column a preview reads each tool's export by (a mapping names the real one).
PREVIEW_PANELLIST = {
    "qualtrics": "ResponseId",
    "surveymonkey": "Respondent ID",
    "msforms": "ID",
    "googleforms": "Email address",
    "mentimeter": "Participant (ID)",
    "polis": "participant",
}
PREVIEW_PANEL, PREVIEW_WORKSHOP = "(panel from the mapping)", "(workshop from the mapping)"
NOT_CHECKED = (
    "references (workshops, projects, panellists) were not checked: "
    "pass --reference with the network's reference export"
)


@dataclass(frozen=True)
class Problem:
    group: str
    rule: str
    row: int | None
    column: str | None
    value: str | None
    message: str
    suggestion: str | None = None


@dataclass(frozen=True)
class KindCount:
    """What the run would do with one kind of rows the file holds."""

    kind: str
    rows: int
    accepted: int
    set_aside: int


@dataclass
class CheckReport:
    file: str
    kind: str | None
    kind_guessed: bool
    rows: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tool: str | None = None  # the survey or deliberation tool whose export the file is
    read_with: str | None = None  # how it was read: the source, the mapping, or a preview
    respondents: int | None = None  # people whose answers were read
    answers: int | None = None  # answers read (rows of `responses`)
    excluded: dict[str, int] = field(default_factory=dict)
    counts: list[KindCount] = field(default_factory=list)
    refused: bool = False  # the run would refuse the whole file
    headers: list[str] = field(default_factory=list)  # the header row as delivered
    mapping: dict[str, str] = field(default_factory=dict)  # delivered header -> our column, as matched
    references_checked: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def whole_file_refused(self) -> bool:
        """A problem with the file itself (unreadable, kind unknown, columns missing): no row is used."""
        return self.refused or any(p.group == "file" for p in self.problems)

    @property
    def rows_accepted(self) -> int:
        """Rows the run would accept as the file stands."""
        if self.whole_file_refused:
            return 0
        if self.counts:
            return sum(c.accepted for c in self.counts)
        return self.rows - len({p.row for p in self.problems if p.row is not None})

    def as_json(self) -> str:
        return json.dumps(
            {**asdict(self), "ok": self.ok, "rows_accepted": self.rows_accepted}, indent=2, ensure_ascii=False
        )

    def as_text(self) -> str:
        lines = [self._headline()]
        if self.read_with:
            lines.append(f"  read {self.read_with}")
        if self.respondents or self.answers:
            excluded = ", ".join(f"{n} {reason}" for reason, n in sorted(self.excluded.items()) if n)
            lines.append(
                f"  {self.respondents} respondent(s), {self.answers or 0} answer(s)"
                + (f"; left out: {excluded}" if excluded else "")
            )
        lines += [f"  note: {note}" for note in self.notes]
        if self.refused:
            lines.append("  the run would refuse the whole file: nothing in it would be loaded")
        for count in self.counts:
            lines.append(
                f"  {count.kind}: {count.rows} row(s); the run would accept {count.accepted} and set aside "
                f"{count.set_aside}"
            )
        if self.ok:
            checked = "" if self.references_checked or not self.kind else " (references not checked)"
            lines.append(f"  no problems found{checked}: the file is ready to send")
            return "\n".join(lines)
        lines.append(f"  {len(self.problems)} problem(s):")
        for group, title in GROUPS.items():
            found = [p for p in self.problems if p.group == group]
            if not found:
                continue
            lines.append(f"\n  {title} ({len(found)}):")
            for p in found:
                where = f"row {p.row}" if p.row is not None else "file"
                column = f", column {p.column}" if p.column else ""
                hint = f"  → {p.suggestion}" if p.suggestion else ""
                lines.append(f"    {where}{column}: {p.message}{hint}")
        return "\n".join(lines)

    def _headline(self) -> str:
        if self.tool is not None:
            from transforms.adapters import TOOL_NAMES

            return f"{self.file}: a {TOOL_NAMES[self.tool]} export"
        guessed = " (guessed from the headers)" if self.kind_guessed else ""
        return f"{self.file}: kind {self.kind or 'unknown'}{guessed}, {self.rows} data row(s)"


def check_file(
    path: Path,
    kind_name: str | None = None,
    reference_dir: Path | None = None,
    options: ReadOptions | FormatOptions | None = None,
    limits: Mapping[str, int] | None = None,
    read_with: str | None = None,
    *,
    references: ReferenceKeys | None = None,
    columns: Mapping[str, str] | None = None,
    name: str | None = None,
) -> CheckReport:
    """Check one file as the run would read it, against its kind's suite.

    `options` are the source's format options (`--source`), or a mapping (`--mapping`); a tool's
    export is recognised without them. `limits` are din.yaml's `limits`. References are checked
    against `references` or the files of `reference_dir` (neither: not checked, and the report says
    so). `columns` is the organisation's column mapping saved in the portal; `name` the file's name as
    its owner knows it."""
    fmt = _format_options(options)
    check = _Check(reference_dir, limits, references, dict(columns or {}), name or path.name)
    report = CheckReport(name or str(path), kind_name, kind_guessed=False, read_with=read_with)
    tool = _tool(path, fmt)
    if tool is not None and fmt.type != "survey" and _has_a_kinds_columns(path, kind_name, fmt):
        tool = None  # a contract file whose first header happens to look like a tool's (`Timestamp`, ...)
    if tool is not None and fmt.type != "survey":
        if read_with is None:  # no source says how: read it as the tool's export, as a survey source would
            fmt = replace(fmt, type="survey")
        else:
            report.notes.append(
                f"this looks like a {_tool_name(tool)} export: its source would need `format: {{type: survey, "
                "mapping: ...}}` to read it as one"
            )
    if fmt.type == "survey":
        return _check_export(path, report, fmt, tool, check)
    return _check_table(path, report, fmt, check)


def check_survey_export(
    path: Path, mapping_path: Path, *, references: ReferenceKeys | None = None, name: str | None = None
) -> CheckReport:
    """Check a survey-tool export the way a survey source reads it: through its adapter and `mapping_path`
    (the source's `format.mapping`), then each kind it yields against that kind's suite."""
    options = FormatOptions(type="survey", mapping=mapping_path)
    return check_file(path, None, None, options, references=references, name=name)


@dataclass(frozen=True)
class _Check:
    """How one check compares what it reads: reference keys, limits, the saved mapping, the file's name."""

    reference_dir: Path | None
    limits: Mapping[str, int] | None
    references: ReferenceKeys | None
    columns: dict[str, str]
    name: str


def _check_table(path: Path, report: CheckReport, fmt: FormatOptions, check: _Check) -> CheckReport:
    """A file of one of the contract's kinds."""
    try:
        raw = read_table(path, check.name, ReadOptions(fmt.type, fmt.sheet, fmt.delimiter, fmt.encoding))
    except ReadError as error:
        report.refused = True
        report.problems.append(Problem("file", FILE_UNREADABLE, None, None, None, str(error)))
        return report
    report.notes.extend(raw.notes)
    report.headers = list(raw.headers)
    columns = {**check.columns, **fmt.columns}  # the source's own mapping wins over a saved one
    if report.kind is None:
        guessed, share = guess_kind(list(columns.values()) + list(raw.headers))
        if guessed is None or share < 0.5:
            report.problems.append(
                Problem(
                    "file",
                    "kind_unknown",
                    None,
                    None,
                    None,
                    "could not tell which kind of file this is from its headers",
                    f"pass --kind (one of {', '.join(KINDS)}), or --source to read it as a configured source does",
                )
            )
            return report
        report.kind, report.kind_guessed = guessed, True
    report.rows = raw.frame.height
    if fmt.columns:
        report.notes.append(
            "the source's format.columns: " + ", ".join(f"'{h}' is `{c}`" for h, c in fmt.columns.items())
        )
    match = match_headers(raw.headers, KINDS[str(report.kind)], columns)
    report.mapping = dict(match.mapping)
    outcome = DeliveryOutcome(0)
    parsed = read_delivery(_delivery(path, str(report.kind), fmt, check), outcome)
    if outcome.extra_columns:
        report.notes.append(f"extra column(s) not in the contract, ignored: {', '.join(outcome.extra_columns)}")
    typed = _TypedCells(raw.frame, dict(match.mapping))
    return _judge(report, parsed, check, typed)


def _check_export(path: Path, report: CheckReport, fmt: FormatOptions, tool: str | None, check: _Check) -> CheckReport:
    """A survey or deliberation tool's export, read by its adapter as a survey source would read it."""
    from transforms.adapters import MappingError, load_mapping

    mapping: SurveyMapping | None = None
    if fmt.mapping is not None:
        try:
            mapping = load_mapping(fmt.mapping)
        except MappingError as error:
            report.problems.append(Problem("file", "mapping_invalid", None, None, None, str(error)))
            return report
        report.read_with = report.read_with or f"with the mapping {fmt.mapping.name}"
    elif tool is not None:
        mapping = _preview_mapping(tool)
        report.read_with = (
            "with a preview mapping (every question, no panel or workshop): pass --mapping FILE or "
            "--source NAME to check it as the run will read it"
        )
    else:
        report.problems.append(
            Problem("file", SURVEY_EXPORT_UNREADABLE, None, None, None, "not the export of a tool this pipeline reads")
        )
        return report
    report.tool = mapping.tool
    outcome = DeliveryOutcome(0)
    parsed = read_delivery(_delivery(path, report.kind or "responses", fmt, check), outcome, mapping)
    report.tool = outcome.tool or mapping.tool
    report.respondents, report.answers, report.excluded = outcome.respondents, outcome.answers, outcome.excluded
    report.notes.extend(outcome.notes)
    if outcome.companion:
        report.notes.append(str(outcome.message))
    unexplained = [c for c in outcome.extra_columns if not any(repr(c) in note for note in outcome.notes)]
    if unexplained:
        report.notes.append(f"column(s) the mapping does not name, not loaded: {', '.join(unexplained)}")
    return _judge(report, parsed, check, None)


class _TypedCells:
    """The cells of a file as its owner typed them, by spreadsheet row and our column name."""

    def __init__(self, frame: pl.DataFrame, mapping: dict[str, str]) -> None:
        self.frame, self.mapping = frame, mapping

    def rows(self, rows: list[int]) -> dict[int, dict[str, str | None]]:
        header_of = {column: header for header, column in self.mapping.items()}
        wanted = self.frame.filter(pl.col(ROW).is_in(rows)).select(
            pl.col(ROW), *(pl.col(header).alias(column) for column, header in header_of.items())
        )
        return {row[ROW]: {c: row[c] for c in header_of} for row in wanted.iter_rows(named=True)}


def _judge(
    report: CheckReport, parsed: dict[str, pl.DataFrame] | FileProblem, check: _Check, typed: _TypedCells | None
) -> CheckReport:
    """What the run would accept and set aside of what was read (or why it would refuse the file)."""
    if report.kind is None and not isinstance(parsed, FileProblem) and parsed:
        report.kind = next(iter(parsed))
    if isinstance(parsed, FileProblem):
        report.refused = True
        for rule, reason in zip(parsed.rules, parsed.reasons, strict=True):
            report.problems.append(Problem("file", rule, None, None, None, reason))
        return report
    for kind_name, frame in parsed.items():
        report.counts.append(_validate(report, kind_name, frame, check, typed if kind_name == report.kind else None))
    if not report.rows:  # a tool's export: the rows its adapter read
        report.rows = sum(count.rows for count in report.counts)
    return report


def _validate(
    report: CheckReport, kind_name: str, frame: pl.DataFrame, check: _Check, typed: _TypedCells | None
) -> KindCount:
    """Validate one kind's rows; each problem with the value as typed (a table) or as the adapter read it."""
    kind = KINDS[kind_name]
    frame = frame.with_columns(
        pl.int_range(pl.len(), dtype=pl.Int64).alias(ROW_ID), pl.lit(0, dtype=pl.Int64).alias(DELIVERY)
    )
    suite = load_suite(kind.name)
    known: dict[str, list[str]] = {}
    if check.references is not None:
        frame, known = check.references.comparable(frame, kind), check.references.known_for(kind)
        report.references_checked = True
        note = f"references checked against {check.references.origin}"
        if kind.references and note not in report.notes:
            report.notes.append(note)
    elif check.reference_dir is not None:
        known = _known_from_folder(check.reference_dir, kind.name)
        report.references_checked = True
    else:
        suite = {**suite, "expectations": [e for e in suite["expectations"] if e["meta"]["check"] != "reference"]}
        if kind.references and NOT_CHECKED not in report.notes:
            report.notes.append(NOT_CHECKED)
    limits = {k: float(v) for k, v in (check.limits or {}).items()}
    verdict = validate(frame, kind, known, suite=suite, limits=limits)
    meta = {e["meta"]["rule"]: e["meta"] for e in suite["expectations"]}
    cells = typed.rows(verdict.quarantined["source_row"].to_list()) if typed is not None else {}
    for record in verdict.quarantined.sort("source_row").iter_rows(named=True):
        values = json.loads(record["values"])
        as_typed = cells.get(record["source_row"])
        for rule, given in zip(record["rules"], record["reasons"], strict=True):
            if rule in RECORD_RULES:  # the record itself could not be read as the header says
                report.problems.append(Problem("records", rule, record["source_row"], None, None, given))
                continue
            columns = meta[rule]["columns"]
            if as_typed is not None:  # the cell as typed, never a normalised value or a pseudonym
                value: str | None = " + ".join(_cell_text(as_typed.get(c)) for c in columns)
                typed_value = value if any(as_typed.get(c) not in (None, "") for c in columns) else None
                why = reason(meta[rule], typed_value, limits)
            else:
                value = " + ".join(str(values.get(c)) for c in columns) if values else None
                why = given
            group = meta[rule]["check"] if meta[rule]["check"] in GROUPS else "file"
            report.problems.append(
                Problem(
                    group,
                    rule,
                    record["source_row"],
                    ", ".join(columns),
                    value,
                    why if kind_name == report.kind else f"{kind_name}: {why}",
                    _suggestion(kind.name, rule, columns, values),
                )
            )
    return KindCount(kind_name, frame.height, verdict.accepted.height, verdict.quarantined.height)


def _cell_text(value: str | None) -> str:
    return "(empty)" if value is None or value == "" else value


def _format_options(options: ReadOptions | FormatOptions | None) -> FormatOptions:
    if isinstance(options, FormatOptions):
        return options
    if options is None:
        return FormatOptions()
    return FormatOptions(type=options.type, sheet=options.sheet, delimiter=options.delimiter, encoding=options.encoding)


def _tool(path: Path, fmt: FormatOptions) -> str | None:
    """The tool whose export the file is: the source's, else recognised from its header rows."""
    from transforms.adapters import detect_tool

    if fmt.tool:
        return fmt.tool
    if fmt.type not in ("auto", "csv", "xlsx", "survey"):
        return None
    return detect_tool(path)


def _has_a_kinds_columns(path: Path, kind_name: str | None, fmt: FormatOptions) -> bool:
    """Whether the file's header row has every required column of its kind (given, or guessed)."""
    try:
        raw = read_table(path, path.name, ReadOptions(fmt.type, fmt.sheet, fmt.delimiter, fmt.encoding))
    except ReadError:
        return False
    name = kind_name or guess_kind(list(raw.headers))[0]
    return name is not None and match_headers(raw.headers, KINDS[name], fmt.columns).usable


def _tool_name(tool: str) -> str:
    from transforms.adapters import TOOL_NAMES

    return TOOL_NAMES[tool]


def _preview_mapping(tool: str) -> SurveyMapping:
    from transforms.adapters import mapping_from_dict

    return mapping_from_dict(
        {
            "tool": tool,
            "panel_id": PREVIEW_PANEL,
            "workshop_id": PREVIEW_WORKSHOP,
            "panellist_column": PREVIEW_PANELLIST[tool],
        },
        source="preview mapping",
    )


def _delivery(path: Path, kind: str, fmt: FormatOptions, check: _Check) -> DeliveryToProcess:
    """The file as a delivery of a source with these options, with the files beside it as its export's others."""
    siblings = tuple((p.name, str(p)) for p in sorted(path.parent.iterdir()) if p.is_file() and p != path)
    original = str(path.with_name(check.name))  # its extension, as its owner named it, decides the format
    return DeliveryToProcess(
        0, "din check", kind, original, str(path), path.stat().st_size, fmt, siblings, columns=check.columns
    )


def _suggestion(kind_name: str, rule: str, columns: list[str], values: dict[str, Any]) -> str | None:
    if len(columns) != 1:
        return None
    column = KINDS[kind_name].column(columns[0])
    value = values.get(column.name)
    if value is None:
        return None
    if column.type is ColumnType.INTEGER and str(value).lower() in YES_NO:
        return f"this column takes {column.expected}, not yes/no"
    if column.allowed:
        near = closest(str(value), column.allowed, max_distance=4)
        if near:
            return f"did you mean `{near}`?"
    return None


def _known_from_folder(folder: Path, kind_name: str) -> dict[str, list[str]]:
    """Reference keys from the files of a folder (reference data and rosters, any format)."""
    kind = KINDS[kind_name]
    wanted = {r.target for r in kind.references}
    tables: dict[str, list[pl.DataFrame]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            raw = read_table(path, path.name)
        except ReadError:
            continue
        guessed, share = guess_kind(raw.headers)
        if guessed in wanted and share == 1.0:
            target = KINDS[guessed]
            tables.setdefault(guessed, []).append(
                canonical_frame(raw.frame, target, match_headers(raw.headers, target))
            )
    known: dict[str, list[str]] = {}
    for reference in kind.references:
        frames = tables.get(reference.target, [])
        keys: list[str] = []
        for frame in frames:
            keys += (
                frame.select(pl.concat_str(list(reference.target_columns), separator=KEY_SEPARATOR))
                .to_series()
                .drop_nulls()
                .to_list()
            )
        known[f"known_{reference.name}"] = keys
    return known
