"""`din check`: a contributor's pre-flight check of one file, with no warehouse and no Prefect.

It runs the same suite the pipeline runs and reports every problem with the row number the
contributor sees in their spreadsheet (header = row 1), the column, the value, what was expected,
and a suggestion where one is obvious.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from din.contract import FILE_HAS_NO_ROWS, FILE_UNREADABLE, KINDS, SURVEY_EXPORT_UNREADABLE, ColumnType, Kind
from expectations.engine import DELIVERY, ROW_ID
from expectations.suites import KEY_SEPARATOR, load_suite
from expectations.validate import reason, validate
from transforms.headers import closest, guess_kind, match_headers
from transforms.normalise import canonical_frame
from transforms.readers import ROW, ReadError, ReadOptions, read_table

if TYPE_CHECKING:
    from warehouse.references import ReferenceKeys

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


@dataclass
class CheckReport:
    file: str
    kind: str | None
    kind_guessed: bool
    rows: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)  # the header row as delivered
    mapping: dict[str, str] = field(default_factory=dict)  # delivered header -> our column, as matched
    references_checked: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def whole_file_refused(self) -> bool:
        """A problem with the file itself (unreadable, kind unknown, columns missing): no row is used."""
        return any(p.group == "file" for p in self.problems)

    @property
    def rows_accepted(self) -> int:
        """Rows the run would accept as the file stands (each problem row is set aside)."""
        if self.whole_file_refused:
            return 0
        return self.rows - len({p.row for p in self.problems if p.row is not None})

    def as_json(self) -> str:
        return json.dumps(
            {**asdict(self), "ok": self.ok, "rows_accepted": self.rows_accepted}, indent=2, ensure_ascii=False
        )

    def as_text(self) -> str:
        guessed = " (guessed from the headers)" if self.kind_guessed else ""
        lines = [f"{self.file}: kind {self.kind or 'unknown'}{guessed}, {self.rows} data row(s)"]
        lines += [f"  note: {note}" for note in self.notes]
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


def check_file(
    path: Path,
    kind_name: str | None = None,
    reference_dir: Path | None = None,
    options: ReadOptions | None = None,
    *,
    references: ReferenceKeys | None = None,
    columns: Mapping[str, str] | None = None,
    name: str | None = None,
) -> CheckReport:
    """Check one file against its kind's suite.

    References are checked against `references` (the warehouse's keys, or a reference export) or the
    files of `reference_dir`; with neither, they are not checked and the report says so. `columns`
    is the organisation's saved column mapping; `name` the file's name as its owner knows it (its
    extension decides the format). Every value in the report is the cell as typed in the file."""
    report = CheckReport(name or str(path), kind_name, kind_guessed=False)
    try:
        raw = read_table(path, name or path.name, options)
    except ReadError as error:
        report.problems.append(Problem("file", FILE_UNREADABLE, None, None, None, str(error)))
        return report
    report.notes.extend(raw.notes)
    report.headers = list(raw.headers)
    if kind_name is None:
        guessed, share = guess_kind(raw.headers)
        if guessed is None or share < 0.5:
            report.problems.append(
                Problem(
                    "file",
                    "kind_unknown",
                    None,
                    None,
                    None,
                    "could not tell which kind of file this is from its headers",
                    f"pass --kind (one of {', '.join(KINDS)})",
                )
            )
            return report
        report.kind, report.kind_guessed = guessed, True
    kind = KINDS[report.kind]  # type: ignore[index]
    report.rows = raw.frame.height
    match = match_headers(raw.headers, kind, columns)
    report.mapping = dict(match.mapping)
    if match.extra:
        report.notes.append(f"extra column(s) not in the contract, ignored: {', '.join(match.extra)}")
    for problem in match.problems():  # the same rules, names and words as the pipeline's quarantine
        report.problems.append(
            Problem("file", problem.rule, None, problem.column, None, problem.message, problem.suggestion)
        )
    if raw.frame.height == 0:
        report.problems.append(Problem("file", FILE_HAS_NO_ROWS, None, None, None, "the file has no data rows"))
    if report.problems:
        return report
    frame = canonical_frame(raw.frame, kind, match)
    _validate_rows(report, frame, raw.frame, match.mapping, kind, references, reference_dir)
    return report


def check_survey_export(
    path: Path, mapping_path: Path, *, references: ReferenceKeys | None = None, name: str | None = None
) -> CheckReport:
    """Check a survey-tool export the way the run reads it: through its adapter and `mapping_path`
    (the source's `format.mapping`), then each kind it yields against that kind's suite."""
    from transforms.adapters import AdapterError, MappingError, load_mapping, read_survey

    report = CheckReport(name or str(path), None, kind_guessed=False)
    try:
        mapping = load_mapping(mapping_path)
        result = read_survey(path, mapping)
    except (AdapterError, MappingError, ReadError) as error:
        report.problems.append(Problem("file", SURVEY_EXPORT_UNREADABLE, None, None, None, str(error)))
        return report
    excluded = ", ".join(f"{count} {why}" for why, count in sorted(result.excluded.items()) if count)
    report.notes.append(
        f"read as a {mapping.tool} export: {result.respondents} respondent(s)"
        + (f"; excluded {excluded}" if excluded else "")
    )
    if result.unmapped_columns:
        report.notes.append(f"columns the mapping does not use, ignored: {', '.join(result.unmapped_columns)}")
    for kind_name, rows in (("responses", result.responses), ("project_feedback", result.project_feedback)):
        if not rows.height:
            continue
        kind = KINDS[kind_name]
        rows = rows.rename({"source_row": ROW}) if "source_row" in rows.columns else rows
        identity = {c: c for c in kind.column_names if c in rows.columns}
        report.kind = report.kind or kind_name
        report.rows += rows.height
        frame = canonical_frame(rows, kind, match_headers(list(kind.column_names), kind))
        _validate_rows(report, frame, rows, identity, kind, references, None)
    if report.kind is None:
        report.problems.append(
            Problem("file", FILE_HAS_NO_ROWS, None, None, None, "the export holds no answers the mapping uses")
        )
    return report


def _validate_rows(
    report: CheckReport,
    canonical: pl.DataFrame,
    delivered: pl.DataFrame,
    mapping: Mapping[str, str],
    kind: Kind,
    references: ReferenceKeys | None,
    reference_dir: Path | None,
) -> None:
    """Validate canonical rows against the kind's suite; add each problem with the value as delivered."""
    frame = canonical.with_columns(
        pl.int_range(pl.len(), dtype=pl.Int64).alias(ROW_ID), pl.lit(0, dtype=pl.Int64).alias(DELIVERY)
    )
    suite = load_suite(kind.name)
    known: dict[str, list[str]] = {}
    if references is not None:
        frame, known = references.comparable(frame, kind), references.known_for(kind)
        report.references_checked = True
        note = f"references checked against {references.origin}"
        if kind.references and note not in report.notes:
            report.notes.append(note)
    elif reference_dir is not None:
        known = _known_from_folder(reference_dir, kind.name)
        report.references_checked = True
    else:
        suite = {**suite, "expectations": [e for e in suite["expectations"] if e["meta"]["check"] != "reference"]}
        if kind.references and NOT_CHECKED not in report.notes:
            report.notes.append(NOT_CHECKED)
    verdict = validate(frame, kind, known, suite=suite)
    meta = {e["meta"]["rule"]: e["meta"] for e in suite["expectations"]}
    typed = _as_typed(delivered, mapping, verdict.quarantined["source_row"].to_list())
    for record in verdict.quarantined.sort("source_row").iter_rows(named=True):
        values = json.loads(record["values"])
        cells = typed.get(record["source_row"], {})
        for rule in record["rules"]:
            rule_columns = meta[rule]["columns"]
            value = " + ".join(_cell_text(cells.get(c)) for c in rule_columns)
            check = meta[rule]["check"] if meta[rule]["check"] in GROUPS else "file"
            report.problems.append(
                Problem(
                    check,
                    rule,
                    record["source_row"],
                    ", ".join(rule_columns),
                    value,
                    reason(meta[rule], value if any(cells.get(c) is not None for c in rule_columns) else None),
                    _suggestion(kind.name, rule, rule_columns, values),
                )
            )


def _as_typed(frame: pl.DataFrame, mapping: Mapping[str, str], rows: list[int]) -> dict[int, dict[str, str | None]]:
    """For each of `rows`: our column -> the cell as the organisation typed it (never a normalised value)."""
    header_of = {column: header for header, column in mapping.items()}
    wanted = frame.filter(pl.col(ROW).is_in(rows)).select(
        pl.col(ROW), *(pl.col(header).alias(column) for column, header in header_of.items())
    )
    return {row[ROW]: {c: row[c] for c in header_of} for row in wanted.iter_rows(named=True)}


def _cell_text(value: str | None) -> str:
    return "(empty)" if value is None or value == "" else value


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
