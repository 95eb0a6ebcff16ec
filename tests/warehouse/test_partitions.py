"""Published tables partitioned by panel: one folder per panel, read as one table by every reader.

One module-scoped network of two panels, the second with an id that is hard on folder names (a slash,
an equals sign, a percent sign, a space and a non-ASCII letter), run once by the real flow. The rows
every reader gets are compared with what the catalog's view gives, and with each other.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import duckdb
import pandas as pd
import polars as pl
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from din.paths import DataPaths
from tests.support.network import Network, write_network
from tests.support.pipeline import run
from warehouse.catalog import connect_catalog, open_sandbox
from warehouse.mart_files import one_file, read_documentation, scan_table, table_schema
from warehouse.marts import PART_FILE, marts
from warehouse.verify import resource_files, verify_published

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.xdist_group("prefect")]

ODD_PANEL = "North/East = 50% Môn"
PANELS = {"p1", ODD_PANEL}
PARTITIONED = [m for m in marts() if m.partition_by]


def with_second_panel(network: Network) -> None:
    """Every CSV whose rows carry a panel gets the same rows again for ODD_PANEL, and the config asks for the
    tables partitioned by panel."""
    with network.config.open("a", encoding="utf-8") as config:
        config.write("publish: {partition_by_panel: true}\n")
    copy_panel_rows(network, (ODD_PANEL,))


def copy_panel_rows(network: Network, panels: tuple[str, ...]) -> None:
    """Every CSV of `network` whose rows carry a panel gets p1's rows again for each of `panels`."""
    for path in sorted(network.root.rglob("*.csv")):
        rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
        if not rows or rows[0][0] != "panel_id":
            continue
        copies = [[panel, *row[1:]] for panel in panels for row in rows[1:] if row and row[0] == "p1"]
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows + copies)
        path.write_text(out.getvalue(), encoding="utf-8")


@dataclass(frozen=True)
class Site:
    network: Network
    current: Path
    summary: dict


def published_site(network: Network) -> Site:
    """`network` run once, which must succeed, and what it published."""
    summary = run(network)
    assert summary["outcome"] in ("succeeded", "succeeded_with_warnings"), summary
    return Site(network, network.data_dir / "published" / "current", summary)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    network = write_network(tmp_path_factory.mktemp("partitions"))
    with_second_panel(network)
    return published_site(network)


def catalog_rows(site: Site, tier: str, name: str) -> list[tuple]:
    con = connect_catalog(site.network.data_dir / "published" / "catalog.duckdb")
    try:
        return sorted(con.sql(f'SELECT * FROM "{tier}"."{name}"').fetchall(), key=repr)
    finally:
        con.close()


def test_each_panel_of_a_partitioned_table_is_its_own_folder_and_the_rest_are_single_files(site: Site) -> None:
    for mart in marts():
        location = site.current / mart.relative_path
        if not mart.partition_by:
            assert location.is_file() and location.name == f"{mart.name}.parquet"
            continue
        folders = {p.name for p in location.iterdir()}
        rows = catalog_rows(site, mart.tier, mart.name)
        panels = {r[0] for r in rows}  # every partitioned table starts with panel_id
        if not rows:
            assert folders == {PART_FILE}, mart.name  # an empty table: one zero-row file
            continue
        assert panels <= PANELS and folders == {f"panel_id={quote(p, safe='')}" for p in panels}, mart.name
        for panel in panels:
            part = pl.read_parquet(location / f"panel_id={quote(panel, safe='')}" / PART_FILE, hive_partitioning=False)
            assert "panel_id" not in part.columns  # hive layout: the column is the folder's name
            assert part.height == sum(1 for r in rows if r[0] == panel)
    responses = catalog_rows(site, "restricted", "responses")
    assert {r[0] for r in responses} == PANELS and len(responses) == 8  # both panels' four answers


@pytest.mark.parametrize("mart", PARTITIONED, ids=lambda m: m.name)
def test_every_reader_reads_a_partitioned_table_as_one_table_with_the_same_rows(site: Site, mart) -> None:
    folder = site.current / mart.relative_path
    expected = catalog_rows(site, mart.tier, mart.name)
    columns = table_schema(folder).names
    assert columns[0] == "panel_id" and columns == [c for c, *_ in duckdb_describe(site, mart)]

    def from_pandas(frame: pd.DataFrame) -> tuple[list[str], list[tuple]]:
        frame = frame.astype(object).where(frame.notna(), None)
        return list(frame.columns), [tuple(r) for r in frame.itertuples(index=False)]

    def from_polars(frame: pl.DataFrame) -> tuple[list[str], list[tuple]]:
        return frame.columns, frame.rows()

    def from_duckdb(relation: duckdb.DuckDBPyRelation) -> tuple[list[str], list[tuple]]:
        return relation.columns, relation.fetchall()

    glob = str(folder / "**" / "*.parquet")
    readers = {
        "pandas, the folder": lambda: from_pandas(pd.read_parquet(folder)),
        "pyarrow dataset, hive": lambda: from_pandas(ds.dataset(folder, partitioning="hive").to_table().to_pandas()),
        "pyarrow read_table": lambda: from_pandas(pq.read_table(folder).to_pandas()),
        "polars, the folder": lambda: from_polars(pl.read_parquet(folder)),
        "polars, a glob (hive on)": lambda: from_polars(pl.read_parquet(glob, hive_partitioning=True)),
        "duckdb, a glob": lambda: from_duckdb(duckdb.sql(f"SELECT * FROM read_parquet('{glob}')")),
    }
    for reader, read in readers.items():
        names, got = read()
        assert sorted(names) == sorted(columns), reader  # the partition column once (hive readers: last)
        order = [names.index(c) for c in columns]
        assert sorted((tuple(_plain(r[i]) for i in order) for r in got), key=repr) == [
            tuple(_plain(v) for v in r) for r in expected
        ], reader
    assert scan_table(folder).collect_schema().names() == columns  # din's own reads: the published order


def duckdb_describe(site: Site, mart) -> list[tuple]:
    con = connect_catalog(site.network.data_dir / "published" / "catalog.duckdb")
    try:
        return con.sql(f'DESCRIBE "{mart.tier}"."{mart.name}"').fetchall()
    finally:
        con.close()


def _plain(value: object) -> object:
    """A value as Python compares it across readers (numpy scalars and arrays, pandas' NA and timestamps)."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    if isinstance(value, list | tuple):
        return tuple(_plain(v) for v in value)
    return value


def test_a_filter_on_the_panel_reads_that_panel_only(site: Site) -> None:
    folder = site.current / "restricted" / "responses"
    odd = pl.scan_parquet(folder).filter(pl.col("panel_id") == ODD_PANEL).collect()
    assert odd.height == 4 and set(odd["panel_id"]) == {ODD_PANEL}
    dataset = ds.dataset(folder, partitioning="hive")
    fragments = list(dataset.get_fragments(filter=ds.field("panel_id") == ODD_PANEL))
    assert len(fragments) == 1 and "North%2FEast" in fragments[0].path  # the folder name, percent-encoded


def test_the_datapackage_lists_every_part_and_verify_checks_each(site: Site) -> None:
    descriptor = json.loads((site.current / "datapackage.json").read_text(encoding="utf-8"))
    listed = {path for r in descriptor["resources"] for path, _ in resource_files(r)}
    assert listed == {str(p.relative_to(site.current)) for p in site.current.rglob("*.parquet")}
    responses = next(r for r in descriptor["resources"] if r["name"] == "responses")
    assert responses["partitioned_by"] == "panel_id" and len(responses["path"]) == 2
    check = verify_published(DataPaths(site.network.data_dir))
    assert check.ok and check.files_checked == len(listed)


def test_a_stray_file_inside_a_partitioned_table_is_found_by_verify(site: Site, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "data"
    shutil.copytree(site.network.data_dir, copy, symlinks=True)
    stray = copy / "published" / "current" / "restricted" / "responses" / "panel_id=p9" / PART_FILE
    stray.parent.mkdir()
    shutil.copy(next((copy / "published" / "current" / "restricted" / "responses").rglob(PART_FILE)), stray)
    problems = [str(p) for p in verify_published(DataPaths(copy), catalog=False).problems]
    assert problems == [
        f"versions/{site.summary['published_version']}/restricted/responses/panel_id=p9/{PART_FILE}: "
        "not part of the published version"
    ]


def test_din_query_and_its_sandbox_read_the_partitioned_tables(site: Site) -> None:
    with open_sandbox(DataPaths(site.network.data_dir)) as sandbox:
        counts = dict(
            sandbox.connection.sql("SELECT panel_id, count(*) FROM restricted.responses GROUP BY 1").fetchall()
        )
    assert counts == {"p1": 4, ODD_PANEL: 4}


def test_one_file_of_a_partitioned_table_keeps_its_rows_columns_and_documentation(site: Site, tmp_path: Path) -> None:
    """What the portal's Parquet download sends: the partition column back in its place, documented."""
    folder = site.current / "restricted" / "responses"
    single = one_file(folder, tmp_path)
    schema = pq.read_schema(single)
    assert schema.names == table_schema(folder).names and schema.field("panel_id").type == "string"
    table, columns = read_documentation(single)
    assert table["table"] == "responses" and table["tier"] == "restricted"
    assert columns["panel_id"]["description"] == read_documentation(folder)[1]["panel_id"]["description"] != ""
    assert sorted(pl.read_parquet(single).rows()) == sorted(scan_table(folder).collect().rows())


def test_a_correction_for_one_panel_rewrites_that_panels_files_and_links_the_others(tmp_path: Path) -> None:
    from tests.support.pipeline import content, published, rebuild

    network = write_network(tmp_path)
    with_second_panel(network)
    delivered = network.root / "deliveries" / "university" / "responses-w1.csv"
    header, *rows = delivered.read_text(encoding="utf-8").splitlines(keepends=True)
    # each panel's answers in a file of their own: a new delivery changes the provenance of all its rows
    delivered.write_text("".join([header, *(r for r in rows if r.startswith("p1,"))]), encoding="utf-8")
    network.deliver(
        "university/responses-w1-north.csv", "".join([header, *(r for r in rows if not r.startswith("p1,"))])
    )
    run(network)
    first = (network.data_dir / "published" / "current").resolve()
    lines = delivered.read_text(encoding="utf-8").splitlines(keepends=True)
    corrected = [
        line.replace("Fairly comfortable", "Very comfortable") if line.startswith("p1,") else line for line in lines
    ]
    assert corrected != lines
    delivered.write_text("".join(corrected), encoding="utf-8")
    run(network)
    second = (network.data_dir / "published" / "current").resolve()
    assert second != first

    odd = f"panel_id={quote(ODD_PANEL, safe='')}"
    responses = "restricted/responses"
    assert inode(first, f"{responses}/panel_id=p1/{PART_FILE}") != inode(second, f"{responses}/panel_id=p1/{PART_FILE}")
    assert inode(first, f"{responses}/{odd}/{PART_FILE}") == inode(second, f"{responses}/{odd}/{PART_FILE}")
    for panel in ("panel_id=p1", odd):  # the roster did not change: both panels' files are links
        relative = f"restricted/panellists/{panel}/{PART_FILE}"
        assert inode(first, relative) == inode(second, relative), relative
    answers = published(network)["responses"]
    by_panel = {p: set(answers.filter(pl.col("panel_id") == p)["answer"]) for p in PANELS}
    assert "Very comfortable" in by_panel["p1"] and "Fairly comfortable" not in by_panel["p1"]
    assert "Fairly comfortable" in by_panel[ODD_PANEL] and "Very comfortable" not in by_panel[ODD_PANEL]
    assert verify_published(DataPaths(network.data_dir)).ok
    increments = content(published(network))
    rebuild(network)  # from landing: the same rows as the sum of the increments
    assert content(published(network)) == increments


def view_sql(site: Site, tier: str, name: str) -> str:
    """The SQL of the catalog's view of one table, as DuckDB stored it."""
    con = duckdb.connect(str(site.network.data_dir / "published" / "catalog.duckdb"), read_only=True)
    try:
        sql = con.sql("SELECT sql FROM duckdb_views() WHERE schema_name = ? AND view_name = ?", params=[tier, name])
        return str(sql.fetchall()[0][0])
    finally:
        con.close()


def inode(version: Path, relative: str) -> int:
    return os.stat(version / relative).st_ino


def test_the_catalog_names_a_partitioned_tables_folder_relative_to_itself(site: Site) -> None:
    text = view_sql(site, "restricted", "responses")
    assert "SELECT panel_id, * EXCLUDE (panel_id) FROM read_parquet('current/restricted/responses/**/*.parquet'" in text
    assert str(site.network.root) not in text


def test_turning_partitioning_off_publishes_single_files_with_the_same_rows(tmp_path: Path) -> None:
    from tests.support.pipeline import content, published

    network = write_network(tmp_path)
    with_second_panel(network)
    run(network)
    partitioned = content(published(network))
    current = network.data_dir / "published" / "current"
    assert (current / "restricted" / "responses").is_dir()
    before = current.resolve().name
    text = network.config.read_text(encoding="utf-8")
    network.config.write_text(text.replace("partition_by_panel: true", "partition_by_panel: false"), encoding="utf-8")
    summary = run(network)  # nothing delivered: the layout alone is a reason to publish
    assert summary["deliveries_new"] == 0 and summary["published_version"] != before
    assert (current / "restricted" / "responses.parquet").is_file()
    assert not (current / "restricted" / "responses").exists()
    assert content(published(network)) == partitioned
    assert verify_published(DataPaths(network.data_dir)).ok


def test_exports_and_project_packs_read_a_partitioned_table_whole(site: Site, tmp_path: Path) -> None:
    import openpyxl

    from reports.export import export_table
    from reports.packs import build_project_pack, free_text

    published_dir = site.network.data_dir / "published"
    out = export_table(published_dir, "responses", "csv", tmp_path / "responses.csv")
    exported = pl.read_csv(out, infer_schema=False)
    assert exported.columns[0] == "panel_id" and exported.height == 8
    assert set(exported["panel_id"]) == PANELS
    book = openpyxl.load_workbook(export_table(published_dir, "responses", "xlsx", tmp_path / "responses.xlsx"))
    notes = "\n".join(str(c.value) for row in book["Notes"].iter_rows() for c in row if c.value is not None)
    assert "panel_id" in notes and "RESTRICTED" in notes  # the partition column documented too
    assert build_project_pack(published_dir, "PRJ-1", tmp_path / "pack.html").is_file()
    comments = free_text(site.current, "PRJ-1", "comment")  # what the pack quotes, from both panels' files
    assert comments.texts == ("Good idea",) and comments.panellists == 2
