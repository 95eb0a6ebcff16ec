"""The portal in a real browser (Debian's headless Chromium, driven by Playwright), served for real.

The story of point 8: a contributor uploads a good and a faulty file and sees the problems, fixes the
mapping of their own headers, submits; the flow runs; the deliveries page shows what was accepted.
A second organisation cannot see the first's rows, not even by typing the addresses. A reader
downloads a table and gets the same rows as `din query`. axe-core checks every page (no serious or
critical violations). With DIN_PORTAL_SCREENSHOTS set, each page is saved there (docs/portal/).
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from tests.support.portal import (
    GOOD_FEEDBACK,
    THEIR_HEADERS,
    DemoPortal,
    consolidate_again,
    issue,
    portal_app,
    run_demo,
    serving,
)

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.xdist_group("prefect"), pytest.mark.slow]

CHROMIUM = "/usr/lib/chromium/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOTS = os.environ.get("DIN_PORTAL_SCREENSHOTS")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoPortal]:
    demo = run_demo(tmp_path_factory.mktemp("portal-browser"))
    with serving(portal_app(demo)) as url:
        demo.url = url
        yield demo


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Visit:
    """One signed-in browser context; every page it shows is checked with axe-core."""

    def __init__(self, browser: object, demo: DemoPortal, token: str) -> None:
        self.context = browser.new_context(accept_downloads=True)  # type: ignore[attr-defined]
        self.page = self.context.new_page()
        self.demo = demo
        self.page.goto(demo.url + "/signin")
        self.audit("signin")
        self.page.get_by_label("Your token").fill(token)
        self.page.get_by_role("button", name="Sign in").click()

    def audit(self, name: str) -> None:
        from axe_playwright_python.sync_playwright import Axe

        results = Axe().run(self.page)
        serious = [
            (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
            for v in results.response["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert serious == [], f"{name}: {serious}"
        if SCREENSHOTS:
            Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)

    def upload(self, name: str, content: str, kind: str = "") -> None:
        self.page.goto(self.demo.url + "/upload")
        if kind:
            self.page.get_by_label("What kind of file is it?").select_option(kind)
        self.page.get_by_label("File", exact=True).set_input_files(
            {"name": name, "mimeType": "text/csv", "buffer": content.encode()}
        )
        self.page.get_by_role("button", name="Check the file").click()

    def text(self) -> str:
        return self.page.inner_text("main")

    def close(self) -> None:
        self.context.close()


def test_a_contributor_checks_maps_and_delivers_and_sees_the_outcome(browser: object, demo: DemoPortal) -> None:
    forth = Visit(browser, demo, issue(demo, "ORG-ENV-FOR", "contributor"))
    forth.audit("upload")
    forth.upload("feedback_portal.csv", GOOD_FEEDBACK)
    assert "No problems found: all 2 rows would be accepted" in forth.text()
    forth.audit("check-good")
    forth.page.get_by_role("button", name="Submit feedback_portal.csv").click()
    assert "feedback_portal.csv was submitted" in forth.text()
    waiting = forth.page.get_by_role("table", name="Files submitted through the portal that no run has taken yet")
    assert "feedback_portal.csv" in waiting.inner_text()
    forth.audit("deliveries-waiting")

    north = Visit(browser, demo, issue(demo, "ORG-FAC-NTH", "contributor"))
    north.upload("responses portal.csv", THEIR_HEADERS, kind="responses")
    text = north.text()
    assert "none of its rows would be accepted" in text and "required column `answer` is missing" in text
    north.audit("check-headers")
    north.page.get_by_label("Answer given").select_option("answer")
    north.page.get_by_label("Time answered").select_option("answered_at")
    north.page.get_by_role("button", name="Save the mapping and check again").click()
    text = north.text()
    assert "1 of 5 rows would be accepted; 4 would be set aside" in text
    assert "P031" in text and "31/04/2026 11:20" in text  # as typed, never reformatted or pseudonymised
    assert "<script>alert('x')</script>" in text  # shown as text: the page escaped it
    assert "pn_" not in north.page.content()
    north.audit("check-problems")
    saved = (demo.data_dir / "mappings" / "ORG-FAC-NTH" / "responses.yaml").read_text()
    assert "Answer given: answer" in saved and "Time answered: answered_at" in saved
    north.page.get_by_role("button", name="Submit responses portal.csv").click()
    assert "responses_portal.csv was submitted" in north.text()

    consolidate_again(demo)  # the next run: it lands the inbox files and reads them with the saved mapping

    inbox = demo.data_dir / "inbox" / "forth-environment-portal"
    assert (inbox / "feedback_portal.csv").is_file()
    forth.page.goto(demo.url + "/deliveries")
    assert not (inbox / "feedback_portal.csv").exists()  # landed: its one copy is now the landing copy
    assert list((demo.data_dir / "landing" / "objects").rglob("*.csv"))
    row = forth.page.get_by_role("row").filter(has_text="feedback_portal.csv")
    assert "accepted" in row.inner_text() and "Waiting for the next run" not in forth.text()
    north.page.goto(demo.url + "/deliveries")
    north.audit("deliveries")
    north.page.get_by_role("row").filter(has_text="responses_portal.csv").get_by_role("link").click()
    text = north.text()
    assert "partly quarantined" in text and "5 row(s) read, 1 accepted, 4 set aside" in text
    assert "3 row(s): `answered_at`: expected a date and time" in text
    assert "1 row(s): panel_id + panellist_ref: the panellist must be on the panel's roster" in text
    assert "din-pilot-2026 + P031" in text and "31/04/2026 11:20" in text and "pn_" not in north.page.content()
    north.audit("delivery")
    with north.page.expect_download() as download:
        north.page.get_by_role("link", name="CSV").click()
    problems = pl.read_csv(io.BytesIO(Path(download.value.path()).read_bytes()))
    assert sorted(problems["row"].to_list()) == [3, 4, 5, 6]  # rows 5 and 6 hold the formula and the script
    assert '\'=HYPERLINK("http://x")' in problems["value as typed"].to_list()  # formula escaped
    delivery_url = north.page.url
    north.page.goto(demo.url + "/deliveries")
    north.page.get_by_role("link", name=re.compile("Feedback on run")).first.click()
    assert "responses_portal.csv" in north.page.content()
    north.audit("feedback")

    # The other organisation sees none of it: not in its list, not at the addresses themselves.
    forth.page.goto(demo.url + "/deliveries")
    assert "responses_portal.csv" not in forth.page.content()
    for address in (delivery_url, delivery_url + "/problems.csv"):
        response = forth.page.goto(address)
        assert response is not None and response.status == 404, address
        assert "P031" not in forth.page.content() and "31/04/2026" not in forth.page.content()
    forth.audit("not-found")
    response = forth.page.goto(north.page.url)  # the same run's feedback: Forth's own deliveries only
    assert response is not None and response.status == 200
    assert "feedback_portal.csv" in forth.page.content() and "responses_portal.csv" not in forth.page.content()
    forth.close()
    north.close()


def test_a_reader_finds_a_table_and_downloads_the_rows_din_query_gives(browser: object, demo: DemoPortal) -> None:
    reader = Visit(browser, demo, issue(demo, "report-authors", "reader"))
    assert "project_scores" in reader.text() and "panellists" not in reader.text()
    reader.audit("catalog")
    reader.page.get_by_role("link", name="project_scores", exact=True).click()
    text = reader.text()
    assert "Columns" in text and "mean_benefit" in text and "duckdb" in text and "read_parquet" in text
    reader.audit("table")
    with reader.page.expect_download() as download:
        reader.page.get_by_role("link", name="CSV", exact=True).click()
    downloaded = pl.read_csv(io.BytesIO(Path(download.value.path()).read_bytes()), infer_schema=False)
    queried = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "query",
            "SELECT * FROM open.project_scores",
            "--format",
            "csv",
            "--config",
            str(demo.config),
            "--data-dir",
            str(demo.data_dir),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    expected = pl.read_csv(io.StringIO(queried), infer_schema=False)
    assert downloaded.height == expected.height > 0
    assert sorted(map(str, downloaded.rows())) == sorted(map(str, expected.rows()))
    response = reader.page.goto(demo.url + "/catalog/panellists")
    assert response is not None and response.status == 404  # the restricted tier needs a restricted token
    reader.page.goto(demo.url + "/report")
    reader.audit("report")
    reader.close()
