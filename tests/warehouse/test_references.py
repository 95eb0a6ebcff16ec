"""Reference checks that expose nobody: the export names no one, and `din check` finds unknown
panellists, workshops and projects with it, as the run would (a real demo run, a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest

from tests.support.portal import DemoPortal, run_demo

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.xdist_group("prefect")]
HEADER = "panel_id,workshop_id,project_id,panellist_ref,benefit,risk,acceptability,conditions,comment\n"


def din(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoPortal, Path]:
    demo = run_demo(tmp_path_factory.mktemp("references"))
    out = demo.root / "refs.json"
    result = din(
        "references", "export", "--config", str(demo.config), "--data-dir", str(demo.data_dir), "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    assert "30 panellist" in result.stdout and "6 workshop" in result.stdout and "10 project" in result.stdout
    return demo, out


def test_the_export_holds_no_identifier_and_no_pseudonym(exported: tuple[DemoPortal, Path]) -> None:
    demo, out = exported
    text = out.read_text(encoding="utf-8")
    roster = pl.read_excel(
        demo.config.parent / "deliveries" / "ceilidh-recruitment" / "panel_roster.xlsx", sheet_name="Panel roster"
    )
    identifiers = [
        v for c in ("Full name", "Email", "Phone", "Postcode") for v in roster[c].drop_nulls().cast(pl.String)
    ]
    assert identifiers and not [v for v in identifiers if v in text]
    assert not [r for r in roster["Panellist Ref"].to_list() if f'"{r}"' in text]  # refs only as keyed hashes
    con = duckdb.connect(str(demo.data_dir / "warehouse.duckdb"), read_only=True)
    pseudonyms = [r[0] for r in con.execute("SELECT panellist_ref FROM core.roster").fetchall()]
    con.close()
    assert pseudonyms and not [p for p in pseudonyms if p in text]
    document = json.loads(text)
    assert {"known_workshop", "known_project", "known_panellist"} <= set(document["known"])


def test_din_check_with_the_export_finds_what_the_run_would_refuse(
    exported: tuple[DemoPortal, Path], tmp_path: Path
) -> None:
    _, out = exported
    path = tmp_path / "feedback.csv"
    path.write_text(
        HEADER
        + "din-pilot-2026,W2,PRJ-01,P001,4,2,acceptable,,\n"  # row 2: every reference known
        + "din-pilot-2026,W2,PRJ-01,P099,4,2,acceptable,,\n"  # row 3: nobody P099 on the roster
        + "din-pilot-2026,W9,PRJ-01,P002,4,2,acceptable,,\n"  # row 4: no workshop W9
        + "din-pilot-2026,W2,PRJ-77,P003,4,2,acceptable,,\n"  # row 5: no project PRJ-77
    )
    result = din("check", str(path), "--reference", str(out), "--format", "json")
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    found = {(p["row"], p["rule"], p["value"]) for p in report["problems"]}
    assert found == {
        (3, "panellist_known", "din-pilot-2026 + P099"),  # as typed, never a hash or pseudonym
        (4, "workshop_known", "din-pilot-2026 + W9"),
        (5, "project_known", "PRJ-77"),
    }
    assert report["rows_accepted"] == 1
    unchecked = din("check", str(path), "--kind", "project_feedback")
    assert unchecked.returncode == 0 and "references not checked" in unchecked.stdout
    assert "pass --reference" in unchecked.stdout


def test_a_file_that_is_not_an_export_is_refused_clearly(tmp_path: Path) -> None:
    bogus = tmp_path / "refs.json"
    bogus.write_text('{"hello": 1}')
    path = tmp_path / "f.csv"
    path.write_text(HEADER + "p,W1,PRJ-01,P1,4,2,acceptable,,\n")
    result = din("check", str(path), "--reference", str(bogus))
    assert result.returncode == 2 and "not a reference export" in result.stderr and "Traceback" not in result.stderr
