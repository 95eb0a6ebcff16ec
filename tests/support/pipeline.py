"""Run the real flows on a test network and read what they published (helpers shared by the flow tests)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from tests.support.network import environment


def run(network, accept_drop: bool = False, **env: str) -> dict:
    from flows.consolidate import consolidate

    with environment(**env):
        return consolidate(config_path=str(network.config), accept_drop=accept_drop)


def published(network) -> dict[str, pl.DataFrame]:
    return published_tables(network.data_dir / "published" / "current")


def published_tables(version_dir: Path) -> dict[str, pl.DataFrame]:
    """Every table a published version holds, by name (a partitioned table's files read as one)."""
    from warehouse.marts import found_marts

    return {
        m.name: read_published(version_dir, m.name) for m in found_marts(version_dir) if m.relative_files(version_dir)
    }


def write_published(version_dir: Path, name: str, frame: pl.DataFrame) -> None:
    """Replace one published table of `version_dir` by `frame`, in the table's layout (a partitioned table:
    one folder per value of its partition column, the column in the folder name; a table in buckets: one
    file): for tests that alter
    what a report or an export reads."""
    import shutil

    from warehouse.marts import PART_FILE, mart

    table = mart(name).as_found(version_dir)
    location = version_dir / table.relative_path
    if not table.partition_by:
        frame.write_parquet(location)
        return
    shutil.rmtree(location)
    if table.buckets:  # every row in one bucket's file: readers take the folder's files as the table
        location.mkdir()
        frame.write_parquet(location / table.bucket_file(0))
        return
    for (value,), part in frame.partition_by(table.partition_by, as_dict=True).items():
        target = location / table.partition_folder(value) / PART_FILE
        target.parent.mkdir(parents=True)
        part.drop(table.partition_by).write_parquet(target)


def read_published(version_dir: Path, name: str) -> pl.DataFrame:
    """One published table of `version_dir` (a version folder, or `published/current`) as din reads it."""
    from warehouse.mart_files import scan_table
    from warehouse.marts import mart

    return scan_table(version_dir / mart(name).as_found(version_dir).relative_path).collect()


def content(tables: dict[str, pl.DataFrame], ignore: tuple[str, ...] = ("run_id",)) -> dict[str, list]:
    """Published rows, sorted, without columns that name the run (for comparing runs)."""
    out = {}
    for name, frame in tables.items():
        if name in ("runs", "validation_results", "deliveries", "quarantine"):
            continue
        kept = frame.drop([c for c in ignore if c in frame.columns])
        out[name] = sorted(map(str, kept.rows()))
    return out


def rebuild(network, **env: str) -> dict:
    from flows.rebuild import rebuild as flow

    with environment(**env):
        return flow(config_path=str(network.config))


def duckdb_text(path: Path) -> str:
    con = duckdb.connect(str(path), read_only=True)
    con.execute(f"SET file_search_path = '{path.parent}'")  # the catalog's views are relative to its folder
    tables = con.sql("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()
    tables += [
        (s, v) for s, v in con.sql("SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal").fetchall()
    ]
    parts = []
    for schema, table in tables:
        rows = con.sql(f'SELECT * FROM "{schema}"."{table}"').fetchall()
        parts.append("\n".join(map(str, rows)))
    con.close()
    return "\n".join(parts)
