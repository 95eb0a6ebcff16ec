"""Run history (ops.runs) and the per-run summary."""

from __future__ import annotations

import json
import secrets
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from din.paths import DataPaths
from din.sql import quote
from transforms.delivery import REFUSED
from warehouse.manifest import now


def new_run_id() -> str:
    """Sortable and unique: UTC start time plus a random suffix."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")[:-4] + "-" + secrets.token_hex(3)


@dataclass
class SourceSummary:
    source: str
    organisation: str
    kind: str
    files_new: int = 0
    files_unchanged: int = 0
    files_superseded: int = 0
    rows_read: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    rows_blocked: int = 0  # rows of erased panellists, dropped when read
    identifiers_scrubbed: dict[str, int] = field(default_factory=dict)  # placeholder type -> replacements
    error: str | None = None
    files_refused: int = 0  # delivered files refused whole (unreadable, wrong layout, a required column missing)
    files_skipped: int = 0  # found but not taken (hidden, a link out of the folder, ...): see warnings
    warnings: list[str] = field(default_factory=list)  # what needs someone's attention, one line each
    files_reread: int = 0  # deliveries read again because the source's reading options changed


@dataclass
class RunSummary:
    run_id: str
    mode: str
    demo_key: bool
    pseudonym_key_id: str
    outcome: str = "running"
    sources: list[SourceSummary] = field(default_factory=list)
    published_version: str | None = None
    published_tables: dict[str, int] = field(default_factory=dict)
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    withdrawn_panellists: int = 0
    withdrawn_rows_excluded: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    message: str | None = None
    run_warnings: list[str] = field(default_factory=list)  # what needs attention, not tied to one source
    config_path: str = ""  # the registry the run read: the `next:` commands carry it
    data_dir_option: str | None = None  # the data folder given besides the registry's own (`--data-dir`)
    title: str = ""  # the registry's title
    elapsed_seconds: float | None = None  # from the flow's start (waiting for the lock included) to its end
    failed_stage: str | None = None  # the stage a failed run stopped in
    feedback_dir: str | None = None  # where this run's feedback reports were written (on the worker)
    publish_held: bool = False  # a reference or the roster lost most of its rows: the previous version stays

    @property
    def deliveries_new(self) -> int:
        return sum(s.files_new for s in self.sources)

    @property
    def rows_read(self) -> int:
        return sum(s.rows_read for s in self.sources)

    @property
    def rows_accepted(self) -> int:
        return sum(s.rows_accepted for s in self.sources)

    @property
    def rows_quarantined(self) -> int:
        return sum(s.rows_quarantined for s in self.sources)

    @property
    def warnings(self) -> list[str]:
        """What needs attention: the run's own warnings, then every source's, each as `source: warning`."""
        return self.run_warnings + [f"{s.source}: {w}" for s in self.sources for w in s.warnings]

    @property
    def source_errors(self) -> dict[str, str]:
        return {s.source: s.error for s in self.sources if s.error}

    @property
    def files_refused(self) -> int:
        return sum(s.files_refused for s in self.sources)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSummary:
        """The summary back from `as_dict()` (what a flow returns)."""
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "sources"}
        return cls(**fields, sources=[SourceSummary(**s) for s in data["sources"]])

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data.update(
            deliveries_new=self.deliveries_new,
            rows_read=self.rows_read,
            rows_accepted=self.rows_accepted,
            rows_quarantined=self.rows_quarantined,
            files_refused=self.files_refused,
            warnings=self.warnings,
        )
        return data


def start_run(con: duckdb.DuckDBPyConnection, summary: RunSummary, config_path: str) -> None:
    con.execute(
        "INSERT INTO ops.runs (run_id, started_at, outcome, mode, config_path, pseudonym_key_id, demo_key) "
        "VALUES (?, ?, 'running', ?, ?, ?, ?)",
        [summary.run_id, now(), summary.mode, config_path, summary.pseudonym_key_id, summary.demo_key],
    )


def record_run(con: duckdb.DuckDBPyConnection, summary: RunSummary, finished: bool) -> None:
    """Write the summary's counts to ops.runs (again at the end, with the outcome)."""
    con.execute(
        f"""UPDATE ops.runs SET finished_at = ?, outcome = ?, deliveries_new = ?, deliveries_superseded = ?,
               files_unchanged = ?, rows_read = ?, rows_accepted = ?, rows_quarantined = ?, rows_published = ?,
               withdrawn_panellists = ?, withdrawn_rows_excluded = ?, published_version = ?, source_errors = ?,
               stage_seconds = ?, message = ?
           WHERE {quote("run_id")} = ?""",
        [
            now() if finished else None,
            summary.outcome,
            summary.deliveries_new,
            sum(s.files_superseded for s in summary.sources),
            sum(s.files_unchanged for s in summary.sources),
            summary.rows_read,
            summary.rows_accepted,
            summary.rows_quarantined,
            sum(summary.published_tables.values()),
            summary.withdrawn_panellists,
            summary.withdrawn_rows_excluded,
            summary.published_version,
            json.dumps(summary.source_errors),
            json.dumps(summary.stage_seconds),
            summary.message,
            summary.run_id,
        ],
    )


def mark_abandoned_runs(con: duckdb.DuckDBPyConnection) -> int:
    """Runs still 'running' when a new run starts were killed: say so in the history."""
    rows = con.execute("SELECT count(*) FROM ops.runs WHERE outcome = 'running'").fetchall()[0][0]
    con.execute(
        "UPDATE ops.runs SET outcome = 'interrupted', message = coalesce(message, "
        "'the process stopped before the run finished; the next run picked up its deliveries') "
        "WHERE outcome = 'running'"
    )
    return int(rows)


def count_deliveries(
    summary: RunSummary,
    con: duckdb.DuckDBPyConnection,
    delivery_ids: list[int],
    reread: set[int] | None = None,
    quarantined_share: float | None = None,
) -> None:
    """Add the processed deliveries' counts (files, rows, scrubbed identifiers) to the run summary.

    `reread` are deliveries read again (their source's reading options changed), counted apart from new
    files. A source whose deliveries (those not refused whole, which warn on their own) set aside more than
    `quarantined_share` of the rows they read gets a warning."""
    rows = con.execute(
        """SELECT source, EXISTS (SELECT 1 FROM ops.deliveries AS o WHERE o.superseded_by = d.delivery_id),
                  coalesce(rows_read, 0), coalesce(rows_accepted, 0),
                  coalesce(rows_quarantined, 0), scrub_counts, outcome, relative_path, message,
                  coalesce(rows_blocked, 0), delivery_id
           FROM ops.deliveries AS d WHERE list_contains(?, delivery_id) ORDER BY delivery_id""",
        [delivery_ids],
    ).fetchall()
    by_name = {s.source: s for s in summary.sources}
    judged: dict[str, tuple[int, int]] = {}
    for source, superseding, read, accepted, quarantined, scrubbed, outcome, file, message, blocked, delivery in rows:
        entry = by_name.get(source)
        if entry is None:
            continue
        if reread and delivery in reread:
            entry.files_reread += 1
        else:
            entry.files_new += 1
        entry.files_superseded += int(superseding)
        entry.rows_read += int(read)
        entry.rows_accepted += int(accepted)
        entry.rows_quarantined += int(quarantined)
        if outcome == REFUSED:
            entry.files_refused += 1
            entry.warnings.append(refusal_line(file, message))
        else:
            total, aside = judged.get(source, (0, 0))
            judged[source] = (total + int(read), aside + int(quarantined))
        entry.rows_blocked += int(blocked)
        for placeholder, count in json.loads(scrubbed or "{}").items():
            if count:
                entry.identifiers_scrubbed[placeholder] = entry.identifiers_scrubbed.get(placeholder, 0) + count
    if quarantined_share is None:
        return
    for source, (total, aside) in sorted(judged.items()):
        if total and aside / total > quarantined_share:
            by_name[source].warnings.append(
                f"{aside} of the {total} row(s) read ({aside / total:.0%}) were set aside, more than "
                f"attention.quarantined_share {quarantined_share:.0%}: see ops.quarantine and the organisation's "
                "feedback page"
            )


def refusal_line(file: str, message: str | None) -> str:
    """One line saying that a file was refused and why (the reason already names the file)."""
    reason = (message or "no reason was recorded").removeprefix(f"{Path(file).name}: ")
    return f"{file} was refused whole: {reason}"


def clear_leftovers(paths: DataPaths) -> list[Path]:
    """Delete what interrupted runs left: their work folders, half-written published versions and catalogs,
    and partly landed files.

    Only called under the writer lock, so no live run can own any of them."""
    from warehouse.landing import clear_incoming

    leftovers = sorted(p for p in paths.work.glob("*") if p.is_dir())
    leftovers += sorted((paths.published / "versions").glob(".*.partial"))
    for folder in leftovers:
        shutil.rmtree(folder, ignore_errors=True)
    catalogs = sorted(paths.published.glob(f".{paths.catalog.name}.*"))
    for catalog in catalogs:
        catalog.unlink(missing_ok=True)
    return leftovers + catalogs + clear_incoming(paths.landing)


HISTORY_COLUMNS = (
    "run_id",
    "started_at",
    "finished_at",
    "outcome",
    "deliveries_new",
    "rows_accepted",
    "rows_quarantined",
    "rows_published",
    "stage_seconds",
    "message",
    "source_errors",
)
INTERRUPTED_MESSAGE = "the process stopped before the run finished; the next run picks up its deliveries"


def run_history(paths: DataPaths) -> list[dict[str, Any]]:
    """Every run, oldest first: from the warehouse, or while a run writes it, from the published history.

    A run recorded as 'running' whose process is gone is shown as 'interrupted', as the next run will
    record it: only a run that started after the live writer took the lock can still be running."""
    from din.lock import lock_held_since

    columns = ", ".join(quote(c) for c in HISTORY_COLUMNS)
    query = f"SELECT {columns} FROM ops.runs ORDER BY started_at"
    if not paths.warehouse.exists():
        return []
    try:
        con = duckdb.connect(str(paths.warehouse), read_only=True)
    except duckdb.IOException:  # a run is writing the warehouse: the published history is the latest we have
        from warehouse.catalog import connect_catalog

        if not paths.catalog.exists():
            return []
        con = connect_catalog(paths.catalog)
    try:
        rows = [dict(zip(HISTORY_COLUMNS, row, strict=True)) for row in con.sql(query).fetchall()]
    finally:
        con.close()
    since = lock_held_since(paths.lock)
    return shown_outcomes(rows, None if since is None else datetime.fromtimestamp(since, UTC).replace(tzinfo=None))


def shown_outcomes(rows: list[dict[str, Any]], writer_since: datetime | None) -> list[dict[str, Any]]:
    """Runs recorded as 'running' are interrupted unless they started after the live writer took the
    lock (`writer_since`; None: no live writer). One second of slack for clocks rounding differently."""
    shown = []
    for row in rows:
        alive = writer_since is not None and row["started_at"] >= writer_since - timedelta(seconds=1)
        if row["outcome"] == "running" and not alive:
            row = {**row, "outcome": "interrupted", "message": row["message"] or INTERRUPTED_MESSAGE}
        shown.append(row)
    return shown
