"""Backtest: the bundled demo, run end to end, gives exactly the known-good published outputs."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import REPO
from tests.support.pipeline import published_tables
from tools.demo_data import write_demo

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.xdist_group("prefect")]

GOLDEN_PUBLISHED = {
    "organisations": 9,
    "projects": 10,
    "workshops": 6,
    "population": 35,
    "panellists": 29,  # 30 on the roster, one withdrawn
    "attendance": 174,
    "responses": 997,
    "project_feedback": 204,
    "recommendations": 24,
    "deliveries": 18,
}
GOLDEN_QUARANTINE_BY_RULE = {
    "acceptability_allowed": 1,
    "answered_at_datetime": 1,
    "benefit_whole_number": 1,
    "key_unique": 2,
    "panellist_known": 1,
    "panellist_ref_required": 1,
    "acceptability_present": 51,
    "workshop_known": 1,
}
RECORD_FORMATS = ("json", "ndjson", "parquet")  # row numbers count records, not a header line


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    from flows.consolidate import consolidate

    root = tmp_path_factory.mktemp("demo")
    shutil.copytree(REPO / "examples" / "demo", root / "demo")
    summary = consolidate(config_path=str(root / "demo" / "din.yaml"), data_dir=str(root / "data"))
    return root / "data", summary


def _tables(data_dir: Path) -> dict[str, pl.DataFrame]:
    return published_tables(data_dir / "published" / "current")


def test_demo_publishes_the_golden_row_counts(demo_run: tuple[Path, dict]) -> None:
    data_dir, summary = demo_run
    tables = _tables(data_dir)
    assert {name: tables[name].height for name in GOLDEN_PUBLISHED} == GOLDEN_PUBLISHED
    assert summary["rows_accepted"] == 1508
    assert summary["rows_quarantined"] == 59
    assert summary["withdrawn_panellists"] == 1


def test_demo_golden_counts_agree_with_the_generator_manifest(demo_run: tuple[Path, dict], tmp_path: Path) -> None:
    manifest = write_demo(tmp_path / "regenerated")
    tables = _tables(demo_run[0])
    quarantined = manifest.quarantined_rows
    for kind, table in (
        ("attendance", "attendance"),
        ("responses", "responses"),
        ("project_feedback", "project_feedback"),
        ("recommendations", "recommendations"),
    ):
        files = [f for f in manifest.files if f.kind == kind]
        delivered = sum(f.rows for f in files)
        lost = sum(len(quarantined.get(f.path, ())) for f in files)
        withdrawn = sum(manifest.withdrawn_rows.get(f.path, 0) for f in files)
        assert tables[table].height == delivered - lost - withdrawn, kind


def test_every_planted_fault_is_quarantined_where_it_was_planted(demo_run: tuple[Path, dict], tmp_path: Path) -> None:
    manifest = write_demo(tmp_path / "regenerated")
    quarantine = _tables(demo_run[0])["quarantine"]
    by_rule = Counter(rule for rules in quarantine["rules"].to_list() for rule in rules)
    assert dict(by_rule) == GOLDEN_QUARANTINE_BY_RULE
    formats = {f.path: f.format for f in manifest.files}
    for fault in manifest.faults:
        in_file = quarantine.filter(pl.col("original_path").str.ends_with(fault.path))
        if not fault.quarantined:
            assert in_file.height == 0, fault
            continue
        if fault.row is None:
            assert in_file.height == manifest.file(fault.path).rows, fault
            assert all("missing" in r[0] for r in in_file["reasons"].to_list())
            continue
        row = fault.row - 1 if formats[fault.path] in RECORD_FORMATS else fault.row
        hits = in_file.filter(pl.col("source_row") == row)
        assert hits.height == 1, fault
        expected_columns = set(fault.canonical_column.split(", "))
        assert expected_columns <= set(hits["columns"][0].to_list()), fault


def test_demo_extra_column_is_reported_not_rejected(demo_run: tuple[Path, dict]) -> None:
    deliveries = _tables(demo_run[0])["deliveries"]
    fife = deliveries.filter(pl.col("source_name") == "fife-hscp-feedback").row(0, named=True)
    assert fife["extra_columns"] == ["Reviewed on"]
    assert fife["outcome"] == "accepted"


def test_demo_identifiers_are_scrubbed_from_free_text(demo_run: tuple[Path, dict], tmp_path: Path) -> None:
    manifest = write_demo(tmp_path / "regenerated")
    tables = _tables(demo_run[0])
    text = "\n".join(
        str(row) for name in ("responses", "project_feedback", "recommendations") for row in tables[name].rows()
    )
    for planted in manifest.identifiers:
        assert planted.value not in text, planted
    assert "[email]" in text and "[phone]" in text and "[postcode]" in text and "[health-id]" in text
    assert "[name]" in text


OPEN_COUNTS = {
    "panel_composition": ("panellists", ["panel_id", "dimension"]),
    "attendance_by_workshop": ("panellists", ["panel_id", "workshop_id"]),
    "project_acceptability": ("panellists", ["project_id"]),
    "recommendation_support": ("votes", ["panel_id", "workshop_id", "recommendation_id"]),
}


@pytest.mark.parametrize("table", sorted(OPEN_COUNTS))
def test_open_aggregates_are_disclosure_safe(demo_run: tuple[Path, dict], table: str) -> None:
    frame = _tables(demo_run[0])[table]
    count, margin = OPEN_COUNTS[table]
    status = f"{count}_status"
    published = frame.filter(pl.col(count).is_not_null())[count].to_list()
    assert not [v for v in published if 1 <= v < 5], "a small count was published"
    assert frame.filter(pl.col(count).is_null())[status].is_in(["suppressed", "suppressed_secondary"]).all()
    assert frame.filter(pl.col(count) == 0)[status].to_list() == ["zero"] * frame.filter(pl.col(count) == 0).height
    assert frame.filter(pl.col(status).str.starts_with("suppressed")).height > 0  # the demo has small cells
    assert set(frame["disclosure_rule"].to_list()) == {"suppress_under_5"}
    # no group hides exactly one of its cells (its total, published or not, would then reveal it)
    per_group = frame.group_by(margin).agg(pl.col(status).str.starts_with("suppressed").sum().alias("hidden"))
    assert 1 not in per_group["hidden"].to_list()


def test_open_aggregates_exclude_the_withdrawn_panellist(demo_run: tuple[Path, dict]) -> None:
    tables = _tables(demo_run[0])
    composition = tables["panel_composition"]
    assert set(composition["panel_size"].to_list()) == {29}
    scores = tables["project_scores"]
    assert scores["panellists"].max() <= 29


AGGREGATES_WITH_TOTALS = ("attendance_by_workshop", "project_acceptability", "recommendation_support")
TOTALS_OVER = {
    "attendance_by_workshop": "attendance",
    "project_acceptability": "acceptability",
    "recommendation_support": "vote",
}


@pytest.mark.parametrize("table", AGGREGATES_WITH_TOTALS)
def test_totals_are_a_table_of_their_own_and_a_plain_sum_of_the_cells_is_right(
    demo_run: tuple[Path, dict], table: str
) -> None:
    tables = _tables(demo_run[0])
    cells, totals = tables[table], tables[f"{table}_totals"]
    count = OPEN_COUNTS[table][0]
    status = f"{count}_status"
    assert "is_total" not in cells.columns and "is_total" not in totals.columns
    assert "total_by" not in cells.columns
    # one total per group plus one overall (per panel or workshop): the group totals add up to it
    kept = {"attendance_by_workshop": "workshop_id", "project_acceptability": "project_id"}.get(
        table, "recommendation_id"
    )
    outer = [c for c in OPEN_COUNTS[table][1] if c != kept]
    assert set(totals["total_by"]) == {kept, TOTALS_OVER[table], "all"}
    groups = totals.filter(pl.col("total_by") == kept)
    overall = totals.filter(pl.col("total_by") == "all")
    assert groups.height == cells.select(*outer, kept).unique().height
    if groups[status].eq("published").all() and overall[status].eq("published").all():
        summed = groups.group_by(outer).agg(pl.col(count).sum()) if outer else groups.select(pl.col(count).sum())
        expected = overall.select(*outer, count) if outer else overall.select(count)
        assert sorted(summed.rows()) == sorted(expected.rows())
    # a plain sum of the cells never exceeds the overall total (it is the total less what is suppressed)
    assert cells[count].sum() <= overall[count].sum()
    assert not [v for v in totals[count].drop_nulls().to_list() if 1 <= v < 5], "a small total was published"


def test_every_published_file_carries_its_documentation_tier_and_demo_flag(demo_run: tuple[Path, dict]) -> None:
    import pyarrow.parquet as pq

    from warehouse.marts import found_marts, mart

    current = demo_run[0] / "published" / "current"
    files = {m.name: m.relative_files(current) for m in found_marts(current)}
    assert all(files.values()), [name for name, found in files.items() if not found]
    for name, relative in ((n, f) for n, found in files.items() for f in found):
        schema = pq.read_schema(current / relative)
        table = {k.decode(): v.decode() for k, v in (schema.metadata or {}).items()}
        definition = mart(name)
        assert table["din.table"] == name and table["din.tier"] == relative.split("/")[0] == definition.tier
        assert table["din.description"] == definition.description
        assert table["din.demo"] == "true" and table["din.notice"].startswith("DEMO OUTPUT")
        for field in schema:
            meta = {k.decode(): v.decode() for k, v in (field.metadata or {}).items()}
            doc = definition.column_doc(field.name)
            assert meta["description"] == doc.meaning, (name, field.name)
            assert meta.get("unit", "") == doc.unit and meta.get("allowed", "") == doc.allowed
            assert meta["din.tier"] == definition.tier and meta["din.demo"] == "true"


def test_pandas_reads_suppressed_counts_as_missing_integers_not_float_nan(demo_run: tuple[Path, dict]) -> None:
    import pandas as pd

    frame = pd.read_parquet(demo_run[0] / "published" / "current" / "open" / "project_acceptability.parquet")
    assert str(frame["panellists"].dtype) == "Int64"
    suppressed = frame[frame["panellists_status"].str.startswith("suppressed")]
    assert len(suppressed) > 0 and suppressed["panellists"].isna().all()
    published = frame[frame["panellists_status"] == "published"]["panellists"]
    assert published.sum() == int(published.astype("int64").sum()) and published.notna().all()


@pytest.mark.parametrize(("table", "tier"), [("responses", "restricted"), ("project_acceptability", "open")])
def test_an_xlsx_export_has_a_notes_sheet_with_the_marking_and_every_column(
    demo_run: tuple[Path, dict], tmp_path: Path, table: str, tier: str
) -> None:
    import openpyxl

    from reports.export import export_table
    from warehouse.marts import mart

    out = export_table(demo_run[0] / "published", table, "xlsx", tmp_path / f"{table}.xlsx")
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == [table, "Notes"]
    data_header = [c.value for c in book[table][1]]
    notes = [[c.value for c in row] for row in book["Notes"].iter_rows()]
    text = "\n".join(str(v) for row in notes for v in row if v is not None)
    assert ("RESTRICTED" in text) == (tier == "restricted")
    assert "DEMO OUTPUT" in text and mart(table).description in text
    documented = {row[0]: row[1] for row in notes if row and row[0] in data_header}
    assert set(documented) == set(data_header)
    assert all(documented[c] == mart(table).column_doc(c).meaning for c in data_header)
    header = book[table].oddHeader.left.text or ""
    assert "DEMO OUTPUT" in header and ("RESTRICTED" in header) == (tier == "restricted")
