"""Network sources through the whole flow: Prefect retries transient failures, a refused source is
reported while the rest of the run completes, and an unchanged file is not downloaded twice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.network import write_network
from tests.support.pipeline import published, run
from tests.support.servers import http_site

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.xdist_group("prefect")]

W2_RESPONSES = (
    "panel_id,workshop_id,panellist_ref,question_id,question_text,answer\n"
    "p1,W2,P1,Q5,Which uses are acceptable?,Only with consent\n"
    "p1,W2,P2,Q5,Which uses are acceptable?,Prefer not to say\n"
)
TOKEN = "test-token-not-a-secret-0123456789"


def test_http_sources_retry_report_refusals_and_skip_unchanged_files(tmp_path: Path) -> None:
    network = write_network(tmp_path)
    os.environ["PARTNER_TOKEN"] = TOKEN
    os.environ["WRONG_TOKEN"] = "not-the-token"
    with http_site(token=TOKEN) as site:
        flaky = site.add("/din/w2.csv", W2_RESPONSES, auth="bearer", fail_first=2)
        site.add("/din/attendance.csv", "panel_id,workshop_id,panellist_ref,attended\np1,W1,P1,yes\n", auth="bearer")
        network.config.write_text(
            network.config.read_text()
            + (
                "  - {name: partner-http, organisation: ORG-B, kind: responses, "
                f"location: '{site.url('/din/w2.csv')}',"
                " options: {auth: {type: bearer, token: PARTNER_TOKEN}, timeout_seconds: 5}}\n"
                f"  - {{name: partner-refused, organisation: ORG-B, kind: attendance, "
                f"location: '{site.url('/din/attendance.csv')}',\n"
                "     options: {auth: {type: bearer, token: WRONG_TOKEN}}}\n"
            )
        )
        first = run(network)
        assert first["outcome"] == "succeeded_with_source_errors"
        by_source = {s["source"]: s for s in first["sources"]}
        assert by_source["partner-http"]["rows_accepted"] == 2  # after two 503s, Prefect's retry got it
        assert flaky.requests >= 3
        refused = by_source["partner-refused"]["error"]
        assert refused and "not-the-token" not in refused and TOKEN not in refused
        assert by_source["university-responses"]["rows_accepted"] == 4  # the rest of the run completed
        assert published(network)["responses"].height == 6

        before = [h.status for h in site.hits_for("/din/w2.csv")]
        second = run(network)
        assert second["deliveries_new"] == 0
        after = [h.status for h in site.hits_for("/din/w2.csv")][len(before) :]
        # listed once (the reader reads the ETag from the response headers and closes), never fetched:
        # the ETag matched what the first run recorded, so the file was not downloaded again
        assert len(after) == 1

        result = subprocess.run(
            [sys.executable, "-m", "app.cli", "run", "--config", str(network.config)],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ},
        )
        assert result.returncode == 3, result.stderr[-2000:]  # a source failed: exit status says so
        assert "ERROR" in result.stdout and "partner-refused" in result.stdout
        assert TOKEN not in result.stdout + result.stderr and "not-the-token" not in result.stdout + result.stderr
