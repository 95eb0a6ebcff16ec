"""Rebuild the warehouse from the landing zone alone: replay every logged delivery, in order.

The replayed manifest keeps each delivery's id, first-seen time and landing run, so provenance
survives; supersession is worked out again from the order of deliveries per source path. Run
history is carried over from the old warehouse when there is one.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from din.config import Config
from din.paths import DataPaths
from warehouse.manifest import read_landing_log
from warehouse.remote import pull_landing
from warehouse.schema import connect, create_schema


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
            con.execute("INSERT INTO ops.erasures BY NAME SELECT * FROM previous.ops.erasures")
        con.execute("COMMIT")
        con.execute("DETACH previous")
    else:
        con.execute("COMMIT")
    return replayed


REBUILDING = "warehouse.rebuild.duckdb"


def prepare_rebuild(config: Config, live: DataPaths) -> DataPaths:
    """A fresh warehouse beside the live one, holding every logged delivery as 'landed' (run history kept).

    With object storage configured, the landing zone is first completed from the bucket (a fresh
    machine gets it back). Returns the paths of the warehouse being rebuilt."""
    if config.storage is not None and config.storage.landing:
        pull_landing(config.storage, live.landing)
    aside = DataPaths(config.data_dir, warehouse_file=REBUILDING)
    for stale in (aside.warehouse, Path(str(aside.warehouse) + ".wal")):
        stale.unlink(missing_ok=True)
    con = connect(aside.warehouse)
    try:
        create_schema(con)
        replay_landing(con, live.landing, config, live.warehouse if live.warehouse.exists() else None)
    finally:
        con.close()
    return aside


def swap_in(aside: DataPaths, live: DataPaths) -> None:
    """Make the rebuilt warehouse the live one (one atomic rename)."""
    os.replace(aside.warehouse, live.warehouse)
