"""The published tables as data: their columns as written to Parquet, and the Frictionless
`datapackage.json` that describes every file of a published version (types, meanings, units, keys,
and the SHA-256 a reader can check a download against)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pyarrow as pa

from transforms.disclosure import DisclosureRule
from warehouse.mart_files import table_query, table_schema, write_mart
from warehouse.marts import SCHEMA_VERSION, Mart, found_marts, marts
from warehouse.schema import create_schema
from warehouse.verify import file_sha256


@dataclass(frozen=True)
class PublishedColumn:
    """A published column as it lands in Parquet."""

    name: str
    sql_type: str
    parquet_type: str


def published_columns(rule: DisclosureRule | None = None) -> dict[str, list[PublishedColumn]]:
    """Each mart's columns as published: built on an empty in-memory warehouse, written to Parquet, and
    read back (the type is the one the catalog's views show)."""
    con = duckdb.connect()
    try:
        create_schema(con)
        with tempfile.TemporaryDirectory() as folder:
            return {m.name: _columns_of(con, m, Path(folder), rule or DisclosureRule()) for m in marts()}
    finally:
        con.close()


def _columns_of(
    con: duckdb.DuckDBPyConnection, mart: Mart, folder: Path, rule: DisclosureRule
) -> list[PublishedColumn]:
    (folder / mart.tier).mkdir(parents=True, exist_ok=True)
    write_mart(con, mart, folder / mart.relative_path, rule)
    described = con.execute(f"DESCRIBE {table_query(folder, mart)}").fetchall()
    schema = table_schema(folder / mart.relative_path)
    return [PublishedColumn(row[0], row[1], str(schema.field(row[0]).type)) for row in described]


FRICTIONLESS_TYPES = {
    "VARCHAR": "string",
    "BIGINT": "integer",
    "INTEGER": "integer",
    "DOUBLE": "number",
    "DATE": "date",
    "TIMESTAMP": "datetime",
    "BOOLEAN": "boolean",
}


def frictionless_type(sql_type: str) -> str:
    """The Frictionless field type of a DuckDB column type."""
    return "array" if sql_type.endswith("[]") else FRICTIONLESS_TYPES[sql_type]


def arrow_frictionless_type(arrow_type: pa.DataType) -> str:
    """The Frictionless field type of a Parquet (Arrow) column type."""
    checks = (
        (pa.types.is_list, "array"),
        (pa.types.is_large_list, "array"),
        (pa.types.is_string, "string"),
        (pa.types.is_large_string, "string"),
        (pa.types.is_boolean, "boolean"),
        (pa.types.is_integer, "integer"),
        (pa.types.is_floating, "number"),
        (pa.types.is_date, "date"),
        (pa.types.is_timestamp, "datetime"),
    )
    return next((name for check, name in checks if check(arrow_type)), "any")


class TableFile(Protocol):
    """A written table (e.g. `warehouse.publish.PublishedTable`): its mart name, tier and relative path."""

    @property
    def name(self) -> str: ...

    @property
    def tier(self) -> str: ...

    @property
    def path(self) -> str: ...


def _constraints(mart: Mart, name: str) -> dict[str, Any]:
    kind = mart.kind
    if kind is None or name not in kind.column_names:
        return {}
    column = kind.column(name)
    constraints: dict[str, Any] = {}
    if column.allowed:
        constraints["enum"] = list(column.allowed)
    if column.minimum is not None:
        constraints["minimum"] = _json_number(column.minimum)
    if column.maximum is not None:
        constraints["maximum"] = _json_number(column.maximum)
    return constraints


def _json_number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _field(mart: Mart, field: pa.Field) -> dict[str, Any]:
    doc = mart.column_doc(field.name)
    descriptor: dict[str, Any] = {
        "name": field.name,
        "type": arrow_frictionless_type(field.type),
        "description": doc.meaning,
    }
    if doc.unit:
        descriptor["unit"] = doc.unit
    constraints = _constraints(mart, field.name)
    if constraints:
        descriptor["constraints"] = constraints
    return descriptor


def _resource(version_dir: Path, mart: Mart, table: TableFile, known: Mapping[str, str]) -> dict[str, Any]:
    """One table's resource. A partitioned table's `path` lists its files (Frictionless' multipart data)
    and `parts` gives each file's partition value and SHA-256; a single file has `path` and `hash`."""
    files = mart.relative_files(version_dir)
    schema: dict[str, Any] = {"fields": [_field(mart, f) for f in table_schema(version_dir / mart.relative_path)]}
    key = mart.key
    if key:
        schema["primaryKey"] = list(key)
    resource: dict[str, Any] = {"name": table.name, "path": table.path}
    if mart.partition_by:
        resource["path"] = files
        resource["bucketed_by" if mart.buckets else "partitioned_by"] = mart.partition_by
    resource |= {
        "format": "parquet",
        "mediatype": "application/vnd.apache.parquet",
        "description": mart.description,
        "tier": table.tier,
    }
    if mart.partition_by:
        resource["parts"] = [{"path": f, "hash": known.get(f) or file_sha256(version_dir / f)} for f in files]
    else:
        resource["hash"] = known.get(table.path) or file_sha256(version_dir / table.path)
    resource["schema"] = schema
    return resource


def datapackage_descriptor(
    version_dir: Path,
    tables: Sequence[TableFile],
    version: str | None = None,
    known_hashes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The Frictionless descriptor of the Parquet files of one published version (default: the folder's name).

    `known_hashes` gives the SHA-256 of files already verified (hard links to the previous version's files,
    checked against its datapackage.json before linking), so that they are not read again."""
    by_name = {m.name: m for m in found_marts(version_dir)}
    return {
        "name": "din-engagement",
        "title": "DIN public engagement panel: published tables",
        "description": "Tidy Parquet published by din-engagement; see docs/data-dictionary.md.",
        "schema_version": SCHEMA_VERSION,
        "published_version": version or version_dir.name,
        "resources": [_resource(version_dir, by_name[t.name], t, known_hashes or {}) for t in tables],
    }


def write_datapackage(
    version_dir: Path,
    tables: Sequence[TableFile],
    version: str | None = None,
    known_hashes: Mapping[str, str] | None = None,
) -> Path:
    """Write `datapackage.json` describing every published Parquet file of `version_dir`.

    `version` names the published version when `version_dir` is not yet named after it (publish writes
    into a `.<version>.partial` folder before renaming it); `known_hashes` as for `datapackage_descriptor`.
    """
    target = version_dir / "datapackage.json"
    descriptor = datapackage_descriptor(version_dir, tables, version, known_hashes)
    text = json.dumps(descriptor, indent=2, ensure_ascii=False)
    target.write_text(text + "\n", encoding="utf-8")
    return target
