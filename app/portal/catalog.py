"""The catalog for report authors: every published table a token may read, with its description,
its columns (type, meaning, disclosure rule), row count, version and date, a preview, and the code
to read it from DuckDB, polars and R.

Only the tiers of the visitor's token are listed (readers: open; restricted tokens: open and
restricted); the operations tier, which names every organisation's files, is never offered here.
Tables are found by name among the definitions (`warehouse.marts`), never by a path from the URL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from din.paths import DataPaths
from warehouse.mart_files import scan_table, table_schema
from warehouse.marts import PSEUDONYM_COLUMN, Mart, found_marts

PORTAL_TIERS = ("open", "restricted")
PREVIEW_ROWS = 20


@dataclass(frozen=True)
class Release:
    """The published version readers see now."""

    version: str
    published_at: str
    disclosure_rule: str
    notice: str


@dataclass(frozen=True)
class TableEntry:
    mart: Mart
    path: Path
    rows: int

    @property
    def name(self) -> str:
        return self.mart.name

    @property
    def tier(self) -> str:
        return self.mart.tier


@dataclass(frozen=True)
class ColumnEntry:
    name: str
    type: str
    meaning: str
    allowed: str
    unit: str
    disclosure: str


def release(paths: DataPaths) -> Release | None:
    manifest = paths.current / "ops" / "publish.json"
    if not manifest.is_file():
        return None
    data = json.loads(manifest.read_text(encoding="utf-8"))
    when = datetime.fromtimestamp(manifest.stat().st_mtime, UTC).strftime("%d %B %Y, %H:%M UTC")
    return Release(
        str(data.get("version", "")), when, str(data.get("disclosure_rule", "")), str(data.get("notice", ""))
    )


def tables(paths: DataPaths, tiers: tuple[str, ...]) -> list[TableEntry]:
    """The published tables of `tiers` (within the portal's tiers), in publication order."""
    found = []
    for mart in found_marts(paths.current):
        if mart.tier not in tiers or mart.tier not in PORTAL_TIERS:
            continue
        files = mart.relative_files(paths.current)
        if files:
            rows = sum(pq.read_metadata(paths.current / f).num_rows for f in files)
            found.append(TableEntry(mart, paths.current / mart.relative_path, rows))
    return found


def table(paths: DataPaths, tiers: tuple[str, ...], name: str) -> TableEntry | None:
    """The table called `name`, when the visitor's tiers include it (None otherwise: one 404 for both)."""
    return next((t for t in tables(paths, tiers) if t.name == name), None)


def columns(entry: TableEntry, rule: str) -> list[ColumnEntry]:
    schema = table_schema(entry.path)
    names = list(schema.names)
    found = []
    for field in schema:
        doc = entry.mart.column_doc(field.name)
        found.append(
            ColumnEntry(
                field.name,
                str(field.type),
                doc.meaning,
                doc.allowed,
                doc.unit,
                _disclosure(entry, field.name, names, rule),
            )
        )
    return found


def _disclosure(entry: TableEntry, column: str, names: list[str], rule: str) -> str:
    """How the column is protected, in a reader's words."""
    if column == PSEUDONYM_COLUMN:
        return "keyed pseudonym (HMAC-SHA256); no one can go back to the person without the key"
    if f"{column}_status" in names:
        return f"small counts suppressed ({rule}); `{column}_status` says why a cell is empty"
    if entry.mart.kind is not None and column in entry.mart.kind.free_text_columns:
        return "free text scrubbed of e-mails, phone numbers, postcodes, health numbers and roster names"
    if column.endswith("_status") or column in ("disclosure_rule", "total_by"):
        return "disclosure control: explains the suppression"
    return "restricted tier: row-level, for analysts with access" if entry.tier == "restricted" else "none needed"


def preview(entry: TableEntry, rows: int = PREVIEW_ROWS) -> tuple[list[str], list[list[Any]]]:
    frame = scan_table(entry.path).head(rows).collect()
    return frame.columns, [list(row) for row in frame.iter_rows()]


def code_snippets(entry: TableEntry, catalog: Path) -> dict[str, str]:
    """How to read the table: from the downloaded Parquet file, and from the catalog on the server."""
    file = f"{entry.name}.parquet"
    return {
        "DuckDB (downloaded file)": f"duckdb -c \"SELECT * FROM '{file}' LIMIT 10\"",
        # The catalog's views name their files relative to it: open it from its own folder (or set
        # file_search_path), as README says.
        "DuckDB (the catalog, on the data server)": (
            f'cd {catalog.parent} && duckdb -readonly {catalog.name} "SELECT * FROM {entry.tier}.{entry.name} LIMIT 10"'
        ),
        "Python, polars": f'import polars as pl\n\n{entry.name} = pl.read_parquet("{file}")',
        "Python, DuckDB": (
            "import duckdb\n\n"
            f'con = duckdb.connect("{catalog}", read_only=True)\n'
            f"con.execute(\"SET file_search_path = '{catalog.parent}'\")\n"
            f'{entry.name} = con.sql("SELECT * FROM {entry.tier}.{entry.name}").pl()'
        ),
        "R, arrow": f'library(arrow)\n{entry.name} <- read_parquet("{file}")',
    }
