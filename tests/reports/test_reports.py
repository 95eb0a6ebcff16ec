"""Reports on a real published folder: the panel report, project packs and spreadsheet exports.

The demo is run end to end once for the module; the report is then checked as text (self-contained,
disclosure-safe, nothing from the restricted tier) and rendered in real headless Chromium over the
DevTools protocol (page loads, no console errors, no network request, charts laid out).
"""

from __future__ import annotations

import base64
import csv
import itertools
import json
import re
import shutil
import subprocess
import time
import zipfile
from datetime import date, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reports.charts import BarRow, Cell, Series, cell_label, line_chart, stacked_bars
from reports.export import export_table
from reports.html import ACCEPTABILITY, ATTENDANCE, VOTES, build_report, rule_from_label
from reports.packs import build_project_pack, shuffled
from reports.spreadsheet import neutralise, neutralise_expr
from tests.conftest import REPO
from tests.support.pipeline import published_tables, read_published, write_published
from transforms.disclosure import DisclosureRule
from warehouse.marts import mart

pytestmark = pytest.mark.xdist_group("prefect")  # the flow runs on the session's Prefect test server

CHROMIUM = Path("/usr/bin/chromium")
SECTIONS = ("composition", "attendance", "acceptability", "scores", "recommendations", "quality")
PSEUDONYM = re.compile(r"pn_[0-9a-f]{8,}")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,4000",
)
CHART_TITLES = (
    "Panel composition by age band",
    "Acceptability per project",
    "Perceived benefit against risk per project",
    "Quarantined rows per organisation, by rule",
)
RESTRICTED_TEXT = {
    "project_feedback": ["conditions", "comment"],
    "responses": ["answer", "question_text"],
    "recommendations": ["text"],
}
FORMULA_LIKE = ["=1+1", "+44 7700", "-5", "@x", "\tx", "\rx", "plain", None]


@pytest.fixture(scope="module")
def published(prefect_server: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo, run end to end into a fresh data folder; its `published/` folder."""
    from flows.consolidate import consolidate

    root = tmp_path_factory.mktemp("reports")
    shutil.copytree(REPO / "examples" / "demo", root / "demo")
    consolidate(config_path=str(root / "demo" / "din.yaml"), data_dir=str(root / "data"))
    return root / "data" / "published"


@pytest.fixture(scope="module")
def report(published: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = build_report(published, tmp_path_factory.mktemp("report") / "report.html", "DIN panel report (demo)")
    return out, out.read_text(encoding="utf-8")


class _Tables(HTMLParser):
    """Collects every `<table id=...>` as rows of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = self.tables.setdefault(dict(attrs).get("id") or "", [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self._table[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _tables(html: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def _lookup(table: list[list[str]], row_starts: str, column: str) -> str:
    header = table[0]
    row = next(r for r in table[1:] if r[0].startswith(row_starts))
    return row[header.index(column)]


def _section(html: str, section_id: str) -> str:
    start = html.index(f'<section id="{section_id}"')
    return html[start : html.index("</section>", start)]


# --------------------------------------------------------------------------------------------------
# The panel report


def test_report_is_one_self_contained_file(report: tuple[Path, str]) -> None:
    _, html = report
    assert "http://" not in html and "https://" not in html
    assert not re.search(r"<(script|link|img|iframe|object|embed)\b", html, re.I)
    assert not re.search(r"@import|url\((?!#)", html)
    assert all(ref.startswith("#") for ref in re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', html))
    assert "Content-Security-Policy" in html and "default-src 'none'" in html


def test_every_chart_section_has_an_accessible_svg_and_table(report: tuple[Path, str]) -> None:
    _, html = report
    for section_id in SECTIONS:
        part = _section(html, section_id)
        svgs = re.findall(r"<svg\b.*?</svg>", part, re.S)
        assert svgs, section_id
        for svg in svgs:
            assert 'role="img"' in svg and re.search(r"<title id=[^>]+>[^<]+</title>", svg), section_id
            assert re.search(r"<desc id=[^>]+>[^<]+</desc>", svg), section_id
        assert "<table" in part, section_id


def test_suppressed_cells_are_shown_as_suppressed_never_as_zero(published: Path, report: tuple[Path, str]) -> None:
    _, html = report
    tables = _tables(html)
    accept = read_published(published / "current", "project_acceptability")
    hidden = accept.filter(pl.col("project_id").is_not_null() & (pl.col("panellists_status") == "suppressed"))
    assert hidden.height, "the demo has suppressed acceptability cells"
    labels = {s.key: s.label for s in ACCEPTABILITY}
    for row in hidden.iter_rows(named=True):
        shown = _lookup(tables["table-acceptability"], row["project_id"], labels[row["acceptability"]])
        assert shown == "suppressed", row
    zero = accept.filter(pl.col("panellists_status") == "zero").row(0, named=True)
    assert _lookup(tables["table-acceptability"], zero["project_id"], labels[zero["acceptability"]]) == "0"
    comp = read_published(published / "current", "panel_composition")
    cell = comp.filter((pl.col("dimension") == "age_band") & (pl.col("panellists_status") == "suppressed")).row(
        0, named=True
    )
    age = tables["table-composition-0-age_band"]
    assert _lookup(age, cell["category"], "Panellists") == "suppressed"
    assert _lookup(age, cell["category"], "Panel share") == "suppressed"
    part = _section(html, "acceptability")
    assert re.search(r'class="suppressed"><title>PRJ-01 [^<]*: suppressed: ', part)


def open_tables(published: Path) -> list[pl.DataFrame]:
    """Every open-tier table of the current version."""
    current = published / "current"
    return [frame for name, frame in published_tables(current).items() if mart(name).tier == "open"]


def test_the_report_and_the_data_use_one_vocabulary_for_suppression(published: Path, report: tuple[Path, str]) -> None:
    _, html = report
    statuses = set()
    for frame in open_tables(published):
        for column in (c for c in frame.columns if c.endswith("_status")):
            statuses |= set(frame[column].drop_nulls().to_list())
    assert {"suppressed", "suppressed_secondary"} <= statuses
    shown = {cell for table in _tables(html).values() for row in table for cell in row}
    assert {s for s in shown if s.startswith("suppressed")} <= statuses  # no label the data does not use
    assert not [s for s in shown if "(<" in s or "(secondary)" in s]
    rule_box = html.split('<aside class="rule"', 1)[1].split("</aside>", 1)[0]
    for status in statuses:  # every status the data uses is explained in the report, in the same word
        assert f"<dt><strong>{status}</strong></dt>" in rule_box, status


def test_report_states_the_rule_and_carries_the_demo_banner(report: tuple[Path, str]) -> None:
    _, html = report
    assert 'class="demo"' in html and "DEMO OUTPUT" in html
    assert "<code>suppress_under_5</code>" in html and "Counts from 1 to 4 are suppressed" in html


def test_report_holds_nothing_from_the_restricted_tier(
    published: Path, report: tuple[Path, str], tmp_path: Path
) -> None:
    _, html = report
    assert not PSEUDONYM.search(html)
    texts = set()
    for table, columns in RESTRICTED_TEXT.items():
        frame = read_published(published / "current", table)
        for column in columns:
            texts |= {t for t in frame[column].drop_nulls().to_list() if len(t) >= 15}
    # Closed answers ("Prefer not to say", "Acceptable with conditions") are also open categories or labels.
    public = {s.label for s in (*ACCEPTABILITY, *VOTES, *ATTENDANCE)}
    for frame in open_tables(published):
        public |= {v for c in frame.columns if frame[c].dtype == pl.String for v in frame[c].drop_nulls().to_list()}
    texts -= public
    assert texts and not [t for t in texts if t in html]
    # built from a copy without the restricted tier at all, the report is the same file
    copy = tmp_path / "published"
    shutil.copytree(published / "current", copy, ignore=shutil.ignore_patterns("restricted"))
    again = build_report(copy, tmp_path / "again.html", "DIN panel report (demo)")
    assert again.read_text(encoding="utf-8") == html


def test_report_renders_in_headless_chromium(report: tuple[Path, str], tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is not installed (apt-get install -y chromium)")
    out, _ = report
    page = _render(out.resolve().as_uri(), tmp_path)
    assert page["errors"] == [], page["errors"]
    assert page["requests"] == [out.resolve().as_uri()], page["requests"]
    titles = page["titles"]
    for title in CHART_TITLES:
        assert title in titles
    assert any(t.startswith("Attendance per workshop") for t in titles)
    assert any(t.startswith("Support for each recommendation") for t in titles)
    assert page["sections"] == list(SECTIONS)
    assert page["drawn_svgs"] == page["svgs"] >= len(SECTIONS)
    screenshot = tmp_path / "report.png"
    assert screenshot.stat().st_size > 50_000 and screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _render(url: str, tmp_path: Path, timeout: float = 40.0) -> dict[str, Any]:
    """Load `url` in headless Chromium over the DevTools protocol; collect problems, facts and a screenshot."""
    from websockets.sync.client import connect

    profile = tmp_path / "chromium-profile"
    flags = [*CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"]
    browser = subprocess.Popen([str(CHROMIUM), *flags], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file, deadline = profile / "DevToolsActivePort", time.monotonic() + timeout
        while not (port_file.exists() and len(port_file.read_text().split()) >= 2):
            assert time.monotonic() < deadline and browser.poll() is None, "Chromium did not start"
            time.sleep(0.1)
        port, path = port_file.read_text().split()[:2]
        with connect(f"ws://127.0.0.1:{port}{path}", max_size=None, open_timeout=timeout) as ws:
            return _Session(ws, deadline).load(url, tmp_path / "report.png")
    finally:
        browser.kill()
        browser.wait(timeout=10)


class _Session:
    """A minimal DevTools client: one page, its console and network events."""

    def __init__(self, ws: Any, deadline: float) -> None:
        self.ws, self.deadline, self.ids = ws, deadline, itertools.count(1)
        self.session: str | None = None
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        message_id = next(self.ids)
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            message["sessionId"] = self.session
        self.ws.send(json.dumps(message))
        while True:
            reply = json.loads(self.ws.recv(timeout=max(self.deadline - time.monotonic(), 0.1)))
            if reply.get("id") == message_id:
                assert "error" not in reply, reply
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> None:
        while not any(e.get("method") == method for e in self.events):
            self.events.append(json.loads(self.ws.recv(timeout=max(self.deadline - time.monotonic(), 0.1))))

    def load(self, url: str, screenshot: Path) -> dict[str, Any]:
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=1280, height=4000, deviceScaleFactor=1, mobile=False)
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")
        facts = self.evaluate("""({
            titles: [...document.querySelectorAll('svg > title')].map(t => t.textContent),
            sections: [...document.querySelectorAll('main section')].map(s => s.id),
            svgs: document.querySelectorAll('svg.chart').length,
            drawn_svgs: [...document.querySelectorAll('svg.chart')].filter(s => {
                const r = s.getBoundingClientRect(); return r.width > 200 && r.height > 60; }).length,
        })""")
        shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=False)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        return {**facts, "errors": self.problems(), "requests": self.requests()}

    def evaluate(self, expression: str) -> dict[str, Any]:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"]["value"]

    def problems(self) -> list[str]:
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(str(params["exceptionDetails"].get("text")))
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
                found.append(json.dumps(params.get("args")))
            elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
                found.append(params["entry"]["text"])
            elif method == "Network.loadingFailed":
                found.append(f"failed to load: {params.get('errorText')}")
        return found

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]


# --------------------------------------------------------------------------------------------------
# Project packs


def test_project_pack_lists_conditions_and_counts_with_their_suppression(published: Path, tmp_path: Path) -> None:
    feedback = read_published(published / "current", "project_feedback")
    conditions = set(feedback.filter(pl.col("project_id") == "PRJ-01")["conditions"].drop_nulls().to_list())
    out = build_project_pack(published, "PRJ-01", tmp_path / "pack.html")
    html = out.read_text(encoding="utf-8")
    # PRJ-01's "acceptable with conditions" count is suppressed in the open tier: listing the
    # conditions would reveal it, so they are withheld (PRJ-08's are shown, below).
    assert conditions and not [c for c in conditions if c in html]
    assert "listing their conditions would reveal it" in html
    assert "Predicting missed GP appointments" in html and "For the project team only" in html
    assert _lookup(_tables(html)["table-acceptability"], "PRJ-01", "Unsure") == "suppressed"
    assert not PSEUDONYM.search(html) and "source_row" not in html
    assert "http://" not in html and "https://" not in html
    assert out.stat().st_mode & 0o777 == 0o640


def test_project_pack_withholds_comments_from_fewer_than_five_panellists(published: Path, tmp_path: Path) -> None:
    copy = tmp_path / "published"
    shutil.copytree(published / "current", copy)
    feedback = read_published(copy, "project_feedback")
    writers = feedback.filter((pl.col("project_id") == "PRJ-08") & pl.col("comment").is_not_null())
    keep = writers["panellist_pseudonym"].unique().sort().head(4).to_list()
    kept = pl.col("panellist_pseudonym").is_in(keep) | (pl.col("project_id") != "PRJ-08")
    write_published(
        copy, "project_feedback", feedback.with_columns(pl.when(kept).then(pl.col("comment")).alias("comment"))
    )
    html = build_project_pack(copy, "PRJ-08", tmp_path / "pack.html").read_text(encoding="utf-8")
    assert "Fewer than 5 comments: withheld" in html
    remaining = set(writers.filter(pl.col("panellist_pseudonym").is_in(keep))["comment"].to_list())
    assert remaining and not [c for c in remaining if c in html]
    conditions = set(feedback.filter(pl.col("project_id") == "PRJ-08")["conditions"].drop_nulls().to_list())
    cell = read_published(copy, "project_acceptability").filter(
        (pl.col("project_id") == "PRJ-08") & (pl.col("acceptability") == "acceptable_with_conditions")
    )
    if cell["panellists_status"][0] == "published":  # shown only when their number is published anyway
        assert conditions and all(c in html for c in conditions)
    else:
        assert conditions and not [c for c in conditions if c in html]


def test_project_pack_lists_conditions_when_their_count_is_published(published: Path, tmp_path: Path) -> None:
    acceptability = read_published(published / "current", "project_acceptability")
    shown = acceptability.filter(
        (pl.col("acceptability") == "acceptable_with_conditions") & (pl.col("panellists_status") == "published")
    )
    assert shown.height > 0, "the demo has a project whose conditions count is published"
    project = shown["project_id"][0]
    feedback = read_published(published / "current", "project_feedback")
    conditions = set(feedback.filter(pl.col("project_id") == project)["conditions"].drop_nulls().to_list())
    html = build_project_pack(published, project, tmp_path / "pack.html").read_text(encoding="utf-8")
    assert conditions and all(c in html for c in conditions)


def test_pack_texts_are_distinct_and_ordered_by_content_not_rows() -> None:
    texts = ["b", "a", "c", "a ", "A", "d"]
    assert shuffled(texts, "PRJ-01:comment") == shuffled(list(reversed(texts)), "PRJ-01:comment")
    assert sorted(shuffled(texts, "x")) == ["A", "b", "c", "d"]  # "a", "a " and "A" are one text


def test_pack_for_an_unknown_project_says_which_exist(published: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="PRJ-01"):
        build_project_pack(published, "PRJ-99", tmp_path / "pack.html")


# --------------------------------------------------------------------------------------------------
# Exports


def _synthetic(tmp_path: Path) -> Path:
    current = tmp_path / "published" / "current"
    for tier in ("open", "restricted", "ops"):
        (current / tier).mkdir(parents=True)
    pl.DataFrame(
        {
            "value": FORMULA_LIKE,
            "n": [1, 2, 3, 4, 5, 6, 7, None],
            "held_on": [date(2026, 3, 7)] * 8,
            "at": [datetime(2026, 3, 7, 18, 30)] * 8,
        }
    ).write_parquet(current / "open" / "formulas.parquet")
    pl.DataFrame({"secret": ["x"]}).write_parquet(current / "restricted" / "secret.parquet")
    return current.parent


def test_csv_export_neutralises_formulas(tmp_path: Path) -> None:
    out = export_table(_synthetic(tmp_path), "formulas", "csv", tmp_path / "formulas.csv")
    with out.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["value"] for r in rows] == ["'=1+1", "'+44 7700", "-5", "'@x", "'\tx", "'\rx", "plain", ""]
    assert [r["n"] for r in rows][:3] == ["1", "2", "3"]  # numbers are left alone


def test_xlsx_export_writes_text_never_formulas_with_formatted_dates(tmp_path: Path) -> None:
    out = export_table(_synthetic(tmp_path), "formulas", "xlsx", tmp_path / "formulas.xlsx")
    sheet = openpyxl.load_workbook(out).active
    values = [sheet.cell(row=r, column=1) for r in range(2, 10)]
    # OOXML stores a carriage return as the escape _x000D_, which Excel decodes and openpyxl does not.
    read = [c.value.replace("_x000D_", "\r") if c.value else c.value for c in values]
    assert read == ["'=1+1", "'+44 7700", "-5", "'@x", "'\tx", "'\rx", "plain", None]
    assert all(c.data_type == "s" for c in values[:7])
    with zipfile.ZipFile(out) as archive:
        assert "<f>" not in archive.read("xl/worksheets/sheet1.xml").decode()
    assert sheet["B2"].value == 1 and sheet["B2"].data_type == "n"
    assert sheet["C2"].is_date and sheet["C2"].number_format == "dd/mm/yyyy"
    assert sheet["D2"].value == datetime(2026, 3, 7, 18, 30) and sheet["D2"].number_format == "dd/mm/yyyy hh:mm"
    assert sheet["A1"].font.b and sheet.freeze_panes == "A2"


def test_export_tier_limits_where_a_table_is_found(tmp_path: Path) -> None:
    published = _synthetic(tmp_path)
    with pytest.raises(LookupError, match="open tier"):
        export_table(published, "secret", "csv", tmp_path / "secret.csv", tier="open")
    out = export_table(published, "secret", "csv", tmp_path / "secret.csv")
    assert out.stat().st_mode & 0o777 == 0o640  # found in restricted: as private as its source
    with pytest.raises(ValueError, match="csv or xlsx"):
        export_table(published, "formulas", "ods", tmp_path / "formulas.ods")


def test_export_of_a_real_table_keeps_dates_as_dates(published: Path, tmp_path: Path) -> None:
    out = export_table(published, "workshops", "xlsx", tmp_path / "workshops.xlsx", tier="open")
    sheet = openpyxl.load_workbook(out).active
    header = [c.value for c in sheet[1]]
    held_on = [sheet.cell(row=r, column=header.index("held_on") + 1) for r in range(2, sheet.max_row + 1)]
    assert len(held_on) == 6 and all(c.is_date and c.number_format == "dd/mm/yyyy" for c in held_on)


# --------------------------------------------------------------------------------------------------
# Chart builders


def test_neutralise_and_cell_labels() -> None:
    assert [neutralise(v) for v in ("=A1", "safe", "'=already")] == ["'=A1", "safe", "'=already"]
    assert cell_label(Cell(None, "suppressed"), 5) == "suppressed"
    assert cell_label(Cell(None, "suppressed_secondary"), 5) == "suppressed_secondary"
    assert cell_label(Cell(0, "zero"), 5) == "0"


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.text(alphabet=st.sampled_from(["=", "+", "-", "@", "\t", "\r", "\n", "1", ".", "a", "'", " "]))))
@example(["-5\n", "+3.2\n", "-5", "+3.2", "-", "=1", "1-", "-1.", "\n-5"])
def test_the_formula_rule_is_one_rule_in_python_and_in_polars(texts: list[str]) -> None:
    """Feedback CSVs neutralise whole columns in polars, other outputs a cell at a time: the same cells."""
    frame = pl.DataFrame({"t": texts}, schema={"t": pl.String})
    assert frame.select(neutralise_expr(pl.col("t")).alias("t"))["t"].to_list() == [neutralise(t) for t in texts]
    assert all(neutralise(t) == t or neutralise(t) == "'" + t for t in texts)


def test_a_fully_suppressed_bar_is_hatched_not_empty() -> None:
    row = BarRow("W1", {"a": Cell(None, "suppressed"), "b": Cell(None, "suppressed_secondary")}, Cell(29))
    svg = stacked_bars("t", "Title", "Desc", [row], [Series("a", "A", "#000000"), Series("b", "B", "#ffffff")], "n")
    assert 'class="suppressed"' in svg and ">suppressed</text>" in svg
    assert not re.search(r">0</text>", svg.split("</g>")[-1].split("W1")[-1])


def test_retention_line_breaks_at_a_suppressed_workshop() -> None:
    cells = [Cell(1.0), Cell(0.9), Cell(None, "suppressed_secondary"), Cell(0.8), Cell(0.85)]
    svg = line_chart("r", "Retention", "Desc", ["W1", "W2", "W3", "W4", "W5"], cells, "Retention", 5)
    assert svg.count("<polyline") == 2 and svg.count("<circle") == 4
    assert "W3: suppressed_secondary" in svg


@pytest.mark.parametrize(
    "rule",
    [
        DisclosureRule(),
        DisclosureRule("suppress_under_10"),
        DisclosureRule("suppress_under_5", 7),
        DisclosureRule("round_to_5"),
        DisclosureRule("round_to_5", 10),
    ],
)
def test_the_report_reads_back_the_rule_it_states(rule: DisclosureRule) -> None:
    assert rule_from_label(rule.label).label == rule.label
    assert rule_from_label(rule.label).description == rule.description


def two_panels(published: Path, tmp_path: Path, second_size: int | None) -> Path:
    """The demo's published version with a second panel beside the pilot (its size suppressed when None)."""
    version = tmp_path / "published"
    shutil.copytree(published / "current", version / "current", symlinks=False)
    comp = read_published(version / "current", "panel_composition")
    second = comp.with_columns(  # a suppressed panel size is published empty
        pl.lit("standing-panel-2027").alias("panel_id"),
        pl.lit(second_size, dtype=comp.schema["panel_size"]).alias("panel_size"),
    )
    write_published(version / "current", "panel_composition", pl.concat([comp, second]))
    attendance = read_published(version / "current", "attendance_by_workshop")
    other = attendance.with_columns(pl.lit("standing-panel-2027").alias("panel_id"))
    write_published(version / "current", "attendance_by_workshop", pl.concat([attendance, other]))
    return version


def test_the_headline_counts_the_panellists_of_every_panel(published: Path, tmp_path: Path) -> None:
    from reports.html import load_published, quality_counts, summary_cards

    pilot = read_published(published / "current", "panel_composition")["panel_size"][0]
    both = load_published(two_panels(published, tmp_path / "a", 20))
    cards = summary_cards(both, quality_counts(both.current)[0])
    assert f'<span class="big">{pilot + 20:,}</span><span>panellists whose consent stands, on 2 panels</span>' in cards
    one_suppressed = load_published(two_panels(published, tmp_path / "b", None))
    cards = summary_cards(one_suppressed, quality_counts(one_suppressed.current)[0])
    # The suppressed panel is left out (adding it would let a reader subtract and recover it), and it says so.
    assert f'<span class="big">{pilot:,}+</span>' in cards
    assert "on 2 panels (panels with a suppressed figure left out)" in cards
