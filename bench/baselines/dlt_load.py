"""dlt: the filesystem source reads the response CSVs into a DuckDB destination (append).

    filesystem(bucket_url=file://.../responses, file_glob="*.csv") | reader  →  duckdb

`--reader arrow` (the default) is dlt's fastest documented CSV path, `read_csv_duckdb(use_pyarrow=True)`:
DuckDB parses each file and hands Arrow batches to dlt, which loads them without row-by-row
normalisation. `--reader pandas` is the plain `read_csv()` transformer, which turns every pandas chunk
into Python dicts and normalises row by row (about 8 minutes per million rows on 2 cores).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

READERS = ("arrow", "pandas")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="a generated data set")
    parser.add_argument("--out", type=Path, required=True, help="a fresh output folder")
    parser.add_argument("--reader", choices=READERS, default="arrow")
    parser.add_argument("--chunk-rows", type=int, default=100_000, help="rows per batch (arrow reader)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    os.environ.setdefault("DLT_DATA_DIR", str(args.out / "dlt-home"))

    import dlt
    from dlt.sources.filesystem import filesystem, read_csv, read_csv_duckdb

    from bench.baselines import report

    responses = (args.data / "deliveries" / "responses").resolve()
    files = filesystem(bucket_url=responses.as_uri(), file_glob="*.csv")
    pipeline = dlt.pipeline(
        pipeline_name="bench_responses",
        destination=dlt.destinations.duckdb(str(args.out / "dlt.duckdb")),
        dataset_name="partner",
        pipelines_dir=str(args.out / "pipelines"),
    )
    reader = read_csv() if args.reader == "pandas" else read_csv_duckdb(chunk_size=args.chunk_rows, use_pyarrow=True)
    pipeline.run((files | reader).with_name("responses"), write_disposition="append")
    with pipeline.sql_client() as client:
        rows = client.execute_sql("SELECT count(*) FROM responses")[0][0]
    report(rows_out=int(rows))


if __name__ == "__main__":
    main()
