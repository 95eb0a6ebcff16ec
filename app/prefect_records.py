"""What the flows wrote into Prefect's database (logs, artifacts, events, run parameters and states),
searched and cleaned for one person during an erasure (`din forget`'s `prefect` step).

The flows write counts only, never a value of a row (`reports.run_summary`); this is the check that
holds them to it, and the clean-up if something ever slipped through (an error message quoting a
cell, say). Each text that mentions the person has those mentions replaced: their reference and
pseudonyms by `[erased]`, their name, e-mail and phone as the scrubber replaces them.

The databases searched are the SQLite files of the Prefect settings in force and of the data folder's
own Prefect home (where `din run` keeps Prefect's state when no server is configured). A Prefect
server elsewhere, or one on PostgreSQL, keeps its own database: the step says it was not searched.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from din.errors import DinError
from din.paths import DataPaths
from transforms.scrub import Mentions
from warehouse.erasure import ErasureContext

ERASED = "[erased]"
#: Prefect's tables and the text columns in which a flow's own words are kept.
TEXT_COLUMNS = {
    "log": ("message",),
    "artifact": ("data", "description", "metadata_"),
    "artifact_collection": ("data", "description", "metadata_"),
    "events": ("payload", "resource", "related"),
    "event_resources": ("resource",),
    "flow_run": ("parameters", "name", "context"),
    "task_run": ("name",),
    "flow_run_state": ("message", "data"),
    "task_run_state": ("message", "data"),
    "flow_run_input": ("value",),
    "variable": ("value",),
}


def clean_prefect(ctx: ErasureContext) -> dict[str, Any]:
    """The erasure step `prefect`."""
    databases, note = prefect_databases(ctx.paths)
    mentions = Mentions(ctx.identifiers)
    exact = [ctx.panellist_ref, *ctx.journal.pseudonyms, *ctx.identifiers.postcodes]
    records = sum(scrub_database(db, exact, mentions) for db in databases)
    return {"records": records, "database": ", ".join(str(d) for d in databases) or None, "note": note}


def prefect_databases(paths: DataPaths) -> tuple[list[Path], str | None]:
    """The Prefect SQLite databases that hold this deployment's flow records, and a note on any not searched."""
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    found: list[Path] = []
    note = None
    secret = settings.server.database.connection_url
    url = secret.get_secret_value() if secret is not None else ""
    if url.startswith("sqlite") and ":///" in url:
        found.append(Path(url.split(":///", 1)[1].split("?", 1)[0]))
    elif url:
        note = "Prefect's database is not SQLite: its records were not searched"
    found.append(Path(settings.home) / "prefect.db")
    found.append(paths.root / ".prefect" / "prefect.db")
    if settings.api.url:
        note = (
            f"the flows report to the Prefect server at {settings.api.url}: its database was searched only if it is "
            "one of these files"
        )
    unique: list[Path] = []
    for path in found:
        resolved = path.expanduser().resolve()
        if resolved.is_file() and resolved not in unique:
            unique.append(resolved)
    return unique, note


def scrub_database(path: Path, exact: Sequence[str], mentions: Mentions, *, dry_run: bool = False) -> int:
    """Replace the person's mentions in every text column of Prefect's tables; returns how many records
    changed (with `dry_run`, would change: the database is opened read-only)."""
    needles = _needles(exact, mentions)
    if not needles:
        return 0
    con = (
        sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60) if dry_run else sqlite3.connect(path, timeout=60)
    )
    changed = 0
    try:
        if not dry_run:
            con.execute("PRAGMA secure_delete = ON")  # the old texts' bytes are overwritten, not just freed
        tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for table, wanted in TEXT_COLUMNS.items():
            if table not in tables:
                continue
            present = {r[1] for r in con.execute(f'PRAGMA table_info("{table}")')}
            for column in (c for c in wanted if c in present):
                where = " OR ".join(f'"{column}" LIKE ?' for _ in needles)
                found = con.execute(
                    f'SELECT rowid, "{column}" FROM "{table}" WHERE {where}', [f"%{n}%" for n in needles]
                ).fetchall()
                for rowid, value in found:
                    new = _redacted(value, exact, mentions) if isinstance(value, str) else value
                    if new == value:
                        continue
                    changed += 1
                    if not dry_run:
                        con.execute(f'UPDATE "{table}" SET "{column}" = ? WHERE rowid = ?', [new, rowid])
        if not dry_run:
            con.commit()
            if changed:
                _checkpoint(con, path)
    finally:
        con.close()
    return changed


def _checkpoint(con: sqlite3.Connection, path: Path, attempts: int = 60) -> None:
    """Write the write-ahead log into the database and empty it: its older frames still hold the old texts."""
    for _ in range(attempts):
        busy, _, _ = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if not busy:
            return
        time.sleep(0.5)
    raise PrefectDatabaseBusy(
        f"{path} is in use (a Prefect server holds it open), so its write-ahead log, which still holds the old "
        "texts, could not be emptied. Stop the server (or wait until it is idle) and run the same `din forget` "
        "again: it finishes the job."
    )


class PrefectDatabaseBusy(DinError):
    """Prefect's database could not be checkpointed: the erasure is resumed by running it again."""


def _needles(exact: Sequence[str], mentions: Mentions) -> list[str]:
    """Substrings a text must hold to mention the person (an SQL LIKE prefilter): the exact values, and
    surnames, e-mail local parts and the last digits of phones; also as JSON escapes them."""
    words = [e for e in exact if e]
    ids = mentions.identifiers
    words += [n.split()[-1] for n in ids.names if n.split()]
    words += [e.split("@")[0] for e in ids.emails]
    words += [p[-3:] for p in ids.phones if len(p) >= 3]
    return sorted({w for word in words for w in (word, json.dumps(word)[1:-1])})


def _redacted(value: str, exact: Sequence[str], mentions: Mentions) -> str:
    for word in sorted((e for e in exact if e), key=len, reverse=True):
        value = value.replace(word, ERASED).replace(json.dumps(word)[1:-1], ERASED)
    return mentions.redact(value)[0]


def count_prefect_mentions(paths: DataPaths, exact: Sequence[str], mentions: Mentions) -> int:
    """How many Prefect records mention the person (for a dry run: nothing is changed)."""
    databases, _ = prefect_databases(paths)
    return sum(scrub_database(db, exact, mentions, dry_run=True) for db in databases)
