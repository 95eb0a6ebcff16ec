"""Frames written to a Parquet file one after another, so that a large delivery is held on disk, a chunk
in memory at a time (`expectations.gate`: a large delivery's protected rows)."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq


class SpillFile:
    """One Parquet file, a row group per appended frame. Every frame must have the first one's columns;
    their types are cast to the first one's (a chunk whose column is all empty may read as another type)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None

    def append(self, frame: pl.DataFrame) -> None:
        table = frame.to_arrow()
        if self._writer is None or self._schema is None:
            self._schema = table.schema
            self._writer = pq.ParquetWriter(self.path, table.schema, compression="lz4")
        elif table.schema != self._schema:
            if table.schema.names != self._schema.names:
                raise ValueError(
                    f"{self.path.name}: a chunk's columns {table.schema.names} differ from the first chunk's "
                    f"{self._schema.names}"
                )
            table = table.cast(self._schema)
        self._writer.write_table(table)
        self.rows += frame.height

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    @property
    def written(self) -> bool:
        return self._schema is not None

    def __enter__(self) -> SpillFile:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
