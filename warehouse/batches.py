"""Plan the validation of one contract level: which pending deliveries, in which batches.

A batch holds deliveries of one kind and at most BATCH_BYTES of files: it bounds a worker's memory
and amortises the per-task overhead (one task per batch, never per row or per tiny file).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import duckdb

from din.config import Config, FormatOptions
from din.contract import Kind
from din.keys import PseudonymKey
from din.paths import DataPaths
from expectations.batch import BatchSpec, RemoteInputs
from sources.credentials import resolve_credential
from transforms.blocklist import Blocklist
from transforms.column_mapping import ColumnMappingError, load_mapping
from transforms.delivery import DeliveryToProcess
from warehouse.manifest import PendingDelivery, active_landing_paths, companion_files, pending_deliveries
from warehouse.merge import write_known_references

BATCH_BYTES = 48 * 1024 * 1024  # raw bytes per validation batch: bounds memory, amortises task overhead
MIN_BATCH_BYTES = 4 * 1024 * 1024  # smaller batches are not split further to keep the workers busy


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
    """The level's pending deliveries and the batches to validate them in (none when nothing is pending)."""
    pending = pending_deliveries(con, [k.name for k in kinds])
    if not pending:
        return [], []
    return pending, batch_specs(con, config, paths, paths.run_work(run_id), level, kinds, pending, key, blocklist)


def batch_specs(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    paths: DataPaths,
    work: Path,
    level: int,
    kinds: Sequence[Kind],
    pending: Sequence[PendingDelivery],
    key: PseudonymKey,
    blocklist: Blocklist | None = None,
    prefix: str = "l",
) -> list[BatchSpec]:
    """The batches that read `pending` exactly as a run reads them: each source's format options, the files
    delivered beside a tool's export, the organisations' saved column mappings, din.yaml's limits.

    Writes the keys the level's references may take, and names the roster's landing copies (their
    names scrub free text), for the batches to read; `blocklist` drops erased panellists' rows."""
    references = write_known_references(con, kinds, work / f"references-{level}.parquet")
    roster = tuple(str(p) for p in active_landing_paths(con, "roster"))
    formats = {s.name: s.format for s in config.all_sources}
    surveys = [p.delivery_id for p in pending if formats.get(p.source, FormatOptions()).type == "survey"]
    companions = companion_files(con, surveys)
    mappings = saved_mappings(paths.mappings, pending)
    remote = remote_inputs(config, paths, [references, *(s.format.mapping for s in config.all_sources)])
    return [
        BatchSpec(
            f"{prefix}{level}-b{index:04d}",
            batch[0].kind,
            tuple(batch),
            work,
            references,
            roster,
            key.secret,
            config.validation_engine,
            dict(config.limits),
            blocklist or Blocklist(),
            remote,
        )
        for index, batch in enumerate(
            plan_batches(pending, formats, companions=companions, mappings=mappings, slots=parallel_slots(config))
        )
    ]


def parallel_slots(config: Config) -> int:
    """How many batches run at once: the runner's workers (one for a sequential run)."""
    return 1 if config.task_runner == "sequential" else max(1, config.max_workers)


def remote_inputs(config: Config, paths: DataPaths, run_files: Sequence[Path | None]) -> RemoteInputs | None:
    """For Dask workers that do not see the data folder (`parallelism.address` without `shared_data_dir`):
    the bucket landing is mirrored to, the credentials its options name (resolved here, sent in memory),
    and the run's own files a batch may read. None when the workers read the data folder itself."""
    if config.task_runner != "dask" or not config.dask_address or config.shared_data_dir:
        return None
    if config.storage is None or not config.storage.landing:  # the config check stops this before any work
        raise ValueError("Dask workers without the data folder read landing from storage.landing")
    options = dict(config.storage.options)
    names = [options[k] for k in ("key", "secret") if isinstance(options.get(k), str)]
    credentials = {name: resolve_credential(name) or "" for name in names}
    files = {str(p): p.read_bytes() for p in run_files if p is not None and p.is_file()}
    root = config.storage.landing.removeprefix("s3://").rstrip("/")
    return RemoteInputs(root, str(paths.landing), options, credentials, files)


def saved_mappings(
    mappings_dir: Path, pending: Sequence[PendingDelivery]
) -> dict[tuple[str, str], Mapping[str, str] | str]:
    """Each (organisation, kind)'s saved column mapping, or why it cannot be used."""
    found: dict[tuple[str, str], Mapping[str, str] | str] = {}
    for organisation, kind in sorted({(p.organisation, p.kind) for p in pending}):
        try:
            mapping = load_mapping(mappings_dir, organisation, kind)
        except ColumnMappingError as error:
            found[(organisation, kind)] = str(error)
            continue
        if mapping is not None:
            found[(organisation, kind)] = mapping.columns
    return found


def plan_batches(
    pending: Sequence[PendingDelivery],
    formats: dict[str, FormatOptions],
    max_bytes: int = BATCH_BYTES,
    companions: Mapping[int, tuple[tuple[str, str], ...]] | None = None,
    mappings: Mapping[tuple[str, str], Mapping[str, str] | str] | None = None,
    slots: int = 1,
) -> list[list[DeliveryToProcess]]:
    """Group pending deliveries into batches of one kind and at most `max_bytes` of files each (a file larger
    than that is a batch of its own), as many batches as `slots` (the batches that run at once) can share
    evenly, of about equal bytes.

    `companions` are, per delivery, the files delivered beside it (a tool's export in several files);
    `mappings`, per (organisation, kind), the column mapping saved in the portal, or why it is unusable."""
    batches: list[list[DeliveryToProcess]] = []
    by_kind: dict[str, list[DeliveryToProcess]] = {}
    for p in pending:
        saved = (mappings or {}).get((p.organisation, p.kind), {})
        by_kind.setdefault(p.kind, []).append(
            DeliveryToProcess(
                p.delivery_id,
                p.source,
                p.kind,
                p.original_path,
                p.landing_path,
                p.size,
                formats.get(p.source, FormatOptions()),
                (companions or {}).get(p.delivery_id, ()),
                columns=saved if not isinstance(saved, str) else {},
                columns_error=saved if isinstance(saved, str) else None,
            )
        )
    for kind in sorted(by_kind):
        batches.extend(_balanced(by_kind[kind], max_bytes, slots))
    return batches


def _balanced(deliveries: Sequence[DeliveryToProcess], max_bytes: int, slots: int) -> list[list[DeliveryToProcess]]:
    """`deliveries` in order, cut into batches of about equal bytes: the fewest that keep each within
    `max_bytes`, rounded up to a multiple of `slots` so that no batch runs alone at the end while the other
    slots wait; a level that fits in one round is shared among the slots, down to `MIN_BATCH_BYTES` a batch
    (where a task costs more than it saves)."""
    total = sum(d.size for d in deliveries)
    count = max(1, -(-total // max_bytes))
    if slots > 1:
        count = max(count, min(slots, total // MIN_BATCH_BYTES))  # one round: no more batches than slots
        if count > slots:  # several rounds: every round full
            count = -(-count // slots) * slots
    count = max(1, min(count, len(deliveries)))
    batches: list[list[DeliveryToProcess]] = [[] for _ in range(count)]
    before = 0
    for delivery in deliveries:  # each file goes to the batch its middle byte falls in
        index = min(count - 1, (2 * before + delivery.size) * count // max(2 * total, 1))
        batches[index].append(delivery)
        before += delivery.size
    return [piece for batch in batches if batch for piece in _within(batch, max_bytes)]


def _within(batch: list[DeliveryToProcess], max_bytes: int) -> list[list[DeliveryToProcess]]:
    """`batch` cut where it would pass `max_bytes` (rarely needed: the batches are about equal)."""
    pieces: list[list[DeliveryToProcess]] = [[]]
    size = 0
    for delivery in batch:
        if pieces[-1] and size + delivery.size > max_bytes:
            pieces.append([])
            size = 0
        pieces[-1].append(delivery)
        size += delivery.size
    return pieces
