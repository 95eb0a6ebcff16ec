"""The warehouse's tables, generated from the contract: staging (every accepted row of every
delivery) and core (one row per natural key, the latest delivery winning)."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from din.contract import KINDS, Kind
from din.sql import literal, quote

SQL_DIR = Path(__file__).with_name("sql")
PROVENANCE = (
    ("delivery_id", "BIGINT NOT NULL"),
    ("source_row", "BIGINT"),
)


def connect(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse file (creating its folder), with settings that keep memory bounded."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    # Bounded memory: big merges spill to <warehouse>.tmp instead of growing past the limit.
    con.execute(f"SET memory_limit = '{os.environ.get('DIN_DUCKDB_MEMORY_LIMIT', '1GB')}'")
    con.execute("SET preserve_insertion_order = false")
    return con


def sql_file(name: str) -> str:
    return (SQL_DIR / name).read_text(encoding="utf-8")


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create every schema, sequence and table that does not exist yet."""
    con.execute(sql_file("ops.sql"))
    for kind in KINDS.values():
        con.execute(staging_ddl(kind))
        con.execute(core_ddl(kind))


def _columns(kind: Kind) -> list[str]:
    return [f"{quote(c.name)} {c.sql_type}" for c in kind.stored_columns]


def staging_ddl(kind: Kind) -> str:
    """stg.<kind>: every accepted row of every delivery not yet superseded."""
    columns = _columns(kind) + [f"{quote(n)} {t}" for n, t in PROVENANCE]
    return f"CREATE TABLE IF NOT EXISTS stg.{quote(kind.name)} ({', '.join(columns)})"


def core_ddl(kind: Kind) -> str:
    """core.<kind>: one row per natural key, with every delivery that held it."""
    columns = _columns(kind) + [f"{quote(n)} {t}" for n, t in PROVENANCE] + ['"delivery_ids" BIGINT[]']
    return f"CREATE TABLE IF NOT EXISTS core.{quote(kind.name)} ({', '.join(columns)})"


KEY_CONFLICT = "key_conflict"  # the quarantine rule of a row another organisation's row of the same key overrules


def _disputed(versions: str) -> str:
    """How many organisations dispute a key: the organisations that delivered it when they delivered
    different values; 1 when every row holds the same values (the same row from two places is stored
    once, with both deliveries, and is no conflict)."""
    return f"CASE WHEN {versions} > 1 THEN count(DISTINCT c._organisation) ELSE 1 END"


def _claims(kind: Kind, staged: str | None = None) -> str:
    """CTEs shared by the core rebuild and the conflict report: keys held by several staged rows
    (`repeated`), those rows with the organisation that delivered each (`candidates`), and per key how
    many organisations dispute it and which one owns it by the kind's ownership rule (`claims`)."""
    key = ", ".join(quote(c) for c in kind.key)
    owner = "NULL::VARCHAR"
    lookup = ""
    if kind.owner is not None:
        reference = kind.owner.reference
        on = " AND ".join(
            f"c.{quote(a)} = o.{quote(b)}" for a, b in zip(reference.columns, reference.target_columns, strict=True)
        )
        owner = f"any_value(o.{quote(kind.owner.column)})"
        lookup = f"LEFT JOIN core.{quote(reference.target)} AS o ON {on}"
    keyed = ", ".join(f"c.{quote(c)}" for c in kind.key)
    staged = staged or f"stg.{quote(kind.name)}"
    values = [c.name for c in kind.stored_columns if c.name not in kind.key]
    versions = "count(DISTINCT {" + ", ".join(f"{literal(c)}: c.{quote(c)}" for c in values) + "})" if values else "1"
    return f"""
        repeated AS (
            -- grouping millions of rows by a hash of their key costs half what grouping by the key's text
            -- does; only the rows whose hash repeats are grouped by the key itself (exact, collisions too)
            SELECT {key} FROM {staged}
            WHERE hash({key}) IN (SELECT hash({key}) FROM {staged} GROUP BY 1 HAVING count(*) > 1)
            GROUP BY {key} HAVING count(*) > 1
        ), candidates AS (
            SELECT s.*, d."organisation" AS _organisation
            FROM {staged} AS s SEMI JOIN repeated USING ({key})
            JOIN ops.deliveries AS d USING (delivery_id)
        ), claims AS (
            SELECT {keyed}, {_disputed(versions)} AS _organisations, {owner} AS _owner,
                   list(DISTINCT c._organisation ORDER BY c._organisation) AS _deliverers
            FROM candidates AS c {lookup}
            GROUP BY {keyed}
        )"""


def core_rebuild_sql(kind: Kind) -> str:
    """Rebuild core.<kind> from staging: one row per natural key, remembering every delivery that carried it.

    Rows of one organisation, or rows of several holding the same values: the row of the latest delivery
    wins (a correction; the same row from two places, where the owner's copy is preferred). Rows of
    several organisations that differ are a conflict, never settled by arrival order: the row of the
    organisation the kind's ownership rule names wins (`Kind.owner`: the project's lead organisation,
    the workshop's facilitator); when that organisation is not among them, or the kind has no owner, no
    row wins (`key_conflicts_sql` says why, for quarantine and both organisations' feedback)."""
    return f"CREATE OR REPLACE TABLE core.{quote(kind.name)} AS {core_rows_sql(kind)}"


def core_rows_sql(kind: Kind, staged: str | None = None) -> str:
    """The rows of core.<kind> made from the staged rows `staged` (a relation; default all of stg.<kind>):
    the rule of :func:`core_rebuild_sql`, which an incremental merge applies to the keys it touched."""
    key = ", ".join(quote(c) for c in kind.key)
    stored = ", ".join(quote(c.name) for c in kind.stored_columns)
    staged = staged or f"stg.{quote(kind.name)}"
    # Almost every key is held by one staged row: only keys held by several rows need the window
    # functions (ranking, collecting delivery ids) and the ownership rule, the expensive part at scale.
    return f"""
        WITH {_claims(kind, staged)}, single AS (
            SELECT {stored}, "delivery_id", "source_row", ["delivery_id"] AS "delivery_ids"
            FROM {staged} ANTI JOIN repeated USING ({key})
        ), kept AS (
            SELECT c.*, coalesce(c._organisation = claims._owner, false) AS _owned
            FROM candidates AS c JOIN claims USING ({key})
            WHERE claims._organisations = 1 OR c._organisation = claims._owner
        ), ranked AS (
            SELECT {stored}, "delivery_id", "source_row",
                   row_number() OVER (
                       PARTITION BY {key} ORDER BY _owned DESC, "delivery_id" DESC, "source_row" DESC
                   ) AS _rank,
                   list(DISTINCT "delivery_id") OVER (PARTITION BY {key}) AS "delivery_ids"
            FROM kept
        )
        SELECT * FROM single
        UNION ALL
        SELECT {stored}, "delivery_id", "source_row", list_sort("delivery_ids") AS "delivery_ids"
        FROM ranked
        WHERE _rank = 1
    """


def key_conflicts_sql(kind: Kind, staged: str | None = None) -> str:
    """Every staged row (of `staged`, a relation; default all of stg.<kind>) of a key that several
    organisations delivered: who delivered it, who owns it by the kind's rule, whether this row is the one
    kept, and, for the others, why it was set aside (in words)."""
    key = ", ".join(quote(c) for c in kind.key)
    key_text = " || ' / ' || ".join(f"c.{quote(c)}::VARCHAR" for c in kind.key)
    values = ", ".join(f"{literal(c)}: c.{quote(c)}::VARCHAR" for c in kind.key)
    if kind.owner is None:
        unresolved = literal(
            f"; no organisation's {kind.name} row can overrule another's, so neither is published until one of "
            "you withdraws it"
        )
        rule = literal(f"{kind.name}: no owner")
    else:
        described = literal(kind.owner.description)
        unresolved = (
            f"'; neither of you is ' || {described} || ' (' || coalesce(claims._owner, 'not listed') || '), "
            "so neither row is published until one of you withdraws it'"
        )
        rule = literal(f"{kind.name}: {kind.owner.description} ({kind.owner.reference.target}.{kind.owner.column})")
    others = "array_to_string(list_filter(claims._deliverers, lambda x: x != c._organisation), ', ')"
    owner_reason = (
        f"claims._owner || ' also delivered this row (' || {key_text} || '); as ' || "
        f"{literal(kind.owner.description if kind.owner else '')} || ', its row is published and this one is set "
        "aside. If this one is right, ask ' || claims._owner || ' to correct theirs'"
    )
    return f"""
        WITH {_claims(kind, staged)}
        SELECT {literal(kind.name)} AS kind, {key_text} AS key, c."delivery_id", c."source_row",
               c._organisation AS organisation, claims._owner AS owner, {rule} AS rule,
               coalesce(c._organisation = claims._owner, false) AS kept,
               {others} AS others,
               CASE WHEN coalesce(c._organisation = claims._owner, false) THEN NULL
                    WHEN list_contains(claims._deliverers, claims._owner) THEN {owner_reason}
                    ELSE {others} || ' also delivered this row (' || {key_text} || ')' || {unresolved}
               END AS reason,
               [{", ".join(literal(c) for c in kind.key)}]::VARCHAR[] AS columns,
               to_json({{{values}}})::VARCHAR AS "values"
        FROM candidates AS c JOIN claims USING ({key})
        WHERE claims._organisations > 1
    """
