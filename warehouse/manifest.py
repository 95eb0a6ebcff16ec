"""The delivery manifest: what each source held, what was landed, and what became of it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl


@dataclass(frozen=True)
class KnownFile:
    """A source file as last seen: lets a rerun skip it without reading or hashing it."""

    relative_path: str
    size: int | None
    modified: float | None
    etag: str | None
    last_modified: str | None
    sha256: str | None
    delivery_id: int | None


@dataclass(frozen=True)
class PulledFile:
    """One listed file after pulling: unchanged, or landed (new content)."""

    source: str
    relative_path: str
    location: str
    size: int | None
    modified: float | None
    etag: str | None = None
    last_modified: str | None = None
    sha256: str | None = None
    landed_size: int | None = None
    landing_path: str | None = None
    new_content: bool = False


@dataclass(frozen=True)
class PendingDelivery:
    """A landed delivery waiting to be parsed, validated and merged."""

    delivery_id: int
    source: str
    organisation: str
    kind: str
    original_path: str
    landing_path: str
    size: int
    supersedes: int | None


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def known_files(con: duckdb.DuckDBPyConnection, source: str) -> dict[str, KnownFile]:
    rows = con.execute(
        "SELECT relative_path, size, modified, etag, last_modified, sha256, delivery_id "
        "FROM ops.source_files WHERE source = ?",
        [source],
    ).fetchall()
    return {row[0]: KnownFile(*row) for row in rows}


def record_pulls(
    con: duckdb.DuckDBPyConnection,
    files: Sequence[PulledFile],
    organisation_of: dict[str, str],
    kind_of: dict[str, str],
    run_id: str,
    landing_dir: Path | None = None,
) -> list[int]:
    """Record what was listed; register each new content as a delivery superseding the last one from
    the same path. Returns the new delivery ids (in one transaction, so a crash leaves no half state).

    Works set-wise (one read of the previous state, bulk inserts): thousands of files cost a few
    statements, not a few per file."""
    if not files:
        return []
    seen_at = now()
    previous = {
        (source, path): (delivery_id, sha)
        for source, path, delivery_id, sha in con.execute(
            "SELECT source, relative_path, delivery_id, sha256 FROM ops.source_files"
        ).fetchall()
    }
    new_count = sum(1 for f in files if f.new_content)
    con.execute("BEGIN TRANSACTION")
    try:
        ids = iter(_next_delivery_ids(con, new_count))
        deliveries, states, logged, new_ids = [], [], [], []
        for file in files:
            path_key = (file.source, file.relative_path)
            previous_id, previous_sha = previous.get(path_key, (None, None))
            delivery_id = previous_id
            if file.new_content:
                delivery_id = next(ids)
                logged.append(
                    _log_entry(file, delivery_id, previous_id, organisation_of, kind_of, run_id, seen_at, landing_dir)
                )
                deliveries.append(
                    {**logged[-1], "landing_path": file.landing_path, "first_seen": seen_at, "status": "landed"}
                )
                new_ids.append(delivery_id)
            previous[path_key] = (delivery_id, file.sha256 or previous_sha)
            states.append(
                {
                    "source": file.source,
                    "relative_path": file.relative_path,
                    "location": file.location,
                    "size": file.size,
                    "modified": file.modified,
                    "etag": file.etag,
                    "last_modified": file.last_modified,
                    "sha256": file.sha256 or previous_sha,
                    "delivery_id": delivery_id,
                    "last_seen_run": run_id,
                }
            )
        if deliveries:
            con.register("_new_deliveries", pl.DataFrame(deliveries, schema=_DELIVERY_SCHEMA).to_arrow())
            con.execute("INSERT INTO ops.deliveries BY NAME SELECT * FROM _new_deliveries")
            con.unregister("_new_deliveries")
        # a path listed twice in one run keeps its last state
        latest = {(s["source"], s["relative_path"]): s for s in states}
        con.register("_source_states", pl.DataFrame(list(latest.values()), schema=_STATE_SCHEMA).to_arrow())
        con.execute("INSERT OR REPLACE INTO ops.source_files BY NAME SELECT * FROM _source_states")
        con.unregister("_source_states")
        if landing_dir is not None and logged:
            # Before the commit: a crash in between leaves a log line for a delivery the next run
            # lands again, which a rebuild replays as a harmless same-content supersession.
            append_landing_log(landing_dir, logged)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return new_ids


_DELIVERY_SCHEMA = pl.Schema(
    {
        "delivery_id": pl.Int64(),
        "source": pl.String(),
        "organisation": pl.String(),
        "kind": pl.String(),
        "original_path": pl.String(),
        "relative_path": pl.String(),
        "size": pl.Int64(),
        "sha256": pl.String(),
        "landing_path": pl.String(),
        "first_seen": pl.Datetime("us"),
        "run_id": pl.String(),
        "status": pl.String(),
        "supersedes": pl.Int64(),
    }
)
_STATE_SCHEMA = pl.Schema(
    {
        "source": pl.String(),
        "relative_path": pl.String(),
        "location": pl.String(),
        "size": pl.Int64(),
        "modified": pl.Float64(),
        "etag": pl.String(),
        "last_modified": pl.String(),
        "sha256": pl.String(),
        "delivery_id": pl.Int64(),
        "last_seen_run": pl.String(),
    }
)


def _next_delivery_ids(con: duckdb.DuckDBPyConnection, count: int) -> list[int]:
    if count == 0:
        return []
    return [
        int(row[0])
        for row in con.execute("SELECT nextval('ops.delivery_seq') FROM range(?) ORDER BY 1", [count]).fetchall()
    ]


def record_skipped(
    con: duckdb.DuckDBPyConnection, source: str, organisation: str, skipped: Sequence[Any], run_id: str
) -> None:
    """What the source's listing found but did not take (`sources.SkippedFile`s), replacing its last listing's:
    a file seen before keeps the run that first saw it, so feedback tells an organisation once."""
    rows = [(source, organisation, s.relative_path, s.reason, s.attention, run_id) for s in skipped]
    forget_the_rest = "DELETE FROM ops.skipped_files WHERE source = ? AND last_seen_run IS DISTINCT FROM ?"
    if not rows:  # the usual case: nothing skipped, so nothing to keep (one statement, not five, per source)
        con.execute(forget_the_rest, [source, run_id])
        return
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _skipped (source VARCHAR, organisation VARCHAR, relative_path VARCHAR, "
            "reason VARCHAR, attention BOOLEAN, run_id VARCHAR)"
        )
        con.executemany("INSERT INTO _skipped VALUES (?, ?, ?, ?, ?, ?)", rows)
        con.execute(
            """INSERT OR REPLACE INTO ops.skipped_files
               SELECT n.source, n.organisation, n.relative_path, n.reason, n.attention,
                      CASE WHEN o.reason = n.reason THEN o.first_seen_run ELSE n.run_id END, n.run_id
               FROM _skipped n LEFT JOIN ops.skipped_files o USING (source, relative_path)"""
        )
        con.execute(forget_the_rest, [source, run_id])
        con.execute("DROP TABLE _skipped")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


LANDING_LOG = "deliveries.jsonl"


def _log_entry(
    file: PulledFile,
    delivery_id: int,
    previous_id: int | None,
    organisation_of: dict[str, str],
    kind_of: dict[str, str],
    run_id: str,
    seen_at: datetime,
    landing_dir: Path | None,
) -> dict[str, object]:
    landing_path = Path(file.landing_path or "")
    relative = (
        str(landing_path.relative_to(landing_dir)) if landing_dir and landing_path.is_absolute() else str(landing_path)
    )
    return {
        "delivery_id": delivery_id,
        "source": file.source,
        "organisation": organisation_of[file.source],
        "kind": kind_of[file.source],
        "original_path": file.location,
        "relative_path": file.relative_path,
        "size": file.landed_size,
        "sha256": file.sha256,
        "landing_path": relative,
        "first_seen": seen_at.isoformat(),
        "run_id": run_id,
        "supersedes": previous_id,
        "source_size": file.size,
        "modified": file.modified,
        "etag": file.etag,
        "last_modified": file.last_modified,
    }


def append_landing_log(landing_dir: Path, entries: Sequence[dict[str, object]]) -> None:
    """Append deliveries to the landing zone's own log, from which `din rebuild` replays history."""
    landing_dir.mkdir(parents=True, exist_ok=True)
    with open(landing_dir / LANDING_LOG, "a", encoding="utf-8") as log:
        for entry in entries:
            log.write(json_text(entry) + "\n")
        log.flush()
        os.fsync(log.fileno())


def read_landing_log(landing_dir: Path) -> list[dict[str, Any]]:
    path = landing_dir / LANDING_LOG
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def pending_deliveries(con: duckdb.DuckDBPyConnection, kinds: Iterable[str] | None = None) -> list[PendingDelivery]:
    """Landed deliveries not processed yet (including any a crashed run left behind), oldest first."""
    rows = con.execute(
        """SELECT delivery_id, source, organisation, kind, original_path, landing_path, size, supersedes
           FROM ops.deliveries WHERE status = 'landed' ORDER BY delivery_id"""
    ).fetchall()
    wanted = set(kinds) if kinds is not None else None
    return [PendingDelivery(*row) for row in rows if wanted is None or row[3] in wanted]


def companion_files(
    con: duckdb.DuckDBPyConnection, delivery_ids: Sequence[int]
) -> dict[int, tuple[tuple[str, str], ...]]:
    """For each delivery: the current version (latest delivery) of every other file its source holds in
    the same folder, as (relative path, landing copy): the files of a tool's export delivered together."""
    if not delivery_ids:
        return {}
    rows = con.execute(
        """WITH wanted AS (
               SELECT delivery_id, source, relative_path FROM ops.deliveries WHERE list_contains(?, delivery_id)
           ), current AS (
               SELECT source, relative_path, arg_max(landing_path, delivery_id) AS landing_path
               FROM ops.deliveries WHERE source IN (SELECT source FROM wanted) GROUP BY ALL
           )
           SELECT w.delivery_id, w.relative_path, c.relative_path, c.landing_path
           FROM wanted AS w JOIN current AS c ON c.source = w.source AND c.relative_path <> w.relative_path
           ORDER BY w.delivery_id, c.relative_path""",
        [list(delivery_ids)],
    ).fetchall()
    found: dict[int, list[tuple[str, str]]] = {}
    for delivery_id, own, other, landing in rows:
        if Path(own).parent == Path(other).parent:
            found.setdefault(delivery_id, []).append((other, landing))
    return {delivery_id: tuple(files) for delivery_id, files in found.items()}


def active_landing_paths(con: duckdb.DuckDBPyConnection, kind: str) -> list[Path]:
    """Landing copies of the processed, not superseded deliveries of `kind`."""
    rows = con.execute(
        "SELECT landing_path FROM ops.deliveries WHERE kind = ? AND status = 'processed' ORDER BY delivery_id",
        [kind],
    ).fetchall()
    return [Path(row[0]) for row in rows]


def json_text(value: object) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
