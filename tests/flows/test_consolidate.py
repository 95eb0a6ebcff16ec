"""The consolidate flow end to end, for real: Prefect (test server), DuckDB files, Parquet."""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb
import polars as pl
import pytest

from din.keys import DEMO_KEY
from tests.support.network import write_network
from tests.support.pipeline import duckdb_text, published, run
from transforms.pseudonymise import pseudonym
from warehouse.catalog import connect_catalog

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.xdist_group("prefect")]


def test_first_run_publishes_every_table_with_reconciled_counts(tmp_path: Path) -> None:
    network = write_network(tmp_path)
    summary = run(network)
    assert summary["outcome"] == "succeeded"
    tables = published(network)
    counts = {name: frame.height for name, frame in tables.items()}
    assert counts["organisations"] == 2
    assert counts["projects"] == 2
    assert counts["workshops"] == 2
    assert counts["population"] == 2
    assert counts["panellists"] == 3
    assert counts["responses"] == 4
    assert counts["project_feedback"] == 3
    assert counts["quarantine"] == 0
    deliveries = tables["deliveries"]
    assert deliveries.height == 7
    assert (deliveries["rows_read"] == deliveries["rows_accepted"] + deliveries["rows_quarantined"]).all()
    responses = tables["responses"]
    assert responses["answered_at"].to_list().count(None) == 2  # two left empty; one UK, one ISO date
    assert sorted(responses["answer"].to_list())[0] == "Ask [name] or email [email]"
    university = next(s for s in summary["sources"] if s["source"] == "university-responses")
    assert university["identifiers_scrubbed"] == {"email": 1, "name": 1}  # counted per delivery, numbers only
    assert (
        json.loads(tables["deliveries"].filter(pl.col("source_name") == "university-responses")["scrub_counts"][0])[
            "email"
        ]
        == 1
    )
    expected = pseudonym(DEMO_KEY, "p1", "P1")
    assert expected in responses["panellist_pseudonym"].to_list()
    assert "P1" not in responses["panellist_pseudonym"].to_list()
    catalog = connect_catalog(network.data_dir / "published" / "catalog.duckdb")
    assert catalog.sql("SELECT count(*) FROM restricted.responses").fetchall()[0][0] == 4
    metadata = dict(catalog.sql("SELECT key, value FROM catalog_metadata").fetchall())
    assert metadata["demo_key"] == "true"
    assert "DEMO" in metadata["notice"]


def test_rerun_with_nothing_new_changes_nothing(tmp_path: Path) -> None:
    network = write_network(tmp_path)
    first = run(network)
    before = {p: p.read_bytes() for p in (network.data_dir / "published" / "current").rglob("*.parquet")}
    second = run(network)
    assert second["deliveries_new"] == 0
    assert second["published_version"] == first["published_version"]
    after = {p: p.read_bytes() for p in (network.data_dir / "published" / "current").rglob("*.parquet")}
    assert before == after
    con = duckdb.connect(str(network.data_dir / "warehouse.duckdb"), read_only=True)
    assert con.sql("SELECT count(*) FROM ops.deliveries").fetchall()[0][0] == 7
    assert con.sql("SELECT count(*) FROM ops.runs WHERE outcome = 'succeeded'").fetchall()[0][0] == 2


def test_corrected_redelivery_supersedes_exactly_its_rows(tmp_path: Path) -> None:
    network = write_network(tmp_path)
    run(network)
    corrected = (network.root / "deliveries" / "university" / "responses-w1.csv").read_text()
    corrected = corrected.replace("Fairly comfortable", "Very comfortable")
    corrected = "\n".join(line for line in corrected.splitlines() if ",Q2," not in line) + "\n"
    network.deliver("university/responses-w1.csv", corrected)
    summary = run(network)
    assert summary["deliveries_new"] == 1
    source = next(s for s in summary["sources"] if s["source"] == "university-responses")
    assert source["files_superseded"] == 1
    responses = published(network)["responses"]
    assert responses.height == 3
    assert "Very comfortable" in responses["answer"].to_list()
    assert "Fairly comfortable" not in responses["answer"].to_list()
    deliveries = published(network)["deliveries"].filter(pl.col("source_name") == "university-responses")
    assert sorted(deliveries["status"].to_list()) == ["processed", "superseded"]


def test_same_rows_from_two_sources_are_stored_once_with_both_deliveries(tmp_path: Path) -> None:
    network = write_network(tmp_path)
    text = network.config.read_text() + (
        "  - {name: copy-of-responses, organisation: ORG-B, kind: responses, location: deliveries/copy,\n"
        "     format: {date_order: day_first}}\n"
    )
    network.config.write_text(text)
    network.deliver("copy/responses.csv", (network.root / "deliveries/university/responses-w1.csv").read_text())
    run(network)
    assert published(network)["responses"].height == 4
    con = duckdb.connect(str(network.data_dir / "warehouse.duckdb"), read_only=True)
    assert con.sql("SELECT min(len(delivery_ids)), count(*) FROM core.responses").fetchall()[0] == (2, 4)


BAD_FILES: dict[str, tuple[str, bytes | str, str, str]] = {
    "empty": ("university/empty.csv", b"", "file_unreadable", "the file is empty"),
    "header_only": (
        "university/header.csv",
        "panel_id,workshop_id,panellist_ref,question_id,question_text,answer\n",
        "file_has_no_rows",
        "no data rows",
    ),
    "binary_junk": ("university/junk.csv", bytes(range(256)) * 8, "file_unreadable", "binary data"),
    "missing_column": (
        "university/missing.csv",
        "panel_id,workshop_id,panellist_ref,question_id,answr\np1,W1,P1,Q9,x\n",
        "answer_present",
        "did you mean `answer`",
    ),
    "unknown_workshop": (
        "university/unknown.csv",
        "panel_id,workshop_id,panellist_ref,question_id,question_text,answer\np1,W7,P1,Q9,t,x\n",
        "workshop_known",
        "'p1 + W7'",
    ),
    "unknown_project": (
        "alpha/unknown-project.csv",
        "panel_id,workshop_id,project_id,panellist_ref,acceptability\np1,W2,PRJ-99,P1,unsure\n",
        "project_known",
        "'PRJ-99'",
    ),
    "duplicate_keys": (
        "university/dupes.csv",
        "panel_id,workshop_id,panellist_ref,question_id,question_text,answer\np1,W2,P1,Q9,t,a\np1,W2,P1,Q9,t,b\n",
        "key_unique",
        "appears more than once",
    ),
}


REFUSED_WHOLE = {"empty", "header_only", "binary_junk", "missing_column"}  # the others lose rows, not the file


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_input_is_quarantined_with_a_reason_and_the_run_completes(tmp_path: Path, case: str) -> None:
    relative, data, rule, words = BAD_FILES[case]
    network = write_network(tmp_path)
    network.deliver(relative, data)
    summary = run(network)
    # A file refused whole needs attention: the run says so (the rest of it completes all the same).
    refused = case in REFUSED_WHOLE
    # a small source setting aside more than attention.quarantined_share warns too (tested on its own)
    share = [w for w in summary["warnings"] if "attention.quarantined_share" in w]
    others = [w for w in summary["warnings"] if w not in share]
    assert summary["outcome"] == ("succeeded_with_warnings" if refused or share else "succeeded")
    assert [Path(relative).name in w for w in others] == ([True] if refused else [])
    tables = published(network)
    assert tables["responses"].height == 4  # the good deliveries all went through
    assert tables["project_feedback"].height == 3
    quarantine = tables["quarantine"].filter(pl.col("original_path").str.ends_with(Path(relative).name))
    assert quarantine.height >= 1
    assert all(rule in rules for rules in quarantine["rules"].to_list())
    assert any(words in reason for reasons in quarantine["reasons"].to_list() for reason in reasons)
    delivery = (
        tables["deliveries"].filter(pl.col("original_path").str.ends_with(Path(relative).name)).row(0, named=True)
    )
    assert delivery["rows_read"] == delivery["rows_accepted"] + delivery["rows_quarantined"]
    assert delivery["outcome"] == ("refused" if refused else "quarantined")
    if refused:
        assert words in delivery["message"]  # the reason travels with the delivery record


def test_cp1252_semicolon_file_with_uk_dates_loads(tmp_path: Path) -> None:
    network = write_network(tmp_path)
    text = (
        "Panel ID;Workshop ID;Panellist Ref;Question ID;Question text;Answer;Answered at\r\n"
        "p1;W2;P2;Q5;Café or tea?;Café, definitely – with a £1 cake;19/03/2026 10:05\r\n"
    )
    network.deliver("university/cp1252.csv", text.encode("cp1252"))
    run(network)
    responses = published(network)["responses"].filter(pl.col("question_id") == "Q5")
    assert responses["answer"].to_list() == ["Café, definitely – with a £1 cake"]
    assert str(responses["answered_at"][0]) == "2026-03-19 10:05:00"
    delivery = published(network)["deliveries"].filter(pl.col("original_path").str.ends_with("cp1252.csv"))
    assert delivery["encoding"].to_list() == ["cp1252"]


def test_direct_identifiers_never_leave_landing(tmp_path: Path) -> None:
    network = write_network(tmp_path)
    run(network)
    planted = [
        "Morag Henderson",
        "morag.h@example.co.uk",
        "07700 900461",
        "DD2 3AB",
        "Jamie Ross",
        "jamie.r@example.com",
        "0131 496 0723",
        "EH1 1YZ",
        "Dana Okafor",
        "G12 8QQ",
    ]
    landing = network.data_dir / "landing"
    checked = 0
    for path in network.data_dir.rglob("*"):
        if not path.is_file() or landing in path.parents:
            continue
        if path.suffix == ".parquet":
            text = "\n".join(str(row) for row in pl.read_parquet(path).rows())
        elif path.suffix == ".duckdb":
            text = duckdb_text(path)
        else:
            text = path.read_bytes().decode("utf-8", errors="replace")
        for identifier in planted:
            assert identifier.lower() not in text.lower(), f"{identifier!r} found in {path}"
        checked += 1
    assert checked > 15
    # ...and the landing copy is the file as delivered, identifiers included
    assert any(b"Morag Henderson" in p.read_bytes() for p in landing.rglob("*") if p.is_file())


def test_failure_during_publish_leaves_the_previous_version_intact(tmp_path: Path) -> None:
    network = write_network(tmp_path)
    run(network)
    current = network.data_dir / "published" / "current"
    before = {str(p.relative_to(current)): p.read_bytes() for p in current.rglob("*.parquet")}
    version_before = os.readlink(current)
    network.deliver(
        "university/more.csv",
        "panel_id,workshop_id,panellist_ref,question_id,question_text,answer\np1,W2,P2,Q7,t,yes\n",
    )
    from din.faults import InjectedFailure

    with pytest.raises(InjectedFailure):
        run(network, DIN_INJECT_FAILURE="publish")
    assert os.readlink(current) == version_before
    after = {str(p.relative_to(current)): p.read_bytes() for p in current.rglob("*.parquet")}
    assert after == before
    catalog = connect_catalog(network.data_dir / "published" / "catalog.duckdb")
    assert catalog.sql("SELECT count(*) FROM responses").fetchall()[0][0] == 4
    catalog.close()
    summary = run(network)  # the next run publishes what the failed one could not
    assert published(network)["responses"].height == 5
    assert summary["outcome"] == "succeeded"


def test_production_run_without_a_key_stops_before_any_work(tmp_path: Path) -> None:
    network = write_network(tmp_path, mode="production")
    os.environ.pop("DIN_PSEUDONYM_KEY", None)
    from din.keys import PseudonymKeyError

    with pytest.raises(PseudonymKeyError, match="no pseudonymisation key"):
        run(network)
    assert not (network.data_dir / "published").exists()
    summary = run(network, DIN_PSEUDONYM_KEY="k" * 64)
    assert summary["demo_key"] is False
    responses = published(network)["responses"]
    assert pseudonym(b"k" * 64, "p1", "P1") in responses["panellist_pseudonym"].to_list()


def test_withdrawn_panellist_disappears_from_published_tables(tmp_path: Path) -> None:
    network = write_network(tmp_path)
    run(network)
    roster = (
        (network.root / "deliveries/recruiter/roster.csv")
        .read_text()
        .replace("p1,P1,16-34,Woman,consented", "p1,P1,16-34,Woman,withdrawn")
    )
    network.deliver("recruiter/roster.csv", roster)
    summary = run(network)
    assert summary["withdrawn_panellists"] == 1
    assert summary["withdrawn_rows_excluded"] == 3  # two answers and one feedback row
    gone = pseudonym(DEMO_KEY, "p1", "P1")
    for name, frame in published(network).items():
        if "panellist_pseudonym" in frame.columns:
            assert gone not in frame["panellist_pseudonym"].to_list(), name
    con = duckdb.connect(str(network.data_dir / "warehouse.duckdb"), read_only=True)
    stages, excluded = con.sql(
        "SELECT stage_seconds, withdrawn_rows_excluded FROM ops.runs ORDER BY started_at DESC LIMIT 1"
    ).fetchall()[0]
    assert json.loads(stages).keys() >= {"pull", "validate_and_merge", "publish"}
    assert excluded == 3
