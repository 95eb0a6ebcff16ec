"""Where a data directory keeps each thing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DataPaths:
    root: Path
    warehouse_file: str = "warehouse.duckdb"  # a rebuild writes a new warehouse aside, then swaps it in

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def warehouse(self) -> Path:
        return self.root / self.warehouse_file

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def published(self) -> Path:
        return self.root / "published"

    @property
    def current(self) -> Path:
        """The published version readers see (a symlink swapped atomically on publish)."""
        return self.published / "current"

    @property
    def catalog(self) -> Path:
        return self.published / "catalog.duckdb"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def mappings(self) -> Path:
        """Column mappings saved through the portal: `<organisation>/<kind>.yaml` (their header -> our column)."""
        return self.root / "mappings"

    @property
    def portal(self) -> Path:
        """The portal's own state: token hashes, the cookie-signing key, files being checked."""
        return self.root / "portal"

    @property
    def lock(self) -> Path:
        return self.root / "warehouse.lock"

    def run_work(self, run_id: str) -> Path:
        return self.work / run_id
