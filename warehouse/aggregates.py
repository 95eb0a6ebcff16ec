"""The open tier: aggregates safe to publish as they are.

Each aggregate counts consented panellists only (withdrawal is honoured here too), then passes the
disclosure step (`transforms.disclosure`) before it is written: small counts suppressed, secondary
suppression so totals cannot reveal them, means and shares from too few people suppressed, every
suppressed cell marked as such (never shown as zero) and the rule that produced it named.

Cells and totals are published as separate tables (`<table>` and `<table>_totals`), so a plain sum over
a table is right. Each builder returns the frames it makes, by table name: one computation of the
disclosure pattern serves both tables, so cells and totals always come from the same suppression.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import polars as pl

from transforms.disclosure import (
    TOTAL_BY,
    DisclosureRule,
    protect_counts,
    protect_means,
    protect_shares,
    split_totals,
)

Tables = dict[str, pl.DataFrame]

CONSENTED = "SELECT panel_id, panellist_ref FROM core.roster WHERE consent = 'consented'"
NOT_RECORDED = "(not recorded)"
DIMENSIONS = ("age_band", "gender", "ethnic_group", "simd_quintile", "urban_rural", "council_area")


def _frame(con: duckdb.DuckDBPyConnection, sql: str) -> pl.DataFrame:
    frame: pl.DataFrame = con.sql(sql).pl()
    return frame


def panel_composition(con: duckdb.DuckDBPyConnection, rule: DisclosureRule) -> Tables:
    """Panellists per category of each dimension, against the population the panel should reflect."""
    unpivot = " UNION ALL ".join(
        f"SELECT panel_id, '{d}' AS dimension, coalesce(CAST(\"{d}\" AS VARCHAR), '{NOT_RECORDED}') AS category "
        f"FROM core.roster WHERE consent = 'consented'"
        for d in DIMENSIONS
    )
    counts = _frame(
        con, f"SELECT panel_id, dimension, category, count(*)::BIGINT AS panellists FROM ({unpivot}) GROUP BY ALL"
    )
    protected = protect_counts(counts, count="panellists", groups=["category"], by=["panel_id", "dimension"], rule=rule)
    cells, totals = split_totals(protected, groups=["category"])
    sizes = totals.select(
        "panel_id",
        "dimension",
        pl.col("panellists").alias("panel_size"),
        pl.col("panellists_status").alias("panel_size_status"),
    )
    cells = cells.join(sizes, on=["panel_id", "dimension"], how="left")
    cells = cells.with_columns((pl.col("panellists") / pl.col("panel_size")).alias("share"))
    cells = protect_shares(cells, count="panellists", share="share", denominator="panel_size", rule=rule)
    population = _frame(con, "SELECT dimension, category, share AS population_share FROM core.population")
    cells = cells.join(population, on=["dimension", "category"], how="left")
    cells = cells.with_columns((pl.col("share") - pl.col("population_share")).alias("difference_from_population"))
    table = cells.select(
        "panel_id",
        "dimension",
        "category",
        "panellists",
        "panellists_status",
        "panel_size",
        "share",
        "share_status",
        "population_share",
        "difference_from_population",
        "disclosure_rule",
    ).sort("panel_id", "dimension", "category")
    return {"panel_composition": table}


def attendance_by_workshop(con: duckdb.DuckDBPyConnection, rule: DisclosureRule) -> Tables:
    """How many consented panellists attended each workshop, and retention against the first one."""
    counts = _frame(
        con,
        f"""
        SELECT a.panel_id, a.workshop_id, CASE WHEN a.attended THEN 'attended' ELSE 'did_not_attend' END AS attendance,
               count(*)::BIGINT AS panellists
        FROM core.attendance AS a
        WHERE (a.panel_id, a.panellist_ref) IN ({CONSENTED})
        GROUP BY ALL""",
    )
    protected = protect_counts(
        counts, count="panellists", groups=["workshop_id"], categories="attendance", by=["panel_id"], rule=rule
    )
    cells, totals = split_totals(protected, groups=["workshop_id"], categories="attendance")
    numbers = _frame(con, "SELECT panel_id, workshop_id, number AS workshop_number FROM core.workshops")
    out = cells.join(numbers, on=["panel_id", "workshop_id"], how="left")
    first = out.filter((pl.col("attendance") == "attended") & (pl.col("workshop_number") == 1)).select(
        "panel_id", pl.col("panellists").alias("_first"), pl.col("panellists_status").alias("_first_status")
    )
    out = out.join(first, on="panel_id", how="left").with_columns(
        pl.when(pl.col("attendance") == "attended")
        .then(pl.col("panellists") / pl.col("_first"))
        .alias("retention_vs_first_workshop")
    )
    out = protect_shares(
        out.rename({"_first": "first_workshop_attended", "_first_status": "first_workshop_attended_status"}),
        count="panellists",
        share="retention_vs_first_workshop",
        denominator="first_workshop_attended",
        rule=rule,
    )
    table = out.select(
        "panel_id",
        "workshop_id",
        "workshop_number",
        "attendance",
        "panellists",
        "panellists_status",
        "retention_vs_first_workshop",
        "retention_vs_first_workshop_status",
        "disclosure_rule",
    ).sort("panel_id", "workshop_number", "workshop_id", "attendance")
    totals = (
        totals.join(numbers, on=["panel_id", "workshop_id"], how="left")
        .select(
            "panel_id",
            "workshop_id",
            "workshop_number",
            "attendance",
            TOTAL_BY,
            "panellists",
            "panellists_status",
            "disclosure_rule",
        )
        .sort("panel_id", TOTAL_BY, "workshop_number", "workshop_id", "attendance", nulls_last=True)
    )
    return {"attendance_by_workshop": table, "attendance_by_workshop_totals": totals}


def latest_feedback(where: str = "TRUE") -> str:
    """Each consented panellist's latest feedback row on each project (a project reviewed at two workshops
    counts a panellist once, with what they said last), among the rows that meet `where`."""
    return f"""
        SELECT * EXCLUDE (_latest) FROM (
            SELECT f.*, row_number() OVER (
                       PARTITION BY f.panel_id, f.project_id, f.panellist_ref
                       ORDER BY w.number DESC NULLS LAST, f.workshop_id DESC) AS _latest
            FROM core.project_feedback AS f
            LEFT JOIN core.workshops AS w USING (panel_id, workshop_id)
            WHERE (f.panel_id, f.panellist_ref) IN ({CONSENTED}) AND ({where})
        ) WHERE _latest = 1"""


def project_acceptability(con: duckdb.DuckDBPyConnection, rule: DisclosureRule) -> Tables:
    """Panellists' verdicts per project (acceptable, with conditions, unacceptable, unsure): people, each once."""
    counts = _frame(
        con,
        f"""
        SELECT f.project_id, f.acceptability, count(*)::BIGINT AS panellists
        FROM ({latest_feedback()}) AS f
        GROUP BY ALL""",
    )
    protected = protect_counts(counts, count="panellists", groups=["project_id"], categories="acceptability", rule=rule)
    titles = _frame(con, "SELECT project_id, title AS project_title, sector FROM core.projects")
    cells, totals = split_totals(protected, groups=["project_id"], categories="acceptability")
    columns = ["project_id", "project_title", "sector", "acceptability"]
    counted = ["panellists", "panellists_status", "disclosure_rule"]
    return {
        "project_acceptability": cells.join(titles, on="project_id", how="left")
        .select(*columns, *counted)
        .sort("project_id", "acceptability"),
        "project_acceptability_totals": totals.join(titles, on="project_id", how="left")
        .select(*columns, TOTAL_BY, *counted)
        .sort(TOTAL_BY, "project_id", "acceptability", nulls_last=True),
    }


def project_scores(con: duckdb.DuckDBPyConnection, rule: DisclosureRule) -> Tables:
    """Mean perceived benefit and risk (1..5) per project, with how many panellists scored it (each once)."""
    scores = _frame(
        con,
        f"""
        SELECT f.project_id, count(*)::BIGINT AS panellists,
               avg(f.benefit) AS mean_benefit, avg(f.risk) AS mean_risk
        FROM ({latest_feedback("f.benefit IS NOT NULL OR f.risk IS NOT NULL")}) AS f
        GROUP BY ALL""",
    )
    protected = protect_means(scores, n="panellists", values=["mean_benefit", "mean_risk"], rule=rule)
    titles = _frame(con, "SELECT project_id, title AS project_title FROM core.projects")
    table = (
        protected.join(titles, on="project_id", how="left")
        .with_columns(pl.lit(rule.label).alias("disclosure_rule"))
        .select(
            "project_id",
            "project_title",
            "panellists",
            "panellists_status",
            "mean_benefit",
            "mean_benefit_status",
            "mean_risk",
            "mean_risk_status",
            "disclosure_rule",
        )
        .sort("project_id")
    )
    return {"project_scores": table}


def recommendation_support(con: duckdb.DuckDBPyConnection, rule: DisclosureRule) -> Tables:
    """Votes for, against and abstaining on each recommendation, per workshop it was voted on."""
    votes = _frame(
        con,
        """
        SELECT panel_id, workshop_id, recommendation_id, vote, votes::BIGINT AS votes
        FROM core.recommendations
        UNPIVOT (votes FOR vote IN (votes_for AS 'for', votes_against AS 'against', votes_abstain AS 'abstain'))""",
    )
    protected = protect_counts(
        votes, count="votes", groups=["recommendation_id"], categories="vote", by=["panel_id", "workshop_id"], rule=rule
    )
    themes = _frame(con, "SELECT panel_id, workshop_id, recommendation_id, theme FROM core.recommendations")
    cells, totals = split_totals(protected, groups=["recommendation_id"], categories="vote")
    keys = ["panel_id", "workshop_id", "recommendation_id"]
    columns = [*keys, "theme", "vote"]
    counted = ["votes", "votes_status", "disclosure_rule"]
    return {
        "recommendation_support": cells.join(themes, on=keys, how="left")
        .select(*columns, *counted)
        .sort(*keys, "vote"),
        "recommendation_support_totals": totals.join(themes, on=keys, how="left")
        .select(*columns, TOTAL_BY, *counted)
        .sort("panel_id", "workshop_id", TOTAL_BY, "recommendation_id", "vote", nulls_last=True),
    }


Builder = Callable[[duckdb.DuckDBPyConnection, DisclosureRule], Tables]


@dataclass(frozen=True)
class Aggregate:
    """An open-tier aggregate: its builder and every warehouse table the builder reads. What it publishes
    depends on nothing else (the tables' rows, the rule, this code), so publish fingerprints those tables
    and links the last version's file when none of them changed (`warehouse.publish_reuse`); a test builds
    each one on a warehouse holding only the tables it names."""

    build: Builder
    reads: tuple[str, ...]


_ATTENDANCE = Aggregate(attendance_by_workshop, ("core.attendance", "core.roster", "core.workshops"))
_ACCEPTABILITY = Aggregate(
    project_acceptability, ("core.project_feedback", "core.workshops", "core.roster", "core.projects")
)
_RECOMMENDATIONS = Aggregate(recommendation_support, ("core.recommendations",))

#: Each open-tier aggregate by table name (each table's YAML in models/open/ documents it); a table and
#: its totals share one builder, which makes both.
AGGREGATES: dict[str, Aggregate] = {
    "panel_composition": Aggregate(panel_composition, ("core.roster", "core.population")),
    "attendance_by_workshop": _ATTENDANCE,
    "attendance_by_workshop_totals": _ATTENDANCE,
    "project_acceptability": _ACCEPTABILITY,
    "project_acceptability_totals": _ACCEPTABILITY,
    "project_scores": Aggregate(
        project_scores, ("core.project_feedback", "core.workshops", "core.roster", "core.projects")
    ),
    "recommendation_support": _RECOMMENDATIONS,
    "recommendation_support_totals": _RECOMMENDATIONS,
}
