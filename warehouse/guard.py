"""The publish guard: a reference kind or the roster that reads no rows, or loses most of its rows against
the published version, is never published silently.

Everything else refers to these kinds: a roster read as nothing sets aside every attendance, response
and feedback row as an unknown panellist, and an empty `open.panel_composition` would replace the
previous one. So such a drop is a warning, and the run holds the publish (the previous version stays
current) until the delivery is fixed or an operator accepts the drop (`din run --accept-drop`).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from din.config import Attention, Config
from din.contract import KINDS, REFERENCE_KINDS
from din.sql import quote

#: The kinds everything else refers to: reference data and the roster.
GUARDED_KINDS = (*REFERENCE_KINDS, "roster")


@dataclass(frozen=True)
class RowDrop:
    """A guarded kind with fewer rows than when the current version was published."""

    kind: str
    rows: int
    published_rows: int | None  # None: nothing was published with this kind yet

    @property
    def holds_publish(self) -> bool:
        """Whether publishing now would replace published rows (a first publish has nothing to replace)."""
        return self.published_rows is not None and self.published_rows > 0

    def line(self, share: float) -> str:
        if self.published_rows is None:
            return (
                f"{self.kind}: the warehouse holds no {self.kind} rows: every row that refers to them is set aside; "
                "check the source's deliveries and format options"
            )
        lost = self.published_rows - self.rows
        return (
            f"{self.kind}: {self.rows} row(s) now, {self.published_rows} in the published version ({lost} lost, more "
            f"than attention.rows_lost_share {share:.0%}); check the source's latest delivery and format options"
        )


def core_rows(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """The rows of each guarded kind in the warehouse now."""
    return {
        kind: int(con.execute(f"SELECT count(*) FROM core.{quote(kind)}").fetchall()[0][0])
        for kind in GUARDED_KINDS
        if kind in KINDS
    }


def published_rows(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """The rows of each guarded kind when the latest version was published (empty before the first)."""
    rows = con.execute(
        """SELECT kind, rows FROM ops.published_rows
           WHERE run_id = (SELECT run_id FROM ops.publishes ORDER BY published_at DESC LIMIT 1)"""
    ).fetchall()
    return {str(kind): int(count) for kind, count in rows}


def row_drops(con: duckdb.DuckDBPyConnection, attention: Attention, configured: set[str]) -> list[RowDrop]:
    """Guarded kinds that hold no rows (of those a source is `configured` for), or lost more than
    `attention.rows_lost_share` of the rows they had when the current version was published."""
    before = published_rows(con)
    drops = []
    for kind, rows in core_rows(con).items():
        if kind not in configured and kind not in before:
            continue
        published = before.get(kind)
        if published is None:
            if rows == 0:
                drops.append(RowDrop(kind, rows, None))
        elif published > 0 and (rows == 0 or (published - rows) / published > attention.rows_lost_share):
            drops.append(RowDrop(kind, rows, published))
    return drops


def record_published_rows(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Remember the guarded kinds' rows as published by `run_id` (what the next publish compares with)."""
    con.executemany(
        "INSERT OR REPLACE INTO ops.published_rows VALUES (?, ?, ?)",
        [(run_id, kind, rows) for kind, rows in core_rows(con).items()],
    )


def check_publish(con: duckdb.DuckDBPyConnection, config: Config, accept_drop: bool) -> tuple[list[str], bool]:
    """The warnings about guarded kinds, and whether the publish must wait: a drop against the published
    version holds it, unless the operator accepted the drop (`din run --accept-drop`)."""
    drops = row_drops(con, config.attention, {s.kind for s in config.all_sources})
    share = config.attention.rows_lost_share
    held = any(d.holds_publish for d in drops) and not accept_drop
    warnings = []
    for drop in drops:
        line = drop.line(share)
        if drop.holds_publish:
            line += (
                ": NOT PUBLISHED, the previous version stays current; once the delivery is right the next run "
                "publishes, or run `din run --accept-drop` to publish the drop"
                if not accept_drop
                else ": published anyway (--accept-drop)"
            )
        warnings.append(line)
    return warnings, held
