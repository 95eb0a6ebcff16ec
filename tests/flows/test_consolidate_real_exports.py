"""Real exports as partners deliver them, through the whole pipeline (Prefect test server, DuckDB, Parquet).

The Polis conversation is the real export in tests/fixtures/samples/real-exports (compdemocracy openData,
CC BY 4.0, The Computational Democracy Project), delivered as its four files in one folder. Its own
summary.csv is the account the published tables must match: 36 shown comments, 26 voters.
"""

from __future__ import annotations

import csv
import logging
import shutil
import textwrap
from pathlib import Path

import duckdb
import polars as pl
import pytest

from tests.conftest import REPO, SAMPLES
from tests.support.network import write_network
from tests.support.pipeline import published, run

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.xdist_group("prefect")]

POLIS = SAMPLES / "real-exports" / "polis-london-youth-policing"


def polis_site(root: Path) -> Path:
    """A network whose facilitator delivers the Polis export; the roster lists the conversation's participants."""
    (root / "reference").mkdir(parents=True)
    (root / "reference" / "organisations.csv").write_text("org_id,name,sector\nORG-UNI,University,education\n")
    (root / "reference" / "workshops.csv").write_text(
        "panel_id,workshop_id,number,held_on,title,facilitator_org_id\n"
        "din-pilot-2026,W4,4,2022-07-27,Deliberation on local scrutiny of policing,ORG-UNI\n"
    )
    participants = [row["participant"] for row in csv.DictReader((POLIS / "participants-votes.csv").open())]
    (root / "roster").mkdir()
    (root / "roster" / "roster.csv").write_text(
        "panel_id,panellist_ref,consent\n" + "".join(f"din-pilot-2026,{p},consented\n" for p in participants)
    )
    shutil.copytree(POLIS, root / "deliveries" / "polis" / "london-youth-policing")
    shutil.copy(REPO / "examples" / "mappings" / "polis.yaml", root / "polis.yaml")
    config = root / "din.yaml"
    config.write_text(
        textwrap.dedent("""\
        mode: demo
        data_dir: data
        reference:
          - {name: orgs, organisation: ORG-DIN, kind: organisations, location: reference/organisations.csv}
          - {name: workshops, organisation: ORG-DIN, kind: workshops, location: reference/workshops.csv}
        sources:
          - {name: roster, organisation: ORG-REC, kind: roster, location: roster}
          - name: assembly-polis
            organisation: ORG-UNI
            kind: responses
            location: deliveries/polis
            format: {type: survey, mapping: polis.yaml}
        """)
    )
    return config


def summary_csv() -> dict[str, str]:
    return {row[0]: row[1] for row in csv.reader((POLIS / "summary.csv").open()) if row}


def test_the_polis_sample_loads_with_counts_matching_its_own_summary(tmp_path: Path) -> None:
    from flows.consolidate import consolidate

    config = polis_site(tmp_path)
    summary = consolidate(config_path=str(config))
    assert summary["outcome"] == "succeeded", summary["warnings"]
    network = type("N", (), {"data_dir": tmp_path / "data"})
    tables = published(network)
    stated = summary_csv()

    statements = tables["statements"]
    assert statements.height == int(stated["comments"]) == 36  # shown comments only
    assert set(statements["moderation"]) == {"accepted"}
    responses = tables["responses"]
    assert responses["panellist_pseudonym"].n_unique() == int(stated["voters"]) == 26
    assert responses.height == 638  # 640 votes: the 2 earlier votes of a pair are history, not duplicates
    assert not set(responses["panellist_pseudonym"]) & {str(n) for n in range(30)}  # pseudonymised
    assert all(p.startswith("pn_") for p in responses["panellist_pseudonym"])
    assert tables["response_history"].height == 2
    assert tables["quarantine"].height == 0
    # Counts on each statement are of the panellists' latest votes, so they add up to the responses.
    assert int(statements["votes"].sum()) == responses.height
    assert (statements["agrees"] + statements["disagrees"] + statements["passes"] == statements["votes"]).all()
    s25 = statements.filter(pl.col("statement_id") == "S25").row(0, named=True)
    # comments.csv says 16 agrees: Polis counted participant 5's repeated agree twice; a person counts once.
    assert (s25["agrees"], s25["disagrees"]) == (15, 2)
    assert all(a.startswith("pn_") for a in statements["author_pseudonym"].drop_nulls())

    con = duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True)
    kept = dict(con.sql("SELECT moderation, count(*) FROM core.statements GROUP BY 1").fetchall())
    assert kept == {"accepted": 36, "moderated_out": 3}  # kept out of what is published, but counted
    deliveries = {
        Path(path).name: (outcome, message)
        for path, outcome, message in con.sql(
            "SELECT original_path, outcome, message FROM ops.deliveries WHERE source = 'assembly-polis'"
        ).fetchall()
    }
    assert deliveries["comments.csv"][0] == "accepted" and "3 moderated out" in deliveries["comments.csv"][1]
    assert deliveries["votes.csv"][0] == "accepted"
    assert "26 respondent(s), 638 answer(s) loaded" in deliveries["votes.csv"][1]
    assert deliveries["summary.csv"][0] == deliveries["participants-votes.csv"][0] == "companion"
    times = con.sql("SELECT min(answered_at), max(answered_at) FROM core.responses").fetchall()[0]
    assert [str(t) for t in times] == ["2022-07-27 14:55:51", "2022-07-27 15:12:21"]  # epoch ms, as UTC
    con.close()

    again = consolidate(config_path=str(config))
    assert again["deliveries_new"] == 0 and again["outcome"] == "succeeded"


def run_log_warnings(text: str) -> list[str]:
    """WARNING (and worse) lines of the flow runs' logs, as the Prefect UI shows them, that contain `text`."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterLevel, LogFilterTextSearch
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=30)
    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(level=LogFilterLevel(ge_=logging.WARNING), text=LogFilterTextSearch(query=text))
        )
    return [log.message for log in logs if text in log.message]


def test_a_refused_file_is_loud_everywhere_and_the_run_exits_needs_attention(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from app.cli import main
    from din.exit_codes import ExitCode

    network = write_network(tmp_path)
    name = f"responses-{tmp_path.name}.csv"  # unique in the session's Prefect log
    network.deliver(f"university/{name}", "panel_id,workshop_id,panellist_ref,question_id,answr\np1,W2,P1,Q9,x\n")

    code = main(["run", "--config", str(network.config)])

    out, _ = capfd.readouterr()
    assert code == ExitCode.NEEDS_ATTENTION == 4
    line = next(row for row in out.splitlines() if row.startswith("university-responses"))
    assert line.split()[5] == "1"  # the `refused` column of the run summary
    warning = next(row for row in out.splitlines() if row.startswith("WARNING"))
    assert warning.startswith(f"WARNING university-responses: {name} was refused whole: required column")
    assert "did you mean `answer`?" in warning
    logged = run_log_warnings(name)
    assert len(logged) == 1 and logged[0].startswith(f"needs attention: university-responses: {name} was refused")
    tables = published(network)
    refused = tables["deliveries"].filter(pl.col("original_path").str.ends_with(name)).row(0, named=True)
    assert refused["outcome"] == "refused"
    assert "required column `answer` is missing" in refused["message"]
    assert tables["responses"].height == 4  # the rest of the run went on
    con = duckdb.connect(str(network.data_dir / "warehouse.duckdb"), read_only=True)
    assert con.sql("SELECT outcome FROM ops.runs").fetchall() == [("succeeded_with_warnings",)]
    con.close()
    feedback = next((network.data_dir / "reports" / "feedback").glob("*/ORG-UNI/feedback.html")).read_text()
    assert "1 file could not be used at all." in feedback and name in feedback

    network.deliver(
        f"university/{name}",
        "panel_id,workshop_id,panellist_ref,question_id,question_text,answer\np1,W2,P1,Q9,t,x\n",
    )
    assert main(["run", "--config", str(network.config)]) == ExitCode.OK  # corrected: nothing needs attention


def test_a_partners_own_headers_load_through_the_source_s_column_mapping(tmp_path: Path) -> None:
    network = write_network(tmp_path)
    network.deliver(
        "facilitator/attendance.csv",
        "Panel,Session,Name of attendee,Came?\np1,W1,P1,Yes\np1,W1,P2,No\np1,W2,P3,yes\n",
    )
    network.config.write_text(
        network.config.read_text() + "  - name: facilitator-attendance\n    organisation: ORG-B\n    kind: attendance\n"
        "    location: deliveries/facilitator\n"
        "    format:\n      columns: {Panel: panel_id, Session: workshop_id, Name of attendee: panellist_ref,"
        " 'Came?': attended}\n"
    )
    summary = run(network)
    assert summary["outcome"] == "succeeded"
    attendance = published(network)["attendance"]
    assert attendance.height == 3 and sorted(attendance["attended"].to_list()) == [False, True, True]


@pytest.mark.parametrize(("limit", "accepted"), [(None, 7), (6, 6), (12, 7)])
def test_the_highest_workshop_number_is_the_network_s_own_limit(
    tmp_path: Path, limit: int | None, accepted: int
) -> None:
    network = write_network(tmp_path)
    workshops = "panel_id,workshop_id,number,held_on,title,facilitator_org_id\n" + "".join(
        f"p1,W{n},{n},2026-03-{10 + n},Workshop {n},ORG-A\n" for n in range(1, 8)
    )
    (network.root / "reference" / "workshops.csv").write_text(workshops)
    if limit is not None:
        network.config.write_text(f"limits: {{workshop_number_max: {limit}}}\n" + network.config.read_text())
    run(network)
    tables = published(network)
    assert tables["workshops"].height == accepted
    if limit == 6:
        reasons = tables["quarantine"].filter(pl.col("original_path").str.ends_with("workshops.csv"))["reasons"]
        assert reasons.to_list() == [["`number` is '7'; expected a whole number from 1 to 6"]]
