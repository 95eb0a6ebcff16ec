"""Publish the marts as tidy Parquet, atomically, with a DuckDB catalog over them.

Each publish writes a complete new version folder (`published/versions/<run_id>/`) beside the old
one, then swaps the `published/current` symlink with one atomic rename. A reader sees the old
version or the new one, never a mix; a failure before the swap leaves the previous version as it
was. The catalog file is rebuilt the same way (written aside, then renamed over the old one).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from din import faults
from din.docs import column_doc, write_datapackage
from din.paths import DataPaths
from expectations.engine import quote
from warehouse.marts import SCHEMA_VERSION, TIERS, Mart, write_mart

log = logging.getLogger("din")

KEEP_VERSIONS = 3
TIER_MODES = {"open": (0o755, 0o644), "restricted": (0o750, 0o640), "ops": (0o750, 0o640)}


@dataclass(frozen=True)
class PublishedTable:
    name: str
    tier: str
    path: str
    rows: int


@dataclass(frozen=True)
class PublishResult:
    version: str
    tables: tuple[PublishedTable, ...]

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)


def publish(
    con: duckdb.DuckDBPyConnection,
    paths: DataPaths,
    version: str,
    marts: Sequence[Mart],
    metadata: dict[str, Any],
    rule: Any = None,
) -> PublishResult:
    """Write every mart into a new version folder, then make it current in one atomic step."""
    versions = paths.published / "versions"
    final = versions / version
    partial = versions / f".{version}.partial"
    if partial.exists():
        shutil.rmtree(partial)
    for tier in TIERS:
        (partial / tier).mkdir(parents=True, exist_ok=True)
    tables = []
    for mart in marts:
        target = partial / mart.relative_path
        write_mart(con, mart, target, rule)
        rows = con.sql(f"SELECT count(*) FROM read_parquet({_literal(str(target))})").fetchall()[0][0]
        tables.append(PublishedTable(mart.name, mart.tier, mart.relative_path, int(rows)))
        faults.checkpoint("publish")
    manifest = {
        "version": version,
        "schema_version": SCHEMA_VERSION,
        **metadata,
        "tables": [t.__dict__ for t in tables],
    }
    (partial / "ops" / "publish.json").write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
    write_datapackage(partial, tables, version=version)
    _set_permissions(partial)
    _fsync_tree(partial)
    os.replace(partial, final)
    swap_current(paths, final)
    build_catalog(paths, marts, metadata)
    prune_versions(versions, keep=KEEP_VERSIONS, current=final)
    return PublishResult(version, tuple(tables))


def swap_current(paths: DataPaths, target: Path) -> None:
    """Point `published/current` at `target` with an atomic rename of a fresh symlink."""
    link = paths.current
    temporary = link.with_name(f".current.{os.getpid()}")
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    os.symlink(os.path.relpath(target, link.parent), temporary)
    os.replace(temporary, link)


def build_catalog(paths: DataPaths, marts: Sequence[Mart], metadata: dict[str, Any]) -> Path:
    """A small DuckDB file of views over the current Parquet, one schema per tier."""
    catalog = paths.catalog
    temporary = catalog.with_name(f".{catalog.name}.{os.getpid()}")
    if temporary.exists():
        temporary.unlink()
    con = duckdb.connect(str(temporary))
    try:
        for tier in TIERS:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(tier)}")
        for mart in marts:
            location = _literal(str(paths.current / mart.relative_path))
            con.execute(f"CREATE VIEW {quote(mart.tier)}.{quote(mart.name)} AS SELECT * FROM read_parquet({location})")
            con.execute(f"CREATE VIEW main.{quote(mart.name)} AS SELECT * FROM {quote(mart.tier)}.{quote(mart.name)}")
            con.execute(f"COMMENT ON VIEW {quote(mart.tier)}.{quote(mart.name)} IS {_literal(mart.description)}")
            columns = con.sql(f"DESCRIBE {quote(mart.tier)}.{quote(mart.name)}").fetchall()
            for column, *_ in columns:
                meaning = column_doc(mart, column).meaning
                con.execute(
                    f"COMMENT ON COLUMN {quote(mart.tier)}.{quote(mart.name)}.{quote(column)} IS {_literal(meaning)}"
                )
        con.execute("CREATE TABLE main.catalog_metadata (key VARCHAR, value VARCHAR)")
        con.executemany(
            "INSERT INTO main.catalog_metadata VALUES (?, ?)",
            [(k, json.dumps(v, default=str) if not isinstance(v, str) else v) for k, v in metadata.items()],
        )
    finally:
        con.close()
    os.chmod(temporary, 0o640)
    os.replace(temporary, catalog)
    return catalog


def prune_versions(versions: Path, keep: int, current: Path) -> None:
    """Delete all but the newest `keep` versions (never the current one)."""
    finished = sorted(
        (p for p in versions.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name
    )
    for old in finished[:-keep]:
        if old.resolve() != current.resolve():
            shutil.rmtree(old, ignore_errors=True)


def current_version(paths: DataPaths) -> str | None:
    return os.path.basename(os.readlink(paths.current)) if paths.current.is_symlink() else None


def _literal(value: str) -> str:
    """A SQL string literal (COPY targets and view locations cannot be bound parameters)."""
    return "'" + value.replace("'", "''") + "'"


def _set_permissions(root: Path) -> None:
    """Restricted and ops files are not world-readable; open files are."""
    os.chmod(root, 0o755)
    for tier, (dir_mode, file_mode) in TIER_MODES.items():
        folder = root / tier
        os.chmod(folder, dir_mode)
        for path in folder.rglob("*"):
            os.chmod(path, dir_mode if path.is_dir() else file_mode)


def _fsync_tree(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    fd = os.open(root, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
