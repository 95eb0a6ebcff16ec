"""Publish writes only the tables whose content changed; the rest are hard links to the last version."""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb
import pytest

from tests.support.network import write_network
from tests.support.pipeline import content, published, rebuild, run
from warehouse.marts import mart
from warehouse.publish_reuse import CONTENT_KEY, content_fingerprint, link_previous, previous_content
from warehouse.verify import verify_published


def _fingerprint_of(rows: list[tuple[str, int]]) -> str | None:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA ops")
    con.execute("CREATE TABLE ops.runs (run_id VARCHAR, n INTEGER)")
    con.executemany("INSERT INTO ops.runs VALUES (?, ?)", rows)
    return content_fingerprint(con, _runs_like())


def _runs_like():  # a SQL table over ops.runs with the real Mart type
    from dataclasses import replace

    return replace(mart("runs"), sql="SELECT run_id, n FROM ops.runs")


def test_the_fingerprint_sees_every_change_of_content_and_not_the_order() -> None:
    base = _fingerprint_of([("a", 1), ("b", 2)])
    assert base is not None
    assert _fingerprint_of([("b", 2), ("a", 1)]) == base  # order-free
    assert _fingerprint_of([("a", 1)]) != base
    assert _fingerprint_of([("a", 1), ("b", 3)]) != base
    assert _fingerprint_of([("a", None), ("b", 2)]) != base
    # duplicated rows do not cancel out (a plain xor of row hashes would call these equal)
    assert _fingerprint_of([("x", 1), ("x", 1)]) != _fingerprint_of([("y", 1), ("y", 1)])


def test_the_fingerprint_sees_what_the_file_says_about_itself() -> None:
    """A file carries its documentation and the demo notice: a version that says otherwise writes it anew."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA ops")
    con.execute("CREATE TABLE ops.runs AS SELECT 'a' AS run_id, 1 AS n")
    demo = content_fingerprint(con, _runs_like(), {"din.demo": "true", "din.notice": "DEMO OUTPUT"})
    assert demo == content_fingerprint(con, _runs_like(), {"din.demo": "true", "din.notice": "DEMO OUTPUT"})
    assert demo != content_fingerprint(con, _runs_like(), {"din.demo": "false", "din.notice": "secret key"})


def test_tables_built_in_python_have_no_fingerprint() -> None:
    assert content_fingerprint(duckdb.connect(), mart("panel_composition")) is None


def test_an_unreadable_manifest_means_nothing_is_reused(tmp_path: Path) -> None:
    assert previous_content(None) == ({}, {})
    (tmp_path / "ops").mkdir()
    (tmp_path / "ops" / "publish.json").write_text("{not json", encoding="utf-8")
    assert previous_content(tmp_path) == ({}, {})
    assert not link_previous(tmp_path, mart("organisations"), tmp_path / "new")  # no file
    (tmp_path / "open").mkdir()
    (tmp_path / "open" / "organisations.parquet").write_bytes(b"PAR1")  # a file no datapackage.json vouches for
    assert not link_previous(tmp_path, mart("organisations"), tmp_path / "new")
    part = tmp_path / "restricted" / "responses" / "panel_id=p1" / "part-0.parquet"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"PAR1")
    assert not link_previous(tmp_path, mart("responses"), tmp_path / "new")
    assert not (tmp_path / "new").exists() or not any((tmp_path / "new").rglob("*.parquet"))


@pytest.mark.usefixtures("prefect_server")
@pytest.mark.xdist_group("prefect")
def test_a_corrected_file_rewrites_its_tables_and_links_the_rest(tmp_path: Path) -> None:
    network = write_network(tmp_path)
    run(network)
    first = (network.data_dir / "published" / "current").resolve()
    corrected = (network.root / "deliveries" / "university" / "responses-w1.csv").read_text()
    network.deliver("university/responses-w1.csv", corrected.replace("Fairly comfortable", "Very comfortable"))
    summary = run(network)
    second = (network.data_dir / "published" / "current").resolve()
    assert second != first and summary["published_version"] == second.name

    def inode(version: Path, relative: str) -> int:
        return os.stat(version / relative).st_ino

    for unchanged in (
        "open/organisations.parquet",
        "restricted/project_feedback.parquet",
        "restricted/panellists.parquet",
    ):
        assert inode(first, unchanged) == inode(second, unchanged), f"{unchanged} was written again"
    for changed in ("restricted/responses.parquet", "ops/deliveries.parquet", "ops/runs.parquet"):
        assert inode(first, changed) != inode(second, changed), f"{changed} was not rewritten"
    manifest = json.loads((second / "ops" / "publish.json").read_text(encoding="utf-8"))
    assert "responses" in manifest[CONTENT_KEY] and "panel_composition" not in manifest[CONTENT_KEY]
    assert verify_published(_paths(network)).ok
    answers = published(network)["responses"]["answer"].to_list()
    assert "Very comfortable" in answers and "Fairly comfortable" not in answers

    increments = content(published(network))
    rebuild(network)  # from landing: the same rows as the sum of the increments
    assert content(published(network)) == increments


def _paths(network):
    from din.paths import DataPaths

    return DataPaths(network.data_dir)
