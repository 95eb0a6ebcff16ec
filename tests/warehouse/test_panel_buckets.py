"""Published tables split into a fixed number of files by panel (`publish: {panel_buckets: N}`).

One module-scoped network of three panels, run once by the real flow with four buckets: `p1` hashes to
a file of its own, the other two (one with an id that is hard on file systems and SQL) share one. The
rows every reader gets are compared with the catalog's view, and with the same network published as
one file per table.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from din.config import ConfigError, load_config
from din.keys import DEMO_KEY
from din.paths import DataPaths
from tests.support.network import Network, write_network
from tests.support.pipeline import content, published, rebuild, run
from tests.warehouse.test_partitions import (
    Site,
    _plain,
    catalog_rows,
    copy_panel_rows,
    inode,
    published_site,
    view_sql,
)
from transforms.pseudonymise import pseudonym
from warehouse.catalog import open_sandbox
from warehouse.mart_files import one_file, read_documentation, scan_table, table_schema
from warehouse.marts import PART_FILE, found_marts, marts, published_marts
from warehouse.publish_reuse import order_free, partition_fingerprints
from warehouse.verify import resource_files, verify_published

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.xdist_group("prefect")]

BUCKETS = 4
ODD_PANEL = "North/East = 50% Môn's"
PANELS = ("p1", ODD_PANEL, "p2")
SPLIT = [m for m in published_marts(False, BUCKETS) if m.buckets]


def bucket_of(panel: str) -> int:
    """The bucket DuckDB puts a panel in: the rule itself (`Mart.bucket_sql`), asked of DuckDB."""
    return int(duckdb.execute(f"SELECT {SPLIT[0].bucket_sql()} FROM (SELECT ? AS panel_id)", [panel]).fetchall()[0][0])


def test_the_panels_chosen_share_one_bucket_and_leave_another() -> None:
    """What the other tests rely on (a DuckDB release with another hash would need other panel ids)."""
    assert bucket_of("p1") != bucket_of(ODD_PANEL) == bucket_of("p2")


def with_panels(network: Network, panels: tuple[str, ...] = PANELS[1:], buckets: int | None = BUCKETS) -> None:
    """Every CSV whose rows carry a panel gets p1's rows again for each of `panels`; the config asks for
    `buckets` files per table (None: one file per table)."""
    if buckets is not None:
        with network.config.open("a", encoding="utf-8") as config:
            config.write(f"publish: {{panel_buckets: {buckets}}}\n")
    copy_panel_rows(network, panels)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    network = write_network(tmp_path_factory.mktemp("buckets"))
    with_panels(network)
    return published_site(network)


def test_each_split_table_is_a_file_per_bucket_holding_exactly_its_panels_rows(site: Site) -> None:
    split = {m.name for m in SPLIT}
    assert {"responses", "panellists", "attendance"} <= split
    for mart in marts():
        location = site.current / mart.relative_path
        if mart.name not in split:
            assert location.is_file() and location.name == f"{mart.name}.parquet"
            continue
        rows = catalog_rows(site, mart.tier, mart.name)
        files = {p.name for p in location.iterdir()}
        if not rows:
            assert files == {PART_FILE}, mart.name  # an empty table: one zero-row file
            continue
        panels = {r[0] for r in rows}  # every split table starts with panel_id
        expected = {SPLIT[0].bucket_file(bucket_of(p)) for p in panels}
        assert files == expected, mart.name  # only the buckets that hold rows
        for name in files:
            part = pl.read_parquet(location / name)
            assert part.columns == table_schema(location).names  # every column, the panel's too
            held = {p for p in panels if SPLIT[0].bucket_file(bucket_of(p)) == name}
            assert set(part["panel_id"]) == held, (mart.name, name)
            assert part.height == sum(1 for r in rows if r[0] in held)
    responses = catalog_rows(site, "restricted", "responses")
    assert {r[0] for r in responses} == set(PANELS) and len(responses) == 12  # each panel's four answers
    listed = sorted(p.name for p in (site.current / "restricted" / "responses").iterdir())
    assert listed == ["part-01.parquet", "part-02.parquet"]


@pytest.mark.parametrize("name", [m.name for m in SPLIT])
def test_every_reader_reads_a_split_table_as_one_table_with_the_same_rows(site: Site, name: str) -> None:
    mart = next(m for m in SPLIT if m.name == name)
    folder = site.current / mart.relative_path
    expected = catalog_rows(site, mart.tier, mart.name)
    columns = table_schema(folder).names
    assert columns[0] == "panel_id"

    def from_pandas(frame: pd.DataFrame) -> tuple[list[str], list[tuple]]:
        frame = frame.astype(object).where(frame.notna(), None)
        return list(frame.columns), [tuple(r) for r in frame.itertuples(index=False)]

    readers = {
        "pandas, the folder": lambda: from_pandas(pd.read_parquet(folder)),
        "pyarrow read_table": lambda: from_pandas(pq.read_table(folder).to_pandas()),
        "polars, the folder": lambda: (lambda f: (f.columns, f.rows()))(pl.read_parquet(folder)),
        "duckdb, a glob": lambda: (lambda r: (r.columns, r.fetchall()))(
            duckdb.sql(f"SELECT * FROM read_parquet('{folder}/*.parquet')")
        ),
    }
    for reader, read in readers.items():
        names, got = read()
        assert names == columns, reader  # no column from a folder name: the files are the table
        assert sorted((tuple(_plain(v) for v in r) for r in got), key=repr) == [
            tuple(_plain(v) for v in r) for r in expected
        ], reader
    assert scan_table(folder).collect_schema().names() == columns


def test_the_same_network_as_one_file_per_table_publishes_the_same_rows(site: Site, tmp_path: Path) -> None:
    network = write_network(tmp_path)
    with_panels(network, buckets=None)
    run(network)
    single = network.data_dir / "published" / "current"
    assert (single / "restricted" / "responses.parquet").is_file()
    assert content(published(network)) == content(published(site.network))
    for mart in SPLIT:  # every file of a bucket has the columns and types of the table as one file
        expected = [(f.name, f.type) for f in pq.read_schema(single / f"{mart.tier}/{mart.name}.parquet")]
        for path in sorted((site.current / mart.relative_path).iterdir()):
            assert [(f.name, f.type) for f in pq.read_schema(path)] == expected, path


def test_the_datapackage_lists_every_file_and_verify_checks_each(site: Site, tmp_path: Path) -> None:
    descriptor = json.loads((site.current / "datapackage.json").read_text(encoding="utf-8"))
    listed = {path for r in descriptor["resources"] for path, _ in resource_files(r)}
    assert listed == {str(p.relative_to(site.current)) for p in site.current.rglob("*.parquet")}
    responses = next(r for r in descriptor["resources"] if r["name"] == "responses")
    assert responses["bucketed_by"] == "panel_id" and "partitioned_by" not in responses
    assert responses["path"] == ["restricted/responses/part-01.parquet", "restricted/responses/part-02.parquet"]
    check = verify_published(DataPaths(site.network.data_dir))
    assert check.ok and check.files_checked == len(listed)
    copy = tmp_path / "data"
    shutil.copytree(site.network.data_dir, copy, symlinks=True)
    stray = copy / "published" / "current" / "restricted" / "responses" / "part-03.parquet"
    shutil.copy(stray.with_name("part-01.parquet"), stray)
    problems = [str(p) for p in verify_published(DataPaths(copy), catalog=False).problems]
    assert problems == [
        f"versions/{site.summary['published_version']}/restricted/responses/part-03.parquet: "
        "not part of the published version"
    ]


def test_the_catalog_and_din_query_read_the_split_tables_through_a_relative_glob(site: Site) -> None:
    text = view_sql(site, "restricted", "responses")
    assert "read_parquet('current/restricted/responses/**/*.parquet', (hive_partitioning = false))" in text
    with open_sandbox(DataPaths(site.network.data_dir)) as sandbox:
        counts = dict(
            sandbox.connection.sql("SELECT panel_id, count(*) FROM restricted.responses GROUP BY 1").fetchall()
        )
    assert counts == dict.fromkeys(PANELS, 4)


def test_the_download_of_a_split_table_is_one_file_with_its_rows_and_documentation(site: Site, tmp_path: Path) -> None:
    folder = site.current / "restricted" / "responses"
    single = one_file(folder, tmp_path)
    assert pq.read_schema(single).names == table_schema(folder).names
    table, columns = read_documentation(single)
    assert table["table"] == "responses" and table["tier"] == "restricted"
    assert columns["panel_id"]["description"] == read_documentation(folder)[1]["panel_id"]["description"] != ""
    assert sorted(pl.read_parquet(single).rows()) == sorted(scan_table(folder).collect().rows())
    assert [m.buckets > 0 for m in found_marts(site.current) if m.name == "responses"] == [True]
    from reports.export import export_table

    exported = pl.read_csv(export_table(site.network.data_dir / "published", "responses", "csv", tmp_path / "r.csv"))
    assert exported.columns[0] == "panel_id" and exported.height == 12 and set(exported["panel_id"]) == set(PANELS)


@pytest.mark.parametrize("name", [m.name for m in SPLIT])
def test_a_tables_rows_picked_where_it_reads_them_are_its_rows_in_those_buckets(site: Site, name: str) -> None:
    """`Mart.rows_where` (what a publish of a few buckets copies) gives each bucket's rows of the table as its
    whole query filtered would: no row more or less, every column the same."""
    mart = next(m for m in SPLIT if m.name == name)
    con = duckdb.connect(str(site.network.data_dir / "warehouse.duckdb"), read_only=True)
    seen = 0
    for numbers in ([n] for n in range(BUCKETS)):
        condition = f"{mart.bucket_sql()} IN (SELECT unnest(?::INTEGER[]))"
        picked = con.execute(mart.rows_where(condition), [numbers]).fetchall()
        filtered = con.execute(f"SELECT * FROM ({mart.sql}) AS q WHERE {condition}", [numbers]).fetchall()
        assert sorted(picked, key=repr) == sorted(filtered, key=repr), numbers
        seen += len(picked)
    assert seen == con.execute(f"SELECT count(*) FROM ({mart.sql})").fetchall()[0][0]
    if name in ("responses", "panellists"):
        assert seen > 0
    con.close()


class Fingerprints:
    """Each bucket's fingerprint of a table on a private copy of the site's warehouse, before and after a
    change that is rolled back."""

    def __init__(self, site: Site, folder: Path, name: str) -> None:
        copy = folder / "warehouse.duckdb"
        shutil.copy(site.network.data_dir / "warehouse.duckdb", copy)
        self.con = duckdb.connect(str(copy))
        self.mart = next(m for m in SPLIT if m.name == name)
        self.base = partition_fingerprints(self.con, self.mart)

    def changed_by(self, statement: str) -> set[int]:
        """The buckets whose fingerprint `statement` changes."""
        self.con.execute("BEGIN")
        try:
            (touched,) = self.con.execute(statement).fetchall()[0]
            assert touched, statement  # the change changed something
            now = partition_fingerprints(self.con, self.mart)
        finally:
            self.con.execute("ROLLBACK")
        assert now is not None and self.base is not None and set(now) == set(self.base)
        return {int(b) for b in now if now[b] != self.base[b]}


def test_a_row_level_tables_buckets_are_fingerprinted_by_what_their_rows_are_made_of(
    site: Site, tmp_path: Path
) -> None:
    """`responses`' fingerprints are summed over the rows it reads (core, each row's delivery, the consent of
    its panellists), not over the rows it gives: each must still change exactly where a published row would."""
    sums = Fingerprints(site, tmp_path, "responses")
    assert sums.base is not None
    assert set(sums.base) == {bucket_of(r[0]) for r in catalog_rows(site, "restricted", "responses")}
    assert partition_fingerprints(sums.con, sums.mart) == sums.base  # the same rows, the same sums
    p1, shared = bucket_of("p1"), bucket_of("p2")
    one_answer = "SELECT min(rowid) FROM core.responses WHERE panel_id = 'p1'"
    assert sums.changed_by(f"UPDATE core.responses SET answer = answer || '.' WHERE rowid = ({one_answer})") == {p1}
    assert sums.changed_by(f"DELETE FROM core.responses WHERE rowid = ({one_answer})") == {p1}
    # a delivery's published provenance changes every bucket its rows are in; what is not published, none
    p2_delivery = "(SELECT min(delivery_id) FROM core.responses WHERE panel_id = 'p2')"
    in_it = {
        bucket_of(p)
        for (p,) in sums.con.execute(
            f"SELECT DISTINCT panel_id FROM core.responses WHERE delivery_id = {p2_delivery}"
        ).fetchall()
    }
    assert shared in in_it
    for column in ("processed_run_id", "sha256", "source"):
        statement = f"UPDATE ops.deliveries SET {column} = {column} || 'x' WHERE delivery_id = {p2_delivery}"
        assert sums.changed_by(statement) == in_it, column
    assert (
        sums.changed_by(f"UPDATE ops.deliveries SET rows_read = rows_read + 1 WHERE delivery_id = {p2_delivery}")
        == set()
    )
    # a withdrawal withholds the panellist's answers: their bucket's file is written anew
    answering = "(SELECT min(panellist_ref) FROM core.responses WHERE panel_id = 'p1')"
    withdraw = f"UPDATE core.roster SET consent = 'withdrawn' WHERE panel_id = 'p1' AND panellist_ref = {answering}"
    assert sums.changed_by(withdraw) == {p1}
    sums.con.close()


def test_the_tables_read_by_their_own_query_are_fingerprinted_without_sorting_them(site: Site) -> None:
    """`order_free` drops a query's outermost ORDER BY (the fingerprint's sums do not depend on the order):
    the same rows, in any order, for every published SQL table; a LIMIT keeps its ORDER BY."""
    con = duckdb.connect(str(site.network.data_dir / "warehouse.duckdb"), read_only=True)
    ordered = [m for m in marts() if m.kind is None and m.build is None and "ORDER BY" in m.sql.upper()]
    assert {"quarantine", "deliveries", "runs"} <= {m.name for m in ordered}
    for mart in ordered:
        free = order_free(con, mart.sql)
        assert free.upper().count("ORDER BY") == mart.sql.upper().count("ORDER BY") - 1, mart.name
        given, unsorted = con.execute(mart.sql).fetchall(), con.execute(free).fetchall()
        assert sorted(given, key=repr) == sorted(unsorted, key=repr), mart.name
        assert con.execute(f"SELECT * FROM ({free}) LIMIT 0").description == con.execute(mart.sql).description
    assert sum(len(con.execute(m.sql).fetchall()) for m in ordered) > 0
    limited = "SELECT run_id FROM ops.runs ORDER BY run_id LIMIT 1"
    assert order_free(con, limited) == limited
    assert order_free(con, "SELECT 1 AS a ORDER BY a OFFSET 1") == "SELECT 1 AS a ORDER BY a OFFSET 1"
    nested = "SELECT * FROM (SELECT run_id FROM ops.runs ORDER BY run_id LIMIT 1) AS q ORDER BY 1"
    assert "LIMIT 1" in order_free(con, nested) and order_free(con, nested).rstrip().endswith(") AS q")
    con.close()


def test_a_correction_for_one_panel_rewrites_its_bucket_and_links_the_others(tmp_path: Path) -> None:
    network = write_network(tmp_path)
    with_panels(network)
    delivered = network.root / "deliveries" / "university" / "responses-w1.csv"
    header, *rows = delivered.read_text(encoding="utf-8").splitlines(keepends=True)
    # p2's answers in a file of their own: a new delivery changes the provenance of all its rows
    delivered.write_text("".join([header, *(r for r in rows if not r.startswith("p2,"))]), encoding="utf-8")
    network.deliver("university/responses-w1-p2.csv", "".join([header, *(r for r in rows if r.startswith("p2,"))]))
    run(network)
    first = (network.data_dir / "published" / "current").resolve()
    own = network.root / "deliveries" / "university" / "responses-w1-p2.csv"
    text = own.read_text(encoding="utf-8")
    own.write_text(text.replace("Fairly comfortable", "Very comfortable"), encoding="utf-8")
    assert own.read_text(encoding="utf-8") != text
    run(network)
    second = (network.data_dir / "published" / "current").resolve()
    assert second != first
    shared, alone = (SPLIT[0].bucket_file(bucket_of(p)) for p in ("p2", "p1"))
    responses = "restricted/responses"
    assert inode(first, f"{responses}/{shared}") != inode(second, f"{responses}/{shared}")  # p2's, and ODD's
    assert inode(first, f"{responses}/{alone}") == inode(second, f"{responses}/{alone}")  # p1's: linked
    for name in (shared, alone):  # the roster did not change: both of its files are links
        assert inode(first, f"restricted/panellists/{name}") == inode(second, f"restricted/panellists/{name}")
    empty = [m.relative_path for m in SPLIT if [p.name for p in (first / m.relative_path).iterdir()] == [PART_FILE]]
    assert empty  # tables the network delivers nothing for: their one zero-row file is linked too
    for relative in empty:
        assert inode(first, f"{relative}/{PART_FILE}") == inode(second, f"{relative}/{PART_FILE}"), relative
    answers = published(network)["responses"]
    by_panel = {p: set(answers.filter(pl.col("panel_id") == p)["answer"]) for p in PANELS}
    assert "Very comfortable" in by_panel["p2"] and "Fairly comfortable" not in by_panel["p2"]
    for panel in ("p1", ODD_PANEL):
        assert "Fairly comfortable" in by_panel[panel] and "Very comfortable" not in by_panel[panel]
    assert verify_published(DataPaths(network.data_dir)).ok
    increments = content(published(network))
    rebuild(network)  # from landing: the same rows as the sum of the increments
    assert content(published(network)) == increments


def test_a_bucket_whose_panellists_all_withdrew_has_no_file(tmp_path: Path) -> None:
    """The fingerprints list every bucket the core table has rows in; one whose published rows are all
    withheld (p1's panellists withdrew; p1 has a bucket of its own) is written with no rows, and no file of
    it is kept, run after run, while the other buckets are linked."""
    network = write_network(tmp_path)
    with_panels(network)
    run(network)
    roster = network.root / "deliveries" / "recruiter" / "roster.csv"
    header, *rows = roster.read_text(encoding="utf-8").splitlines(keepends=True)
    withdrawn = [r.replace(",consented,", ",withdrawn,") if r.startswith("p1,") else r for r in rows]
    assert withdrawn != rows
    roster.write_text("".join([header, *withdrawn]), encoding="utf-8")
    alone, shared = (SPLIT[0].bucket_file(bucket_of(p)) for p in ("p1", "p2"))
    folder = "restricted/responses"
    for attempt in range(2):  # the withdrawal, then a run with nothing new
        summary = run(network)
        assert summary["outcome"] in ("succeeded", "succeeded_with_warnings"), summary
        current = (network.data_dir / "published" / "current").resolve()
        assert sorted(p.name for p in (current / folder).iterdir()) == [shared], attempt
        answers = published(network)["responses"]
        assert set(answers["panel_id"]) == {"p2", ODD_PANEL} and answers.height == 8
        assert verify_published(DataPaths(network.data_dir)).ok
    network.deliver(
        "university/late.csv",
        "panel_id,workshop_id,panellist_ref,question_id,question_text,answer,"
        "answered_at\np2,W1,P1,Q9,Anything else?,No,13/03/2026 10:00\n",
    )
    run(network)
    later = (network.data_dir / "published" / "current").resolve()
    assert later != current and sorted(p.name for p in (later / folder).iterdir()) == [shared]
    assert published(network)["responses"].height == 9
    assert alone not in {p.name for p in (later / folder).iterdir()}


def test_changing_the_layout_publishes_the_same_rows_in_the_new_one(tmp_path: Path) -> None:
    network = write_network(tmp_path)
    with_panels(network)
    run(network)
    split = content(published(network))
    current = network.data_dir / "published" / "current"
    layouts = {
        "panel_buckets: 3": lambda: sorted(p.name for p in (current / "restricted" / "responses").iterdir()),
        "partition_by_panel: true": lambda: sorted(p.name for p in (current / "restricted" / "responses").iterdir()),
        "panel_buckets: 4": lambda: sorted(p.name for p in (current / "restricted" / "responses").iterdir()),
    }
    text = network.config.read_text(encoding="utf-8")
    seen = {}
    for layout, files in layouts.items():
        before = current.resolve().name
        network.config.write_text(text.replace("panel_buckets: 4", layout), encoding="utf-8")
        summary = run(network)  # nothing delivered: the layout alone is a reason to publish
        assert summary["deliveries_new"] == 0 and summary["published_version"] != before, layout
        assert content(published(network)) == split, layout
        assert verify_published(DataPaths(network.data_dir)).ok, layout
        seen[layout] = files()
    three = {f"part-{bucket_of(p) % 3:02d}.parquet" for p in PANELS}
    assert seen["panel_buckets: 3"] == sorted(three)
    hive = seen["partition_by_panel: true"]
    assert len(hive) == 3 and all(f.startswith("panel_id=") for f in hive)
    assert seen["panel_buckets: 4"] == ["part-01.parquet", "part-02.parquet"]


def test_an_erasure_rewrites_the_persons_bucket_and_leaves_them_in_no_file(tmp_path: Path) -> None:
    from tests.warehouse.test_erasure import din

    network = write_network(tmp_path)
    with_panels(network)
    run(network)
    gone = pseudonym(DEMO_KEY, "p2", "P2")
    kept = pseudonym(DEMO_KEY, ODD_PANEL, "P2")  # the same ref on the panel that shares the bucket
    forget = din(network.config, "forget", "P2", "--panel", "p2", "--requested-by", "dpo@example.org")
    assert forget.returncode == 0, forget.stdout + forget.stderr
    files = sorted((network.data_dir / "published").rglob("*.parquet"))
    assert files
    for path in files:
        frame = pl.read_parquet(path)
        for column in (c for c in frame.columns if frame.schema[c] == pl.String):
            assert gone not in set(frame[column].drop_nulls()), (path, column)
    tables = published(network)
    assert kept in set(tables["responses"]["panellist_pseudonym"])
    assert set(tables["responses"].filter(pl.col("panel_id") == "p2")["panellist_pseudonym"]) == {
        pseudonym(DEMO_KEY, "p2", ref) for ref in ("P1", "P3")
    }
    assert verify_published(DataPaths(network.data_dir)).ok


def test_the_config_takes_one_layout_and_a_whole_number_of_buckets(tmp_path: Path) -> None:
    network = write_network(tmp_path)
    text = network.config.read_text(encoding="utf-8")
    cases = {
        "publish: {panel_buckets: 16}\n": None,
        "publish: {panel_buckets: 16, partition_by_panel: true}\n": "choose one",
        "publish: {panel_buckets: 1}\n": "panel_buckets must be a whole number from 2 to 1024, not 1",
        "publish: {panel_buckets: '16'}\n": "panel_buckets must be a whole number from 2 to 1024",
    }
    for block, error in cases.items():
        network.config.write_text(text + block, encoding="utf-8")
        if error is None:
            assert load_config(network.config).panel_buckets == 16
            continue
        with pytest.raises(ConfigError, match=error):
            load_config(network.config)


@pytest.mark.parametrize("batch_rows", [1, 2, 7, 1_000_000])
def test_write_buckets_puts_every_row_in_its_buckets_file_by_either_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch_rows: int
) -> None:
    """The split itself, on rows made here: in one pass of many batches (each cut at bucket boundaries) or
    of one; a few buckets gathered in one scan and copied each; one bucket copied from the table. Every way
    gives the same files, documentation included, and leaves no scratch file or table behind."""
    from warehouse import mart_files

    monkeypatch.setattr(mart_files, "BUCKET_BATCH_ROWS", batch_rows)
    mart = replace(next(m for m in SPLIT if m.name == "responses"), buckets=16)
    con = duckdb.connect()
    panels = [f"panel {n}" for n in range(40)] + [None]
    con.execute(
        "CREATE TABLE t AS SELECT p.panel_id, r.n AS answer FROM (SELECT unnest(?::VARCHAR[]) AS panel_id) AS p, "
        "range(3) AS r(n)",
        [panels],
    )
    schema = mart_files.written_schema(con, "SELECT * FROM t", tmp_path / "schema.parquet")  # as write_mart does
    release = {"title": "buckets", "notice": "demo"}
    expected: dict[str, list[tuple]] = {}
    for panel, answer in con.execute("SELECT * FROM t").fetchall():
        (number,) = con.execute(f"SELECT {mart.bucket_sql()} FROM (SELECT ?::VARCHAR AS panel_id)", [panel]).fetchall()[
            0
        ]
        expected.setdefault(mart.bucket_file(number), []).append((panel, answer))
    assert len(expected) > mart_files.FEW_BUCKETS  # so that all of them go in one pass
    every = [int(name[5:7]) for name in expected]
    written: dict[str, dict[str, pa.Table]] = {}
    ways = {"one pass": None, "one pass, named": every, "a few": every[:3], "one": every[3:4]}
    for way, only in ways.items():
        folder = tmp_path / way
        folder.mkdir()
        mart_files.write_buckets(con, mart, "(SELECT * FROM t)", folder, schema, only, release)
        written[way] = {p.name: pq.read_table(p) for p in folder.iterdir()}
        assert all(name.endswith(".parquet") and not name.startswith(".") for name in written[way]), way
        assert con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall() == [], way
    assert set(written["one pass"]) == set(written["one pass, named"]) == set(expected)
    assert set(written["a few"]) == {mart.bucket_file(n) for n in every[:3]}
    assert set(written["one"]) == {mart.bucket_file(every[3])}
    for way, files in written.items():
        for name, table in files.items():
            assert sorted(table.to_pylist(), key=repr) == sorted(
                ({"panel_id": p, "answer": a} for p, a in expected[name]), key=repr
            ), (way, name)
            # the same fields, types and documentation (DuckDB marks a column that holds no null in the rows
            # it wrote REQUIRED, so nullability is a property of each file's rows, not of the writer)
            assert fields(table.schema) == fields(written["one pass"][name].schema), (way, name)
            assert table.schema.metadata == written["one pass"][name].schema.metadata, (way, name)
            assert table.schema.metadata[b"din.title"] == b"buckets"
            assert table.schema.field("panel_id").metadata[b"description"]


def fields(schema: pa.Schema) -> list[tuple[str, pa.DataType, dict[bytes, bytes] | None]]:
    return [(f.name, f.type, f.metadata) for f in schema]
