"""What each published table looks like as DuckDB sees it, on an empty warehouse (the ground truth the
docs and datapackage tests compare against)."""

from __future__ import annotations

import duckdb

from transforms.disclosure import DisclosureRule
from warehouse.marts import Mart, marts
from warehouse.schema import create_schema


def described_marts() -> dict[str, list[tuple[str, str]]]:
    """Each mart's (column, type) list: a SQL mart DESCRIBEd, a built mart's frame seen through DuckDB."""
    con = duckdb.connect()
    create_schema(con)
    found = {m.name: _describe(con, m) for m in marts()}
    con.close()
    return found


def _describe(con: duckdb.DuckDBPyConnection, mart: Mart) -> list[tuple[str, str]]:
    if mart.build is None:
        return [(r[0], r[1]) for r in con.execute(f"DESCRIBE {mart.sql}").fetchall()]
    frame = mart.build(con, DisclosureRule())[mart.name]  # noqa: F841 (read by DuckDB's replacement scan)
    return [(r[0], r[1]) for r in con.execute("DESCRIBE SELECT * FROM frame").fetchall()]
