"""The published tables (our marts): what each is, which tier it belongs to, and the SQL that builds it.

Row-level marts are generated from the contract (so a new column flows through to publication);
operational and aggregate marts are `.sql` files under `warehouse/sql/marts/`, one per table.
Table names are fixed: report authors rely on them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from din.contract import KINDS, Kind
from expectations.engine import quote

MARTS_DIR = Path(__file__).with_name("sql") / "marts"
SCHEMA_VERSION = 1  # bump (and note in CHANGELOG.md) when a published column changes on purpose
TIERS = ("open", "restricted", "ops")
PSEUDONYM_COLUMN = "panellist_pseudonym"
PROVENANCE_COLUMNS = ("source_name", "delivery_id", "delivery_sha256", "source_row", "run_id")


@dataclass(frozen=True)
class Mart:
    name: str
    tier: str
    description: str
    sql: str  # for SQL marts; for Python-built aggregates, the name of the builder (fingerprinted)
    build: Callable[[Any, Any], Any] | None = None  # (connection, disclosure rule) -> polars frame

    @property
    def relative_path(self) -> str:
        return f"{self.tier}/{self.name}.parquet"


CONSENTED = "SELECT panel_id, panellist_ref FROM core.roster WHERE consent = 'consented'"


def _row_level(kind: Kind, name: str, tier: str, description: str) -> Mart:
    columns = []
    for column in kind.stored_columns:
        if column.name == "panellist_ref":
            columns.append(f"t.{quote(column.name)} AS {quote(PSEUDONYM_COLUMN)}")
        else:
            columns.append(f"t.{quote(column.name)}")
    provenance = [
        'd."source" AS "source_name"',
        't."delivery_id"',
        'd."sha256" AS "delivery_sha256"',
        't."source_row"',
        'd."processed_run_id" AS "run_id"',
    ]
    where = ""
    if "panellist_ref" in kind.column_names:
        # Withdrawal is honoured: only panellists whose consent stands on the current roster.
        where = f'WHERE (t."panel_id", t."panellist_ref") IN ({CONSENTED})'
    if kind.name == "roster":
        columns = [c for c in columns if c != 't."consent"']
    sql = (
        f"SELECT {', '.join(columns + provenance)}\n"
        f"FROM core.{quote(kind.name)} AS t JOIN ops.deliveries AS d USING (delivery_id)\n{where}"
    )
    return Mart(name, tier, description, sql)


def _sql_mart(name: str, tier: str, description: str) -> Mart:
    return Mart(name, tier, description, (MARTS_DIR / f"{tier}__{name}.sql").read_text(encoding="utf-8"))


def marts() -> list[Mart]:
    """Every published table, in publication order."""
    found = [
        _row_level(KINDS["organisations"], "organisations", "open", KINDS["organisations"].description),
        _row_level(KINDS["projects"], "projects", "open", KINDS["projects"].description),
        _row_level(KINDS["workshops"], "workshops", "open", KINDS["workshops"].description),
        _row_level(KINDS["population"], "population", "open", KINDS["population"].description),
        _row_level(
            KINDS["roster"],
            "panellists",
            "restricted",
            "Panellists whose consent stands, pseudonymised, with their demographics (no direct identifiers).",
        ),
        _row_level(KINDS["attendance"], "attendance", "restricted", KINDS["attendance"].description),
        _row_level(
            KINDS["responses"],
            "responses",
            "restricted",
            "Answers to workshop polls and questionnaires; free text scrubbed of identifiers.",
        ),
        _row_level(
            KINDS["project_feedback"],
            "project_feedback",
            "restricted",
            "Panellists' views of data-led projects; free text scrubbed of identifiers.",
        ),
        _row_level(
            KINDS["recommendations"],
            "recommendations",
            "restricted",
            "The panel's recommendations with their votes; the open tier has them disclosure-controlled.",
        ),
        *_aggregate_marts(),
        _sql_mart("deliveries", "ops", "The delivery manifest: every file delivered, and what became of it."),
        _sql_mart("quarantine", "ops", "Rows and files that were not accepted, with the rules they broke."),
        _sql_mart("validation_results", "ops", "Great Expectations results per delivery and expectation."),
        _sql_mart("runs", "ops", "Every run: when, outcome, counts and stage durations."),
    ]
    return found


def _aggregate_marts() -> list[Mart]:
    from warehouse.aggregates import AGGREGATES

    return [
        Mart(name, "open", description, f"aggregate:{name}", build) for name, (build, description) in AGGREGATES.items()
    ]


def write_mart(con: Any, mart: Mart, target: Path, rule: Any) -> None:
    """Write one mart to Parquet, stamped with its name, tier and schema version (Parquet key-value metadata)."""
    metadata = f"{{'din.table': '{mart.name}', 'din.tier': '{mart.tier}', 'din.schema_version': '{SCHEMA_VERSION}'}}"
    location = "'" + str(target).replace("'", "''") + "'"
    if mart.build is not None:
        con.register("_built_mart", mart.build(con, rule).to_arrow())
        try:
            con.execute(
                f"COPY (SELECT * FROM _built_mart) TO {location} "
                f"(FORMAT parquet, COMPRESSION zstd, KV_METADATA {metadata})"
            )
        finally:
            con.unregister("_built_mart")
    else:
        con.execute(f"COPY ({mart.sql}) TO {location} (FORMAT parquet, COMPRESSION zstd, KV_METADATA {metadata})")
