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
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from din.config import FormatOptions
from din.contract import KINDS, ColumnType
from expectations.engine import DELIVERY, ROW_ID
from expectations.suites import KEY_SEPARATOR, load_suite
from expectations.validate import validate
from transforms.delivery import DeliveryOutcome, DeliveryToProcess, FileProblem, read_delivery
from transforms.headers import closest, guess_kind, match_headers
from transforms.normalise import canonical_frame
from transforms.readers import ReadError, ReadOptions, read_table

if TYPE_CHECKING:
    from transforms.adapters import SurveyMapping

GROUPS = {
    "file": "File problems",
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

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> str:
        return json.dumps({**asdict(self), "ok": self.ok}, indent=2, ensure_ascii=False)

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
            lines.append("  no problems found: the file is ready to send")
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
) -> CheckReport:
    """Check one file as the run would read it, against its kind's suite (references only with `reference_dir`).

    `options` are the source's format options (`--source`), or a mapping (`--mapping`); a tool's
    export is recognised without them. `limits` are din.yaml's `limits`."""
    fmt = _format_options(options)
    report = CheckReport(str(path), kind_name, kind_guessed=False, read_with=read_with)
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
        return _check_export(path, report, fmt, tool, reference_dir, limits)
    return _check_table(path, report, fmt, reference_dir, limits)


def _check_table(
    path: Path,
    report: CheckReport,
    fmt: FormatOptions,
    reference_dir: Path | None,
    limits: Mapping[str, int] | None,
) -> CheckReport:
    """A file of one of the contract's kinds."""
    try:
        raw = read_table(path, path.name, ReadOptions(fmt.type, fmt.sheet, fmt.delimiter, fmt.encoding))
    except ReadError as error:
        report.refused = True
        report.problems.append(Problem("file", "file_unreadable", None, None, None, str(error)))
        return report
    report.notes.extend(raw.notes)
    if report.kind is None:
        guessed, share = guess_kind(list(fmt.columns.values()) + list(raw.headers))
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
    outcome = DeliveryOutcome(0)
    parsed = read_delivery(_delivery(path, str(report.kind), fmt), outcome)
    if outcome.extra_columns:
        report.notes.append(f"extra column(s) not in the contract, ignored: {', '.join(outcome.extra_columns)}")
    return _judge(report, parsed, reference_dir, limits)


def _check_export(
    path: Path,
    report: CheckReport,
    fmt: FormatOptions,
    tool: str | None,
    reference_dir: Path | None,
    limits: Mapping[str, int] | None,
) -> CheckReport:
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
            Problem(
                "file", "survey_export_unreadable", None, None, None, "not the export of a tool this pipeline reads"
            )
        )
        return report
    report.tool = mapping.tool
    outcome = DeliveryOutcome(0)
    parsed = read_delivery(_delivery(path, report.kind or "responses", fmt), outcome, mapping)
    report.tool = outcome.tool or mapping.tool
    report.respondents, report.answers, report.excluded = outcome.respondents, outcome.answers, outcome.excluded
    report.notes.extend(outcome.notes)
    if outcome.companion:
        report.notes.append(str(outcome.message))
    unexplained = [c for c in outcome.extra_columns if not any(repr(c) in note for note in outcome.notes)]
    if unexplained:
        report.notes.append(f"column(s) the mapping does not name, not loaded: {', '.join(unexplained)}")
    return _judge(report, parsed, reference_dir, limits)


def _judge(
    report: CheckReport,
    parsed: dict[str, pl.DataFrame] | FileProblem,
    reference_dir: Path | None,
    limits: Mapping[str, int] | None,
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
        report.counts.append(_validate(report, kind_name, frame, reference_dir, limits))
    return report


def _validate(
    report: CheckReport,
    kind_name: str,
    frame: pl.DataFrame,
    reference_dir: Path | None,
    limits: Mapping[str, int] | None,
) -> KindCount:
    kind = KINDS[kind_name]
    frame = frame.with_columns(
        pl.int_range(pl.len(), dtype=pl.Int64).alias(ROW_ID), pl.lit(0, dtype=pl.Int64).alias(DELIVERY)
    )
    suite = load_suite(kind.name)
    known: dict[str, list[str]] = {}
    if reference_dir is None:
        suite = {**suite, "expectations": [e for e in suite["expectations"] if e["meta"]["check"] != "reference"]}
    else:
        known = _known_from_folder(reference_dir, kind.name)
    verdict = validate(frame, kind, known, suite=suite, limits={k: float(v) for k, v in (limits or {}).items()})
    meta = {e["meta"]["rule"]: e["meta"] for e in suite["expectations"]}
    for record in verdict.quarantined.sort("source_row").iter_rows(named=True):
        values = json.loads(record["values"])
        for rule, reason in zip(record["rules"], record["reasons"], strict=True):
            columns = meta[rule]["columns"]
            value = " + ".join(str(values.get(c)) for c in columns) if values else None
            check = meta[rule]["check"] if meta[rule]["check"] in GROUPS else "file"
            report.problems.append(
                Problem(
                    check,
                    rule,
                    record["source_row"],
                    ", ".join(columns),
                    value,
                    reason if kind_name == report.kind else f"{kind_name}: {reason}",
                    _suggestion(kind.name, rule, columns, values),
                )
            )
    return KindCount(kind_name, frame.height, verdict.accepted.height, verdict.quarantined.height)


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


def _delivery(path: Path, kind: str, fmt: FormatOptions) -> DeliveryToProcess:
    """The file as a delivery of a source with these options, with the files beside it as its export's others."""
    siblings = tuple((p.name, str(p)) for p in sorted(path.parent.iterdir()) if p.is_file() and p != path)
    return DeliveryToProcess(0, "din check", kind, str(path), str(path), path.stat().st_size, fmt, siblings)


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
