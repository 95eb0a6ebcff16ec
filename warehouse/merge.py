"""Merge: what the validation gate staged goes into the warehouse, one contract level at a time.

In one transaction per level: retire superseded deliveries, load accepted rows into staging and
quarantine records into ops, record each delivery's outcome and validation results, and rebuild
the core tables of the kinds touched. Also writes, before each level is validated, the keys its
references may take (from the core tables of the levels below).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb
import polars as pl

from din.contract import KINDS, Kind
from din.sql import quote
from expectations.gate import BatchResult
from expectations.suites import KEY_SEPARATOR
from transforms.delivery import DeliveryOutcome
from warehouse.manifest import PendingDelivery, json_text
from warehouse.schema import core_rebuild_sql


def write_known_references(con: duckdb.DuckDBPyConnection, kinds: Sequence[Kind], path: Path) -> Path:
    """The keys that exist for every reference the given kinds make, from the core tables."""
    parts = []
    for kind in kinds:
        for reference in kind.references:
            joined = f" || '{KEY_SEPARATOR}' || ".join(quote(c) for c in reference.target_columns)
            parts.append(
                con.sql(
                    f"SELECT ? AS parameter, {joined} AS key FROM core.{quote(reference.target)}",
                    params=[f"known_{reference.name}"],
                ).pl()
            )
    frame = pl.concat(parts) if parts else pl.DataFrame(schema={"parameter": pl.String, "key": pl.String})
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.unique().write_parquet(path)
    return path


def merge_level(
    con: duckdb.DuckDBPyConnection,
    results: Sequence[BatchResult],
    pending: Sequence[PendingDelivery],
    run_id: str,
) -> None:
    """In one transaction: retire superseded deliveries, load accepted rows and quarantine, record
    outcomes and validation results, and rebuild the core tables of the kinds touched."""
    supersedes = {p.delivery_id: p.supersedes for p in pending if p.supersedes is not None}
    touched = {KINDS[p.kind].name for p in pending}
    con.execute("BEGIN TRANSACTION")
    try:
        for result in results:
            for kind_name, path in result.staged.items():
                con.execute(f"INSERT INTO stg.{quote(kind_name)} BY NAME SELECT * FROM read_parquet(?)", [path])
                touched.add(kind_name)
            con.execute(
                "INSERT INTO ops.quarantine BY NAME SELECT *, ? AS run_id FROM read_parquet(?)",
                [run_id, result.quarantine],
            )
            if result.results:
                con.execute(
                    "INSERT INTO ops.validation_results BY NAME SELECT *, ? AS run_id FROM read_parquet(?)",
                    [run_id, result.results],
                )
            for outcome in result.deliveries:
                _record_outcome(con, outcome, run_id)
        # After loading, so that replaying a delivery and its correction together (a rebuild) ends as
        # the incremental runs did: the superseded delivery's rows go, its record stays.
        retired = sorted(supersedes.values())
        if retired:
            for name in KINDS:
                con.execute(f"DELETE FROM stg.{quote(name)} WHERE list_contains(?, delivery_id)", [retired])
        for new_id, old_id in sorted(supersedes.items()):
            con.execute(
                "UPDATE ops.deliveries SET status = 'superseded', superseded_by = ? WHERE delivery_id = ?",
                [new_id, old_id],
            )
        for name in sorted(touched):
            con.execute(core_rebuild_sql(KINDS[name]))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def replace_results(con: duckdb.DuckDBPyConnection, results: Sequence[BatchResult], active: Sequence[int]) -> set[str]:
    """Inside the caller's transaction: deliveries read again (an erasure redacted their landing copies)
    replace what their first processing stored: staged rows (of `active` deliveries only: a superseded
    delivery keeps none), quarantine, validation results and counts. Each keeps the run that first
    processed it, and its status. Returns the kinds whose core tables must be rebuilt."""
    touched: set[str] = set()
    for result in results:
        ids = [o.delivery_id for o in result.deliveries]
        for name in KINDS:
            con.execute(f"DELETE FROM stg.{quote(name)} WHERE list_contains(?, delivery_id)", [ids])
        con.execute("DELETE FROM ops.quarantine WHERE list_contains(?, delivery_id)", [ids])
        con.execute("DELETE FROM ops.validation_results WHERE list_contains(?, delivery_id)", [ids])
        for kind_name, path in result.staged.items():
            con.execute(
                f"INSERT INTO stg.{quote(kind_name)} BY NAME SELECT * FROM read_parquet(?) "
                "WHERE list_contains(?, delivery_id)",
                [path, list(active)],
            )
            touched.add(kind_name)
        as_first_processed = (
            "SELECT r.*, d.processed_run_id AS run_id FROM read_parquet(?) r JOIN ops.deliveries d USING (delivery_id)"
        )
        con.execute(f"INSERT INTO ops.quarantine BY NAME {as_first_processed}", [result.quarantine])
        if result.results:
            con.execute(f"INSERT INTO ops.validation_results BY NAME {as_first_processed}", [result.results])
        for outcome in result.deliveries:
            _record_outcome(con, outcome, run_id=None)
    return touched


def _record_outcome(con: duckdb.DuckDBPyConnection, outcome: DeliveryOutcome, run_id: str | None) -> None:
    """A delivery's outcome; with `run_id` None (read again after an erasure) its status and run stay."""
    if run_id is None:
        con.execute(
            """UPDATE ops.deliveries SET outcome = ?, format = ?, encoding = ?, rows_read = ?, rows_accepted = ?,
                   rows_quarantined = ?, rows_blocked = ?, extra_columns = ?, missing_optional_columns = ?,
                   scrub_counts = ?, message = ?, headers = ?
               WHERE delivery_id = ?""",
            [
                outcome.outcome,
                outcome.format,
                outcome.encoding,
                outcome.rows_read,
                outcome.rows_accepted,
                outcome.rows_quarantined,
                outcome.rows_blocked,
                outcome.extra_columns,
                outcome.missing_optional_columns,
                json_text(outcome.scrub_counts),
                outcome.message,
                outcome.headers,
                outcome.delivery_id,
            ],
        )
        return
    con.execute(
        """UPDATE ops.deliveries SET status = 'processed', outcome = ?, processed_run_id = ?, format = ?,
               encoding = ?, rows_read = ?, rows_accepted = ?, rows_quarantined = ?, rows_blocked = ?,
               extra_columns = ?, missing_optional_columns = ?, scrub_counts = ?, message = ?, headers = ?
           WHERE delivery_id = ?""",
        [
            outcome.outcome,
            run_id,
            outcome.format,
            outcome.encoding,
            outcome.rows_read,
            outcome.rows_accepted,
            outcome.rows_quarantined,
            outcome.rows_blocked,
            outcome.extra_columns,
            outcome.missing_optional_columns,
            json_text(outcome.scrub_counts),
            outcome.message,
            outcome.headers,
            outcome.delivery_id,
        ],
    )
