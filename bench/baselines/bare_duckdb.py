"""Bare DuckDB: every response CSV to one Parquet file, nothing checked.

COPY (SELECT * FROM read_csv([all response files])) TO 'responses.parquet'
"""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb

from bench.baselines import report, response_files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="a generated data set")
    parser.add_argument("--out", type=Path, required=True, help="a fresh output folder")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / "responses.parquet"
    con = duckdb.connect()
    con.execute(
        "COPY (SELECT * FROM read_csv($files)) TO $target (FORMAT parquet)",
        {"files": response_files(args.data), "target": str(target)},
    )
    rows = con.execute("SELECT count(*) FROM read_parquet($t)", {"t": str(target)}).fetchall()[0][0]
    report(rows_out=int(rows))


if __name__ == "__main__":
    main()
