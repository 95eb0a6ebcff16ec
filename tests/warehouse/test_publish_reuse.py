"""Publish writes only the tables whose content changed; the rest are hard links to the last version."""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb
import pytest

from tests.support.network import write_network
from tests.support.pipeline import content, published, rebuild, run
from transforms.disclosure import DisclosureRule
from warehouse.aggregates import AGGREGATES
from warehouse.marts import mart
from warehouse.publish_reuse import (
    CONTENT_KEY,
    builder_code,
    builder_modules,
    content_fingerprint,
    link_previous,
    previous_content,
)
from warehouse.schema import create_schema
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


def _warehouse_with_roster(consent: str = "consented") -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    create_schema(con)
    con.execute(
        "INSERT INTO core.roster (panel_id, panellist_ref, consent, age_band, delivery_id) "
        "VALUES ('p1', 'pn_a', ?, '35-44', 1), ('p1', 'pn_b', 'consented', '45-54', 1)",
        [consent],
    )
    return con


def test_a_built_table_is_fingerprinted_by_the_tables_it_reads_and_its_rule() -> None:
    composition = mart("panel_composition")
    con = _warehouse_with_roster()
    base = content_fingerprint(con, composition, rule=DisclosureRule())
    assert base is not None and base == content_fingerprint(con, composition, rule=DisclosureRule())
    con.execute(
        "INSERT INTO core.responses (panel_id, panellist_ref, question_id, delivery_id) VALUES ('p1', 'pn_a', 'q', 2)"
    )
    assert content_fingerprint(con, composition, rule=DisclosureRule()) == base  # it does not read responses
    assert content_fingerprint(con, composition, rule=DisclosureRule("suppress_under_10")) != base
    assert content_fingerprint(_warehouse_with_roster("withdrawn"), composition, rule=DisclosureRule()) != base
    con.execute(
        "INSERT INTO core.population (dimension, category, share, delivery_id) VALUES ('age_band', '35-44', 0.2, 3)"
    )
    assert content_fingerprint(con, composition, rule=DisclosureRule()) != base
    # its code is part of it: the builder's module and the project's modules it uses, and no others
    used = builder_modules("warehouse.aggregates")
    assert {"warehouse.aggregates", "transforms.disclosure", "din.source_options"} <= used
    assert not used & {"warehouse.publish", "warehouse.marts", "polars", "duckdb"}
    assert builder_code("warehouse.aggregates") != builder_code("transforms.disclosure")


@pytest.mark.parametrize("name", sorted(AGGREGATES))
def test_each_aggregate_reads_only_the_tables_it_names(name: str) -> None:
    """Its fingerprint covers what it reads: built on a warehouse holding only those tables, it still builds
    (a table it reads and does not name would be missing here and fail the build)."""
    con = duckdb.connect()
    create_schema(con)
    reads = set(AGGREGATES[name].reads)
    for schema, view in con.execute("SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal").fetchall():
        con.execute(f'DROP VIEW "{schema}"."{view}"')
    tables = con.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()
    for schema, table in tables:
        if f"{schema}.{table}" not in reads:
            con.execute(f'DROP TABLE "{schema}"."{table}"')
    assert reads <= {f"{s}.{t}" for s, t in tables}
    assert name in AGGREGATES[name].build(con, DisclosureRule())


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
        "open/panel_composition.parquet",  # built in Python, from the roster and population: unchanged
    ):
        assert inode(first, unchanged) == inode(second, unchanged), f"{unchanged} was written again"
    for changed in ("restricted/responses.parquet", "ops/deliveries.parquet", "ops/runs.parquet"):
        assert inode(first, changed) != inode(second, changed), f"{changed} was not rewritten"
    manifest = json.loads((second / "ops" / "publish.json").read_text(encoding="utf-8"))
    assert "responses" in manifest[CONTENT_KEY] and "panel_composition" in manifest[CONTENT_KEY]
    assert verify_published(_paths(network)).ok
    answers = published(network)["responses"]["answer"].to_list()
    assert "Very comfortable" in answers and "Fairly comfortable" not in answers

    increments = content(published(network))
    rebuild(network)  # from landing: the same rows as the sum of the increments
    assert content(published(network)) == increments


def _paths(network):
    from din.paths import DataPaths

    return DataPaths(network.data_dir)
