"""Feedback to contributing organisations after every run, and schema drift between deliveries.

For each organisation with deliveries processed in a run, `write_feedback_reports` writes
`<out_dir>/<run_id>/<organisation>/feedback.html` (self-contained: inline CSS, no external assets,
every value escaped) and `rejected_rows.csv`: what arrived, what was accepted, what was set aside
and why, columns ignored or missing, and what changed since the source's previous delivery.

Both files are built from the warehouse's operations tables only, never from landing copies:
quarantined values there are already pseudonymised and scrubbed, and direct identifiers never
reach them. A report holds the deliveries of one organisation and nothing of any other.

`schema_drift` compares the headers of each delivery processed in a run with the previous delivery
of the same source (`ops.deliveries.headers`): columns gained, lost and renamed.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from din.contract import KINDS, Kind, normalise_header
from din.paths import DataPaths
from reports.spreadsheet import neutralise, neutralise_expr
from transforms.adapters import TOOL_NAMES
from transforms.delivery import COMPANION, REFUSED
from transforms.headers import HeaderMatch, edit_distance, match_headers
from warehouse.schema import connect

TEMPLATES = Path(__file__).with_name("templates")
HTML_NAME = "feedback.html"
CSV_NAME = "rejected_rows.csv"
CSV_COLUMNS = ("file", "delivery_id", "row", "column", "value", "rule", "reason")
RENAME_DISTANCE = 2  # normalised headers this many edits apart count as one column renamed
CSV_BATCH_ROWS = 50_000  # quarantine records made into rejected_rows.csv lines at a time
HTML_ROW_LIMIT = 500  # rejected rows listed in the HTML for one file; the CSV always holds every one
#: Rejected rows listed in one organisation's page, its files in the page's order: a page of tens of
#: thousands of rows (2,000 files of 50) is 45 MB that no one reads, and took 4 s to make.
REPORT_ROW_LIMIT = 1_000


# --- what the warehouse says ----------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryRecord:
    """One row of ops.deliveries, as a report needs it."""

    delivery_id: int
    source: str
    organisation: str
    kind: str
    file: str  # the path within the source, as the organisation named it (never a server path)
    size: int
    sha256: str
    first_seen: datetime
    status: str
    outcome: str | None
    supersedes: int | None
    format: str | None
    encoding: str | None
    rows_read: int
    rows_accepted: int
    rows_quarantined: int
    extra_columns: tuple[str, ...]
    missing_optional_columns: tuple[str, ...]
    message: str | None
    headers: tuple[str, ...] | None  # None: not recorded (file unreadable, or before headers were kept)
    rows_blocked: int = 0  # rows of erased panellists, dropped unread


@dataclass(frozen=True)
class Rejected:
    """One quarantine record: a row (or the whole file when `row` is None) and why it was set aside."""

    delivery_id: int
    row: int | None
    rules: tuple[str, ...]
    reasons: tuple[str, ...]
    columns: tuple[str, ...]
    values: dict[str, Any]

    @property
    def whole_file(self) -> bool:
        """A file-level problem (no usable columns), repeated for every row it affected."""
        return not self.columns


_DELIVERY_COLUMNS = """delivery_id, source, organisation, kind, relative_path, size, sha256, first_seen, status,
    outcome, supersedes, format, encoding, coalesce(rows_read, 0), coalesce(rows_accepted, 0),
    coalesce(rows_quarantined, 0), coalesce(extra_columns, []), coalesce(missing_optional_columns, []), message"""


def has_headers(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether ops.deliveries records each delivery's headers (the `headers` column)."""
    return _has_column(con, "headers")


def _has_column(con: duckdb.DuckDBPyConnection, column: str) -> bool:
    found = con.execute(
        """SELECT count(*) FROM duckdb_columns() WHERE database_name = current_database()
           AND schema_name = 'ops' AND table_name = 'deliveries' AND column_name = ?""",
        [column],
    ).fetchall()
    return bool(found[0][0])


def _deliveries(con: duckdb.DuckDBPyConnection, where: str, params: Sequence[Any]) -> list[DeliveryRecord]:
    headers = "headers" if has_headers(con) else "NULL::VARCHAR[]"
    blocked = "coalesce(rows_blocked, 0)" if _has_column(con, "rows_blocked") else "0"
    rows = con.execute(
        f"SELECT {_DELIVERY_COLUMNS}, {headers}, {blocked} FROM ops.deliveries WHERE {where} ORDER BY delivery_id",
        list(params),
    ).fetchall()
    return [_record(row) for row in rows]


def _record(row: tuple[Any, ...]) -> DeliveryRecord:
    values = list(row)
    for index in (16, 17):
        values[index] = tuple(values[index])
    values[19] = tuple(values[19]) if values[19] is not None else None
    return DeliveryRecord(*values)


def run_deliveries(con: duckdb.DuckDBPyConnection, run_id: str) -> list[DeliveryRecord]:
    """Deliveries processed in `run_id`, oldest first."""
    return _deliveries(con, "processed_run_id = ?", [run_id])


def reported_deliveries(con: duckdb.DuckDBPyConnection, run_id: str) -> list[DeliveryRecord]:
    """What a run's feedback covers: the deliveries it processed, and earlier deliveries whose rows it set
    aside or kept in a key conflict it found (another organisation delivered the same keys)."""
    return _deliveries(
        con,
        """processed_run_id = ? OR delivery_id IN (SELECT delivery_id FROM ops.quarantine WHERE run_id = ?)
           OR delivery_id IN (SELECT delivery_id FROM ops.key_conflicts WHERE first_found_run = ?)""",
        [run_id, run_id, run_id],
    )


def kept_in_conflicts(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, list[dict[str, Any]]]:
    """Per organisation: its rows that another organisation also delivered, found in `run_id`, and kept (the
    rows set aside are in its quarantine, with their reason)."""
    rows = con.execute(
        """SELECT d.organisation, d.relative_path, k.source_row, k.key, k.others, k.rule
           FROM ops.key_conflicts AS k JOIN ops.deliveries AS d USING (delivery_id)
           WHERE k.kept AND k.first_found_run = ? ORDER BY d.organisation, d.relative_path, k.source_row""",
        [run_id],
    ).fetchall()
    found: dict[str, list[dict[str, Any]]] = {}
    for organisation, file, row, key, others, rule in rows:
        owner = rule.split(": ", 1)[-1].split(" (", 1)[0]  # "the project's lead organisation"
        entry = {"file": file, "row": row, "key": key, "others": others, "owner": owner}
        found.setdefault(organisation, []).append(entry)
    return found


def previous_deliveries(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[int, DeliveryRecord]:
    """For each delivery processed in `run_id`: the delivery it supersedes, else (when headers are
    recorded) the latest earlier delivery of the same source whose headers are known."""
    latest = (
        """(SELECT max(p.delivery_id) FROM ops.deliveries p
            WHERE p.source = d.source AND p.delivery_id < d.delivery_id AND p.headers IS NOT NULL)"""
        if has_headers(con)
        else "NULL"
    )
    pairs = con.execute(
        f"""SELECT delivery_id, coalesce(supersedes, {latest}) FROM ops.deliveries d
            WHERE processed_run_id = ?""",
        [run_id],
    ).fetchall()
    wanted = [previous for _, previous in pairs if previous is not None]
    found = {d.delivery_id: d for d in _deliveries(con, "list_contains(?, delivery_id)", [wanted])} if wanted else {}
    return {delivery: found[previous] for delivery, previous in pairs if previous in found}


_QUARANTINE = """SELECT delivery_id, source_row, rules, reasons, columns, "values" FROM ops.quarantine
                 WHERE run_id = ? AND list_contains(?, delivery_id)"""


def _rejected(row: tuple[Any, ...]) -> Rejected:
    delivery_id, source_row, rules, reasons, columns, values = row
    return Rejected(delivery_id, source_row, tuple(rules), tuple(reasons), tuple(columns), _json_object(values))


def rejected_rows(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    delivery_ids: Sequence[int],
    limit: int = HTML_ROW_LIMIT,
    report_limit: int = REPORT_ROW_LIMIT,
) -> tuple[dict[int, list[Rejected]], dict[int, int]]:
    """Row-level quarantine records: the first `limit` of each delivery, at most `report_limit` in all (the
    deliveries taken in the order given), and how many each delivery has in all."""
    rows = con.execute(
        f"""SELECT delivery_id, source_row, rules, reasons, columns, "values" FROM (
                SELECT *, row_number() OVER (ORDER BY list_position(?, delivery_id), source_row) AS m FROM (
                    SELECT *, row_number() OVER (PARTITION BY delivery_id ORDER BY source_row) AS n
                    FROM ({_QUARANTINE} AND len(columns) > 0)
                ) WHERE n <= ?
            ) WHERE m <= ? ORDER BY delivery_id, source_row""",
        [list(delivery_ids), run_id, list(delivery_ids), limit, report_limit],
    ).fetchall()
    shown: dict[int, list[Rejected]] = {}
    for row in rows:
        shown.setdefault(row[0], []).append(_rejected(row))
    counts = con.execute(
        f"SELECT delivery_id, count(*) FROM ({_QUARANTINE} AND len(columns) > 0) GROUP BY delivery_id",
        [run_id, list(delivery_ids)],
    ).fetchall()
    return shown, dict(counts)


def file_problems(
    con: duckdb.DuckDBPyConnection, run_id: str, delivery_ids: Sequence[int]
) -> dict[int, list[dict[str, Any]]]:
    """Whole-file problems (quarantine records without columns), each once per delivery, with the rows
    it affected as spans of consecutive rows; computed in DuckDB, so a large file costs no memory."""
    rows = con.execute(
        f"""WITH f AS (
                SELECT delivery_id, rules, reasons, source_row,
                       source_row - row_number() OVER (PARTITION BY delivery_id, rules, reasons ORDER BY source_row)
                           AS island
                FROM ({_QUARANTINE} AND len(columns) = 0)
            ), spans AS (
                SELECT delivery_id, rules, reasons, min(source_row) AS first, max(source_row) AS last,
                       count(source_row) AS n
                FROM f GROUP BY delivery_id, rules, reasons, island
            )
            SELECT delivery_id, rules, reasons, sum(n)::BIGINT, list([first, last] ORDER BY first)
                       FILTER (first IS NOT NULL)
            FROM spans GROUP BY delivery_id, rules, reasons ORDER BY delivery_id, min(first) NULLS FIRST""",
        [run_id, list(delivery_ids)],
    ).fetchall()
    problems: dict[int, list[dict[str, Any]]] = {}
    for delivery_id, rules, reasons, row_count, spans in rows:
        problems.setdefault(delivery_id, []).append(
            {"rules": list(rules), "reasons": list(reasons), "rows": _ranges(spans or []), "row_count": row_count}
        )
    return problems


def files_not_taken(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, list[dict[str, str]]]:
    """Per organisation: files its sources held that `run_id` found for the first time and did not take
    (a hidden file, a link out of the folder, ...), with the reason; clutter such as .DS_Store left out."""
    rows = con.execute(
        """SELECT organisation, relative_path, reason FROM ops.skipped_files
           WHERE attention AND first_seen_run = ? ORDER BY organisation, source, relative_path""",
        [run_id],
    ).fetchall()
    found: dict[str, list[dict[str, str]]] = {}
    for organisation, file, reason in rows:
        found.setdefault(organisation, []).append({"file": file, "reason": reason})
    return found


def _json_object(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def organisation_name(con: duckdb.DuckDBPyConnection, org_id: str) -> str | None:
    """The organisation's name from the reference data, if it is listed there."""
    try:
        rows = con.execute("SELECT name FROM core.organisations WHERE org_id = ? LIMIT 1", [org_id]).fetchall()
    except duckdb.Error:
        return None
    return rows[0][0] if rows and rows[0][0] else None


def run_started(con: duckdb.DuckDBPyConnection, run_id: str) -> datetime | None:
    rows = con.execute("SELECT started_at FROM ops.runs WHERE run_id = ?", [run_id]).fetchall()
    return rows[0][0] if rows else None


# --- schema drift ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rename:
    """A column that seems renamed between two deliveries of a source."""

    old: str
    new: str
    column: str | None  # the contract column it stands for, if any
    recognised: bool  # the new header still matches that contract column
    suggestion: str | None  # what to call it instead, when the new header is not recognised
    note: str  # what the rename meant for this delivery, in plain words


@dataclass(frozen=True)
class Drift:
    """How a delivery's headers differ from the previous delivery of the same source."""

    source: str
    organisation: str
    kind: str
    delivery_id: int
    file: str
    previous_delivery_id: int
    previous_file: str
    gained: tuple[str, ...]
    lost: tuple[str, ...]
    renamed: tuple[Rename, ...]
    notes: dict[str, str]  # gained or lost header -> what it means, in plain words
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def schema_drift(con: duckdb.DuckDBPyConnection, run_id: str) -> list[Drift]:
    """Every delivery processed in `run_id` whose headers differ from its source's previous delivery."""
    if not has_headers(con):
        return []
    previous = previous_deliveries(con, run_id)
    drifts = []
    for delivery in run_deliveries(con, run_id):
        drift = compare_headers(previous[delivery.delivery_id], delivery) if delivery.delivery_id in previous else None
        if drift is not None:
            drifts.append(drift)
    return drifts


def compare_headers(previous: DeliveryRecord, delivery: DeliveryRecord) -> Drift | None:
    """The drift from `previous` to `delivery`, or None when their headers are the same (or unknown)."""
    if previous.headers is None or delivery.headers is None:
        return None
    lost = [h for h in previous.headers if h not in delivery.headers]
    gained = [h for h in delivery.headers if h not in previous.headers]
    if not lost and not gained:
        return None
    kind = KINDS[delivery.kind]
    before, after = match_headers(previous.headers, kind), match_headers(delivery.headers, kind)
    renamed = pair_renames(lost, gained, before, after, kind)
    lost = [h for h in lost if h not in {r.old for r in renamed}]
    gained = [h for h in gained if h not in {r.new for r in renamed}]
    notes = {h: _gained_note(h, after) for h in gained} | {h: _lost_note(h, before, kind) for h in lost}
    return Drift(
        delivery.source,
        delivery.organisation,
        delivery.kind,
        delivery.delivery_id,
        delivery.file,
        previous.delivery_id,
        previous.file,
        tuple(gained),
        tuple(lost),
        tuple(renamed),
        notes,
        _drift_message(delivery, previous, gained, lost, renamed),
    )


def pair_renames(
    lost: Sequence[str], gained: Sequence[str], before: HeaderMatch, after: HeaderMatch, kind: Kind
) -> list[Rename]:
    """Pair lost with gained headers that mean the same contract column or are a near-miss spelling.

    Closest pairs first; each header is used once. A near miss is within RENAME_DISTANCE edits of
    the normalised names (and at most half the shorter name, so `tag` and `tip` are not a rename),
    or the pipeline's own "did you mean" suggestion for the column the lost header stood for.
    """
    candidates = []
    for i, old in enumerate(lost):
        for j, new in enumerate(gained):
            score = _rename_score(old, new, before, after)
            if score is not None:
                candidates.append((score, i, j))
    used_old: set[int] = set()
    used_new: set[int] = set()
    renames = []
    for _, i, j in sorted(candidates):
        if i in used_old or j in used_new:
            continue
        used_old.add(i)
        used_new.add(j)
        renames.append(_rename(lost[i], gained[j], before, after, kind))
    return sorted(renames, key=lambda r: lost.index(r.old))


def _rename_score(old: str, new: str, before: HeaderMatch, after: HeaderMatch) -> int | None:
    column = before.mapping.get(old)
    if column is not None and after.mapping.get(new) == column:
        return 0
    a, b = normalise_header(old), normalise_header(new)
    distance = edit_distance(a, b)
    if column is not None and after.suggestions.get(column) == new:
        return distance
    if distance <= RENAME_DISTANCE and 2 * distance <= min(len(a), len(b)):
        return distance
    return None


def _rename(old: str, new: str, before: HeaderMatch, after: HeaderMatch, kind: Kind) -> Rename:
    column = before.mapping.get(old) or after.mapping.get(new)
    recognised = column is not None and after.mapping.get(new) == column
    suggestion = f"did you mean `{column}`?" if column is not None and not recognised else None
    if column is None:
        note = "neither name is a column of the data contract, so the column is ignored as before"
    elif recognised and before.mapping.get(old) == column:
        note = f"both names mean `{column}`, so nothing changes"
    elif recognised:
        note = f"the new name matches the contract column `{column}`, so the column is now used"
    elif kind.column(column).required:
        note = (
            f"the contract does not know '{new}': did you mean `{column}`? `{column}` is required, so the "
            "whole file was set aside until the column is named `" + column + "` again"
        )
    else:
        note = (
            f"the contract does not know '{new}': did you mean `{column}`? The column was ignored, so the "
            f"optional `{column}` is missing from this delivery"
        )
    return Rename(old, new, column, recognised, suggestion, note)


def _gained_note(header: str, after: HeaderMatch) -> str:
    column = after.mapping.get(header)
    if column is not None:
        return f"now delivered: it is the contract column `{column}`"
    return "not a column of the data contract: kept in our copy of your file, but not loaded"


def _lost_note(header: str, before: HeaderMatch, kind: Kind) -> str:
    column = before.mapping.get(header)
    if column is None:
        return "was not a column of the data contract (it was ignored before too)"
    if kind.column(column).required:
        return f"`{column}` is required: without it the whole file is set aside"
    return f"`{column}` is optional, so leaving it out is allowed"


def _drift_message(
    delivery: DeliveryRecord,
    previous: DeliveryRecord,
    gained: Sequence[str],
    lost: Sequence[str],
    renamed: Sequence[Rename],
) -> str:
    parts = [f"'{r.old}' renamed to '{r.new}'" + (f" ({r.suggestion})" if r.suggestion else "") for r in renamed]
    parts += [f"'{h}' added" for h in gained]
    parts += [f"'{h}' removed" for h in lost]
    return (
        f"{delivery.file} (delivery {delivery.delivery_id}) has different columns from the previous delivery "
        f"{previous.file} (delivery {previous.delivery_id}) of source {delivery.source}: " + "; ".join(parts) + "."
    )


# --- reports ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrgReport:
    """The feedback written for one organisation in one run."""

    organisation: str
    html_path: Path
    csv_path: Path
    deliveries: int
    rows_accepted: int
    rows_quarantined: int


COMPLETE = ".complete"  # written into a run's feedback folder once every organisation's report is there


def write_missing_feedback(paths: DataPaths, run_id: str) -> list[str]:
    """Write the feedback of earlier runs that should have some but do not (a run killed after it
    published, or whose reports failed): the runs it was written for. Reads the warehouse only."""
    out_dir = paths.reports / "feedback"
    con = connect(paths.warehouse, read_only=True)
    try:
        missing = [
            r for r in runs_with_feedback(con) if r != run_id and not (out_dir / safe_name(r) / COMPLETE).exists()
        ]
        for earlier in missing:
            write_feedback_reports(con, earlier, out_dir)
    finally:
        con.close()
    return missing


def runs_with_feedback(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Runs that have something to tell an organisation (deliveries processed, files not taken), oldest first."""
    rows = con.execute(
        """SELECT run_id FROM ops.runs r
           WHERE EXISTS (SELECT 1 FROM ops.deliveries d WHERE d.processed_run_id = r.run_id)
              OR EXISTS (SELECT 1 FROM ops.skipped_files s WHERE s.first_seen_run = r.run_id AND s.attention)
              OR EXISTS (SELECT 1 FROM ops.quarantine q WHERE q.run_id = r.run_id)
           ORDER BY started_at"""
    ).fetchall()
    return [str(row[0]) for row in rows]


def write_run_feedback(paths: DataPaths, run_id: str) -> tuple[list[OrgReport], list[Drift]]:
    """Each organisation's feedback on run `run_id`, and its schema drift (reads the warehouse only)."""
    con = connect(paths.warehouse, read_only=True)
    try:
        return write_feedback_reports(con, run_id, paths.reports / "feedback"), schema_drift(con, run_id)
    finally:
        con.close()


def write_feedback_reports(
    con: duckdb.DuckDBPyConnection, run_id: str, out_dir: Path, report_limit: int = REPORT_ROW_LIMIT
) -> list[OrgReport]:
    """Write feedback.html and rejected_rows.csv for every organisation with deliveries processed in
    `run_id`, under `out_dir/<run_id>/<organisation>/`; a page lists at most `report_limit` rejected rows,
    the CSV every one. Reads the warehouse only; writes nothing to it."""
    by_org: dict[str, list[DeliveryRecord]] = {}
    for delivery in reported_deliveries(con, run_id):
        by_org.setdefault(delivery.organisation, []).append(delivery)
    not_taken = files_not_taken(con, run_id)
    kept = kept_in_conflicts(con, run_id)
    run = RunFacts(run_id, run_started(con, run_id), previous_deliveries(con, run_id), schema_drift(con, run_id))
    organisations = sorted(set(by_org) | set(not_taken) | set(kept))
    folders = _folder_names(organisations)
    reports = []
    for organisation in organisations:
        own = sorted(by_org.get(organisation, []), key=lambda d: (d.file, d.delivery_id))
        folder = Path(out_dir) / safe_name(run_id) / folders[organisation]
        context = report_context(con, organisation, own, run, report_limit)
        context["not_taken"] = not_taken.get(organisation, [])
        context["kept_in_conflicts"] = kept.get(organisation, [])
        html_path = _write_atomic(folder / HTML_NAME, render_html(context))
        csv_path = write_rejected_csv(con, folder / CSV_NAME, run_id, own)
        reports.append(
            OrgReport(
                organisation,
                html_path,
                csv_path,
                len(own),
                sum(d.rows_accepted for d in own),
                sum(d.rows_quarantined for d in own),
            )
        )
    if reports:
        _write_atomic(Path(out_dir) / safe_name(run_id) / COMPLETE, f"{len(reports)} report(s)\n")
    return reports


def organisation_run_deliveries(con: duckdb.DuckDBPyConnection, run_id: str, organisation: str) -> list[DeliveryRecord]:
    """The organisation's deliveries processed in `run_id`, by file."""
    found = _deliveries(con, "processed_run_id = ? AND organisation = ?", [run_id, organisation])
    return sorted(found, key=lambda d: (d.file, d.delivery_id))


def organisation_feedback_html(con: duckdb.DuckDBPyConnection, run_id: str, organisation: str) -> str | None:
    """The feedback page of one organisation on one run (the portal serves it), or None when the
    organisation had no delivery processed in that run. Only its own deliveries are read."""
    own = organisation_run_deliveries(con, run_id, organisation)
    if not own:
        return None
    run = RunFacts(run_id, run_started(con, run_id), previous_deliveries(con, run_id), schema_drift(con, run_id))
    return render_html(report_context(con, organisation, own, run))


@dataclass(frozen=True)
class RunFacts:
    """What every organisation's report of one run draws on."""

    run_id: str
    started: datetime | None
    previous: dict[int, DeliveryRecord]  # delivery id -> its source's previous delivery
    drift: Sequence[Drift]

    def drift_of(self, delivery_id: int) -> Drift | None:
        return next((d for d in self.drift if d.delivery_id == delivery_id), None)


def safe_name(name: str) -> str:
    """A folder name made of letters, digits, '.', '_' and '-' only (never '..' or empty)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return cleaned or "unnamed"


def _folder_names(organisations: Sequence[str]) -> dict[str, str]:
    names: dict[str, str] = {}
    taken: set[str] = set()
    for organisation in organisations:
        base = name = safe_name(organisation)
        counter = 2
        while name.lower() in taken:
            name, counter = f"{base}-{counter}", counter + 1
        taken.add(name.lower())
        names[organisation] = name
    return names


def _write_atomic(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
    return path


# --- the HTML --------------------------------------------------------------------------------


def report_context(
    con: duckdb.DuckDBPyConnection,
    organisation: str,
    deliveries: Sequence[DeliveryRecord],
    run: RunFacts,
    report_limit: int = REPORT_ROW_LIMIT,
) -> dict[str, Any]:
    """Everything the template shows, as plain values (the template escapes them); at most `report_limit`
    rejected rows listed, in the files' order."""
    ids = [d.delivery_id for d in deliveries]
    shown, counts = rejected_rows(con, run.run_id, ids, report_limit=report_limit)
    problems = file_problems(con, run.run_id, ids)
    files = [
        file_context(
            d,
            shown.get(d.delivery_id, []),
            counts.get(d.delivery_id, 0),
            problems.get(d.delivery_id, []),
            run.previous.get(d.delivery_id) if d.supersedes is not None else None,
            run.drift_of(d.delivery_id),
        )
        for d in deliveries
    ]
    return {
        "organisation": organisation,
        "organisation_name": organisation_name(con, organisation),
        "run_id": run.run_id,
        "run_started": _when(run.started),
        "files": files,
        "refused": [f for f in files if f["refused"]],
        "totals": {
            "files": len(deliveries),
            "files_refused": sum(1 for d in deliveries if d.outcome == REFUSED and d.status != "superseded"),
            "rows_read": sum(d.rows_read for d in deliveries),
            "rows_accepted": sum(d.rows_accepted for d in deliveries),
            "rows_quarantined": sum(d.rows_quarantined for d in deliveries),
            "rows_blocked": sum(d.rows_blocked for d in deliveries),
        },
        "csv_name": CSV_NAME,
        "report_limit": report_limit,
        "not_taken": [],  # files found but not taken (`files_not_taken`), filled in by the caller
        "kept_in_conflicts": [],  # rows also delivered by another organisation, kept (`kept_in_conflicts`)
    }


def file_context(
    delivery: DeliveryRecord,
    rejected: Sequence[Rejected],
    rejected_total: int,
    problems: list[dict[str, Any]],
    replaced: DeliveryRecord | None,
    drift: Drift | None,
) -> dict[str, Any]:
    """One delivered file: what arrived, what became of it, why rows were set aside, what changed."""
    your_columns = _your_columns(delivery)
    return {
        "id": delivery.delivery_id,
        "file": delivery.file,
        "kind": delivery.kind,
        "received": _when(delivery.first_seen),
        "size": _size(delivery.size),
        "sha256": delivery.sha256,
        "format": _format(delivery),
        "rows_read": delivery.rows_read,
        "rows_accepted": delivery.rows_accepted,
        "rows_quarantined": delivery.rows_quarantined,
        "rows_blocked": delivery.rows_blocked,
        "outcome": _outcome_words(delivery),
        "status_class": _status_class(delivery),
        "refused": delivery.outcome == REFUSED and delivery.status != "superseded",
        "message": delivery.message,
        "row_numbers": _row_numbers(delivery.format),
        "file_problems": problems,
        "rejected": [_rejected_row(r, your_columns) for r in rejected],
        "rejected_total": rejected_total,
        "extra_columns": list(delivery.extra_columns),
        "missing_optional_columns": list(delivery.missing_optional_columns),
        "previous": _previous_context(replaced, delivery) if replaced is not None else None,
        "drift": drift,
    }


def _your_columns(delivery: DeliveryRecord) -> dict[str, str]:
    """Contract column -> the header the organisation used for it, when the two differ."""
    if delivery.headers is None or delivery.kind not in KINDS:
        return {}
    mapping = match_headers(delivery.headers, KINDS[delivery.kind]).mapping
    return {column: header for header, column in mapping.items() if header != column}


def _rejected_row(record: Rejected, your_columns: dict[str, str]) -> dict[str, Any]:
    return {
        "row": record.row,
        "cells": [
            {"column": c, "yours": your_columns.get(c), "value": _shown(record.values.get(c))} for c in record.columns
        ],
        "problems": [{"rule": r, "reason": why} for r, why in zip(record.rules, record.reasons, strict=False)],
    }


def _ranges(spans: Sequence[Sequence[int]], limit: int = 20) -> str:
    """`[[2, 4], [7, 7]]` -> `2–4, 7` (at most `limit` spans, then `…`)."""
    shown = [f"{a}" if a == b else f"{a}–{b}" for a, b in spans[:limit]]
    return ", ".join(shown) + (", …" if len(spans) > limit else "")


def _previous_context(previous: DeliveryRecord, delivery: DeliveryRecord) -> dict[str, Any]:
    return {
        "id": previous.delivery_id,
        "file": previous.file,
        "received": _when(previous.first_seen),
        "rows": [
            ("rows read", previous.rows_read, delivery.rows_read),
            ("rows accepted", previous.rows_accepted, delivery.rows_accepted),
            ("rows set aside", previous.rows_quarantined, delivery.rows_quarantined),
        ],
    }


def _outcome_words(delivery: DeliveryRecord) -> str:
    n, accepted, set_aside = delivery.rows_read, delivery.rows_accepted, delivery.rows_quarantined
    if delivery.status == "superseded":
        return "Replaced by a later version of the same file; its rows are no longer used."
    if delivery.outcome == REFUSED:
        read = f" ({_rows(n)} read, none used)" if n else ""
        return (
            f"Refused: the whole file could not be used{read}. The reason is below; correct the file and send it again."
        )
    if delivery.outcome == COMPANION:
        return "Read together with the other files of the same export; it has nothing of its own to load."
    if delivery.outcome == "accepted":
        return f"All {_rows(n)} were accepted."
    if delivery.outcome == "partly_accepted":
        return f"{accepted:,} of {_rows(n)} were accepted; {_rows(set_aside)} set aside (see below)."
    if delivery.outcome == "quarantined" and delivery.message:
        return f"The whole file was set aside ({_rows(n)} read, none used): see the problem below."
    if delivery.outcome == "quarantined":
        return f"None of the {_rows(n)} could be accepted (see below)."
    return "The file had no data rows."


def _status_class(delivery: DeliveryRecord) -> str:
    if delivery.status == "superseded":
        return "muted"
    return {"accepted": "ok", "partly_accepted": "warn", COMPANION: "ok"}.get(delivery.outcome or "", "bad")


def _rows(n: int) -> str:
    return f"{n:,} row" + ("" if n == 1 else "s")


def _row_numbers(fmt: str | None) -> str:
    if fmt in ("csv", "xlsx") or (fmt or "").startswith("survey:"):
        return "Row numbers are as in a spreadsheet: the header is row 1 and the first data row is row 2."
    if fmt == "ndjson":
        return "Row numbers are line numbers in the file (the first line is 1)."
    return "Row numbers count records from 1 (the first record in the file is 1)."


def _format(delivery: DeliveryRecord) -> str:
    names = {"csv": "CSV", "xlsx": "Excel workbook", "json": "JSON", "ndjson": "NDJSON", "parquet": "Parquet"}
    names |= {f"survey:{tool}": f"{name} export" for tool, name in TOOL_NAMES.items()}
    label = names.get(delivery.format or "", delivery.format or "not read")
    return f"{label}, {delivery.encoding.upper()}" if delivery.encoding else label


def _size(size: int) -> str:
    if size < 1024:
        return f"{size:,} bytes"
    units = [("KB", 1024), ("MB", 1024**2), ("GB", 1024**3)]
    unit, scale = next(((u, s) for u, s in reversed(units) if size >= s), units[0])
    return f"{size / scale:.1f} {unit} ({size:,} bytes)"


def _when(value: datetime | None) -> str:
    return value.strftime("%d %B %Y, %H:%M UTC") if value is not None else "unknown"


def _shown(value: Any) -> str:
    if value is None or value == "":
        return "(empty)"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def render_html(context: dict[str, Any]) -> str:
    """The report page: self-contained HTML, every value escaped."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined  # only a run with something to report

    environment = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined, keep_trailing_newline=True
    )
    return environment.get_template(HTML_NAME).render(**context)


# --- the CSV ---------------------------------------------------------------------------------


def write_rejected_csv(
    con: duckdb.DuckDBPyConnection, path: Path, run_id: str, deliveries: Sequence[DeliveryRecord]
) -> Path:
    """Every quarantined row of these deliveries, one line each (`csv_row`), UTF-8 with a byte-order mark so
    that spreadsheets open it correctly. Streamed in batches of `CSV_BATCH_ROWS`, any number of rows; each
    batch's cells are made set-wise (`rejected_cells`: 100,000 rows took 2.5 s one `csv_row` at a time)."""
    files = {d.delivery_id: d.file for d in deliveries}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    records = con.sql(f"{_QUARANTINE} ORDER BY delivery_id, source_row NULLS FIRST", params=[run_id, list(files)])
    with open(partial, "wb") as handle:
        handle.write(("\ufeff" + ",".join(CSV_COLUMNS) + "\r\n").encode("utf-8"))
        for batch in records.to_arrow_reader(CSV_BATCH_ROWS):
            cells = rejected_cells(pl.DataFrame(pl.from_arrow(batch)), files)
            # an empty cell written bare, as Python's csv module writes it (polars quotes an empty text)
            empty_as_null = cells.select(pl.when(pl.col(c) != "").then(pl.col(c)).alias(c) for c in CSV_COLUMNS)
            empty_as_null.write_csv(handle, include_header=False, line_terminator="\r\n", quote_style="necessary")
    os.replace(partial, path)
    return path


def rejected_cells(records: pl.DataFrame, files: dict[int, str]) -> pl.DataFrame:
    """`csv_row` of every quarantine record in `records` (ops.quarantine's columns), set-wise: the values
    are read from their JSON objects in polars when every one of them is text or missing (what the
    pipeline writes); a batch holding anything else is made one `csv_row` at a time."""
    if records.height == 0:
        return pl.DataFrame(schema=dict.fromkeys(CSV_COLUMNS, pl.String))
    values = _values_cells(records)
    if values is None:
        rows = [csv_row(_rejected(tuple(row)), files.get(row[0], "")) for row in records.iter_rows()]
        return pl.DataFrame(rows, schema=dict.fromkeys(CSV_COLUMNS, pl.String), orient="row")
    file = pl.col("delivery_id").replace_strict(files, default="", return_dtype=pl.String)
    cells = records.select(
        file.alias("file"),
        pl.col("delivery_id").cast(pl.String),
        pl.col("source_row").cast(pl.String).fill_null("").alias("row"),
        pl.col("columns").list.join("; ").alias("column"),
        values.alias("value"),
        pl.col("rules").list.join("; ").alias("rule"),
        pl.col("reasons").list.join(" | ").alias("reason"),
    )
    return cells.select(neutralise_expr(pl.col(c)).alias(c) for c in CSV_COLUMNS)


def _values_cells(records: pl.DataFrame) -> pl.Series | None:
    """`_values_text` of each record, or None when a record's values are not a JSON object of texts and nulls
    (then the caller makes each line by `csv_row`, the one rule)."""
    text = records["values"]
    try:  # `{}` (a whole-file problem: no values) is no object to polars, and to csv_row no values at all
        decoded = pl.select(pl.when(text.str.strip_chars() != "{}").then(text)).to_series()
        decoded = decoded.str.json_decode(infer_schema_length=None)
    except pl.exceptions.PolarsError:
        return None  # not JSON, or not one shape polars can hold
    if decoded.dtype == pl.Null:
        objects = pl.DataFrame(height=records.height)
    elif isinstance(decoded.dtype, pl.Struct) and all(f.dtype in (pl.String, pl.Null) for f in decoded.dtype.fields):
        objects = decoded.struct.unnest()
    else:
        return None
    keys = objects.columns  # the working columns below are named with a NUL, which no JSON key here holds
    one_per_column = (
        objects.with_columns(records["columns"].alias("\x00columns"))
        .with_row_index("\x00record")
        .explode("\x00columns")
        .select(
            "\x00record",
            "\x00columns",
            pl.coalesce(
                [pl.when(pl.col("\x00columns") == key).then(pl.col(key).cast(pl.String)) for key in keys]
                + [pl.lit(None, pl.String)]
            ).alias("\x00value"),
        )
    )
    shown = (
        pl.when(pl.col("\x00value").is_null() | (pl.col("\x00value") == ""))
        .then(pl.lit("(empty)"))
        .otherwise(pl.col("\x00value"))
    )
    named = pl.col("\x00columns") + pl.lit(" = ") + shown
    per_record = one_per_column.group_by("\x00record").agg(
        pl.col("\x00columns").drop_nulls().len().alias("\x00n"),
        shown.first().alias("\x00one"),
        named.drop_nulls().str.join("; ").alias("\x00many"),
    )
    # a record without columns (a whole-file problem) may leave no row in the explode: its value is empty
    every = pl.DataFrame({"\x00record": pl.int_range(records.height, dtype=pl.UInt32, eager=True)})
    joined = every.join(per_record, on="\x00record", how="left").sort("\x00record")
    value = pl.when(pl.col("\x00n") == 1).then("\x00one").otherwise(pl.col("\x00many").fill_null(""))
    return joined.select(value.alias("value")).to_series()


def csv_row(record: Rejected, file: str) -> list[str]:
    """One line of rejected_rows.csv: file, delivery, row, column(s), value(s), rule(s), reason(s)."""
    cells = (
        file,
        record.delivery_id,
        "" if record.row is None else record.row,
        "; ".join(record.columns),
        _values_text(record),
        "; ".join(record.rules),
        " | ".join(record.reasons),
    )
    return [_cell(value) for value in cells]


def _values_text(record: Rejected) -> str:
    if len(record.columns) == 1:
        return _shown(record.values.get(record.columns[0]))
    return "; ".join(f"{c} = {_shown(record.values.get(c))}" for c in record.columns)


def _cell(value: object) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    return neutralise(str(value))


# --- the run artifact ------------------------------------------------------------------------


def feedback_markdown(
    reports: Sequence[OrgReport], drift: Sequence[Drift], portal_url: str | None = None, run_id: str | None = None
) -> str:
    """Markdown for the flow's Prefect artifact: one line per organisation's report, then the drift.

    With the portal's address (`portal.url`), the links open the organisation's feedback in the
    portal (where the organisation signs in to see it); without, there is no link, and the files on
    the worker are named as text (a `file://` link opens nothing in a browser on another machine)."""
    lines = [
        "| organisation | files | rows accepted | rows set aside | report | rejected rows |",
        "|---|---:|---:|---:|---|---|",
    ]
    for r in reports:
        if portal_url and run_id:
            links = f"[feedback]({portal_url}/feedback/{run_id}) | [deliveries]({portal_url}/deliveries)"
        else:
            links = f"{_code(r.html_path)} | {_code(r.csv_path)}"
        lines.append(f"| {_md(r.organisation)} | {r.deliveries} | {r.rows_accepted} | {r.rows_quarantined} | {links} |")
    if drift:
        lines += ["", "## Schema drift", ""]
        lines += [f"- **{_md(d.organisation)}** / {_md(d.source)}: {_md(d.message)}" for d in drift]
    return "\n".join(lines) + "\n"


def _code(path: Path) -> str:
    """A path as a code span (no link; markdown escapes do not apply inside one, backticks would end it)."""
    return "`" + str(path).replace("`", "'") + "`"


def _md(text: str) -> str:
    return re.sub(r"([\\`*_|\[\]<>])", r"\\\1", text)
