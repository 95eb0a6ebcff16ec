"""A hand-written checked load in one DuckDB process: what `din run` does for responses, minus the rest.

The response CSVs are read with declared types, each row is checked (workshop unknown to the
workshops reference, empty panellist_ref, answered_at not a timestamp), rows whose natural key
(panel_id, workshop_id, panellist_ref, question_id) repeats are set aside as duplicates (as
`din run` does, both rows), and the result is split into valid and invalid Parquet files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb

from bench.baselines import report, response_files

COLUMNS = {
    "panel_id": "VARCHAR",
    "workshop_id": "VARCHAR",
    "panellist_ref": "VARCHAR",
    "question_id": "VARCHAR",
    "question_text": "VARCHAR",
    "answer": "VARCHAR",
    "answered_at": "VARCHAR",
}
KEY = "panel_id, workshop_id, panellist_ref, question_id"

CHECK_SQL = f"""
CREATE TABLE checked AS
WITH typed AS (
    SELECT r.*, try_cast(r.answered_at AS TIMESTAMP) AS answered_ts, w.workshop_id IS NOT NULL AS known_workshop
    FROM read_csv($files, header = true, columns = $columns, filename = true) AS r
    LEFT JOIN (SELECT DISTINCT panel_id, workshop_id FROM read_csv($workshops, all_varchar = true)) AS w
        USING (panel_id, workshop_id)
), flagged AS (
    SELECT *, list_filter([
        CASE WHEN NOT known_workshop THEN 'unknown_workshop' END,
        CASE WHEN nullif(trim(panellist_ref), '') IS NULL THEN 'empty_panellist_ref' END,
        CASE WHEN answered_at IS NOT NULL AND answered_ts IS NULL THEN 'invalid_date' END
    ], lambda x: x IS NOT NULL) AS rules
    FROM typed
)
SELECT * EXCLUDE (rules, known_workshop),
    CASE WHEN len(rules) = 0 AND count(*) OVER (PARTITION BY {KEY}) > 1
         THEN ['duplicate_key'] ELSE rules END AS rules
FROM flagged
"""

VALID_SQL = f"""
COPY (SELECT {KEY}, question_text, answer, answered_ts AS answered_at, filename AS source_file
      FROM checked WHERE len(rules) = 0) TO $target (FORMAT parquet, COMPRESSION zstd)
"""

INVALID_SQL = """
COPY (SELECT * EXCLUDE (answered_ts), filename AS source_file FROM checked WHERE len(rules) > 0)
    TO $target (FORMAT parquet, COMPRESSION zstd)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="a generated data set")
    parser.add_argument("--out", type=Path, required=True, help="a fresh output folder")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(args.out / "checked.duckdb"))
    con.execute(
        CHECK_SQL,
        {
            "files": response_files(args.data),
            "columns": COLUMNS,
            "workshops": str(args.data / "reference" / "workshops.csv"),
        },
    )
    con.execute(VALID_SQL, {"target": str(args.out / "valid.parquet")})
    con.execute(INVALID_SQL, {"target": str(args.out / "invalid.parquet")})
    valid, invalid = con.execute(
        "SELECT count(*) FILTER (len(rules) = 0), count(*) FILTER (len(rules) > 0) FROM checked"
    ).fetchall()[0]
    report(rows_out=int(valid), rows_invalid=int(invalid))


if __name__ == "__main__":
    main()
