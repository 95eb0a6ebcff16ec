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
pyarrow reads that file's schema back, so the serialised schema cannot disagree with the written file in
names, types or documentation. (It can in nullability: DuckDB marks a column REQUIRED in a file whose rows
hold no null, which the zero-row file cannot know; readers take either.)

A table split into buckets (`Mart.buckets`) is a folder of plain files, each with every column and the
same documentation. A hive-partitioned table (`Mart.partition_by` alone) is the standard hive layout: one
file per partition value in a folder `panel_id=<value>` (percent-encoded), the partition column in the
folder name and not in the file. That is the one layout every reader takes as one table without options:
a partition column kept in the files as well is refused by pyarrow datasets and R's arrow (string against
the dictionary type they give folder values) or, typed as a dictionary, by pandas the other way round.
The partition column is the table's first column (write_mart checks it); its documentation rides in the
file metadata (`din.partition_by`, `din.partition_field`), and `table_schema` puts it back in its place.
An empty partitioned table is one zero-row `part-0.parquet` in its folder, holding every column.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from din.sql import literal, quote
from warehouse.marts import NULL_PARTITION, PART_FILE, SCHEMA_VERSION, Mart, table_files, tier_audience

ARROW_SCHEMA_KEY = "ARROW:schema"
PARTITIONED_WRITE_MEMORY = "256MB"  # DuckDB's memory for writing a partitioned table (DIN_PUBLISH_MEMORY_LIMIT)
PANDAS_KEY = "pandas"
BUCKET_COLUMN = "__din_bucket"  # the bucket of each row while a table in buckets is written (not in the files)
BUCKET_BATCH_ROWS = 250_000  # rows split into buckets at a time (a batch of a million: 2 GB of RSS at L)
FEW_BUCKETS = 4  # buckets to write from one scan of the table and a COPY each (more: split in one pass)
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
    """`schema` with every field's documentation and the file's metadata attached. A partitioned table's
    partition column, when `schema` lacks it (a partition's file), is described in the file metadata."""
    metadata = file_metadata(mart, release)
    demo = metadata.get(PREFIX + "demo") == "true"
    fields = [f.with_metadata(field_metadata(mart, f.name, demo)) for f in schema]
    if mart.partition_by and mart.partition_by not in schema.names:
        metadata[PREFIX + "partition_by"] = mart.partition_by
        metadata[PREFIX + "partition_field"] = json.dumps(field_metadata(mart, mart.partition_by, demo))
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


def partition_of(file: Path, folder: Path) -> tuple[str, str | None] | None:
    """(column, value) of a partition's file from its folder name; None for a file at the folder's top."""
    relative = file.relative_to(folder).parts
    if len(relative) < 2 or "=" not in relative[0]:
        return None
    column, encoded = relative[0].split("=", 1)
    return column, None if encoded == NULL_PARTITION else unquote(encoded)


def table_schema(location: Path) -> pa.Schema:
    """The Arrow schema of a published table as a whole (a partitioned table's column in its place, first,
    as text, with its documentation), with the file's metadata."""
    files = table_files(location)
    if not files:
        raise FileNotFoundError(f"{location}: no Parquet files (not published?)")
    schema = pq.read_schema(files[0])
    partition = partition_of(files[0], location)
    if partition is None:
        return schema
    metadata = {k.decode(): v.decode() for k, v in (schema.metadata or {}).items()}
    column = metadata.get(PREFIX + "partition_by", partition[0])
    documentation = json.loads(metadata.get(PREFIX + "partition_field", "{}"))
    return schema.insert(0, pa.field(column, pa.string(), metadata=documentation))


def scan_table(location: Path) -> pl.LazyFrame:
    """A published table (a file or a partitioned table's folder) as one frame in its published column order,
    a partition column as text whatever its values look like."""
    files = table_files(location)
    if not files:
        raise FileNotFoundError(f"{location}: no Parquet files (not published?)")
    partition = partition_of(files[0], location)
    if partition is None:
        return pl.scan_parquet(files, hive_partitioning=False)
    column = partition[0]
    frame = pl.scan_parquet(location, hive_partitioning=True, hive_schema={column: pl.String})
    return frame.select(column, pl.exclude(column))


def one_file(location: Path, folder: Path) -> Path:
    """A published table as one Parquet file: the file itself, or a partitioned table's files as one file in
    `folder`, the partition column in its place and the documentation (file and field metadata) kept."""
    files = table_files(location)
    if not location.is_dir():
        return location
    schema = table_schema(location)
    parts = []
    for file in files:
        table = pq.read_table(file)
        partition = partition_of(file, location)
        if partition is not None:
            table = table.add_column(0, schema.field(0), pa.array([partition[1]] * table.num_rows, pa.string()))
        parts.append(table.cast(schema))
    out = folder / f"{location.name}.parquet"
    pq.write_table(pa.concat_tables(parts) if parts else schema.empty_table(), out, compression="zstd")
    return out


def read_documentation(path: Path) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """A published table's `din.*` metadata (keys without the prefix) and each column's field metadata (of
    a partitioned table's folder: from its first file, as every file says the same)."""
    schema = table_schema(path)
    metadata = {k.decode(): v.decode() for k, v in (schema.metadata or {}).items()}
    table = {k.removeprefix(PREFIX): v for k, v in metadata.items() if k.startswith(PREFIX)}
    columns = {f.name: {k.decode(): v.decode() for k, v in (f.metadata or {}).items()} for f in schema}
    return table, columns


def table_query(version_dir: Path, mart: Mart, base: Path | None = None, files: Sequence[str] | None = None) -> str:
    """A query over one published table of `version_dir` in its published column order, naming its files
    under `base` (default: `version_dir`; the catalog names them relative to its folder). A partitioned
    table's column comes from the folder names, as text. `files`: `mart.relative_files(version_dir)`, when
    the caller has listed them already (thousands for a partitioned table)."""
    base = version_dir if base is None else base
    files = mart.relative_files(version_dir) if files is None else list(files)
    if not mart.partition_by or files == [f"{mart.relative_path}/{PART_FILE}"]:
        location = base / (files[0] if files else mart.relative_path)
        return f"SELECT * FROM read_parquet({literal(str(location))})"
    if not mart.hive:  # bucket files: every column in every file
        return f"SELECT * FROM read_parquet({literal(mart.scan_path(base))}, hive_partitioning = false)"
    column = quote(mart.partition_by)
    options = f"hive_partitioning = true, hive_types = {{{literal(mart.partition_by)}: VARCHAR}}"
    return f"SELECT {column}, * EXCLUDE ({column}) FROM read_parquet({literal(mart.scan_path(base))}, {options})"


#: Frames an aggregate builder made for other tables than the one asked for (a table and its totals come
#: from one computation), kept by `write_mart` until their table is written; one per publish.
Built = dict[str, Any]


def write_mart(
    con: Any,
    mart: Mart,
    target: Path,
    rule: Any,
    release: Mapping[str, Any] | None = None,
    built: Built | None = None,
    partitions: Sequence[Any] | None = None,
) -> None:
    """Write one mart to `target` as zstd Parquet with its documentation in the file (see the module doc).

    `release` describes the version (`warehouse.publish.release_metadata`: demo flag, notice, rule);
    `built` carries the frames of tables built together between calls (pass the same dict for every mart
    of one publish, or none); `partitions`, for a partitioned table, the values of the partitions (of a
    table in buckets, the buckets' numbers) to write (the others are the caller's: linked from the previous
    version), default all."""
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
        scratch = target.with_name(f".{target.name}.schema")
        schema = written_schema(con, f"SELECT * FROM {query}", scratch)
        if mart.partition_by is None:
            options = _copy_options(key_value_metadata(schema, mart, release))
            con.execute(f"COPY (SELECT * FROM {query}) TO {literal(str(target))} ({options})")
        else:
            if schema.names[0] != mart.partition_by:
                raise ValueError(f"{mart.name}: the partition column {mart.partition_by} must be its first column")
            target.mkdir(parents=True, exist_ok=True)
            (has_rows,) = con.execute(f"SELECT count(*) > 0 FROM (SELECT 1 FROM {query} LIMIT 1)").fetchall()[0]
            if not has_rows:  # an empty table: one zero-row file holding every column
                options = _copy_options(key_value_metadata(schema, mart, release))
                con.execute(f"COPY (SELECT * FROM {query}) TO {literal(str(target / PART_FILE))} ({options})")
            elif mart.buckets:
                picked = None if registered else mart.rows_where
                write_buckets(con, mart, query, target, schema, partitions, release, picked)
            elif partitions is None or partitions:
                # a partition's file: the column is its folder's name
                options = _copy_options(key_value_metadata(schema.remove(0), mart, release))
                write_partitions(con, mart, query, target, options, partitions)
    finally:
        if registered:
            con.unregister("_built_mart")


def _copy_options(metadata: Mapping[str, str]) -> str:
    pairs = ", ".join(f"{literal(k)}: {literal(v)}" for k, v in metadata.items())
    return f"FORMAT parquet, COMPRESSION zstd, KV_METADATA {{{pairs}}}"


def write_buckets(
    con: Any,
    mart: Mart,
    query: str,
    folder: Path,
    schema: pa.Schema,
    only: Sequence[int] | None = None,
    release: Mapping[str, Any] | None = None,
    picked: Callable[[str], str] | None = None,
) -> None:
    """Write `query`'s rows into `folder` as `part-<bucket>.parquet`, one file per bucket that holds rows
    (`Mart.bucket_sql`), or for the buckets `only`; `schema` is the written schema (`written_schema`),
    documented in every file for `release` as a single file is. `picked(condition)`, when given, is the
    query of the rows that meet a condition (`Mart.rows_where`: picked where the table reads them), else
    `query` filtered.

    Every file is written by DuckDB's COPY, as single files are (the same encoding: pyarrow's files of
    the same rows were 1.9 times the size). A few buckets (a delivery's panels: `FEW_BUCKETS` or fewer)
    are gathered in one scan of the table and copied each (`_write_few_buckets`). More, and a first
    publish, are split in one pass first: DuckDB streams the rows with their bucket, and each batch's
    share of a bucket is appended to that bucket's scratch file (uncompressed, by pyarrow); each scratch
    file is then copied to its bucket's file. Measured at L (9.9M rows of responses, 64 buckets): 8.1 s
    and 0.9 GB of peak RSS, against 2.3 s for the table as one file, 16.8 s for a COPY per bucket from
    the table, 17.3 s for DuckDB's COPY with PARTITION_BY under its 256 MB (9.2 s and 2 GB under 1 GB),
    and 4.9 s and 2 GB for pyarrow writing the files themselves from batches of a million rows."""
    options = _copy_options(key_value_metadata(schema, mart, release or {}))
    if only is not None and len(only) <= FEW_BUCKETS:
        rows_where = picked or (lambda condition: f"SELECT * FROM {query} WHERE {condition}")
        _write_few_buckets(con, mart, rows_where, folder, [int(number) for number in only], options)
        return
    scratch = folder / ".buckets"
    scratch.mkdir()
    try:
        for name in _split_by_bucket(con, mart, query, scratch, only):
            source, target = literal(str(scratch / name)), literal(str(folder / name))
            con.execute(f"COPY (SELECT * FROM read_parquet({source})) TO {target} ({options})")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _write_few_buckets(
    con: Any, mart: Mart, rows_where: Callable[[str], str], folder: Path, numbers: list[int], options: str
) -> None:
    """A few buckets' files, each a COPY: of one bucket, from the table; of several, from their rows gathered in
    one scan of it (a scan of a big table costs more than copying its few buckets' rows: at L, 0.45 s against
    0.7 s for three of 64). `rows_where(condition)` is the query of the table's rows that meet a condition."""
    bucket = mart.bucket_sql()
    if len(numbers) == 1:
        _copy_bucket(con, folder / mart.bucket_file(numbers[0]), rows_where(f"{bucket} = ?"), options, numbers)
        return
    gathered = quote(f"{BUCKET_COLUMN}_rows")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {gathered} AS SELECT *, {bucket} AS {BUCKET_COLUMN} "
        f"FROM ({rows_where(f'{bucket} IN (SELECT unnest(?::INTEGER[]))')})",
        [numbers],
    )
    try:
        for number in numbers:
            query = f"SELECT * EXCLUDE ({BUCKET_COLUMN}) FROM {gathered} WHERE {BUCKET_COLUMN} = ?"
            _copy_bucket(con, folder / mart.bucket_file(number), query, options, [number])
    finally:
        con.execute(f"DROP TABLE IF EXISTS {gathered}")


def _copy_bucket(con: Any, target: Path, query: str, options: str, parameters: list[int]) -> None:
    """One bucket's file, unless the bucket holds no published rows (its panels' rows are all withheld: the
    fingerprints list every bucket the core table has rows in), as a split writes none for it either."""
    (written,) = con.execute(f"COPY ({query}) TO {literal(str(target))} ({options})", parameters).fetchall()[0]
    if not written:
        target.unlink()


def _split_by_bucket(con: Any, mart: Mart, query: str, scratch: Path, only: Sequence[int] | None) -> list[str]:
    """`query`'s rows (of the buckets `only`, default all) into one uncompressed file per bucket in `scratch`,
    in one pass, in the Arrow types DuckDB gives them (DuckDB reads them back, so they are its own); returns
    the files' names, sorted. Memory: a batch of `BUCKET_BATCH_ROWS` rows at a time."""
    bucket = mart.bucket_sql()
    where, params = ("", []) if only is None else (f" WHERE {bucket} IN (SELECT unnest(?::INTEGER[]))", [list(only)])
    relation = con.sql(f"SELECT *, {bucket} AS {BUCKET_COLUMN} FROM {query}{where}", params=params)
    writers: dict[int, pq.ParquetWriter] = {}
    try:
        for batch in relation.to_arrow_reader(BUCKET_BATCH_ROWS):
            if not batch.num_rows:
                continue
            buckets = batch.column(BUCKET_COLUMN)
            order = pc.sort_indices(buckets)
            rows = pa.Table.from_batches([batch]).drop_columns([BUCKET_COLUMN]).take(order)
            ordered = buckets.take(order).to_numpy()
            starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])  # where each bucket's rows begin
            ends = np.r_[starts[1:], len(ordered)]
            for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
                number = int(ordered[start])
                if number not in writers:
                    writers[number] = pq.ParquetWriter(
                        scratch / mart.bucket_file(number), rows.schema, compression="none"
                    )
                writers[number].write_table(rows.slice(start, end - start))
    finally:
        for writer in writers.values():
            writer.close()
    return sorted(mart.bucket_file(number) for number in writers)


def write_partitions(
    con: Any, mart: Mart, query: str, folder: Path, options: str, only: Sequence[Any] | None = None
) -> None:
    """Write `query`'s rows into `folder` as `<column>=<value>/part-0.parquet`, one per value of the partition
    column (the column in the folder name only), or for the values `only`.

    One COPY with DuckDB's PARTITION_BY writes every partition in one pass over the rows (a COPY per
    value would scan the table once per panel: thousands of scans at scale). DuckDB percent-encodes the
    value in the folder name as `Mart.partition_folder` does; folders already in `folder` (partitions
    linked from the previous version) are left as they are."""
    column = quote(str(mart.partition_by))
    where, params = ("", []) if only is None else (f" WHERE {column} IN (SELECT unnest(?))", [list(only)])
    partitioned = f"{options}, PARTITION_BY ({column}), FILENAME_PATTERN 'part-{{i}}', OVERWRITE_OR_IGNORE true"
    # A partitioned COPY holds each partition's rows until its file is written, up to the connection's
    # memory limit (the warehouse's 1 GB: +865 MB of RSS for a 200 MB delivery); a lower limit for the
    # write makes DuckDB spill to its temporary folder instead.
    (limit,) = con.execute("SELECT current_setting('memory_limit')").fetchone()
    con.execute(f"SET memory_limit = {literal(os.environ.get('DIN_PUBLISH_MEMORY_LIMIT', PARTITIONED_WRITE_MEMORY))}")
    try:
        con.execute(f"COPY (SELECT * FROM {query}{where}) TO {literal(str(folder))} ({partitioned})", params)
    finally:
        con.execute(f"SET memory_limit = {literal(limit)}")
