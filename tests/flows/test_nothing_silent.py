"""Failures that used to pass as success, through real runs: a broken re-upload, a reference or roster read
as nothing, a source setting most of its rows aside, reading options corrected after the fact, and rows a
reader could not read as the header says. Each is a warning (or a held publish) with its reason, never a
silent loss, and the exit code says which."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import duckdb
import pytest

from din.exit_codes import ExitCode, exit_code_for
from tests.support.network import FEEDBACK, RESPONSES, ROSTER, Network, write_network
from tests.support.pipeline import published, run

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.xdist_group("prefect")]


def _source(summary: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in summary["sources"] if s["source"] == name)


def _redeliver(network: Network, relative: str, content: str | bytes, bump: int) -> None:
    path = network.deliver(relative, content)
    stamp = path.stat().st_mtime + bump
    os.utime(path, (stamp, stamp))  # a new modification time, as a real re-upload has


def _counts(network: Network) -> dict[str, int]:
    tables = published(network)
    return {name: tables[name].height for name in ("panellists", "responses", "project_feedback")}


def _config(network: Network, old: str, new: str) -> None:
    text = network.config.read_text()
    assert old in text
    network.config.write_text(text.replace(old, new))


def _quarantine(network: Network, file: str) -> list[tuple[int, list[str], list[str]]]:
    con = duckdb.connect(str(network.data_dir / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(
            """SELECT q.source_row, q.rules, q.reasons FROM ops.quarantine q JOIN ops.deliveries d USING (delivery_id)
               WHERE d.relative_path = ? AND d.status = 'processed' ORDER BY 1""",
            [file],
        ).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Network:
    network = write_network(tmp_path_factory.mktemp("silent"))
    first = run(network)
    assert first["outcome"] == "succeeded", first["warnings"]
    assert _counts(network) == {"panellists": 3, "responses": 4, "project_feedback": 3}
    return network


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"", "the file is empty"),
        (RESPONSES[: RESPONSES.index("\n") + 20], "no row could be read as its header says"),  # cut short
        (RESPONSES.encode("utf-16"), None),  # UTF-16 is read (its BOM says so): the same rows, not a loss
    ],
)
def test_a_broken_re_upload_never_wipes_rows_accepted_earlier(
    network: Network, content: str | bytes, why: str | None
) -> None:
    _redeliver(network, "university/responses-w1.csv", content, bump=10 + len(content))
    summary = run(network)
    assert _counts(network)["responses"] == 4  # never 0: the earlier delivery stays in use
    university = _source(summary, "university-responses")
    if why is None:
        assert summary["outcome"] == "succeeded" and university["files_refused"] == 0
        return
    assert university["files_refused"] == 1
    assert summary["outcome"] == "succeeded_with_warnings"
    assert exit_code_for(summary["outcome"]) is ExitCode.NEEDS_ATTENTION
    (warning,) = university["warnings"]
    assert why in warning and "the earlier delivery of this file" in warning and "is still used" in warning
    # the good file again: it replaces both the refused delivery and the one kept in use (no duplicates)
    _redeliver(network, "university/responses-w1.csv", RESPONSES, bump=500 + len(content))
    again = run(network)
    assert again["outcome"] == "succeeded", again["warnings"]
    assert _counts(network)["responses"] == 4
    con = duckdb.connect(str(network.data_dir / "warehouse.duckdb"), read_only=True)
    in_use = con.execute(
        "SELECT count(*) FROM ops.deliveries WHERE source = 'university-responses' AND status = 'processed'"
    ).fetchall()
    con.close()
    assert in_use == [(1,)]


def test_a_roster_read_as_nothing_holds_the_publish_until_its_options_are_corrected(network: Network) -> None:
    before = _counts(network)
    version = os.readlink(network.data_dir / "published" / "current")
    # the operator declares the CSV roster as XLSX: the file is unchanged, its reading changes
    _config(network, "location: deliveries/recruiter}", "location: deliveries/recruiter, format: {type: xlsx}}")
    held = run(network)
    roster = _source(held, "recruiter-roster")
    assert roster["files_reread"] == 1 and roster["files_new"] == 0 and roster["files_refused"] == 1
    assert held["outcome"] == "publish_held"
    assert exit_code_for(held["outcome"]) is ExitCode.NOT_PUBLISHED
    guard = [w for w in held["warnings"] if w.startswith("roster:")]
    assert guard and "0 row(s) now, 3 in the published version" in guard[0] and "NOT PUBLISHED" in guard[0]
    assert os.readlink(network.data_dir / "published" / "current") == version  # the previous version stays
    assert _counts(network) == before
    # corrected: the roster is read again, as CSV, and published
    _config(network, "location: deliveries/recruiter, format: {type: xlsx}}", "location: deliveries/recruiter}")
    fixed = run(network)
    assert fixed["outcome"] == "succeeded", fixed["warnings"]
    assert _source(fixed, "recruiter-roster")["files_reread"] == 1
    assert _counts(network) == before


def test_a_roster_losing_most_of_its_rows_is_published_only_when_accepted(network: Network) -> None:
    one = "\n".join(ROSTER.splitlines()[:2]) + "\n"  # the header and P1: P2 and P3 are gone
    _redeliver(network, "recruiter/roster.csv", one, bump=1000)
    held = run(network)
    assert held["outcome"] == "publish_held"
    assert any("1 row(s) now, 3 in the published version (2 lost, more than" in w for w in held["warnings"])
    assert _counts(network)["panellists"] == 3
    accepted = run(network, accept_drop=True)
    assert accepted["outcome"] == "succeeded_with_warnings"  # still worth a look, but published
    assert any("published anyway (--accept-drop)" in w for w in accepted["warnings"])
    assert _counts(network)["panellists"] == 1
    calm = run(network)  # the accepted version is the new baseline
    assert calm["outcome"] == "succeeded", calm["warnings"]
    _redeliver(network, "recruiter/roster.csv", ROSTER, bump=2000)
    assert run(network)["outcome"] == "succeeded"
    assert _counts(network)["panellists"] == 3


def test_a_source_setting_most_rows_aside_warns(network: Network) -> None:
    rows = FEEDBACK.splitlines()
    bad = [rows[0], rows[1]] + [line.replace(",4,2,", ",9,9,").replace(",3,3,", ",9,9,") for line in rows[2:]]
    bad += ["p1,W2,PRJ-2,P1,8,8,acceptable,,", "p1,W2,PRJ-2,P2,7,7,acceptable,,"]
    _redeliver(network, "alpha/feedback-w2.csv", "\n".join(bad) + "\n", bump=3000)
    summary = run(network)
    alpha = _source(summary, "alpha-feedback")
    assert alpha["rows_read"] == 5 and alpha["rows_quarantined"] == 3  # P2's row and the two added
    (warning,) = alpha["warnings"]
    assert "3 of the 5 row(s) read (60%) were set aside, more than attention.quarantined_share 25%" in warning
    assert summary["outcome"] == "succeeded_with_warnings"
    _redeliver(network, "alpha/feedback-w2.csv", FEEDBACK, bump=4000)
    assert run(network)["outcome"] == "succeeded"


def test_rows_a_reader_cannot_read_as_the_header_says_are_set_aside_with_their_reason(network: Network) -> None:
    header, *records = RESPONSES.splitlines()
    nul = records[1].replace("Prefer not to say", "Prefer not\x00to say")
    text = "\n".join([header, records[0], nul, records[2], "p1,W1,P3,Q2,Anything"])  # the last row cut short
    _redeliver(network, "university/responses-w1.csv", text, bump=5000)
    duplicate = "panel_id,workshop_id,panellist_ref,question_id,question_text,answer,answer\np1,W1,P1,Q3,Q?,a,b\n"
    network.deliver("university/responses-w1-dup.csv", duplicate)
    summary = run(network)
    quarantined = _quarantine(network, "responses-w1.csv")
    assert [(row, rules) for row, rules, _ in quarantined] == [(3, ["value_nul_byte"]), (5, ["row_field_count"])]
    assert "NUL byte" in quarantined[0][2][0]
    assert "this row has 5 field(s) but the header has 7: it was cut short" in quarantined[1][2][0]
    tables = published(network)
    answers = tables["responses"]["answer"].to_list()
    assert "Prefer not\x00to say" not in answers and not any(a is None for a in answers)  # never padded
    university = _source(summary, "university-responses")
    refused = [w for w in university["warnings"] if "responses-w1-dup.csv" in w]
    assert refused and "the header 'answer' is given 2 times" in refused[0]
    con = duckdb.connect(str(network.data_dir / "warehouse.duckdb"), read_only=True)
    (message,) = con.execute(
        "SELECT message FROM ops.deliveries WHERE relative_path = 'responses-w1-dup.csv'"
    ).fetchone() or ("",)
    con.close()
    assert "answer" in message
    assert json.dumps(summary["warnings"]).count("responses-w1-dup.csv") == 1


def test_the_summary_says_what_was_read_again_and_what_was_held(network: Network, tmp_path: Path) -> None:
    from reports.run_summary import summary_text
    from warehouse.runs import RunSummary

    _config(network, "format: {date_order: day_first}}", "format: {date_order: day_first, delimiter: ','}}")
    summary = run(network)
    text = summary_text(RunSummary.from_dict(summary))
    assert "reading options changed, deliveries read again: university-responses 2" in text
    assert summary["rows_accepted"] >= 3
