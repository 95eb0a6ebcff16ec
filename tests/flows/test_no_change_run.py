"""A run with nothing new keeps the published version without a publish task; what shapes a release republishes."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tests.support.network import write_network
from tests.support.pipeline import run
from warehouse.catalog import connect_catalog

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.xdist_group("prefect")]


def _versions(network) -> list[str]:
    return sorted(p.name for p in (network.data_dir / "published" / "versions").iterdir())


def _publishes(network) -> int:
    con = duckdb.connect(str(network.data_dir / "warehouse.duckdb"), read_only=True)
    try:
        return int(con.sql("SELECT count(*) FROM ops.publishes").fetchall()[0][0])
    finally:
        con.close()


def test_no_change_keeps_the_version_and_a_new_title_republishes(tmp_path: Path) -> None:
    network = write_network(tmp_path)
    first = run(network)
    versions = _versions(network)
    second = run(network)
    assert second["deliveries_new"] == 0
    assert second["published_version"] == first["published_version"]
    assert _versions(network) == versions and _publishes(network) == 1
    assert second["withdrawn_panellists"] == first["withdrawn_panellists"]  # still reported without publishing

    # the title is in publish.json and the catalog: a release made under the old one would misname itself
    network.config.write_text("title: Renamed network\n" + network.config.read_text(encoding="utf-8"))
    third = run(network)
    assert third["deliveries_new"] == 0
    assert third["published_version"] not in (first["published_version"], None)
    assert _publishes(network) == 2
    catalog = connect_catalog(network.data_dir / "published" / "catalog.duckdb")
    try:
        metadata = dict(catalog.sql("SELECT key, value FROM catalog_metadata").fetchall())
    finally:
        catalog.close()
    assert metadata["title"] == "Renamed network"
