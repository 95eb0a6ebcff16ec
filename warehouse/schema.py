"""The warehouse's tables, generated from the contract: staging (every accepted row of every
delivery) and core (one row per natural key, the latest delivery winning)."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from din.contract import KINDS, Kind
from din.sql import quote

SQL_DIR = Path(__file__).with_name("sql")
PROVENANCE = (
    ("delivery_id", "BIGINT NOT NULL"),
    ("source_row", "BIGINT"),
)


def connect(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse file (creating its folder), with settings that keep memory bounded."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    # Bounded memory: big merges spill to <warehouse>.tmp instead of growing past the limit.
    con.execute(f"SET memory_limit = '{os.environ.get('DIN_DUCKDB_MEMORY_LIMIT', '1GB')}'")
    con.execute("SET preserve_insertion_order = false")
    return con


def sql_file(name: str) -> str:
    return (SQL_DIR / name).read_text(encoding="utf-8")


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create every schema, sequence and table that does not exist yet."""
    con.execute(sql_file("ops.sql"))
    for kind in KINDS.values():
        con.execute(staging_ddl(kind))
        con.execute(core_ddl(kind))


def _columns(kind: Kind) -> list[str]:
    return [f"{quote(c.name)} {c.sql_type}" for c in kind.stored_columns]


def staging_ddl(kind: Kind) -> str:
    """stg.<kind>: every accepted row of every delivery not yet superseded."""
    columns = _columns(kind) + [f"{quote(n)} {t}" for n, t in PROVENANCE]
    return f"CREATE TABLE IF NOT EXISTS stg.{quote(kind.name)} ({', '.join(columns)})"


def core_ddl(kind: Kind) -> str:
    """core.<kind>: one row per natural key, with every delivery that held it."""
    columns = _columns(kind) + [f"{quote(n)} {t}" for n, t in PROVENANCE] + ['"delivery_ids" BIGINT[]']
    return f"CREATE TABLE IF NOT EXISTS core.{quote(kind.name)} ({', '.join(columns)})"


def core_rebuild_sql(kind: Kind) -> str:
    """Rebuild core.<kind> from staging: per natural key, the row of the latest delivery wins, and
    the key remembers every delivery that carried it (the same row from two sources is stored once)."""
    key = ", ".join(quote(c) for c in kind.key)
    stored = ", ".join(quote(c.name) for c in kind.stored_columns)
    # Almost every key is held by one staged row: only keys held by several rows need the window
    # functions (ranking, collecting delivery ids), which are the expensive part at scale.
    return f"""
        CREATE OR REPLACE TABLE core.{quote(kind.name)} AS
        WITH repeated AS (
            SELECT {key} FROM stg.{quote(kind.name)} GROUP BY {key} HAVING count(*) > 1
        ), single AS (
            SELECT {stored}, "delivery_id", "source_row", ["delivery_id"] AS "delivery_ids"
            FROM stg.{quote(kind.name)} ANTI JOIN repeated USING ({key})
        ), ranked AS (
            SELECT {stored}, "delivery_id", "source_row",
                   row_number() OVER (PARTITION BY {key} ORDER BY "delivery_id" DESC, "source_row" DESC) AS _rank,
                   list(DISTINCT "delivery_id") OVER (PARTITION BY {key}) AS "delivery_ids"
            FROM stg.{quote(kind.name)} SEMI JOIN repeated USING ({key})
        )
        SELECT * FROM single
        UNION ALL
        SELECT {stored}, "delivery_id", "source_row", list_sort("delivery_ids") AS "delivery_ids"
        FROM ranked
        WHERE _rank = 1
    """
