"""The validation gate: one batch of landed deliveries in, accepted rows and quarantine out.

    process_batch: read (transforms.delivery) → protect → validate (the kind's suite) → staged files

A batch reads landing copies and writes only into the run's work folder (staged Parquet of
accepted rows, quarantine records, validation results), so batches can run in parallel threads,
processes or workers; only the merge writes to the warehouse.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from din import faults
from din.contract import KINDS, Kind
from expectations.batch import BatchResult, BatchSpec
from expectations.engine import DELIVERY, ROW_ID
from expectations.remote_batch import localised, shipped
from expectations.suites import suite_name
from expectations.validate import QUARANTINE_SCHEMA, file_quarantine, validate
from transforms.dates import DateOrder
from transforms.delivery import (
    DeliveryOutcome,
    FileProblem,
    RenamedDelivery,
    protect_deliveries,
    read_delivery,
    read_delivery_in_chunks,
    read_table_delivery,
    scrubber_for,
)
from transforms.normalise import Frame, normalised_frame, typed
from transforms.readers import ROW
from transforms.spill import SpillFile

if TYPE_CHECKING:
    from transforms.scrub import Scrubber

#: Deliveries this large or larger are read, protected and validated a chunk at a time, from spilled files.
STREAM_BYTES = 32 * 1024 * 1024
#: At most this many rows of table deliveries are normalised and protected at once (`_Together`).
TOGETHER_ROWS = 100_000
TOGETHER_ENV = "DIN_BATCH_DELIVERIES"


def process_batch(spec: BatchSpec) -> BatchResult:
    """One batch where it runs: on the run's host or a worker that sees the data folder, straight from it;
    on a worker that does not, in a folder of its own (`expectations.remote_batch`)."""
    if spec.remote is None:
        return _process_batch(spec)
    with tempfile.TemporaryDirectory(prefix="din-batch-") as folder:
        return shipped(_process_batch(localised(spec, spec.remote, Path(folder))))


class _Together:
    """Table deliveries of a batch, read and renamed, waiting to be normalised and protected at once: rows
    of one kind whose dates read in one order, at most `TOGETHER_ROWS` of them (a file's own cost of each
    step, about 10 ms of polars' set-up, is then paid once a group; a group's copies stay small)."""

    def __init__(self, kind: Kind, date_order: DateOrder | None) -> None:
        self.kind, self.date_order = kind, date_order
        self.frames: list[pl.DataFrame] = []
        self.rows = 0

    def takes(self, read: RenamedDelivery) -> bool:
        return read.kind is self.kind and read.date_order == self.date_order and self.rows < TOGETHER_ROWS

    def add(self, delivery_id: int, frame: pl.DataFrame) -> None:
        self.frames.append(frame.with_columns(pl.lit(delivery_id, dtype=pl.Int64).alias(DELIVERY)))
        self.rows += frame.height


def one_by_one() -> bool:
    """Whether every delivery is normalised and protected alone (`DIN_BATCH_DELIVERIES=one-by-one`; the tests
    run networks both ways and compare)."""
    return os.environ.get(TOGETHER_ENV, "together") == "one-by-one"


def _process_batch(spec: BatchSpec) -> BatchResult:
    """Parse, normalise, drop erased panellists' rows, pseudonymise, scrub and validate a batch; write
    accepted and quarantined rows.

    Each kind's rows are validated against that kind's suite. Table deliveries (not tool exports, not
    streamed) are read one by one, then normalised and protected together (`_Together`). A delivery of
    `STREAM_BYTES` or more is read and protected a chunk at a time, its rows spilled to Parquet in the work
    folder, and its kind's rows are validated from those files (`expectations.validate`), so a large file
    never sits in memory whole."""
    outcomes: dict[int, DeliveryOutcome] = {}
    frames: dict[str, list[pl.DataFrame]] = {}
    spilled: dict[str, list[Path]] = {}
    quarantine_parts: list[pl.DataFrame] = []
    scrubber: Scrubber | None = None
    next_row_id = 0
    together: _Together | None = None
    alone = one_by_one()
    faults.checkpoint("batch")  # a worker dying here: the runner must run the batch again elsewhere
    spec.work_dir.mkdir(parents=True, exist_ok=True)
    spill_root = spec.work_dir / f"{spec.batch_id}.spill"

    def protected(frame: pl.DataFrame, kind: Kind, owners: dict[Any, DeliveryOutcome], by: str | None) -> pl.DataFrame:
        nonlocal scrubber, next_row_id
        if kind.free_text_columns and scrubber is None:
            scrubber = scrubber_for(spec.roster_paths, spec.blocklist)
        frame = protect_deliveries(frame, kind, spec.key_secret, scrubber, owners, by, spec.blocklist)
        frame = frame.with_columns(pl.int_range(next_row_id, next_row_id + frame.height, dtype=pl.Int64).alias(ROW_ID))
        next_row_id += frame.height
        return frame

    def release() -> None:  # the waiting deliveries, normalised and protected; before any later row, in order
        nonlocal together
        if together is None:
            return
        group, together = together, None
        stacked = normalised_frame(pl.concat(group.frames, how="diagonal_relaxed"), group.kind, group.date_order)
        owners: dict[Any, DeliveryOutcome] = {d: outcomes[d] for d in stacked[DELIVERY].unique(maintain_order=True)}
        frames.setdefault(group.kind.name, []).append(protected(stacked, group.kind, owners, DELIVERY))

    for delivery in spec.deliveries:
        outcome = DeliveryOutcome(delivery.delivery_id)
        outcomes[delivery.delivery_id] = outcome
        streamed = delivery.size >= stream_bytes()
        if not alone and not streamed and delivery.format.type != "survey":
            read = read_table_delivery(delivery, outcome)
            if isinstance(read, FileProblem):
                quarantine_parts.append(_refused(delivery.delivery_id, read, outcome))
                continue
            if together is not None and not together.takes(read):
                release()
            together = together or _Together(read.kind, read.date_order)
            together.add(delivery.delivery_id, read.frame)
            continue
        release()
        parsed: dict[str, Iterator[pl.DataFrame]] | FileProblem
        if streamed:
            parsed = read_delivery_in_chunks(delivery, outcome, blocklist=spec.blocklist)
        else:
            whole = read_delivery(delivery, outcome, blocklist=spec.blocklist)
            parsed = whole if isinstance(whole, FileProblem) else {k: iter([f]) for k, f in whole.items()}
        if isinstance(parsed, FileProblem):
            quarantine_parts.append(_refused(delivery.delivery_id, parsed, outcome))
            continue
        for kind_name, chunks in parsed.items():
            kind = KINDS[kind_name]
            spill_root.mkdir(exist_ok=True)
            with SpillFile(spill_root / f"{kind_name}-{delivery.delivery_id}.parquet") as spill:
                for chunk in chunks:
                    frame = protected(chunk, kind, {None: outcome}, None)
                    frame = frame.with_columns(pl.lit(delivery.delivery_id, dtype=pl.Int64).alias(DELIVERY))
                    if streamed:
                        spill.append(frame)
                    else:
                        frames.setdefault(kind_name, []).append(frame)
            if spill.written:
                spilled.setdefault(kind_name, []).append(spill.path)
    release()
    staged: dict[str, str] = {}
    results: list[pl.DataFrame] = []
    for kind_name in [*frames, *(k for k in spilled if k not in frames)]:
        kind = KINDS[kind_name]
        known = _known(spec.references_path, kind)
        limits = {name: float(value) for name, value in spec.limits.items()}
        staged_path = spec.work_dir / f"{spec.batch_id}.{kind.name}.parquet"
        if kind_name in spilled:
            parts = spilled[kind_name]
            for index, frame in enumerate(frames.get(kind_name, [])):  # the batch's small deliveries of the kind
                part = spill_root / f"{kind_name}-small-{index:05d}.parquet"
                frame.write_parquet(part, compression="lz4")
                parts.append(part)
            frames.pop(kind_name, None)
            lazy_verdict = validate(parts, kind, known, spec.engine, limits=limits)
            _stored(typed(lazy_verdict.accepted, kind), kind).sink_parquet(staged_path, compression="zstd")
            quarantined, checked = lazy_verdict.quarantined, lazy_verdict.results
        else:
            verdict = validate(
                # deliveries of one kind may differ in their optional and marker columns: missing ones are null
                pl.concat(frames.pop(kind_name), how="diagonal"),
                kind,
                known,
                spec.engine,
                limits=limits,
            )
            _stored(typed(verdict.accepted, kind), kind).write_parquet(staged_path, compression="zstd")
            quarantined, checked = verdict.quarantined, verdict.results
        staged[kind.name] = str(staged_path)
        quarantine_parts.append(quarantined)
        results.append(checked.with_columns(pl.lit(suite_name(kind.name)).alias("suite")))
        counts = pl.scan_parquet(staged_path).group_by("delivery_id").len().collect()
        for delivery_id, count in counts.iter_rows():
            outcomes[delivery_id].rows_accepted += count
        for delivery_id, count in quarantined.group_by("delivery_id").len().iter_rows():
            outcomes[delivery_id].rows_quarantined += count
    shutil.rmtree(spill_root, ignore_errors=True)
    quarantine_path = spec.work_dir / f"{spec.batch_id}.quarantine.parquet"
    quarantined_all = (
        pl.concat(quarantine_parts, how="vertical") if quarantine_parts else pl.DataFrame(schema=QUARANTINE_SCHEMA)
    )
    quarantined_all.write_parquet(quarantine_path)
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


def _refused(delivery_id: int, problem: FileProblem, outcome: DeliveryOutcome) -> pl.DataFrame:
    """The quarantine records of a file refused whole (its rows, when they were read, are counted)."""
    records = file_quarantine(delivery_id, problem)
    outcome.rows_quarantined = records.filter(pl.col("source_row").is_not_null()).height
    return records


def stream_bytes() -> int:
    """Deliveries of this size or more are read a chunk at a time (`DIN_STREAM_BYTES` overrides, e.g. 0 to
    stream every file: the tests run the demo both ways and compare)."""
    return int(os.environ.get("DIN_STREAM_BYTES", STREAM_BYTES))


def _stored(accepted: Frame, kind: Kind) -> Frame:
    """The staged columns: the kind's stored columns, and where each row came from."""
    return accepted.select(
        [*(c.name for c in kind.stored_columns), pl.col(DELIVERY).alias("delivery_id"), pl.col(ROW).alias("source_row")]
    )


def _known(references_path: Path, kind: Kind) -> pl.DataFrame:
    """The keys each of the kind's references may take (written by the merge from the core tables), as the
    (parameter, key) rows of the file: at L, 233,000 keys in every batch, which as Python lists cost 0.05 s
    a batch to read and as much again to turn back into a frame for DuckDB."""
    parameters = [f"known_{r.name}" for r in kind.references]
    if not parameters:
        return pl.DataFrame(schema={"parameter": pl.String, "key": pl.String})
    return (
        pl.scan_parquet(references_path)
        .filter(pl.col("parameter").is_in(parameters))
        .select(pl.col("parameter").cast(pl.String), pl.col("key").cast(pl.String))
        .collect()
    )
