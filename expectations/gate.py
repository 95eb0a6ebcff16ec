"""The validation gate: one batch of landed deliveries in, accepted rows and quarantine out.

    process_batch: read (transforms.delivery) → protect → validate (the kind's suite) → staged files

A batch reads landing copies and writes only into the run's work folder (staged Parquet of
accepted rows, quarantine records, validation results), so batches can run in parallel threads,
processes or workers; only the merge writes to the warehouse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from din import faults
from din.contract import KINDS, Kind
from expectations.engine import DELIVERY, ROW_ID
from expectations.suites import suite_name
from expectations.validate import QUARANTINE_SCHEMA, file_quarantine, validate
from transforms.blocklist import Blocklist
from transforms.delivery import DeliveryOutcome, DeliveryToProcess, FileProblem, protect, read_delivery, scrubber_for
from transforms.normalise import typed
from transforms.readers import ROW

if TYPE_CHECKING:
    from transforms.scrub import Scrubber


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
    limits: Mapping[str, int] = field(default_factory=dict)  # din.yaml `limits`
    blocklist: Blocklist = field(default_factory=Blocklist)  # erased panellists: their rows are dropped


@dataclass
class BatchResult:
    batch_id: str
    staged: dict[str, str]  # kind -> staged Parquet of accepted rows
    quarantine: str
    results: str | None
    deliveries: list[DeliveryOutcome]


def process_batch(spec: BatchSpec) -> BatchResult:
    """Parse, normalise, drop erased panellists' rows, pseudonymise, scrub and validate a batch; write
    accepted and quarantined rows.

    Each kind's rows are validated against that kind's suite."""
    outcomes: dict[int, DeliveryOutcome] = {}
    frames: dict[str, list[pl.DataFrame]] = {}
    quarantine_parts: list[pl.DataFrame] = []
    scrubber: Scrubber | None = None
    next_row_id = 0
    faults.checkpoint("batch")  # a worker dying here: the runner must run the batch again elsewhere
    for delivery in spec.deliveries:
        outcome = DeliveryOutcome(delivery.delivery_id)
        outcomes[delivery.delivery_id] = outcome
        parsed = read_delivery(delivery, outcome, blocklist=spec.blocklist)
        if isinstance(parsed, FileProblem):
            problem = file_quarantine(delivery.delivery_id, parsed)
            quarantine_parts.append(problem)
            outcome.rows_quarantined = problem.filter(pl.col("source_row").is_not_null()).height
            continue
        for kind_name, frame in parsed.items():
            kind = KINDS[kind_name]
            if kind.free_text_columns and scrubber is None:
                scrubber = scrubber_for(spec.roster_paths, spec.blocklist)
            frame = protect(frame, kind, spec.key_secret, scrubber, outcome, spec.blocklist)
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
        verdict = validate(
            # deliveries of one kind may differ in their optional and marker columns: missing ones are null
            pl.concat(parts, how="diagonal"),
            kind,
            _known(spec.references_path, kind),
            spec.engine,
            limits={name: float(value) for name, value in spec.limits.items()},
        )
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


def _known(references_path: Path, kind: Kind) -> dict[str, list[str]]:
    """The keys each of the kind's references may take (written by the merge from the core tables)."""
    if not kind.references:
        return {}
    refs = pl.read_parquet(references_path)
    return {
        f"known_{r.name}": refs.filter(pl.col("parameter") == f"known_{r.name}")["key"].to_list()
        for r in kind.references
    }
