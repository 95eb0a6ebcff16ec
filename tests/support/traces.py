"""Search everything a data folder holds for traces of a person: every file (landing copies, published
versions, the catalog, reports, Prefect's database, the erasure register), read the way its format
needs (zip members of a workbook, rows of a Parquet file or a DuckDB database), and optionally a bucket."""

from __future__ import annotations

import io
import sqlite3
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import duckdb
import pyarrow.parquet as pq


def traces(root: Path, needles: Sequence[str], extra: Iterable[tuple[str, bytes]] = ()) -> list[str]:
    """`where: needle` for every needle found (case-insensitively) under `root` and in `extra` (name, bytes)."""
    found = []
    wanted = [n.casefold() for n in needles if n]
    for where, text in _texts(root, extra):
        folded = text.casefold()
        found += [f"{where}: {needle}" for needle, key in zip(needles, wanted, strict=True) if key in folded]
    return sorted(set(found))


def _texts(root: Path, extra: Iterable[tuple[str, bytes]]) -> Iterator[tuple[str, str]]:
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        yield from _file_texts(str(path.relative_to(root)), path, path.read_bytes())
    for name, data in extra:
        yield from _file_texts(name, None, data)


def _file_texts(where: str, path: Path | None, data: bytes) -> Iterator[tuple[str, str]]:
    yield where, data.decode("utf-8", errors="replace")
    yield where + " (cp1252)", data.decode("cp1252", errors="replace")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        yield where + " (utf-16)", data.decode("utf-16", errors="replace")
    if data.startswith(b"PK\x03\x04"):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for member in archive.namelist():
                yield f"{where}!{member}", archive.read(member).decode("utf-8", errors="replace")
    if data.startswith(b"PAR1"):
        table = pq.read_table(io.BytesIO(data))
        yield where + " (rows)", str(table.to_pylist()) + str(table.schema.metadata)
    if path is not None and data.startswith(b"SQLite format 3"):
        yield from _sqlite(where, path)
    if path is not None and path.suffix == ".duckdb":
        yield where + " (tables)", _duckdb(path)


def _sqlite(where: str, path: Path) -> Iterator[tuple[str, str]]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            rows = con.execute(f'SELECT * FROM "{table}"').fetchall()
            yield f"{where}!{table}", "\n".join(map(str, rows))
    finally:
        con.close()


def _duckdb(path: Path) -> str:
    con = duckdb.connect(str(path), read_only=True)
    try:
        parts = []
        for schema, table in con.sql("SELECT schema_name, table_name FROM duckdb_tables()").fetchall():
            parts.append(str(con.sql(f'SELECT * FROM "{schema}"."{table}"').fetchall()))
        for schema, view in con.sql("SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal").fetchall():
            try:
                parts.append(str(con.sql(f'SELECT * FROM "{schema}"."{view}"').fetchall()))
            except duckdb.Error:
                parts.append(f"(view {schema}.{view} unreadable)")
        return "\n".join(parts)
    finally:
        con.close()
