"""Plan the validation of one contract level: which pending deliveries, in which batches.

A batch holds deliveries of one kind and at most BATCH_BYTES of files: it bounds a worker's memory
and amortises the per-task overhead (one task per batch, never per row or per tiny file).
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from din.config import Config, FormatOptions
from din.contract import Kind
from din.keys import PseudonymKey
from din.paths import DataPaths
from expectations.gate import BatchSpec
from transforms.blocklist import Blocklist
from transforms.delivery import DeliveryToProcess
from warehouse.manifest import PendingDelivery, active_landing_paths, pending_deliveries
from warehouse.merge import write_known_references

BATCH_BYTES = 48 * 1024 * 1024  # raw bytes per validation batch: bounds memory, amortises task overhead


def plan_level(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    paths: DataPaths,
    run_id: str,
    level: int,
    kinds: Sequence[Kind],
    key: PseudonymKey,
    blocklist: Blocklist | None = None,
) -> tuple[list[PendingDelivery], list[BatchSpec]]:
    """The level's pending deliveries and the batches to validate them in (none when nothing is pending).

    Writes the keys the level's references may take, and names the roster's landing copies (their
    names scrub free text), for the batches to read; `blocklist` drops erased panellists' rows."""
    pending = pending_deliveries(con, [k.name for k in kinds])
    if not pending:
        return [], []
    work = paths.run_work(run_id)
    references = write_known_references(con, kinds, work / f"references-{level}.parquet")
    roster = tuple(str(p) for p in active_landing_paths(con, "roster"))
    formats = {s.name: s.format for s in config.all_sources}
    specs = [
        BatchSpec(
            f"l{level}-b{index:04d}",
            batch[0].kind,
            tuple(batch),
            work,
            references,
            roster,
            key.secret,
            config.validation_engine,
            blocklist or Blocklist(),
        )
        for index, batch in enumerate(plan_batches(pending, formats))
    ]
    return pending, specs


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
