"""Erasure, access tiers and file permissions."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from din.config import load_config
from din.keys import DEMO_KEY
from tests.support.network import write_network
from tests.support.pipeline import duckdb_text, published, run
from transforms.pseudonymise import pseudonym

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.xdist_group("prefect")]


def test_forget_erases_a_panellist_everywhere_and_audits_without_identifiers(tmp_path: Path) -> None:
    network = write_network(tmp_path)
    network.deliver(
        "university/extra.csv",
        "panel_id,workshop_id,panellist_ref,question_id,question_text,answer\n"
        "p1,W9,P1,Q8,t,quarantined answer of P1\np1,W2,P2,Q8,t,kept\n",
    )
    run(network)
    gone = pseudonym(DEMO_KEY, "p1", "P1")
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "forget", "P1", "--panel", "p1", "--config", str(network.config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "redacted 4 landing file(s)" in result.stdout  # roster, two response files, feedback

    for path in (network.data_dir / "published").rglob("*"):
        if path.suffix == ".parquet":
            assert gone not in str(__import__("polars").read_parquet(path).rows()), path
    assert len(list((network.data_dir / "published" / "versions").iterdir())) == 1
    warehouse = duckdb_text(network.data_dir / "warehouse.duckdb")
    assert gone not in warehouse
    assert "quarantined answer of P1" not in warehouse
    landing = [p for p in (network.data_dir / "landing" / "objects").rglob("*") if p.is_file()]
    for path in landing:
        text = path.read_bytes().decode("utf-8", errors="replace")
        assert "Morag Henderson" not in text and "p1,P1," not in text, path
    assert any("Jamie Ross" in p.read_bytes().decode("utf-8", "replace") for p in landing)  # others kept

    con = duckdb.connect(str(network.data_dir / "warehouse.duckdb"), read_only=True)
    audit = con.sql("SELECT * FROM ops.erasures").fetchall()
    assert len(audit) == 1
    text = str(audit)
    for identifying in ("P1", gone, "Morag", "morag"):
        assert identifying not in text
    rows_removed = __import__("json").loads(con.sql("SELECT rows_removed FROM ops.erasures").fetchall()[0][0])
    assert rows_removed == {
        "roster": 1,
        "attendance": 0,
        "responses": 2,
        "project_feedback": 1,
        "statements": 0,
        "response_history": 0,
        "quarantine": 1,
    }
    con.close()
    assert published(network)["responses"].height == 3  # P2's extra answer and the others stay
    # the next run neither re-lands nor resurrects anything
    summary = run(network)
    assert summary["deliveries_new"] == 0
    assert gone not in str(published(network)["panellists"].rows())


def test_restricted_and_ops_files_are_not_world_readable(tmp_path: Path) -> None:
    network = write_network(tmp_path)
    run(network)
    current = network.data_dir / "published" / "current"
    for tier, world_readable in (("open", True), ("restricted", False), ("ops", False)):
        for path in [current / tier, *(current / tier).iterdir()]:
            mode = path.stat().st_mode
            assert bool(mode & stat.S_IROTH) is world_readable, path
    assert not (network.data_dir / "published" / "catalog.duckdb").stat().st_mode & stat.S_IROTH


def test_quarantine_keeps_no_direct_identifiers(tmp_path: Path) -> None:
    network = write_network(tmp_path)
    roster = (network.root / "deliveries/recruiter/roster.csv").read_text()
    roster += "p1,P4,16-34,Woman,maybe,Ailsa Grant,ailsa@example.com,07700 900123,KY1 1AA\n"  # bad consent value
    network.deliver("recruiter/roster.csv", roster)
    run(network)
    quarantine = published(network)["quarantine"]
    assert quarantine.height == 1
    text = str(quarantine.rows())
    for identifier in ("Ailsa Grant", "ailsa@example.com", "07700 900123", "KY1 1AA", ",P4"):
        assert identifier not in text
    assert load_config(network.config).is_demo


def test_forget_finds_the_person_under_a_partner_s_own_headers(tmp_path: Path) -> None:
    network = write_network(tmp_path)
    network.deliver("facilitator/attendance.csv", "Panel,Session,Name of attendee,Came\np1,W1,P1,yes\np1,W1,P2,yes\n")
    network.config.write_text(
        network.config.read_text()
        + "  - {name: facilitator, organisation: ORG-B, kind: attendance, location: deliveries/facilitator,\n"
        "     format: {columns: {Panel: panel_id, Session: workshop_id, Name of attendee: panellist_ref,"
        " Came: attended}}}\n"
    )
    run(network)
    assert published(network)["attendance"].height == 2
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "forget", "P1", "--panel", "p1", "--config", str(network.config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "attendance 1" in result.stdout
    con = duckdb.connect(str(network.data_dir / "warehouse.duckdb"), read_only=True)
    (landing,) = con.sql("SELECT landing_path FROM ops.deliveries WHERE source = 'facilitator'").fetchall()[0]
    con.close()
    assert Path(landing).read_text().splitlines() == ["Panel,Session,Name of attendee,Came", "p1,W1,P2,yes"]
