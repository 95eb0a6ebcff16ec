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
    current = network.data_dir / "published" / "current"
    return {p.stem: pl.read_parquet(p) for p in sorted(current.rglob("*.parquet"))}


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
