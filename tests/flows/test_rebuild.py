"""Rebuild from landing gives what the incremental runs gave; re-keying rebuilds every pseudonym consistently."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest

from din.keys import DEMO_KEY
from tests.support.network import write_network
from tests.support.pipeline import content, published, rebuild, run
from transforms.pseudonymise import pseudonym
from warehouse.catalog import connect_catalog

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.xdist_group("prefect")]


def test_rebuild_equals_the_incremental_runs(tmp_path: Path) -> None:
    network = write_network(tmp_path)
    run(network)
    corrected = (
        (network.root / "deliveries/university/responses-w1.csv")
        .read_text()
        .replace("Fairly comfortable", "Very comfortable")
    )
    network.deliver("university/responses-w1.csv", corrected)
    network.deliver(
        "university/bad.csv",
        "panel_id,workshop_id,panellist_ref,question_id,question_text,answer\np1,W9,P1,Q9,t,x\np1,W2,P2,Q9,t,y\n",
    )
    run(network)
    incremental = content(published(network), ignore=("run_id",))
    con = duckdb.connect(str(network.data_dir / "warehouse.duckdb"), read_only=True)
    deliveries_before = con.sql("SELECT delivery_id, status, sha256 FROM ops.deliveries ORDER BY 1").fetchall()
    quarantine_before = con.sql("SELECT delivery_id, source_row, rules FROM ops.quarantine ORDER BY 1, 2").fetchall()
    con.close()

    summary = rebuild(network)
    assert summary["outcome"] == "succeeded"
    assert content(published(network), ignore=("run_id",)) == incremental
    con = duckdb.connect(str(network.data_dir / "warehouse.duckdb"), read_only=True)
    assert con.sql("SELECT delivery_id, status, sha256 FROM ops.deliveries ORDER BY 1").fetchall() == deliveries_before
    assert con.sql("SELECT delivery_id, source_row, rules FROM ops.quarantine ORDER BY 1, 2").fetchall() == (
        quarantine_before
    )
    assert con.sql("SELECT count(*) FROM ops.runs").fetchall()[0][0] == 3  # history carried over
    con.close()
    # and an incremental run after the rebuild finds nothing new
    assert run(network)["deliveries_new"] == 0


def test_rekeying_gives_consistent_new_pseudonyms_across_all_tables(tmp_path: Path) -> None:
    network = write_network(tmp_path)
    run(network)
    old = pseudonym(DEMO_KEY, "p1", "P1")
    assert old in published(network)["responses"]["panellist_pseudonym"].to_list()
    new_key = "n" * 64
    rebuild(network, DIN_PSEUDONYM_KEY=new_key)
    new = pseudonym(new_key.encode(), "p1", "P1")
    tables = published(network)
    seen = 0
    for name, frame in tables.items():
        if "panellist_pseudonym" not in frame.columns:
            continue
        values = set(frame["panellist_pseudonym"].to_list())
        assert old not in values, name
        assert values <= {pseudonym(new_key.encode(), "p1", ref) for ref in ("P1", "P2", "P3")}, name
        seen += new in values
    assert seen == 3  # panellists, responses, project_feedback all carry P1's new pseudonym
    joined = tables["responses"].join(tables["panellists"], on="panellist_pseudonym", how="anti")
    assert joined.height == 0  # every answer still joins to its panellist
    metadata = (
        connect_catalog(network.data_dir / "published" / "catalog.duckdb")
        .sql("SELECT value FROM catalog_metadata WHERE key = 'demo_key'")
        .fetchall()
    )
    assert metadata == [("false",)]
    assert pl.read_parquet(next((network.data_dir / "published/current/ops").glob("runs.parquet"))).height == 2
