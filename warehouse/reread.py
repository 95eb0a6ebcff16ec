"""A source whose reading options changed (format, sheet, delimiter, encoding, columns, date order, its
mapping file) has its current deliveries read again on the next run, with the new options.

The files are unchanged, so the pull sees nothing new: without this, a corrected `format:` would keep
the reading made under the old one (a roster read as CSV: 0 rows) until someone ran `din rebuild`.
Each delivery records how it was read (`ops.deliveries.read_options`, `FormatOptions.fingerprint`);
a processed delivery read under another fingerprint goes back to `landed`, its stored rows, quarantine
and validation results removed in the same transaction, and is then processed like a new one (a crash
in between leaves it pending, and the published version as it was).
"""

from __future__ import annotations

import duckdb

from din.config import Config
from din.sql import quote


def requeue_changed_sources(con: duckdb.DuckDBPyConnection, config: Config) -> dict[str, list[int]]:
    """Send back for reading the current deliveries of every source whose reading options changed since they
    were read; returns, per source, the deliveries sent back.

    Deliveries recorded before their options were (read_options NULL) are taken to be read as now."""
    from din.contract import KINDS

    requeued: dict[str, list[int]] = {}
    con.execute("BEGIN TRANSACTION")
    try:
        for source in config.all_sources:
            fingerprint = source.format.fingerprint()
            con.execute(
                "UPDATE ops.deliveries SET read_options = ? WHERE source = ? AND read_options IS NULL",
                [fingerprint, source.name],
            )
            ids = [
                int(row[0])
                for row in con.execute(
                    """SELECT delivery_id FROM ops.deliveries
                       WHERE source = ? AND status = 'processed' AND read_options <> ? ORDER BY delivery_id""",
                    [source.name, fingerprint],
                ).fetchall()
            ]
            if not ids:
                continue
            for name in KINDS:
                con.execute(f"DELETE FROM stg.{quote(name)} WHERE list_contains(?, delivery_id)", [ids])
            for table in ("quarantine", "validation_results", "key_conflicts"):
                con.execute(f"DELETE FROM ops.{quote(table)} WHERE list_contains(?, delivery_id)", [ids])
            con.execute("UPDATE ops.deliveries SET status = 'landed' WHERE list_contains(?, delivery_id)", [ids])
            requeued[source.name] = ids
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return requeued
