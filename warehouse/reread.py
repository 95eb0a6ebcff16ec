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
    # Every source at once (two statements, not two per source: most runs change no option)
    options = "(SELECT unnest(?::VARCHAR[]) AS source, unnest(?::VARCHAR[]) AS fingerprint)"
    names = [source.name for source in config.all_sources]
    fingerprints = [source.format.fingerprint() for source in config.all_sources]
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            f"""UPDATE ops.deliveries AS d SET read_options = o.fingerprint FROM {options} AS o
                WHERE d.source = o.source AND d.read_options IS NULL""",
            [names, fingerprints],
        )
        changed: dict[str, list[int]] = {}
        for source, delivery_id in con.execute(
            f"""SELECT d.source, d.delivery_id FROM ops.deliveries AS d JOIN {options} AS o USING (source)
                WHERE d.status = 'processed' AND d.read_options <> o.fingerprint ORDER BY d.delivery_id""",
            [names, fingerprints],
        ).fetchall():
            changed.setdefault(str(source), []).append(int(delivery_id))
        for name in names:  # in the config's order
            ids = changed.get(name)
            if not ids:
                continue
            for kind in KINDS:
                con.execute(f"DELETE FROM stg.{quote(kind)} WHERE list_contains(?, delivery_id)", [ids])
            for table in ("quarantine", "validation_results", "key_conflicts"):
                con.execute(f"DELETE FROM ops.{quote(table)} WHERE list_contains(?, delivery_id)", [ids])
            con.execute("UPDATE ops.deliveries SET status = 'landed' WHERE list_contains(?, delivery_id)", [ids])
            requeued[name] = ids
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return requeued
