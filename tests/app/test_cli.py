"""The din command line, run as a contributor or report author would run it (a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

DIN = [sys.executable, "-m", "app.cli"]
TEMPLATE_HEADER = "panel_id,workshop_id,project_id,panellist_ref,benefit,risk,acceptability,conditions,comment\n"


def din(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DIN, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_check_passes_a_clean_file(tmp_path: Path) -> None:
    path = tmp_path / "feedback.csv"
    path.write_text(TEMPLATE_HEADER + "p1,W2,PRJ-1,P1,4,2,acceptable,,\n")
    started = time.perf_counter()
    result = din("check", str(path), "--kind", "project_feedback")
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no problems found" in result.stdout
    assert elapsed < 10  # no Prefect server, no GX import


def test_check_lists_every_fault_with_spreadsheet_rows_and_suggestions(tmp_path: Path) -> None:
    path = tmp_path / "feedback.csv"
    path.write_text(
        TEMPLATE_HEADER
        + "p1,W2,PRJ-1,P1,4,2,acceptable,,\n"  # row 2: fine
        + "p1,W2,PRJ-1,P2,yes,2,acceptable,,\n"  # row 3: yes/no in a 1..5 column
        + "p1,W2,PRJ-1,P3,4,9,acceptible,,\n"  # row 4: out of range; misspelt value
        + "p1,W2,PRJ-1,,4,2,unsure,,\n"  # row 5: empty panellist
        + "p1,W2,PRJ-1,P1,3,3,unsure,,\n"
    )  # row 6: repeats row 2's key
    result = din("check", str(path))
    assert result.returncode == 1
    out = result.stdout
    assert "kind project_feedback (guessed from the headers)" in out
    assert "row 3, column benefit: `benefit` is 'yes'; expected a whole number from 1 to 5" in out
    assert "not yes/no" in out
    assert "row 4, column risk" in out and "row 4, column acceptability" in out
    assert "did you mean `acceptable`?" in out
    assert "row 5, column panellist_ref" in out
    assert "row 2, column panel_id, workshop_id, project_id, panellist_ref" in out and "row 6" in out
    as_json = json.loads(din("check", str(path), "--format", "json").stdout)
    assert as_json["ok"] is False
    assert {(p["row"], p["rule"]) for p in as_json["problems"]} >= {
        (3, "benefit_whole_number"),
        (4, "risk_range"),
        (4, "acceptability_allowed"),
        (5, "panellist_ref_required"),
        (2, "key_unique"),
        (6, "key_unique"),
    }


def test_check_suggests_the_header_one_edit_away(tmp_path: Path) -> None:
    path = tmp_path / "feedback.csv"
    path.write_text(TEMPLATE_HEADER.replace("acceptability", "acceptabilty") + "p1,W2,PRJ-1,P1,4,2,acceptable,,\n")
    result = din("check", str(path), "--kind", "project_feedback")
    assert result.returncode == 1
    assert "required column `acceptability` is missing" in result.stdout
    assert "did you mean `acceptability`?" in result.stdout


def test_check_references_against_a_folder(tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    reference.mkdir()
    (reference / "workshops.csv").write_text(
        "panel_id,workshop_id,number,held_on,title,facilitator_org_id\np1,W2,2,2026-03-19,Past projects,ORG-A\n"
    )
    (reference / "projects.csv").write_text("project_id,title,lead_org_id,sector,stage\nPRJ-1,T,ORG-A,health,past\n")
    (reference / "roster.csv").write_text("panel_id,panellist_ref,consent\np1,P1,consented\n")
    path = tmp_path / "feedback.csv"
    path.write_text(TEMPLATE_HEADER + "p1,W2,PRJ-1,P1,4,2,acceptable,,\np1,W3,PRJ-7,P8,4,2,acceptable,,\n")
    result = din("check", str(path), "--kind", "project_feedback", "--reference", str(reference))
    assert result.returncode == 1
    assert "row 3" in result.stdout and "row 2" not in result.stdout
    for rule_text in ("workshop must be listed", "project must be listed", "panellist must be on the panel's roster"):
        assert rule_text in result.stdout


def test_check_reports_an_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.csv"
    path.write_bytes(bytes(range(256)) * 4)
    result = din("check", str(path), "--kind", "responses")
    assert result.returncode == 1
    assert "binary data" in result.stdout


def test_config_error_exits_2_before_any_work(tmp_path: Path) -> None:
    config = tmp_path / "din.yaml"
    config.write_text("sources:\n  - {name: a, organisation: O, kind: nonsense, location: .}\n")
    result = din("run", "--config", str(config))
    assert result.returncode == 2
    assert "unknown kind 'nonsense'" in result.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.usefixtures("prefect_server")
@pytest.mark.xdist_group("prefect")
def test_tables_and_query_read_the_published_catalog(tmp_path: Path) -> None:
    from flows.consolidate import consolidate
    from tests.support.network import write_network

    network = write_network(tmp_path)
    consolidate(config_path=str(network.config))
    tables = din("tables", "--config", str(network.config))
    assert tables.returncode == 0
    assert "restricted  responses" in tables.stdout and " 4  " in tables.stdout
    query = din(
        "query",
        "--config",
        str(network.config),
        "--format",
        "json",
        "SELECT count(*) AS n FROM restricted.project_feedback",
    )
    assert json.loads(query.stdout) == [{"n": 3}]
    csv = din(
        "query", "--config", str(network.config), "--format", "csv", "SELECT org_id FROM organisations ORDER BY 1"
    )
    assert csv.stdout.splitlines() == ["org_id", "ORG-A", "ORG-B"]
    refused = din("query", "--config", str(network.config), "DELETE FROM organisations")
    assert refused.returncode == 2  # the catalog is opened read-only


def test_keys_new_prints_a_fresh_key() -> None:
    first, second = din("keys", "new").stdout.strip(), din("keys", "new").stdout.strip()
    assert len(first) == 64 and first != second
    int(first, 16)


def test_readme_demo_config_is_valid() -> None:
    from din.config import load_config

    config = load_config(REPO / "examples" / "demo" / "din.yaml")
    assert config.is_demo and len(config.sources) >= 4


def test_a_run_pauses_the_garbage_collector_only_while_it_imports(tmp_path: Path) -> None:
    """`din run` turns the cyclic collector off while it imports Prefect and the data libraries, and on
    again (with the imported objects frozen out of its reach) before any work, also when it stops early."""
    import gc

    from app import cli

    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    try:
        with pytest.raises(RuntimeError), cli._collector_paused():
            assert not gc.isenabled()
            kept = [[] for _ in range(1000)]
            raise RuntimeError("a config error, say")
        assert gc.isenabled()
        assert gc.get_freeze_count() >= frozen + len(kept)

        missing = tmp_path / "no-such-din.yaml"
        assert cli.main(["run", "--config", str(missing)]) == cli.EXIT_ERROR
        assert gc.isenabled()
    finally:
        gc.unfreeze()
