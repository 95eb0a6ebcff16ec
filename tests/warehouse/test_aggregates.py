"""Open aggregates count people where they say people: a panellist who judged a project at two workshops
is one panellist, counted with their latest verdict and scores; and a table of cells sums to its total,
because the totals are a table of their own."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from transforms.disclosure import DisclosureRule
from warehouse.aggregates import project_acceptability, project_scores
from warehouse.schema import connect, create_schema

PEOPLE = [f"P{n:02d}" for n in range(1, 13)]


def warehouse(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    """Twelve consented panellists judge PRJ-1 at workshop 2; six of them judge it again at workshop 5."""
    con = connect(tmp_path / "warehouse.duckdb")
    create_schema(con)
    con.execute(
        "INSERT INTO core.projects (project_id, title, lead_org_id, sector, stage, delivery_id) VALUES "
        "('PRJ-1', 'Linking records', 'ORG-A', 'health', 'ongoing', 1)"
    )
    con.execute(
        "INSERT INTO core.workshops (panel_id, workshop_id, number, held_on, title, facilitator_org_id, "
        "delivery_id) VALUES ('p1', 'W2', 2, '2026-03-21', 'Past', 'ORG-A', 1), "
        "('p1', 'W5', 5, '2026-05-02', 'Ongoing', 'ORG-A', 1)"
    )
    roster = pl.DataFrame({"panel_id": ["p1"] * 12, "panellist_ref": PEOPLE, "consent": ["consented"] * 12})
    con.register("roster", roster.to_arrow())
    con.execute("INSERT INTO core.roster BY NAME SELECT *, 1 AS delivery_id FROM roster")
    first = [("p1", "W2", "PRJ-1", p, 4, 2, "acceptable") for p in PEOPLE]
    again = [("p1", "W5", "PRJ-1", p, 2, 4, "unacceptable") for p in PEOPLE[:6]]  # they changed their minds
    feedback = pl.DataFrame(
        first + again,
        schema=["panel_id", "workshop_id", "project_id", "panellist_ref", "benefit", "risk", "acceptability"],
        orient="row",
    )
    con.register("feedback", feedback.to_arrow())
    con.execute("INSERT INTO core.project_feedback BY NAME SELECT *, 1 AS delivery_id FROM feedback")
    return con


def test_a_panellist_who_judged_a_project_twice_is_counted_once_with_the_latest_verdict(tmp_path: Path) -> None:
    con = warehouse(tmp_path)
    tables = project_acceptability(con, DisclosureRule())
    verdicts = tables["project_acceptability"]
    counts = {r["acceptability"]: r["panellists"] for r in verdicts.iter_rows(named=True)}
    assert counts == {"acceptable": 6, "unacceptable": 6}
    project_total = tables["project_acceptability_totals"].filter(pl.col("total_by") == "project_id")
    assert project_total["panellists"].to_list() == [12]  # 12 people, not 18 verdicts
    scores = project_scores(con, DisclosureRule())["project_scores"].row(0, named=True)
    assert scores["panellists"] == 12
    assert (scores["mean_benefit"], scores["mean_risk"]) == (3.0, 3.0)  # six at 4/2 and six now at 2/4


def test_cells_and_totals_are_separate_tables_so_a_plain_sum_of_the_cells_is_the_total(tmp_path: Path) -> None:
    con = warehouse(tmp_path)
    con.execute(
        "INSERT INTO core.projects (project_id, title, lead_org_id, sector, stage, delivery_id) VALUES "
        "('PRJ-2', 'Sharing school data', 'ORG-A', 'education', 'ongoing', 1)"
    )
    con.execute(
        "INSERT INTO core.project_feedback BY NAME SELECT panel_id, 'W2' AS workshop_id, 'PRJ-2' AS project_id, "
        "panellist_ref, 3 AS benefit, 3 AS risk, 'unsure' AS acceptability, 1 AS delivery_id FROM core.roster"
    )
    tables = project_acceptability(con, DisclosureRule())
    cells, totals = tables["project_acceptability"], tables["project_acceptability_totals"]
    assert "is_total" not in cells.columns and cells["acceptability"].null_count() == 0
    assert cells["project_id"].null_count() == 0
    overall = totals.filter(pl.col("total_by") == "all")
    assert overall.height == 1 and overall["panellists"].item() == cells["panellists"].sum() == 24
    per_project = totals.filter(pl.col("total_by") == "project_id").sort("project_id")
    assert per_project.select("project_id", "panellists").rows() == [("PRJ-1", 12), ("PRJ-2", 12)]
    per_verdict = totals.filter(pl.col("total_by") == "acceptability").sort("acceptability")
    assert per_verdict.select("acceptability", "panellists").rows() == [
        ("acceptable", 6),
        ("unacceptable", 6),
        ("unsure", 12),
    ]
    assert per_verdict["project_id"].null_count() == 3  # a total is empty in what it sums over
    assert set(totals["total_by"]) == {"project_id", "acceptability", "all"}
