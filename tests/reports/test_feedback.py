"""Feedback reports per organisation and schema drift, on a real flow run over a small network."""

from __future__ import annotations

import csv
import hashlib
import html
import io
import re
from dataclasses import fields
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest

from din.keys import DEMO_KEY
from din.paths import DataPaths
from reports.feedback import (
    CSV_COLUMNS,
    DeliveryRecord,
    OrgReport,
    Rejected,
    compare_headers,
    csv_row,
    feedback_markdown,
    schema_drift,
    write_feedback_reports,
)
from tests.support.network import FEEDBACK, RESPONSES, ROSTER, Network, write_network
from transforms.pseudonymise import pseudonym

uses_prefect = pytest.mark.usefixtures("prefect_server")
prefect_group = pytest.mark.xdist_group("prefect")

# ORG-A's feedback with three faulty rows (spreadsheet rows 5, 6, 7): a score that is not a number
# (its comment names a panellist and gives a phone number), a panellist_ref that is an email
# address from the roster, and a verdict that is not allowed (and is markup).
FAULTY_FEEDBACK = FEEDBACK + (
    "p1,W2,PRJ-2,P1,lots,2,acceptable,,Morag Henderson said so; call 07700 900461\n"
    "p1,W2,PRJ-2,jamie.r@example.com,3,3,acceptable,,\n"
    "p1,W2,PRJ-1,P3,2,4,<b>maybe</b>,,\n"
)
# ORG-UNI's responses with one faulty row (row 6): a workshop that does not exist.
FAULTY_RESPONSES = RESPONSES + "p1,W9,P2,Q3,Which colour?,Blue,\n"


def roster_identifiers() -> list[str]:
    """Every direct identifier in the network's roster, with phone numbers also without spaces."""
    found: list[str] = []
    for row in csv.DictReader(io.StringIO(ROSTER)):
        found += [row["full_name"], row["email"], row["phone"], row["postcode"]]
        found += [row["phone"].replace(" ", ""), row["postcode"].replace(" ", "")]
        found += row["full_name"].split()
    return found


def prepare_warehouse(network: Network) -> None:
    """Until ops.sql has it: a warehouse whose manifest has the `headers` column (see the report)."""
    from warehouse.schema import connect, create_schema

    con = connect(DataPaths(network.data_dir).warehouse)
    try:
        create_schema(con)
        con.execute("ALTER TABLE ops.deliveries ADD COLUMN IF NOT EXISTS headers VARCHAR[]")
    finally:
        con.close()


def record_headers(network: Network) -> None:
    """The flow records each delivery's headers once transforms/delivery.py sets them (DeliveryOutcome.headers);
    until then this fills them from the landing copies, as that change will."""
    from transforms.delivery import DeliveryOutcome
    from transforms.readers import read_table

    con = duckdb.connect(str(DataPaths(network.data_dir).warehouse))
    try:
        if "headers" in {f.name for f in fields(DeliveryOutcome)}:
            missing = con.execute("SELECT count(*) FROM ops.deliveries WHERE headers IS NULL").fetchall()[0][0]
            assert missing == 0, "the flow should record every readable delivery's headers"
            return
        rows = con.execute("SELECT delivery_id, landing_path, relative_path FROM ops.deliveries WHERE headers IS NULL")
        for delivery_id, landing_path, name in rows.fetchall():
            headers = read_table(Path(landing_path), name).headers
            con.execute("UPDATE ops.deliveries SET headers = ? WHERE delivery_id = ?", [headers, delivery_id])
    finally:
        con.close()


def run(network: Network) -> str:
    from flows.consolidate import consolidate

    prepare_warehouse(network)
    summary = consolidate(config_path=str(network.config))
    # A file refused whole, or a source setting aside more than attention.quarantined_share of its rows,
    # makes the run one that needs attention, and only these do.
    share = [w for w in summary["warnings"] if "attention.quarantined_share" in w]
    assert summary["outcome"] == ("succeeded_with_warnings" if summary["files_refused"] or share else "succeeded")
    assert len(summary["warnings"]) - len(share) == summary["files_refused"]
    record_headers(network)
    for report in summary.get("feedback_reports", []):  # once the flow writes them itself (see the report)
        assert Path(report["html_path"]).is_file() and Path(report["csv_path"]).is_file()
        assert Path(report["html_path"]).parent.name == report["organisation"]
    return str(summary["run_id"])


def reports_for(network: Network, run_id: str) -> tuple[dict[str, OrgReport], list]:
    con = duckdb.connect(str(DataPaths(network.data_dir).warehouse), read_only=True)
    try:
        reports = write_feedback_reports(con, run_id, DataPaths(network.data_dir).reports)
        return {r.organisation: r for r in reports}, schema_drift(con, run_id)
    finally:
        con.close()


class _Text(HTMLParser):
    BLOCKS = frozenset({"p", "div", "li", "tr", "td", "th", "dt", "dd", "h1", "h2", "h3", "title", "style"})

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BLOCKS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        self.handle_starttag(tag, [])

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def page(report: OrgReport) -> str:
    """The report's text as a reader sees it: no markup, entities decoded, spaces collapsed."""
    parser = _Text()
    parser.feed(report.html_path.read_text(encoding="utf-8"))
    return " ".join("".join(parser.parts).split())


def csv_rows(report: OrgReport) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(report.csv_path.read_text(encoding="utf-8-sig"))))


def assert_no_identifiers(folder: Path) -> None:
    """No roster identifier, as a whole word (any case), in any file under `folder`, raw or decoded."""
    patterns = [re.compile(rf"(?<![\w@.]){re.escape(i)}(?![\w@])", re.IGNORECASE) for i in roster_identifiers()]
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8-sig")
        for pattern in patterns:
            assert not pattern.search(text) and not pattern.search(html.unescape(text)), (path, pattern.pattern)


@uses_prefect
@prefect_group
def test_each_organisation_gets_its_own_report_and_only_its_own_rows(tmp_path: Path) -> None:
    network = write_network(tmp_path)
    network.deliver("alpha/feedback-w2.csv", FAULTY_FEEDBACK)
    network.deliver("university/responses-w1.csv", FAULTY_RESPONSES)
    run_id = run(network)
    reports, drift = reports_for(network, run_id)

    assert sorted(reports) == ["ORG-A", "ORG-DIN", "ORG-RECRUIT", "ORG-UNI"]
    for organisation, report in reports.items():
        assert report.html_path == DataPaths(network.data_dir).reports / run_id / organisation / "feedback.html"
        assert report.csv_path.parent == report.html_path.parent
    assert drift == []  # a first delivery has nothing to drift from

    alpha = reports["ORG-A"]
    assert (alpha.deliveries, alpha.rows_accepted, alpha.rows_quarantined) == (1, 3, 3)
    text = page(alpha)
    delivered = network.root / "deliveries" / "alpha" / "feedback-w2.csv"
    assert "Alpha Health Board (ORG-A)" in text
    assert "feedback-w2.csv" in text
    assert hashlib.sha256(delivered.read_bytes()).hexdigest() in text
    assert f"{delivered.stat().st_size:,} bytes" in text
    assert "CSV, UTF-8" in text
    assert "3 of 6 rows were accepted; 3 rows set aside" in text
    assert "`benefit` is 'lots'; expected a whole number from 1 to 5" in text
    assert "`acceptability` is '<b>maybe<_b>'; expected one of" in text
    raw = alpha.html_path.read_text(encoding="utf-8")
    assert "<b>maybe" not in raw and "&lt;b&gt;maybe&lt;_b&gt;" in raw  # escaped, never markup
    assert "<script" not in raw and "http://" not in raw and "https://" not in raw  # self-contained
    for other in ("responses-w1.csv", "roster.csv", "organisations.csv", "W9", "Which colour?"):
        assert other not in text

    rows = csv_rows(alpha)
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [(r["file"], r["row"], r["rule"]) for r in rows] == [
        ("feedback-w2.csv", "5", "benefit_whole_number"),
        ("feedback-w2.csv", "6", "panellist_known"),
        ("feedback-w2.csv", "7", "acceptability_allowed"),
    ]
    assert rows[0]["column"] == "benefit" and rows[0]["value"] == "lots"
    ref = pseudonym(DEMO_KEY, "p1", "jamie.r@example.com")
    assert rows[1]["value"] == f"panel_id = p1; panellist_ref = {ref}"  # pseudonymised, not the email
    assert ref in text
    for row_number, reason in ((5, "`benefit` is 'lots'"), (7, "`acceptability` is '<b>maybe<_b>'")):
        assert f'<td class="num">{row_number}</td>' in raw
        assert reason in text

    university = page(reports["ORG-UNI"])
    assert "responses-w1.csv" in university
    assert "panel_id + workshop_id 'p1 + W9': the workshop must be listed" in university
    assert [(r["file"], r["row"], r["rule"]) for r in csv_rows(reports["ORG-UNI"])] == [
        ("responses-w1.csv", "6", "workshop_known")
    ]
    for other in ("feedback-w2.csv", "roster.csv", "lots", "maybe", ref, "benefit"):
        assert other not in university
    recruiter = page(reports["ORG-RECRUIT"])
    assert "roster.csv" in recruiter and "All 3 rows were accepted." in recruiter
    for other in ("feedback-w2.csv", "responses-w1.csv", "lots", "W9"):
        assert other not in recruiter
    assert csv_rows(reports["ORG-RECRUIT"]) == []

    assert_no_identifiers(DataPaths(network.data_dir).reports)


@uses_prefect
@prefect_group
def test_redelivery_reports_renames_with_suggestion_gains_and_row_changes(tmp_path: Path) -> None:
    network = write_network(tmp_path)
    network.deliver("alpha/feedback-w2.csv", FAULTY_FEEDBACK)
    run(network)

    lines = RESPONSES.splitlines()
    renamed = [lines[0].replace(",answer,", ",answr,") + ",device"] + [line + ",phone app" for line in lines[1:]]
    network.deliver("university/responses-w1.csv", "\n".join(renamed) + "\n")
    corrected = FEEDBACK.splitlines()
    corrected = [corrected[0] + ",Reviewed on"] + [line + ",2026-03-20" for line in corrected[1:]]
    network.deliver("alpha/feedback-w2.csv", "\n".join(corrected) + "\n")
    second = run(network)
    reports, drift = reports_for(network, second)

    assert sorted(reports) == ["ORG-A", "ORG-UNI"]  # only organisations that delivered in this run
    by_source = {d.source: d for d in drift}
    assert sorted(by_source) == ["alpha-feedback", "university-responses"]
    responses = by_source["university-responses"]
    assert [(r.old, r.new, r.column, r.recognised, r.suggestion) for r in responses.renamed] == [
        ("answer", "answr", "answer", False, "did you mean `answer`?")
    ]
    assert responses.gained == ("device",) and responses.lost == ()
    assert "'answer' renamed to 'answr' (did you mean `answer`?)" in responses.message
    assert "'device' added" in responses.message
    feedback = by_source["alpha-feedback"]
    assert (feedback.gained, feedback.lost, feedback.renamed) == (("Reviewed on",), (), ())

    university = page(reports["ORG-UNI"])
    assert "renamed: answer → answr" in university
    assert "did you mean `answer`? `answer` is required, so the whole file was set aside" in university
    assert (
        "required column `answer` is missing from the file (the file has 'answr': did you mean `answer`? "
        "rename the header)"
    ) in university
    assert "added: device: not a column of the data contract" in university
    assert "affects 4 rows: 2–5" in university
    assert "1 file could not be used at all." in university  # said first, before the totals
    assert university.index("could not be used at all") < university.index("rows read")
    assert "Refused: the whole file could not be used (4 rows read, none used)" in university
    assert [r["row"] for r in csv_rows(reports["ORG-UNI"])] == ["2", "3", "4", "5"]
    assert "feedback-w2.csv" not in university

    alpha = page(reports["ORG-A"])
    assert "This file replaces feedback-w2.csv" in alpha
    changes = alpha.split("This file replaces", 1)[1]
    assert "before now rows read 6 3 rows accepted 3 3 rows set aside 3 0" in changes
    assert "added: Reviewed on" in alpha
    assert "Reviewed on" in alpha.split("Columns we did not use", 1)[1]
    assert csv_rows(reports["ORG-A"]) == []
    assert "responses-w1.csv" not in alpha

    markdown = feedback_markdown(list(reports.values()), drift)
    assert "ORG-UNI" in markdown and "feedback.html" in markdown and "Schema drift" in markdown
    assert "file://" not in markdown and "](" not in markdown  # no portal: paths as text, never a link
    portal = feedback_markdown(list(reports.values()), drift, "https://din.example.org", "run-7")
    assert "(https://din.example.org/feedback/run-7)" in portal and "file://" not in portal
    assert_no_identifiers(DataPaths(network.data_dir).reports)


def record(delivery_id: int, headers: tuple[str, ...], kind: str = "responses") -> DeliveryRecord:
    return DeliveryRecord(
        delivery_id,
        "src",
        "ORG",
        kind,
        f"file-{delivery_id}.csv",
        1,
        "0" * 64,
        None,  # type: ignore[arg-type]
        "processed",
        "accepted",
        None,
        "csv",
        "utf-8",
        1,
        1,
        0,
        (),
        (),
        None,
        headers,
    )


def test_rename_detection_pairs_near_misses_and_same_columns_only() -> None:
    base = ("panel_id", "workshop_id", "panellist_ref", "question_id", "question_text", "answer", "tag")
    changed = ("Panel ID", "workshop_id", "panellist_ref", "question_id", "question_text", "answer", "tip")
    drift = compare_headers(record(1, base), record(2, changed))
    assert drift is not None
    assert [(r.old, r.new, r.recognised, r.suggestion) for r in drift.renamed] == [
        ("panel_id", "Panel ID", True, None)  # same contract column: spelling changed, nothing to do
    ]
    assert (drift.gained, drift.lost) == (("tip",), ("tag",))  # too short to be a near miss
    assert compare_headers(record(1, base), record(2, tuple(reversed(base)))) is None  # order is not drift
    optional = compare_headers(record(1, (*base, "answered_at")), record(2, (*base, "answerd_at")))
    assert optional is not None
    assert optional.renamed[0].suggestion == "did you mean `answered_at`?"
    assert "optional `answered_at` is missing" in optional.renamed[0].note


def test_rejected_csv_cells_are_never_spreadsheet_formulas() -> None:
    formula = Rejected(1, 2, ("answer_required",), ("=HYPERLINK(1)",), ("answer",), {"answer": "=1+2"})
    assert csv_row(formula, "file-1.csv") == [
        "file-1.csv",
        "1",
        "2",
        "answer",
        "'=1+2",
        "answer_required",
        "'=HYPERLINK(1)",
    ]
    numbers = Rejected(1, 3, ("risk_range",), ("`risk` is '-1'",), ("risk",), {"risk": "-1"})
    assert csv_row(numbers, "f.csv")[4] == "-1"  # a plain number stays as it is


@uses_prefect
@prefect_group
def test_a_page_lists_at_most_the_report_limit_of_rows_and_the_csv_every_one(tmp_path: Path) -> None:
    """An organisation with thousands of files of rejected rows gets a page that can be read (and made in
    time): the first rows, in its files' order, each later file saying how many of its rows are in the CSV."""
    network = write_network(tmp_path)
    network.deliver("alpha/feedback-w2.csv", FAULTY_FEEDBACK)
    network.deliver("alpha/feedback-w3.csv", FAULTY_FEEDBACK.replace("lots", "loads"))
    run_id = run(network)
    con = duckdb.connect(str(DataPaths(network.data_dir).warehouse), read_only=True)
    try:
        pages = {
            limit: {r.organisation: r for r in write_feedback_reports(con, run_id, tmp_path / f"out-{limit}", limit)}
            for limit in (3, 4)
        }
    finally:
        con.close()
    for limit, reports in pages.items():
        alpha = reports["ORG-A"]
        raw = alpha.html_path.read_text(encoding="utf-8")
        assert raw.count('<span class="rule">(') == limit  # each listed rejected row breaks one rule
        assert [(r["file"], r["row"]) for r in csv_rows(alpha)] == [
            (f"feedback-w{n}.csv", str(row)) for n in (2, 3) for row in (5, 6, 7)
        ]
    three, four = page(pages[3]["ORG-A"]), page(pages[4]["ORG-A"])
    assert "3 rows set aside, not shown here: this page lists the first 3 rows set aside in your files" in three
    assert "every one is listed in rejected_rows.csv" in three and "Showing the first" not in three
    assert "Showing the first 1 of 3 rows set aside; every one is listed in rejected_rows.csv" in four
    assert "'loads'" in four and "'loads'" not in three  # the second file's first row, only where it fits
