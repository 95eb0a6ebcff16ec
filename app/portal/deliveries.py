"""An organisation's own deliveries: every file it delivered through any source, what became of it,
its problems summed up by rule, then row by row with each value as the organisation typed it.

Everything here is asked for *by organisation*: every query carries the visitor's organisation as
a bound parameter, so another organisation's delivery is simply not found. The state comes from the
warehouse, opened read-only; while a run holds the warehouse, from the operations tables of the last
publish (the page says so). Values are read from the organisation's own landing copy by row number,
never from the warehouse (where panellist references are pseudonyms and free text is scrubbed), and
never any direct identifier.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from din.config import Config, FormatOptions
from din.contract import KINDS
from din.errors import WarehouseBusy
from din.lock import writer_lock
from din.paths import DataPaths
from din.sql import literal
from expectations.suites import load_suite
from expectations.validate import reason
from sources.inbox import Submission, remove_landed, submissions
from transforms.column_mapping import ColumnMappingError, load_mapping
from transforms.headers import match_headers
from transforms.readers import ROW, ReadError, ReadOptions, read_table
from warehouse.landing import landing_suffix, object_path

ROW_LIMIT = 500  # rows listed on a page; the downloads hold every one
#: What a contributor reads for each status (and the CSS class of its badge).
STATUS_WORDS = {
    "waiting": ("waiting for the next run", "muted"),
    "landed": ("landed, not processed yet", "muted"),
    "accepted": ("accepted", "ok"),
    "partly_accepted": ("partly quarantined", "warn"),
    "quarantined": ("refused", "bad"),
    "empty": ("refused: no data rows", "bad"),
    "superseded": ("superseded by a later version", "muted"),
}
_DELIVERY_COLUMNS = """delivery_id, source, kind, relative_path, original_path, size, sha256, first_seen, status,
    outcome, superseded_by, format, coalesce(rows_read, 0) AS rows_read, coalesce(rows_accepted, 0) AS rows_accepted,
    coalesce(rows_quarantined, 0) AS rows_quarantined, message, processed_run_id"""


class WarehouseUnavailable(Exception):
    """Nothing has been run or published yet."""


@dataclass(frozen=True)
class DeliveryRow:
    delivery_id: int
    source: str
    kind: str
    file: str
    original_path: str
    size: int
    sha256: str
    first_seen: Any
    status: str
    outcome: str | None
    superseded_by: int | None
    format: str | None
    rows_read: int
    rows_accepted: int
    rows_quarantined: int
    message: str | None
    processed_run_id: str | None

    @property
    def state(self) -> str:
        if self.status in ("landed", "superseded"):
            return self.status
        return self.outcome or "empty"

    @property
    def state_words(self) -> str:
        return STATUS_WORDS[self.state][0]

    @property
    def state_class(self) -> str:
        return STATUS_WORDS[self.state][1]


@dataclass(frozen=True)
class RuleSummary:
    rule: str
    rows: int
    summary: str  # the rule in plain words, without any one row's value


@dataclass(frozen=True)
class ProblemRow:
    row: int | None
    column: str
    value: str  # as typed in the delivered file
    rule: str
    reason: str


@dataclass
class DeliveryDetail:
    delivery: DeliveryRow
    by_rule: list[RuleSummary] = field(default_factory=list)
    file_problems: list[str] = field(default_factory=list)
    rows: list[ProblemRow] = field(default_factory=list)
    rows_total: int = 0


#: How long a page waits for the warehouse's writer lock before showing the last publish instead.
LOCK_WAIT_SECONDS = 2.0


@contextmanager
def warehouse_reader(paths: DataPaths) -> Iterator[duckdb.DuckDBPyConnection | None]:
    """The warehouse opened read-only under its writer lock, or None while a run holds the lock.

    DuckDB refuses a writer while any reader has the file open, so the portal takes the writer lock
    for the moment it reads: a run starting meanwhile waits (lock_timeout_seconds), never fails."""
    if not paths.warehouse.is_file():
        yield None
        return
    try:
        with writer_lock(paths.lock, LOCK_WAIT_SECONDS):
            try:
                con = duckdb.connect(str(paths.warehouse), read_only=True)
            except duckdb.IOException:
                con = None
            try:
                yield con
            finally:
                if con is not None:
                    con.close()
    except WarehouseBusy:
        yield None


@contextmanager
def operations(paths: DataPaths) -> Iterator[tuple[duckdb.DuckDBPyConnection, bool]]:
    """A read-only connection with `ops.deliveries` and `ops.quarantine`: the warehouse itself, or
    (while a run writes it) the last publish's copies. Yields (connection, live)."""
    with warehouse_reader(paths) as warehouse:
        if warehouse is not None:
            yield warehouse, True
            return
    ops = paths.current / "ops"
    if not (ops / "deliveries.parquet").is_file():
        raise WarehouseUnavailable("nothing has been delivered or published yet")
    con = duckdb.connect()
    try:
        con.execute("CREATE SCHEMA ops")
        con.execute(
            f"""CREATE VIEW ops.deliveries AS SELECT *, source_name AS source, size_bytes AS size,
                landed_run_id AS run_id FROM read_parquet({literal(str(ops / "deliveries.parquet"))})"""
        )
        con.execute(
            f"CREATE VIEW ops.quarantine AS SELECT * FROM read_parquet({literal(str(ops / 'quarantine.parquet'))})"
        )
        yield con, False
    finally:
        con.close()


def organisation_deliveries(con: duckdb.DuckDBPyConnection, organisation: str) -> list[DeliveryRow]:
    rows = con.execute(
        f"SELECT {_DELIVERY_COLUMNS} FROM ops.deliveries WHERE organisation = ? ORDER BY delivery_id DESC",
        [organisation],
    ).fetchall()
    return [DeliveryRow(*row) for row in rows]


def find_delivery(con: duckdb.DuckDBPyConnection, organisation: str, delivery_id: int) -> DeliveryRow | None:
    """The delivery, when it is this organisation's (another's is not found: the same 404 either way)."""
    rows = con.execute(
        f"SELECT {_DELIVERY_COLUMNS} FROM ops.deliveries WHERE organisation = ? AND delivery_id = ?",
        [organisation, delivery_id],
    ).fetchall()
    return DeliveryRow(*rows[0]) if rows else None


def waiting_submissions(config: Config, organisation: str, delivered: Sequence[DeliveryRow]) -> list[Submission]:
    """Files submitted through the portal that no run has landed yet."""
    landed = {(d.source, d.sha256) for d in delivered}
    waiting = []
    for source in config.inbox_sources:
        if source.organisation != organisation:
            continue
        waiting += [s for s in submissions(source.inbox_folder) if (source.name, s.sha256) not in landed]
    return sorted(waiting, key=lambda s: s.submitted_at, reverse=True)


def tidy_inboxes(config: Config, organisation: str, delivered: Sequence[DeliveryRow]) -> list[str]:
    """Remove from the organisation's inboxes the files a run has landed (read from the warehouse)."""
    removed = []
    for source in config.inbox_sources:
        if source.organisation == organisation:
            landed = {d.sha256 for d in delivered if d.source == source.name}
            removed += remove_landed(source.inbox_folder, landed)
    return removed


def feedback_runs(delivered: Sequence[DeliveryRow]) -> list[str]:
    """The runs that processed the organisation's deliveries, newest first."""
    return sorted({d.processed_run_id for d in delivered if d.processed_run_id}, reverse=True)


def delivery_detail(
    con: duckdb.DuckDBPyConnection, config: Config, paths: DataPaths, delivery: DeliveryRow, organisation: str
) -> DeliveryDetail:
    """The delivery's problems: by rule first, then row by row (the first ROW_LIMIT), values as typed."""
    detail = DeliveryDetail(delivery)
    meta = _rule_meta(delivery.kind)
    counts = con.execute(
        """SELECT rule, count(*) FROM (SELECT unnest(rules) AS rule FROM ops.quarantine
           WHERE delivery_id = ? AND len(columns) > 0) GROUP BY rule ORDER BY count(*) DESC, rule""",
        [delivery.delivery_id],
    ).fetchall()
    detail.by_rule = [RuleSummary(rule, int(n), _rule_summary(meta.get(rule), rule)) for rule, n in counts]
    whole = con.execute(
        """SELECT DISTINCT unnest(reasons) FROM ops.quarantine WHERE delivery_id = ? AND len(columns) = 0""",
        [delivery.delivery_id],
    ).fetchall()
    detail.file_problems = sorted(str(r[0]) for r in whole)
    detail.rows_total = int(
        con.execute(
            "SELECT count(*) FROM ops.quarantine WHERE delivery_id = ? AND len(columns) > 0", [delivery.delivery_id]
        ).fetchall()[0][0]
    )
    detail.rows = list(problem_rows(con, config, paths, delivery, organisation, limit=ROW_LIMIT))
    return detail


def problem_rows(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    paths: DataPaths,
    delivery: DeliveryRow,
    organisation: str,
    limit: int | None = None,
) -> Iterator[ProblemRow]:
    """Each (row, rule) the delivery broke, in row order, with the cells as typed in its landing copy."""
    records = con.execute(
        """SELECT source_row, rules, columns, "values" FROM ops.quarantine
           WHERE delivery_id = ? AND len(columns) > 0 ORDER BY source_row LIMIT ?""",
        [delivery.delivery_id, limit if limit is not None else 2**62],
    ).fetchall()
    typed = typed_cells(config, paths, delivery, organisation, [r[0] for r in records])
    meta = _rule_meta(delivery.kind)
    kind = KINDS.get(delivery.kind)
    for source_row, rules, _columns, stored in records:
        cells = typed.get(source_row) if typed is not None else None
        fallback = _json_object(stored)
        for rule in rules:
            rule_meta = meta.get(rule, {"columns": [], "message": rule})
            rule_columns = list(rule_meta["columns"])
            shown = [_cell(c, cells, fallback, kind) for c in rule_columns]
            value = " + ".join(shown)
            empty = all(v == "(empty)" for v in shown)
            yield ProblemRow(
                source_row, ", ".join(rule_columns), value, rule, reason(rule_meta, None if empty else value)
            )


def _cell(column: str, typed: dict[str, str | None] | None, stored: dict[str, Any], kind: Any) -> str:
    if kind is not None and column in kind.column_names and kind.column(column).is_direct_identifier:
        return "(not shown: a direct identifier)"
    if typed is not None:
        value = typed.get(column)
        return "(empty)" if value is None or value == "" else str(value)
    if kind is not None and column in kind.pseudonymised_columns:
        return "(see row in your file)"  # never the pseudonym
    value = stored.get(column)
    return "(empty)" if value is None or value == "" else str(value)


def typed_cells(
    config: Config, paths: DataPaths, delivery: DeliveryRow, organisation: str, rows: Sequence[int | None]
) -> dict[int, dict[str, str | None]] | None:
    """Our column -> the cell as typed, for `rows` of the delivery's landing copy (None: not readable
    as a table, such as a survey-tool export read by an adapter)."""
    if delivery.kind not in KINDS or (delivery.format or "").startswith("survey"):
        return None
    fmt = _format_of(config, delivery.source)
    frame = _landing_table(
        str(object_path(paths.landing, delivery.sha256, landing_suffix(delivery.file))),
        delivery.original_path,
        ReadOptions(fmt.type, fmt.sheet, fmt.delimiter, fmt.encoding),
    )
    if frame is None:
        return None
    kind = KINDS[delivery.kind]
    try:
        saved = load_mapping(paths.mappings, organisation, delivery.kind)
    except ColumnMappingError:
        saved = None
    headers = [c for c in frame.columns if c != ROW]
    # as the run matched them: the source's own mapping wins over the one the organisation saved
    match = match_headers(headers, kind, {**(saved.columns if saved else {}), **fmt.columns})
    header_of = {column: header for header, column in match.mapping.items()}
    wanted = frame.filter(pl.col(ROW).is_in([r for r in rows if r is not None]))
    return {
        row[ROW]: {column: row[header] for column, header in header_of.items()} for row in wanted.iter_rows(named=True)
    }


@lru_cache(maxsize=8)
def _landing_table(path: str, original_path: str, options: ReadOptions) -> pl.DataFrame | None:
    """A landing copy read as text (cached: landing copies never change)."""
    try:
        return read_table(Path(path), original_path, options).frame
    except (ReadError, OSError):
        return None


def _format_of(config: Config, source: str) -> FormatOptions:
    try:
        return config.source(source).format
    except KeyError:
        return FormatOptions()


@lru_cache(maxsize=16)
def _rule_meta(kind: str) -> dict[str, dict[str, Any]]:
    if kind not in KINDS:
        return {}
    return {e["meta"]["rule"]: e["meta"] for e in load_suite(kind)["expectations"]}


def _rule_summary(meta: dict[str, Any] | None, rule: str) -> str:
    """A rule's message without any one row's value: "`answered_at`: expected a date and time"."""
    if meta is None:
        return rule
    message = str(meta["message"])
    return message.replace(" is {value};", ":").replace(" {value}:", ":").replace(" {value}", "")


def _json_object(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
