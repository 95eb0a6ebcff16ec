"""Rebuild the warehouse from the landing zone alone: replay every logged delivery, in order.

The replayed manifest keeps each delivery's id, first-seen time and landing run, so provenance
survives; supersession is worked out again from the order of deliveries per source path. Run
history is carried over from the old warehouse when there is one.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from din.config import Config
from warehouse.manifest import read_landing_log


def replay_landing(
    con: duckdb.DuckDBPyConnection, landing_dir: Path, config: Config, previous_warehouse: Path | None
) -> int:
    """Register every logged delivery of a configured source as 'landed'; returns how many."""
    configured = {s.name: s for s in config.all_sources}
    latest: dict[tuple[str, str], int] = {}
    replayed = 0
    con.execute("BEGIN TRANSACTION")
    for entry in read_landing_log(landing_dir):
        source = configured.get(entry["source"])
        landing_path = landing_dir / entry["landing_path"]
        if source is None or not landing_path.exists():
            continue
        path_key = (entry["source"], entry["relative_path"])
        con.execute(
            """INSERT INTO ops.deliveries (delivery_id, source, organisation, kind, original_path, relative_path, size,
                   sha256, landing_path, first_seen, run_id, status, supersedes)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'landed', ?)""",
            [
                entry["delivery_id"],
                entry["source"],
                source.organisation,
                source.kind,
                entry["original_path"],
                entry["relative_path"],
                entry["size"],
                entry["sha256"],
                str(landing_path),
                entry["first_seen"],
                entry["run_id"],
                latest.get(path_key),
            ],
        )
        con.execute(
            """INSERT OR REPLACE INTO ops.source_files (source, relative_path, location, size, modified, etag,
                   last_modified, sha256, delivery_id, last_seen_run)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [
                entry["source"],
                entry["relative_path"],
                entry["original_path"],
                entry.get("source_size"),
                entry.get("modified"),
                entry.get("etag"),
                entry.get("last_modified"),
                entry["sha256"],
                entry["delivery_id"],
                entry["run_id"],
            ],
        )
        latest[path_key] = entry["delivery_id"]
        replayed += 1
    highest = con.execute("SELECT coalesce(max(delivery_id), 0) FROM ops.deliveries").fetchall()[0][0]
    con.execute("DROP SEQUENCE ops.delivery_seq")
    con.execute(f"CREATE SEQUENCE ops.delivery_seq START {int(highest) + 1}")
    if previous_warehouse is not None and previous_warehouse.exists():
        con.execute(f"ATTACH '{previous_warehouse}' AS previous (READ_ONLY)")
        con.execute("INSERT INTO ops.runs SELECT * FROM previous.ops.runs")
        if con.sql(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'previous' "
            "AND schema_name = 'ops' AND table_name = 'erasures'"
        ).fetchall()[0][0]:
            con.execute("INSERT INTO ops.erasures SELECT * FROM previous.ops.erasures")
        con.execute("COMMIT")
        con.execute("DETACH previous")
    else:
        con.execute("COMMIT")
    return replayed
