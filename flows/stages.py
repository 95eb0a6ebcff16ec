"""The stages beneath the consolidate flow, as plain functions (the flow wraps them as tasks).

pull_source       list a source, land new or changed files            (one per source)
process_batch     parse → canonical → pseudonymise/scrub → validate   (one per batch of files)
merge_level       supersede, load staging, rebuild core, record       (single writer)

`process_batch` reads landing copies and writes staged Parquet into the run's work folder, so
batches can run in parallel threads or processes; only `merge_level` writes to the warehouse.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb
import polars as pl

from din.config import FormatOptions, SourceConfig
from din.contract import KINDS, Kind
from din.sources import FetchState, open_reader
from expectations.engine import DELIVERY, ROW_ID, quote
from expectations.suites import KEY_SEPARATOR, suite_name
from expectations.validate import QUARANTINE_SCHEMA, file_quarantine, validate
from transforms.headers import match_headers
from transforms.normalise import canonical_frame, typed
from transforms.pseudonymise import pseudonymise
from transforms.readers import ROW, ReadError, ReadOptions, read_table
from warehouse.landing import land, landing_suffix
from warehouse.manifest import KnownFile, PendingDelivery, PulledFile, json_text
from warehouse.schema import core_rebuild_sql

log = logging.getLogger("din")

BATCH_BYTES = 48 * 1024 * 1024  # raw bytes per validation batch: bounds memory, amortises task overhead


# --- pull ------------------------------------------------------------------------------------


@dataclass
class SourcePull:
    source: str
    files: list[PulledFile] = field(default_factory=list)
    unchanged: int = 0
    error: str | None = None


def pull_source(
    source: SourceConfig,
    known: dict[str, KnownFile],
    landing_dir: Path,
    credentials: Callable[[str], str] | None = None,
) -> SourcePull:
    """List `source` and land every file that is new or changed; unchanged files cost a stat only.

    Raises the reader's SourceError; the flow decides whether to retry (transient) or report.
    """
    reader = open_reader(source.location, source.options, credentials)
    result = SourcePull(source.name)
    try:
        _pull_files(reader, source, known, landing_dir, result)
    finally:
        close = getattr(reader, "close", None)
        if close is not None:
            close()
    return result


def _pull_files(
    reader: object, source: SourceConfig, known: dict[str, KnownFile], landing_dir: Path, result: SourcePull
) -> None:
    for remote in reader.list_files():  # type: ignore[attr-defined]
        before = known.get(remote.relative_path)
        if before is not None and _unchanged(remote, before, source.is_network):
            result.unchanged += 1
            continue
        state = FetchState(before.etag, before.last_modified) if before else None
        fetch_into = _Fetch(reader, remote, state)
        landed = land(landing_dir, fetch_into, landing_suffix(remote.relative_path))
        fetched = fetch_into.result
        etag = getattr(fetched, "etag", None) or remote.etag
        last_modified = getattr(fetched, "last_modified", None)
        listed = PulledFile(
            source.name, remote.relative_path, remote.location, remote.size, remote.modified, etag, last_modified
        )
        if landed is None or (before is not None and landed.sha256 == before.sha256):
            result.unchanged += 1
            result.files.append(replace(listed, sha256=landed.sha256 if landed else None))
            continue
        result.files.append(
            replace(
                listed, sha256=landed.sha256, landed_size=landed.size, landing_path=str(landed.path), new_content=True
            )
        )


class _Fetch:
    """Fetches one remote file into the landing sink, remembering the source's answer."""

    def __init__(self, reader: object, remote: object, state: FetchState | None) -> None:
        self.reader, self.remote, self.state = reader, remote, state
        self.result: object = None

    def __call__(self, sink: object) -> bool:
        self.result = self.reader.fetch(self.remote, sink, self.state)  # type: ignore[attr-defined]
        return not self.result.not_modified  # type: ignore[attr-defined]


def _unchanged(remote: object, before: KnownFile, network: bool) -> bool:
    size, modified, etag = (
        getattr(remote, "size", None),
        getattr(remote, "modified", None),
        getattr(remote, "etag", None),
    )
    if etag and before.etag:
        return etag == before.etag and (size is None or size == before.size)
    if network and size is None:
        return False
    return size == before.size and modified is not None and modified == before.modified


# --- parse and validate ----------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryToProcess:
    delivery_id: int
    source: str
    kind: str
    original_path: str
    landing_path: str
    size: int
    format: FormatOptions


@dataclass(frozen=True)
class BatchSpec:
    """Everything a batch needs, as plain values (safe to send to another thread or process)."""

    batch_id: str
    kind: str
    deliveries: tuple[DeliveryToProcess, ...]
    work_dir: Path
    references_path: Path
    roster_paths: tuple[str, ...]
    key_secret: bytes = field(repr=False)
    engine: str = "duckdb"


@dataclass
class DeliveryOutcome:
    delivery_id: int
    rows_read: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    format: str | None = None
    encoding: str | None = None
    headers: list[str] | None = None  # the header row as delivered; None when the file could not be read
    extra_columns: list[str] = field(default_factory=list)
    missing_optional_columns: list[str] = field(default_factory=list)
    scrub_counts: dict[str, int] = field(default_factory=dict)
    message: str | None = None

    @property
    def outcome(self) -> str:
        if self.rows_accepted and not self.rows_quarantined:
            return "accepted"
        if self.rows_accepted:
            return "partly_accepted"
        return "quarantined" if self.rows_quarantined or self.message else "empty"


@dataclass
class BatchResult:
    batch_id: str
    staged: dict[str, str]  # kind -> staged Parquet of accepted rows
    quarantine: str
    results: str | None
    deliveries: list[DeliveryOutcome]


def plan_batches(
    pending: Sequence[PendingDelivery], formats: dict[str, FormatOptions], max_bytes: int = BATCH_BYTES
) -> list[list[DeliveryToProcess]]:
    """Group pending deliveries into batches of one kind and at most `max_bytes` of files each."""
    batches: list[list[DeliveryToProcess]] = []
    by_kind: dict[str, list[DeliveryToProcess]] = {}
    for p in pending:
        by_kind.setdefault(p.kind, []).append(
            DeliveryToProcess(
                p.delivery_id,
                p.source,
                p.kind,
                p.original_path,
                p.landing_path,
                p.size,
                formats.get(p.source, FormatOptions()),
            )
        )
    for kind in sorted(by_kind):
        current: list[DeliveryToProcess] = []
        size = 0
        for delivery in by_kind[kind]:
            if current and size + delivery.size > max_bytes:
                batches.append(current)
                current, size = [], 0
            current.append(delivery)
            size += delivery.size
        if current:
            batches.append(current)
    return batches


def process_batch(spec: BatchSpec) -> BatchResult:
    """Parse, normalise, pseudonymise, scrub and validate a batch; write accepted and quarantined rows.

    A delivery normally yields rows of its source's kind; a survey-tool export may also yield
    project_feedback rows. Each kind's rows are validated against that kind's suite.
    """
    outcomes: dict[int, DeliveryOutcome] = {}
    frames: dict[str, list[pl.DataFrame]] = {}
    quarantine_parts: list[pl.DataFrame] = []
    scrubbers: dict[str, object] = {}
    next_row_id = 0
    for delivery in spec.deliveries:
        outcome = DeliveryOutcome(delivery.delivery_id)
        outcomes[delivery.delivery_id] = outcome
        by_kind, problem = _canonical_delivery(delivery, KINDS[spec.kind], outcome)
        if problem is not None:
            quarantine_parts.append(problem)
            outcome.rows_quarantined = problem.filter(pl.col("source_row").is_not_null()).height
            continue
        for kind_name, frame in by_kind.items():
            kind = KINDS[kind_name]
            frame = _protect(frame, kind, spec, scrubbers, outcome)
            frame = frame.with_columns(
                pl.int_range(next_row_id, next_row_id + frame.height, dtype=pl.Int64).alias(ROW_ID),
                pl.lit(delivery.delivery_id, dtype=pl.Int64).alias(DELIVERY),
            )
            next_row_id += frame.height
            frames.setdefault(kind_name, []).append(frame)
    spec.work_dir.mkdir(parents=True, exist_ok=True)
    staged: dict[str, str] = {}
    results: list[pl.DataFrame] = []
    for kind_name, parts in frames.items():
        kind = KINDS[kind_name]
        verdict = validate(pl.concat(parts, how="vertical"), kind, _known(spec.references_path, kind), spec.engine)
        accepted = typed(verdict.accepted, kind).select(
            [
                *(c.name for c in kind.stored_columns),
                pl.col(DELIVERY).alias("delivery_id"),
                pl.col(ROW).alias("source_row"),
            ]
        )
        staged_path = spec.work_dir / f"{spec.batch_id}.{kind.name}.parquet"
        accepted.write_parquet(staged_path, compression="zstd")
        staged[kind.name] = str(staged_path)
        quarantine_parts.append(verdict.quarantined)
        results.append(verdict.results.with_columns(pl.lit(suite_name(kind.name)).alias("suite")))
        for delivery_id, count in accepted.group_by("delivery_id").len().iter_rows():
            outcomes[delivery_id].rows_accepted += count
        for delivery_id, count in verdict.quarantined.group_by("delivery_id").len().iter_rows():
            outcomes[delivery_id].rows_quarantined += count
    quarantine_path = spec.work_dir / f"{spec.batch_id}.quarantine.parquet"
    quarantined = (
        pl.concat(quarantine_parts, how="vertical") if quarantine_parts else pl.DataFrame(schema=QUARANTINE_SCHEMA)
    )
    quarantined.write_parquet(quarantine_path)
    results_path = None
    if results:
        results_path = spec.work_dir / f"{spec.batch_id}.results.parquet"
        pl.concat(results, how="vertical").write_parquet(results_path)
    return BatchResult(
        spec.batch_id,
        staged,
        str(quarantine_path),
        str(results_path) if results_path else None,
        list(outcomes.values()),
    )


def _protect(
    frame: pl.DataFrame, kind: Kind, spec: BatchSpec, scrubbers: dict[str, object], outcome: DeliveryOutcome
) -> pl.DataFrame:
    """Drop direct identifiers, pseudonymise panellist references, scrub free text."""
    frame = frame.drop([c for c in kind.direct_identifiers if c in frame.columns])
    if kind.pseudonymised_columns:
        frame = pseudonymise(frame, spec.key_secret)
    if kind.free_text_columns:
        if "scrubber" not in scrubbers:
            scrubbers["scrubber"] = _scrubber(spec.roster_paths)
        frame, counts = scrubbers["scrubber"].scrub_frame(frame, kind.free_text_columns)  # type: ignore[attr-defined]
        for name, value in counts.as_dict().items():
            outcome.scrub_counts[name] = outcome.scrub_counts.get(name, 0) + value
    return frame


def _canonical_delivery(
    delivery: DeliveryToProcess, kind: Kind, outcome: DeliveryOutcome
) -> tuple[dict[str, pl.DataFrame], pl.DataFrame | None]:
    """The delivery as canonical frames by kind, or the whole-file quarantine that explains why not."""
    if delivery.format.type == "survey":
        return _survey_delivery(delivery, outcome)
    name = Path(delivery.original_path).name
    options = ReadOptions(
        delivery.format.type, delivery.format.sheet, delivery.format.delimiter, delivery.format.encoding
    )
    try:
        raw = read_table(Path(delivery.landing_path), delivery.original_path, options)
    except ReadError as error:
        outcome.message = f"{name}: {error}"
        return {}, file_quarantine(delivery.delivery_id, "file_unreadable", outcome.message)
    outcome.format, outcome.encoding = raw.format, raw.encoding
    outcome.rows_read = raw.frame.height
    outcome.headers = list(raw.headers)
    match = match_headers(raw.headers, kind)
    outcome.extra_columns = list(match.extra)
    outcome.missing_optional_columns = list(match.missing_optional)
    if raw.frame.height == 0:
        outcome.message = f"{name}: the file has a header row but no data rows"
        return {}, file_quarantine(delivery.delivery_id, "file_has_no_rows", outcome.message)
    if not match.usable:
        outcome.message = f"{name}: {match.problem()}"
        rule = "required_column_missing" if match.missing_required else "duplicate_columns"
        return {}, file_quarantine(delivery.delivery_id, rule, outcome.message, raw.frame[ROW].to_list())
    return {kind.name: canonical_frame(raw.frame, kind, match)}, None


def _survey_delivery(
    delivery: DeliveryToProcess, outcome: DeliveryOutcome
) -> tuple[dict[str, pl.DataFrame], pl.DataFrame | None]:
    """A survey-tool export, read by its adapter into responses (and project_feedback) rows."""
    from transforms.adapters import AdapterError, MappingError, load_mapping, read_survey

    name = Path(delivery.original_path).name
    try:
        mapping = load_mapping(delivery.format.mapping)  # type: ignore[arg-type]
        result = read_survey(Path(delivery.landing_path), mapping)
    except (AdapterError, MappingError, ReadError) as error:
        outcome.message = f"{name}: {error}"
        return {}, file_quarantine(delivery.delivery_id, "survey_export_unreadable", outcome.message)
    outcome.format = f"survey:{mapping.tool}"
    excluded = ", ".join(f"{count} {reason}" for reason, count in sorted(result.excluded.items()) if count)
    outcome.message = f"{result.respondents} respondent(s) loaded" + (f"; excluded {excluded}" if excluded else "")
    outcome.extra_columns = list(result.unmapped_columns)
    frames: dict[str, pl.DataFrame] = {}
    for kind_name, frame in (("responses", result.responses), ("project_feedback", result.project_feedback)):
        if frame.height:
            kind = KINDS[kind_name]
            frame = frame.rename({"source_row": ROW}) if "source_row" in frame.columns else frame
            frames[kind_name] = canonical_frame(frame, kind, match_headers(list(kind.column_names), kind))
            outcome.rows_read += frame.height
    return frames, None


def _known(references_path: Path, kind: Kind) -> dict[str, list[str]]:
    if not kind.references:
        return {}
    refs = pl.read_parquet(references_path)
    return {
        f"known_{r.name}": refs.filter(pl.col("parameter") == f"known_{r.name}")["key"].to_list()
        for r in kind.references
    }


def _scrubber(roster_paths: Sequence[str]) -> object:
    from transforms.scrub import Scrubber

    return Scrubber(roster_names(roster_paths))


def roster_names(paths: Sequence[str]) -> list[str]:
    """Full names from the roster's landing copies, held in memory only, for scrubbing free text."""
    roster = KINDS["roster"]
    names: set[str] = set()
    for path in paths:
        try:
            raw = read_table(Path(path), path)
        except ReadError:
            continue
        match = match_headers(raw.headers, roster)
        header = next((h for h, c in match.mapping.items() if c == "full_name"), None)
        if header is not None:
            names.update(v.strip() for v in raw.frame[header].drop_nulls().to_list() if v and v.strip())
    return sorted(names)


# --- references ------------------------------------------------------------------------------


def write_known_references(con: duckdb.DuckDBPyConnection, kinds: Sequence[Kind], path: Path) -> Path:
    """The keys that exist for every reference the given kinds make, from the core tables."""
    parts = []
    for kind in kinds:
        for reference in kind.references:
            joined = f" || '{KEY_SEPARATOR}' || ".join(quote(c) for c in reference.target_columns)
            parts.append(
                con.sql(
                    f"SELECT ? AS parameter, {joined} AS key FROM core.{quote(reference.target)}",
                    params=[f"known_{reference.name}"],
                ).pl()
            )
    frame = pl.concat(parts) if parts else pl.DataFrame(schema={"parameter": pl.String, "key": pl.String})
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.unique().write_parquet(path)
    return path


# --- merge -----------------------------------------------------------------------------------


def merge_level(
    con: duckdb.DuckDBPyConnection,
    results: Sequence[BatchResult],
    pending: Sequence[PendingDelivery],
    run_id: str,
) -> None:
    """In one transaction: retire superseded deliveries, load accepted rows and quarantine, record
    outcomes and validation results, and rebuild the core tables of the kinds touched."""
    supersedes = {p.delivery_id: p.supersedes for p in pending if p.supersedes is not None}
    touched = {KINDS[p.kind].name for p in pending}
    con.execute("BEGIN TRANSACTION")
    try:
        for result in results:
            for kind_name, path in result.staged.items():
                con.execute(f"INSERT INTO stg.{quote(kind_name)} BY NAME SELECT * FROM read_parquet(?)", [path])
                touched.add(kind_name)
            con.execute(
                "INSERT INTO ops.quarantine BY NAME SELECT *, ? AS run_id FROM read_parquet(?)",
                [run_id, result.quarantine],
            )
            if result.results:
                con.execute(
                    "INSERT INTO ops.validation_results BY NAME SELECT *, ? AS run_id FROM read_parquet(?)",
                    [run_id, result.results],
                )
            for outcome in result.deliveries:
                _record_outcome(con, outcome, run_id)
        # After loading, so that replaying a delivery and its correction together (a rebuild) ends as
        # the incremental runs did: the superseded delivery's rows go, its record stays.
        retired = sorted(supersedes.values())
        if retired:
            for name in KINDS:
                con.execute(f"DELETE FROM stg.{quote(name)} WHERE list_contains(?, delivery_id)", [retired])
        for new_id, old_id in sorted(supersedes.items()):
            con.execute(
                "UPDATE ops.deliveries SET status = 'superseded', superseded_by = ? WHERE delivery_id = ?",
                [new_id, old_id],
            )
        for name in sorted(touched):
            con.execute(core_rebuild_sql(KINDS[name]))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _record_outcome(con: duckdb.DuckDBPyConnection, outcome: DeliveryOutcome, run_id: str) -> None:
    con.execute(
        """UPDATE ops.deliveries SET status = 'processed', outcome = ?, processed_run_id = ?, format = ?,
               encoding = ?, rows_read = ?, rows_accepted = ?, rows_quarantined = ?, extra_columns = ?,
               missing_optional_columns = ?, scrub_counts = ?, message = ?, headers = ?
           WHERE delivery_id = ?""",
        [
            outcome.outcome,
            run_id,
            outcome.format,
            outcome.encoding,
            outcome.rows_read,
            outcome.rows_accepted,
            outcome.rows_quarantined,
            outcome.extra_columns,
            outcome.missing_optional_columns,
            json_text(outcome.scrub_counts),
            outcome.message,
            outcome.headers,
            outcome.delivery_id,
        ],
    )
