"""What a validation batch is given and what it gives back, as plain values: safe to send to another
thread, process or Dask worker (`expectations.gate` runs it; `expectations.remote_batch` moves it to a
worker that does not see the data folder)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transforms.blocklist import Blocklist
from transforms.delivery import DeliveryOutcome, DeliveryToProcess


@dataclass(frozen=True)
class RemoteInputs:
    """What a worker without the data folder needs: where landing is mirrored (`bucket/prefix`), the run
    host's landing folder that the objects' keys are relative to, the bucket's options and the credentials
    they name (resolved on the run's host, sent in memory), and the run's own files by their path there."""

    bucket_root: str
    landing_dir: str
    options: Mapping[str, Any]
    credentials: Mapping[str, str] = field(repr=False)
    files: Mapping[str, bytes] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class ShippedFiles:
    """A result's files, by their name in the worker's folder (`<batch>.responses.parquet`, ...)."""

    contents: Mapping[str, bytes] = field(repr=False)


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
    remote: RemoteInputs | None = None  # for a worker without the data folder: read it all from elsewhere


@dataclass
class BatchResult:
    batch_id: str
    staged: dict[str, str]  # kind -> staged Parquet of accepted rows
    quarantine: str
    results: str | None
    deliveries: list[DeliveryOutcome]
    shipped: ShippedFiles | None = None  # from a worker without the data folder: the files' contents
