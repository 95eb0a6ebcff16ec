"""Benchmark data: partner deliveries written by the project's generator, reused when unchanged.

Each data set lives in `<work>/data-<name>/` beside a `bench-manifest.json` that records what was
asked for (rows, files, fault rate, seed), a hash of the generator's source and what it wrote. A
data set is regenerated only when that manifest differs or a file is missing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

import tools.demo_data as demo_data

MANIFEST = "bench-manifest.json"
FAULT_RATE = 0.01
SEED = demo_data.SCALED_SEED


@dataclass(frozen=True)
class Size:
    """A named data size: `rows` responses spread over `files` CSV files."""

    name: str
    rows: int
    files: int

    @classmethod
    def parse(cls, text: str) -> Size:
        """`S`, `L` (the standard sizes) or `NAME=ROWS/FILES`, e.g. `T=2000/4`."""
        if "=" not in text:
            if text not in STANDARD:
                raise ValueError(f"unknown size {text!r}: use S, L or NAME=ROWS/FILES")
            return STANDARD[text]
        name, spec = text.split("=", 1)
        rows, files = spec.split("/", 1)
        return cls(name.strip(), int(rows.replace("_", "")), int(files))

    @property
    def label(self) -> str:
        return f"{self.name} ({self.rows:,} rows, {self.files:,} files)"


STANDARD = {"S": Size("S", 1_000_000, 200), "L": Size("L", 10_000_000, 2_000)}
QUICK = (Size("S", 10_000, 10), Size("L", 100_000, 100))


@dataclass(frozen=True)
class Dataset:
    """A generated set of deliveries and the config that reads it."""

    size: Size
    root: Path
    config: Path
    response_files: tuple[Path, ...]
    manifest: dict[str, Any]
    reused: bool

    @property
    def responses_dir(self) -> Path:
        return self.root / "deliveries" / "responses"

    @property
    def workshops_csv(self) -> Path:
        return self.root / "reference" / "workshops.csv"

    @property
    def valid_rows(self) -> int:
        return int(self.manifest["written"]["valid_rows"])

    @property
    def bytes(self) -> int:
        return sum(p.stat().st_size for p in self.response_files)


def generator_hash() -> str:
    """A hash of the generator's source: a changed generator means regenerated data."""
    return hashlib.sha256(Path(demo_data.__file__).read_bytes()).hexdigest()[:16]


def requested(size: Size, fault_rate: float = FAULT_RATE, seed: int = SEED) -> dict[str, Any]:
    return {
        "rows": size.rows,
        "files": size.files,
        "fault_rate": fault_rate,
        "seed": seed,
        "generator": generator_hash(),
    }


def ensure_dataset(work: Path, size: Size, fault_rate: float = FAULT_RATE, seed: int = SEED) -> Dataset:
    """The data set for `size` under `work`, generated unless an identical one is already there."""
    root = work / f"data-{size.name}"
    wanted = requested(size, fault_rate, seed)
    existing = _read_manifest(root)
    if existing is not None and existing.get("requested") == wanted and _complete(root, existing):
        return _dataset(size, root, existing, reused=True)
    if root.exists():
        shutil.rmtree(root)
    manifest = demo_data.write_scaled(root, size.rows, size.files, fault_rate, seed, data_dir="data")
    record = {"requested": wanted, "written": _written(manifest, root)}
    (root / MANIFEST).write_text(json.dumps(record, indent=2, sort_keys=True), encoding="utf-8")
    return _dataset(size, root, record, reused=False)


def _written(manifest: demo_data.ScaledManifest, root: Path) -> dict[str, Any]:
    return {
        "config": manifest.config.relative_to(root).as_posix(),
        "files": [p.relative_to(root).as_posix() for p in manifest.files],
        "response_rows": manifest.response_rows,
        "valid_rows": manifest.valid_rows,
        "faulty_rows": manifest.faulty_rows,
        "faults": manifest.faults,
        "roster_rows": manifest.roster_rows,
        "workshop_rows": manifest.workshop_rows,
    }


def _read_manifest(root: Path) -> dict[str, Any] | None:
    try:
        return json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _complete(root: Path, record: dict[str, Any]) -> bool:
    written = record.get("written", {})
    names = [written.get("config", "din.yaml"), *written.get("files", [])]
    return bool(written.get("files")) and all((root / name).is_file() for name in names)


def _dataset(size: Size, root: Path, record: dict[str, Any], reused: bool) -> Dataset:
    written = record["written"]
    files = tuple(root / name for name in written["files"])
    return Dataset(size, root, root / written["config"], files, record, reused)


def empty_config(work: Path) -> Path:
    """A valid config with no sources at all: what a run costs when there is nothing to do."""
    path = work / "empty" / "din.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Benchmark: no sources, to time a run's fixed cost.\n"
        "version: 1\ntitle: empty (benchmark)\nmode: demo\ndata_dir: data\nreference: []\nsources: []\n",
        encoding="utf-8",
    )
    return path


def check_file(work: Path, rows: int) -> Path:
    """One canonical response file of `rows` rows (about 1% faulty) for `din check`."""
    size = Size(f"check-{rows}", rows, 1)
    return ensure_dataset(work, size).response_files[0]


def private_network(data: Dataset, dest: Path) -> Dataset:
    """A copy of `data`'s deliveries under `dest` whose files can be changed without touching the data set.

    Files are hard links (free, and the local source reads them as ordinary files; it refuses symbolic
    links out of its folder), copies where the file system has no hard links; the config is always a
    copy, so that settings an experiment appends to it stay in this network (appending through a link
    once turned on `partition_by_panel` for every later benchmark of the shared data set). A file is changed by
    replacing its link with a new file (see `change_one_file`), so the shared data set stays as generated.
    """
    if dest.exists():
        shutil.rmtree(dest)
    for source in sorted(p for p in data.root.rglob("*") if p.is_file() and p.name != MANIFEST):
        target = dest / source.relative_to(data.root)
        target.parent.mkdir(parents=True, exist_ok=True)
        if source == data.config:  # a copy: a run's settings written into it never reach the data set
            shutil.copy2(source, target)
            continue
        try:
            target.hardlink_to(source)
        except OSError:
            shutil.copy2(source, target)
    (dest / MANIFEST).write_text(json.dumps(data.manifest, indent=2, sort_keys=True), encoding="utf-8")
    files = tuple(dest / p.relative_to(data.root) for p in data.response_files)
    return Dataset(data.size, dest, dest / data.config.relative_to(data.root), files, data.manifest, reused=True)


def change_one_file(data: Dataset, index: int | None = None) -> Path:
    """Re-export the middle response file (or the one at `index`) with its rows in reverse order: what a
    partner's corrected upload is.

    The same rows (so the accepted count stays the manifest's) at other spreadsheet rows, so the whole
    file is a new delivery that supersedes the old one. The link to the shared file is replaced, not
    written through.
    """
    path = data.response_files[len(data.response_files) // 2 if index is None else index]
    frame = pl.read_csv(path, infer_schema=False).reverse()  # every value as text, as typed
    path.unlink()
    frame.write_csv(path)
    return path
