"""The catalog readers open: a small DuckDB file of views over the current Parquet, one schema per tier
(`open`, `restricted`, `ops`; unqualified names too), with a comment on every table and column.

It is rebuilt aside and renamed over the old one, so a reader never sees it half-written, and it
holds no data of its own: opening it read-only never blocks a run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from din.paths import DataPaths
from din.sql import literal, quote
from warehouse.marts import TIERS, Mart


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
            location = literal(str(paths.current / mart.relative_path))
            con.execute(f"CREATE VIEW {quote(mart.tier)}.{quote(mart.name)} AS SELECT * FROM read_parquet({location})")
            con.execute(f"CREATE VIEW main.{quote(mart.name)} AS SELECT * FROM {quote(mart.tier)}.{quote(mart.name)}")
            con.execute(f"COMMENT ON VIEW {quote(mart.tier)}.{quote(mart.name)} IS {literal(mart.description)}")
            columns = con.sql(f"DESCRIBE {quote(mart.tier)}.{quote(mart.name)}").fetchall()
            for column, *_ in columns:
                meaning = mart.column_doc(column).meaning
                con.execute(
                    f"COMMENT ON COLUMN {quote(mart.tier)}.{quote(mart.name)}.{quote(column)} IS {literal(meaning)}"
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
