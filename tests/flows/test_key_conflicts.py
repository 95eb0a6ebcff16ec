"""The same key delivered by two organisations, through real runs: settled by the ownership rule (the
project's lead organisation for its feedback, the workshop's facilitator for its responses), never by
arrival order; reported to both organisations and to the operator; counts stay true.

In the test network ORG-A leads PRJ-1 and facilitated W1, ORG-B leads PRJ-2; ORG-UNI delivers W1's
responses (facilitated by ORG-A, so ORG-UNI owns none of them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from tests.support.network import Network, write_network
from tests.support.pipeline import content, published, rebuild, run

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.xdist_group("prefect")]

FEEDBACK_HEADER = "panel_id,workshop_id,project_id,panellist_ref,benefit,risk,acceptability,conditions,comment\n"
#: ORG-B's feedback: P3 on its own PRJ-2 (differs from ORG-A's row), P1 on ORG-A's PRJ-1 (differs too),
#: and P2 on PRJ-1 exactly as ORG-A has it (the same row from two places: no conflict).
BETA_FEEDBACK = FEEDBACK_HEADER + (
    "p1,W2,PRJ-2,P3,2,4,unacceptable,,Ours\np1,W2,PRJ-1,P1,1,5,unacceptable,,Not ours\np1,W2,PRJ-1,P2,3,3,Unsure,,\n"
)
#: ORG-B's answer to a W1 question ORG-UNI answered differently: ORG-A facilitated W1, so neither wins.
BETA_RESPONSES = (
    "panel_id,workshop_id,panellist_ref,question_id,question_text,answer,answered_at\n"
    "p1,W1,P1,Q1,How comfortable are you?,Very comfortable,\n"
)


def add_beta(network: Network) -> None:
    config = network.config.read_text()
    config += "  - {name: beta-feedback, organisation: ORG-B, kind: project_feedback, location: deliveries/beta}\n"
    config += "  - {name: beta-responses, organisation: ORG-B, kind: responses, location: deliveries/beta-r}\n"
    network.config.write_text(config)
    network.deliver("beta/feedback.csv", BETA_FEEDBACK)
    network.deliver("beta-r/responses.csv", BETA_RESPONSES)


def feedback_of(tables: dict[str, pl.DataFrame]) -> dict[tuple[str, str], tuple[Any, ...]]:
    """(project, panellist pseudonym prefix) -> (source, benefit, risk, acceptability) as published."""
    frame = tables["project_feedback"]
    return {
        (r["project_id"], r["panellist_pseudonym"]): (r["source_name"], r["benefit"], r["risk"], r["acceptability"])
        for r in frame.iter_rows(named=True)
    }


def reconciled(tables: dict[str, pl.DataFrame]) -> bool:
    d = tables["deliveries"].filter(pl.col("status") == "processed")
    return bool((d["rows_read"] == d["rows_accepted"] + d["rows_quarantined"]).all())


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """ORG-A's and ORG-UNI's files first; ORG-B's arrive the next night; then a second site gets all at once."""
    incremental = write_network(tmp_path_factory.mktemp("conflicts") / "site")
    first = run(incremental)
    before = published(incremental)
    add_beta(incremental)
    second = run(incremental)
    after = published(incremental)
    at_once = write_network(tmp_path_factory.mktemp("conflicts-at-once") / "site")
    add_beta(at_once)
    together = run(at_once)
    return {
        "network": incremental,
        "first": first,
        "before": before,
        "second": second,
        "after": after,
        "at_once": at_once,
        "together": together,
        "together_tables": published(at_once),
    }


def test_the_owner_s_row_is_published_whoever_delivered_first(story: dict[str, Any]) -> None:
    after = feedback_of(story["after"])
    sources = {(project, source) for (project, _), (source, *_rest) in after.items()}
    assert ("PRJ-2", "beta-feedback") in sources  # ORG-B leads PRJ-2: its row replaces ORG-A's earlier one
    assert ("PRJ-1", "beta-feedback") not in sources  # ORG-A leads PRJ-1: ORG-B's later rows do not, not even
    # P2's, which both delivered alike (stored once: the owner's copy, with both deliveries)
    prj2 = [values for (project, _), values in after.items() if project == "PRJ-2"]
    assert prj2 == [("beta-feedback", 2, 4, "unacceptable")]
    assert len(after) == 3  # P1, P2 on PRJ-1 and P3 on PRJ-2: nothing doubled, nothing lost
    assert content(story["after"]) == content(story["together_tables"])  # arrival order changes nothing


def test_a_key_neither_organisation_owns_is_set_aside_on_both_sides(story: dict[str, Any]) -> None:
    before = story["before"]["responses"].filter(pl.col("question_id") == "Q1")
    after = story["after"]["responses"].filter(pl.col("question_id") == "Q1")
    assert before.height == 3 and after.height == 2  # P1's Q1: ORG-UNI and ORG-B differ; ORG-A facilitated W1
    quarantine = story["after"]["quarantine"].filter(pl.col("kind") == "responses")
    conflict = quarantine.filter(pl.col("rules").list.contains("key_conflict"))
    assert sorted(conflict["source_name"].to_list()) == ["beta-responses", "university-responses"]
    reason = conflict.filter(pl.col("source_name") == "university-responses")["reasons"][0][0]
    assert reason.startswith("ORG-B also delivered this row (p1 / W1 / pn_")
    assert "neither of you is the workshop's facilitator (ORG-A)" in reason
    assert "until one of you withdraws it" in reason


def test_counts_stay_true_for_both_deliveries(story: dict[str, Any]) -> None:
    for tables in (story["after"], story["together_tables"]):
        assert reconciled(tables)
    deliveries = {r["source_name"]: r for r in story["after"]["deliveries"].iter_rows(named=True)}
    assert (deliveries["alpha-feedback"]["rows_accepted"], deliveries["alpha-feedback"]["rows_quarantined"]) == (2, 1)
    assert deliveries["alpha-feedback"]["outcome"] == "partly_accepted"
    assert (deliveries["beta-feedback"]["rows_accepted"], deliveries["beta-feedback"]["rows_quarantined"]) == (2, 1)
    assert (
        deliveries["university-responses"]["rows_accepted"],
        deliveries["university-responses"]["rows_quarantined"],
    ) == (3, 1)
    assert story["first"]["rows_quarantined"] == 0


def test_key_conflicts_are_published_for_the_operator(story: dict[str, Any]) -> None:
    conflicts = story["after"]["key_conflicts"]
    assert conflicts.height == 6  # 2 feedback keys and 1 responses key, 2 rows each
    kept = conflicts.filter(pl.col("kept"))
    assert sorted(zip(kept["kind"], kept["organisation"], kept["owner"], strict=True)) == [
        ("project_feedback", "ORG-A", "ORG-A"),
        ("project_feedback", "ORG-B", "ORG-B"),
    ]
    assert conflicts.filter(pl.col("kind") == "responses")["owner"].to_list() == ["ORG-A", "ORG-A"]
    assert not conflicts.filter(pl.col("kind") == "responses")["kept"].any()
    warnings = story["second"]["run_warnings"]
    assert any(w.startswith("project_feedback: 1 row(s) of ORG-A set aside: ORG-B delivered") for w in warnings)
    assert any(w.startswith("responses: 1 row(s) of ORG-UNI set aside") and "neither owns" in w for w in warnings)


def test_both_organisations_are_told(story: dict[str, Any]) -> None:
    network, second = story["network"], story["second"]["run_id"]
    folder = network.data_dir / "reports" / "feedback" / second
    alpha = (folder / "ORG-A" / "feedback.html").read_text()
    assert "feedback-w2.csv" in alpha  # delivered the night before, told now
    assert "ORG-B also delivered this row" in alpha and "the project&#39;s lead organisation" in alpha
    assert "Rows another organisation also delivered" in alpha  # and its PRJ-1 row was kept
    beta = (folder / "ORG-B" / "feedback.html").read_text()
    assert "ORG-A also delivered this row" in beta and "Rows another organisation also delivered" in beta
    uni = (folder / "ORG-UNI" / "feedback.html").read_text()
    assert "neither of you is the workshop&#39;s facilitator" in uni
    rejected = (folder / "ORG-A" / "rejected_rows.csv").read_text()
    assert "key_conflict" in rejected and "ORG-B" in rejected


def test_a_withdrawn_row_lets_the_other_organisation_s_row_back(story: dict[str, Any], tmp_path: Path) -> None:
    network = story["at_once"]
    network.deliver("beta/feedback.csv", FEEDBACK_HEADER + "p1,W2,PRJ-1,P2,3,3,Unsure,,\n")  # ORG-B withdraws two
    # a header-only file is refused and never supersedes (nothing silent): ORG-B withdraws the row by
    # sending its responses again without it
    network.deliver("beta-r/responses.csv", BETA_RESPONSES.splitlines()[0] + "\np1,W1,P1,Q7,Anything else?,No,\n")
    summary = run(network)
    tables = published(network)
    assert reconciled(tables)
    assert tables["key_conflicts"].height == 0
    assert (
        tables["quarantine"]
        .filter(pl.col("rules").list.contains("key_conflict") & ~pl.col("delivery_superseded"))
        .height
        == 0
    )
    assert tables["responses"].filter(pl.col("question_id") == "Q1").height == 3  # ORG-UNI's answer is back
    prj2 = [v for (p, _), v in feedback_of(tables).items() if p == "PRJ-2"]
    assert prj2 == [("alpha-feedback", 5, 1, "acceptable")]
    alpha = next(r for r in tables["deliveries"].iter_rows(named=True) if r["source_name"] == "alpha-feedback")
    assert (alpha["rows_accepted"], alpha["rows_quarantined"], alpha["outcome"]) == (3, 0, "accepted")
    assert summary["files_refused"] == 0
    assert tables["responses"].filter(pl.col("question_id") == "Q7").height == 1  # what ORG-B sent instead


def test_a_new_lead_organisation_settles_the_key_again(tmp_path: Path) -> None:
    network = write_network(tmp_path)
    add_beta(network)
    run(network)
    projects = (
        (network.root / "reference" / "projects.csv")
        .read_text()
        .replace("PRJ-2,School meals data share,ORG-B", "PRJ-2,School meals data share,ORG-A")
    )
    (network.root / "reference" / "projects.csv").write_text(projects)
    run(network)  # only the projects reference changed
    prj2 = [v for (p, _), v in feedback_of(published(network)).items() if p == "PRJ-2"]
    assert prj2 == [("alpha-feedback", 5, 1, "acceptable")]
    con = duckdb.connect(str(network.data_dir / "warehouse.duckdb"), read_only=True)
    try:
        kept = con.sql("SELECT organisation FROM ops.key_conflicts WHERE kept ORDER BY 1").fetchall()
    finally:
        con.close()
    assert kept == [("ORG-A",), ("ORG-A",)]


def test_a_rebuild_settles_every_conflict_the_same_way(story: dict[str, Any]) -> None:
    network = story["network"]
    before = content(published(network))
    conflicts = published(network)["key_conflicts"].drop("run_id").sort(["kind", "key", "organisation"])
    rebuild(network)
    after = published(network)
    assert content(after) == before
    assert after["key_conflicts"].drop("run_id").sort(["kind", "key", "organisation"]).equals(conflicts)
    assert reconciled(after)
