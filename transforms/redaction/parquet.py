"""Parquet: rewritten with the same schema, metadata and compression; the person's rows all-null."""

from __future__ import annotations

import io
from collections.abc import Hashable
from typing import Any

from ._common import (
    Layout,
    Matcher,
    MentionFinder,
    Redaction,
    RedactionError,
)

# --- Parquet --------------------------------------------------------------------------------------


def redact_parquet(
    data: bytes, name: str, layout: Layout, matcher: Matcher, mentions: MentionFinder | None
) -> Redaction:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(io.BytesIO(data))
        table = parquet.read()
    except Exception as error:  # pyarrow raises several error types for a damaged file
        raise RedactionError(f"not a readable Parquet file: {error}") from None
    columns = matcher.columns({n: n for n in table.column_names})
    texts = {n: _arrow_texts(table.column(n)) for n in table.column_names}
    person_rows = []
    if columns is not None:
        for index in range(table.num_rows):
            cells: dict[Hashable, str] = {n: texts[n][index] for n in table.column_names}
            if matcher.is_person(columns, cells, f"row {index + 1}"):
                person_rows.append(index)
    replaced = 0
    new_columns = []
    blanked = set(person_rows)
    mask = pa.array([i in blanked for i in range(table.num_rows)], type=pa.bool_())
    for index in range(table.num_columns):
        column = table.column(index)
        if person_rows:
            column = pc.if_else(mask, pa.scalar(None, type=column.type), column)
        if mentions is not None and (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            values = column.to_pylist()
            cache: dict[str, tuple[str, int]] = {}
            edited = False
            for position, value in enumerate(values):
                if value is None or not mentions.might_mention(value):
                    continue
                if value not in cache:
                    cache[value] = mentions.redact(value)
                new, n = cache[value]
                if n:
                    values[position] = new
                    replaced += n
                    edited = True
            if edited:
                column = pa.chunked_array([pa.array(values, type=column.type)])
        new_columns.append(column)
    if not person_rows and not replaced:
        return matcher.result(data)
    schema = pa.schema([f.with_nullable(True) for f in table.schema], metadata=table.schema.metadata)
    redacted = pa.Table.from_arrays(new_columns, schema=schema)
    metadata = parquet.metadata
    codec = (
        metadata.row_group(0).column(0).compression.lower()
        if metadata.num_row_groups and metadata.num_columns
        else "none"
    )
    rows_per_group = max((metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)), default=0)
    out = io.BytesIO()
    pq.write_table(
        redacted, out, compression=codec if codec != "uncompressed" else "none", row_group_size=rows_per_group or None
    )
    return matcher.result(out.getvalue(), replaced)


def _arrow_texts(column: Any) -> list[str]:
    """A column's values as the Parquet reader gives them as text (dates ISO, integers without `.0`)."""
    import pyarrow as pa

    out = []
    date = pa.types.is_date(column.type)
    for value in column.to_pylist():
        if value is None:
            out.append("")
        elif date:
            out.append(value.isoformat())
        elif isinstance(value, float) and value.is_integer():
            out.append(str(int(value)))
        elif isinstance(value, bool):
            out.append("true" if value else "false")
        else:
            out.append(str(value))
    return out
