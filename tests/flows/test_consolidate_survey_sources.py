"""Survey-tool exports delivered as they come out of the tool, through the whole pipeline."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import REPO
from tests.conftest import SAMPLES as SAMPLE_ROOT
from tests.support.pipeline import published

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.xdist_group("prefect")]

SAMPLES = SAMPLE_ROOT / "survey-exports"
RESPONDENTS = [
    "R_1Kq8ZtXw3mPa9Lf",
    "R_3eH7vN2bQyTg0Rc",
    "R_2aZpL5sWm8XkD1u",
    "R_6Pj0Yc4nFtVb7Ke",
    "R_5wRgM1hUqA9sE2z",
    "R_7TnB3dKx6LpO4Ji",
    "R_1mC8fQ2rZv5WyHs",
]  # everyone but the preview


def test_qualtrics_exports_load_through_the_pipeline(tmp_path: Path) -> None:
    from flows.consolidate import consolidate

    (tmp_path / "reference").mkdir()
    (tmp_path / "reference" / "workshops.csv").write_text(
        "panel_id,workshop_id,number,held_on,title,facilitator_org_id\n"
        "din-pilot-2026,W2,2,2024-03-12,Community climate workshop,ORG-A\n"
    )
    (tmp_path / "reference" / "organisations.csv").write_text("org_id,name,sector\nORG-A,Dundee Council,other\n")
    (tmp_path / "roster").mkdir()
    (tmp_path / "roster" / "roster.csv").write_text(
        "panel_id,panellist_ref,consent\n" + "".join(f"din-pilot-2026,{r},consented\n" for r in RESPONDENTS)
    )
    (tmp_path / "exports").mkdir()
    shutil.copy(SAMPLES / "qualtrics_choice_text.csv", tmp_path / "exports" / "W2_March 12, 2024_18.30.csv")
    shutil.copy(REPO / "examples" / "mappings" / "qualtrics.yaml", tmp_path / "qualtrics.yaml")
    (tmp_path / "din.yaml").write_text(
        textwrap.dedent("""\
        mode: demo
        data_dir: data
        reference:
          - {name: orgs, organisation: ORG-DIN, kind: organisations, location: reference/organisations.csv}
          - {name: workshops, organisation: ORG-DIN, kind: workshops, location: reference/workshops.csv}
        sources:
          - {name: roster, organisation: ORG-R, kind: roster, location: roster}
          - name: council-qualtrics
            organisation: ORG-A
            kind: responses
            location: exports
            format: {type: survey, mapping: qualtrics.yaml}
        """)
    )
    summary = consolidate(config_path=str(tmp_path / "din.yaml"))
    source = next(s for s in summary["sources"] if s["source"] == "council-qualtrics")
    assert (source["rows_read"], source["rows_accepted"], source["rows_quarantined"]) == (41, 41, 0)
    network = type("N", (), {"data_dir": tmp_path / "data"})
    responses = published(network)["responses"]
    assert responses.height == 41
    assert responses["question_id"].n_unique() == 7
    assert "Prefer not to say" in responses["answer"].to_list()
    free_text = " ".join(responses.filter(pl.col("question_id") == "W2-Q04")["answer"].to_list())
    assert "@example" not in free_text and "07700" not in free_text and "[email]" in free_text
    delivery = published(network)["deliveries"].filter(pl.col("source_name") == "council-qualtrics").row(0, named=True)
    assert delivery["format"] == "survey:qualtrics"
    assert "excluded 1 incomplete, 1 preview" in delivery["message"]


def test_a_file_that_is_not_the_declared_tools_export_is_quarantined(tmp_path: Path) -> None:
    from flows.consolidate import consolidate

    (tmp_path / "exports").mkdir()
    shutil.copy(SAMPLES / "google_forms_download_responses.csv", tmp_path / "exports" / "wrong-tool.csv")
    shutil.copy(REPO / "examples" / "mappings" / "qualtrics.yaml", tmp_path / "qualtrics.yaml")
    (tmp_path / "din.yaml").write_text(
        "mode: demo\ndata_dir: data\nsources:\n  - {name: q, organisation: O, kind: responses, location: exports,"
        " format: {type: survey, mapping: qualtrics.yaml}}\n"
    )
    summary = consolidate(config_path=str(tmp_path / "din.yaml"))
    assert summary["outcome"] == "succeeded_with_warnings"  # a refused file needs someone's attention
    assert summary["warnings"][0].startswith("q: wrong-tool.csv was refused whole: not a Qualtrics export")
    network = type("N", (), {"data_dir": tmp_path / "data"})
    quarantine = published(network)["quarantine"]
    assert quarantine["rules"].to_list() == [["survey_export_unreadable"]]
    assert "Qualtrics" in quarantine["reasons"][0][0]
