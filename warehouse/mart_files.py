"""Writing a published table's Parquet file, so that its documentation travels with it.

* File metadata (`din.*` keys): the table's name, tier and who it is for, its description and grain, the
  schema version, the disclosure rule, and whether it is demo output (with the notice to show).
* Field metadata, per column: its meaning, unit, valid values and an example, with the table's tier and
  the demo flag again (a column copied into another frame keeps its marking). Parquet has no field
  metadata of its own: readers built on Arrow (pyarrow, polars, pandas, R's arrow) take it from the
  `ARROW:schema` entry, the Arrow schema serialised in the file, which is what pyarrow itself writes.
* A `pandas` entry, so that `pandas.read_parquet` reads integer columns as nullable integers: a
  suppressed count is `<NA>` beside its status, not `NaN` in a column turned to floats.

The Arrow schema is the one the file will have: DuckDB writes the query's first zero rows to Parquet and
pyarrow reads that file's schema back, so the serialised schema cannot disagree with the written file.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from din.sql import literal
from warehouse.marts import SCHEMA_VERSION, Mart, tier_audience

ARROW_SCHEMA_KEY = "ARROW:schema"
PANDAS_KEY = "pandas"
PREFIX = "din."


def file_metadata(mart: Mart, release: Mapping[str, Any]) -> dict[str, str]:
    """The `din.*` key-value metadata of `mart`'s file, for a version described by `release`."""
    demo = bool(release.get("demo_key")) or release.get("mode") == "demo"
    entries = {
        "table": mart.name,
        "tier": mart.tier,
        "audience": tier_audience(mart.tier),
        "description": mart.description,
        "grain": mart.grain,
        "schema_version": str(SCHEMA_VERSION),
        "disclosure_rule": str(release.get("disclosure_rule") or ""),
        "demo": "true" if demo else "false",
        "notice": str(release.get("notice") or ""),
        "title": str(release.get("title") or ""),
    }
    return {PREFIX + k: v for k, v in entries.items() if v}


def field_metadata(mart: Mart, column: str, demo: bool) -> dict[str, str]:
    """One column's documentation (from its table's YAML, `_shared.yaml` or the contract)."""
    doc = mart.column_doc(column)
    entries = {
        "description": doc.meaning,
        "unit": doc.unit,
        "allowed": doc.allowed,
        "example": doc.example,
        "din.tier": mart.tier,
        "din.demo": "true" if demo else "false",
    }
    return {k: v for k, v in entries.items() if v}


def pandas_metadata(schema: pa.Schema) -> str:
    """pandas' own schema entry, naming a nullable integer dtype for every integer column."""
    columns = [
        {
            "name": f.name,
            "field_name": f.name,
            "pandas_type": str(f.type),
            "numpy_type": str(f.type).capitalize(),  # int64 -> Int64: pandas' nullable integer
            "metadata": None,
        }
        for f in schema
        if pa.types.is_integer(f.type)
    ]
    return json.dumps(
        {"index_columns": [], "column_indexes": [], "columns": columns, "creator": {"library": "din-engagement"}}
    )


def documented_schema(schema: pa.Schema, mart: Mart, release: Mapping[str, Any]) -> pa.Schema:
    """`schema` with every field's documentation and the file's metadata attached."""
    metadata = file_metadata(mart, release)
    demo = metadata.get(PREFIX + "demo") == "true"
    fields = [f.with_metadata(field_metadata(mart, f.name, demo)) for f in schema]
    return pa.schema(fields, metadata={**metadata, PANDAS_KEY: pandas_metadata(schema)})


def key_value_metadata(schema: pa.Schema, mart: Mart, release: Mapping[str, Any]) -> dict[str, str]:
    """Everything to write as the file's key-value metadata: `din.*`, `pandas` and `ARROW:schema`.

    pyarrow takes the schema-level metadata from the serialised schema when there is one, so the `din.*`
    and `pandas` entries are in both places (DuckDB's `parquet_kv_metadata` shows the plain entries)."""
    documented = documented_schema(schema, mart, release)
    serialised = base64.b64encode(documented.serialize().to_pybytes()).decode("ascii")
    plain = {k.decode(): v.decode() for k, v in (documented.metadata or {}).items()}
    return {**plain, ARROW_SCHEMA_KEY: serialised}


def written_schema(con: Any, query: str, scratch: Path) -> pa.Schema:
    """The Arrow schema pyarrow will read from DuckDB's Parquet file of `query` (zero rows written aside)."""
    try:
        con.execute(f"COPY (SELECT * FROM ({query}) LIMIT 0) TO {literal(str(scratch))} (FORMAT parquet)")
        return pq.read_schema(scratch)
    finally:
        scratch.unlink(missing_ok=True)


def read_documentation(path: Path) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """A published file's `din.*` metadata (keys without the prefix) and each column's field metadata."""
    schema = pq.read_schema(path)
    metadata = {k.decode(): v.decode() for k, v in (schema.metadata or {}).items()}
    table = {k.removeprefix(PREFIX): v for k, v in metadata.items() if k.startswith(PREFIX)}
    columns = {f.name: {k.decode(): v.decode() for k, v in (f.metadata or {}).items()} for f in schema}
    return table, columns


#: Frames an aggregate builder made for other tables than the one asked for (a table and its totals come
#: from one computation), kept by `write_mart` until their table is written; one per publish.
Built = dict[str, Any]


def write_mart(
    con: Any, mart: Mart, target: Path, rule: Any, release: Mapping[str, Any] | None = None, built: Built | None = None
) -> None:
    """Write one mart to `target` as zstd Parquet with its documentation in the file (see the module doc).

    `release` describes the version (`warehouse.publish.release_metadata`: demo flag, notice, rule);
    `built` carries the frames of tables built together between calls (pass the same dict for every mart
    of one publish, or none)."""
    release = release or {}
    query = f"({mart.sql})"
    registered = False
    if mart.build is not None:
        frames = built if built is not None else {}
        if mart.name not in frames:
            frames.update(mart.build(con, rule))
        con.register("_built_mart", frames.pop(mart.name).to_arrow())
        registered, query = True, "_built_mart"
    try:
        schema = written_schema(con, f"SELECT * FROM {query}", target.with_name(f".{target.name}.schema"))
        metadata = key_value_metadata(schema, mart, release)
        pairs = ", ".join(f"{literal(k)}: {literal(v)}" for k, v in metadata.items())
        con.execute(
            f"COPY (SELECT * FROM {query}) TO {literal(str(target))} "
            f"(FORMAT parquet, COMPRESSION zstd, KV_METADATA {{{pairs}}})"
        )
    finally:
        if registered:
            con.unregister("_built_mart")
