"""`din check` on real exports and partners' own files, run as a contributor runs it (a real subprocess):
it names the tool it recognised, counts respondents and answers, and says what the run would accept and
set aside, reading the file through the run's own code (transforms.delivery.read_delivery)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import REPO, SAMPLES

REAL = SAMPLES / "real-exports"
POLIS = REAL / "polis-london-youth-policing"
QUALTRICS = REAL / "qualtrics" / "sample.csv"
SURVEYS = SAMPLES / "survey-exports"


def din(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, timeout=120)


def test_check_names_the_tool_of_each_real_export_and_counts_people_and_answers() -> None:
    qualtrics = din("check", str(QUALTRICS))
    assert qualtrics.returncode == 0, qualtrics.stdout + qualtrics.stderr
    assert f"{QUALTRICS}: a Qualtrics export" in qualtrics.stdout
    assert "1 respondent(s), 2 answer(s)" in qualtrics.stdout
    assert "responses: 2 row(s); the run would accept 2 and set aside 0" in qualtrics.stdout
    assert "preview mapping" in qualtrics.stdout  # and how to check it as the run will read it
    votes = din("check", str(POLIS / "votes.csv"), "--format", "json")
    report = json.loads(votes.stdout)
    assert (report["tool"], report["respondents"], report["answers"]) == ("polis", 26, 638)
    assert {c["kind"]: (c["accepted"], c["set_aside"]) for c in report["counts"]} == {
        "responses": (638, 0),
        "response_history": (2, 0),
    }
    comments = din("check", str(POLIS / "comments.csv"))
    assert "a Polis export" in comments.stdout and "36 shown, 3 moderated out" in comments.stdout
    summary = din("check", str(POLIS / "summary.csv"))
    assert "nothing of its own to load" in summary.stdout and summary.returncode == 0
    google = din("check", str(SURVEYS / "google_forms_download_responses.csv"))
    assert "a Google Forms export" in google.stdout and "6 respondent(s), 41 answer(s)" in google.stdout


def test_check_with_a_kind_still_reads_a_survey_export_as_one_not_its_header_rows_as_data() -> None:
    result = din("check", str(QUALTRICS), "--kind", "responses")
    assert "a Qualtrics export" in result.stdout
    assert "data row(s)" not in result.stdout and "panel_id` is missing" not in result.stdout
    assert "1 respondent(s), 2 answer(s)" in result.stdout


def test_check_with_a_mapping_reads_a_polis_export_as_the_run_does(tmp_path: Path) -> None:
    mapping = REPO / "examples" / "mappings" / "polis.yaml"
    result = din("check", str(POLIS / "votes.csv"), "--mapping", str(mapping))
    assert result.returncode == 0
    assert "read with the mapping polis.yaml" in result.stdout
    alone = tmp_path / "votes.csv"
    shutil.copy(POLIS / "votes.csv", alone)  # without the export's comments.csv beside it
    refused = din("check", str(alone), "--mapping", str(mapping))
    assert refused.returncode == 1
    assert "the run would refuse the whole file" in refused.stdout and "need its comments.csv" in refused.stdout


def site(tmp_path: Path) -> Path:
    (tmp_path / "deliveries").mkdir()
    (tmp_path / "din.yaml").write_text(
        textwrap.dedent("""\
        mode: demo
        limits: {workshop_number_max: 6}
        reference:
          - {name: workshops, organisation: ORG-DIN, kind: workshops, location: deliveries}
        sources:
          - name: facilitator-attendance
            organisation: ORG-FAC
            kind: attendance
            location: deliveries
            format:
              date_order: day_first
              columns: {Panel: panel_id, Session: workshop_id, Name of attendee: panellist_ref, Came: attended}
        """)
    )
    return tmp_path / "din.yaml"


def test_check_as_a_configured_source_uses_its_column_mapping_and_shows_it(tmp_path: Path) -> None:
    config = site(tmp_path)
    own = tmp_path / "attendance from the hall.csv"
    own.write_text("Panel,Session,Name of attendee,Came\np1,W1,P1,yes\np1,W1,P2,maybe\n")
    result = din("check", str(own), "--source", "facilitator-attendance", "--config", str(config))
    assert "read as source facilitator-attendance reads its files" in result.stdout
    assert "'Name of attendee' is `panellist_ref`" in result.stdout
    assert "attendance: 2 row(s); the run would accept 1 and set aside 1" in result.stdout
    assert "row 3, column attended: `attended` is 'maybe'" in result.stdout
    assert result.returncode == 1
    plain = din("check", str(own), "--kind", "attendance")  # without the source: its headers mean nothing
    assert "required column `panellist_ref` is missing" in plain.stdout and plain.returncode == 1


def test_check_refuses_dates_nothing_decides_and_reads_them_in_a_declared_order(tmp_path: Path) -> None:
    path = tmp_path / "workshops.csv"
    path.write_text("panel_id,workshop_id,number,held_on,title,facilitator_org_id\np1,W1,1,06/12/2025,Intro,ORG-A\n")
    undecided = din("check", str(path))
    assert undecided.returncode == 1
    assert "the run would refuse the whole file" in undecided.stdout
    assert "'06/12/2025' is 6 December 2025 or 12 June 2025" in undecided.stdout and "--date-order" in undecided.stdout
    declared = din("check", str(path), "--date-order", "month_first", "--format", "json")
    assert json.loads(declared.stdout)["ok"] is True


def test_check_takes_the_workshop_limit_from_the_config(tmp_path: Path) -> None:
    config = site(tmp_path)
    path = tmp_path / "workshops.csv"
    path.write_text("panel_id,workshop_id,number,held_on,title,facilitator_org_id\np1,W7,7,2026-06-01,Extra,ORG-A\n")
    assert din("check", str(path)).returncode == 0  # no config: no limit but the contract's own (1 or more)
    limited = din("check", str(path), "--config", str(config))
    assert limited.returncode == 1
    assert "`number` is '7'; expected a whole number from 1 to 6" in limited.stdout


def test_a_contract_file_whose_first_header_looks_like_a_tool_s_is_checked_as_its_kind(tmp_path: Path) -> None:
    path = tmp_path / "responses.csv"
    path.write_text(
        "Timestamp,panel_id,workshop_id,panellist_ref,question_id,question_text,answer\n"
        "2026-03-12,p1,W1,P1,Q1,How?,Fine\n"
    )
    result = din("check", str(path))
    assert "kind responses (guessed from the headers), 1 data row(s)" in result.stdout
    assert "Google Forms" not in result.stdout and result.returncode == 0
