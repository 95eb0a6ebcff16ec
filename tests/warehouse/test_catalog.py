"""The catalog file report authors open, and the sandbox `din query` and the portal use, on a real
published version (the consolidate flow run once on a small network)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from din.errors import QueryFailed, QueryRefused
from din.paths import DataPaths
from tests.support.network import Network, write_network
from tests.support.pipeline import run
from warehouse.catalog import TIERS_SEEN, CatalogPlan, build_catalog, check_query, connect_catalog, open_sandbox
from warehouse.marts import found_marts, mart

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.xdist_group("prefect")]


@dataclass(frozen=True)
class Site:
    network: Network
    paths: DataPaths


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    network = write_network(tmp_path_factory.mktemp("catalog"))
    summary = run(network)
    assert summary["outcome"] == "succeeded"
    return Site(network, DataPaths(network.data_dir))


# --- the catalog file -----------------------------------------------------------------------


def test_catalog_views_name_files_relative_to_the_catalog(site: Site) -> None:
    con = duckdb.connect(str(site.paths.catalog), read_only=True)
    try:
        views = "SELECT schema_name || '.' || view_name, sql FROM duckdb_views() WHERE NOT internal"
        sql = dict(con.sql(views).fetchall())
    finally:
        con.close()
    assert "read_parquet('current/restricted/responses.parquet')" in sql["restricted.responses"]
    assert "read_parquet('current/open/projects.parquet')" in sql["open.projects"]
    assert not any(str(site.paths.root) in text for text in sql.values())  # no absolute path anywhere


def test_catalog_opened_from_its_folder_as_the_duckdb_cli_would(site: Site) -> None:
    """`cd published && duckdb -readonly catalog.duckdb`: relative paths resolve against the working folder."""
    cwd = os.getcwd()
    os.chdir(site.paths.published)
    try:
        con = duckdb.connect("catalog.duckdb", read_only=True)
        assert con.sql("SELECT count(*) FROM restricted.responses").fetchall() == [(4,)]
        con.close()
    finally:
        os.chdir(cwd)


def test_catalog_from_elsewhere_fails_loudly_or_reads_with_file_search_path(site: Site, tmp_path: Path) -> None:
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        con = duckdb.connect(str(site.paths.catalog), read_only=True)
        with pytest.raises(duckdb.IOException, match=r"current/restricted/responses\.parquet"):
            con.sql("SELECT count(*) FROM restricted.responses").fetchall()
        con.execute(f"SET file_search_path = '{site.paths.published}'")  # what README tells Python and R users
        assert con.sql("SELECT count(*) FROM responses").fetchall() == [(4,)]
        con.close()
    finally:
        os.chdir(cwd)


def test_a_copied_data_folder_reads_its_own_files_never_the_old_ones(site: Site, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(site.paths.root, copy, symlinks=True)
    con = connect_catalog(copy / "published" / "catalog.duckdb")
    try:
        assert con.sql("SELECT count(*) FROM open.projects").fetchall() == [(2,)]
        shutil.rmtree(copy / "published" / "versions")  # the copy's own files gone; the original's still there
        assert (site.paths.current / "open" / "projects.parquet").is_file()
        with pytest.raises(duckdb.IOException, match=r"current/open/projects\.parquet"):
            con.sql("SELECT count(*) FROM open.projects").fetchall()
    finally:
        con.close()


def _everything_in(catalog: Path) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """What a reader finds in a catalog: its views and their comments, every column's type and comment, and
    its metadata."""
    con = connect_catalog(catalog)
    try:
        views = "SELECT schema_name, view_name, sql, comment FROM duckdb_views() WHERE NOT internal ORDER BY ALL"
        columns = (
            "SELECT schema_name, table_name, column_name, data_type, comment FROM duckdb_columns() "
            "WHERE NOT internal ORDER BY ALL"
        )
        metadata = "SELECT key, value FROM main.catalog_metadata ORDER BY ALL"
        return con.sql(views).fetchall(), con.sql(columns).fetchall(), con.sql(metadata).fetchall()
    finally:
        con.close()


def test_a_catalog_whose_views_are_unchanged_is_copied_and_given_the_new_versions_metadata(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A publish whose tables have the same queries, documentation and file schemas as the last catalog's
    copies it and writes only its metadata: what a reader finds is what a catalog built anew holds. Any
    difference in what the views are made from, or a catalog file that is not the one last built, builds it
    anew."""
    shutil.copytree(site.paths.root, tmp_path / "copy", symlinks=True)
    paths = DataPaths(tmp_path / "copy")
    marts = list(found_marts(paths.current.resolve()))
    built: list[int] = []
    create_views = CatalogPlan.create_views

    def counted(plan: CatalogPlan, con: duckdb.DuckDBPyConnection) -> None:  # the real one, counted
        built.append(len(plan.views))
        create_views(plan, con)

    monkeypatch.setattr(CatalogPlan, "create_views", counted)
    build_catalog(paths, marts, {"version": "A"})
    assert len(built) == 1  # the copied folder's catalog is another file than the one its record names
    build_catalog(paths, marts, {"version": "B", "demo": True})
    assert len(built) == 1  # the same views: copied
    copied = _everything_in(paths.catalog)
    assert copied[2] == [("demo", "true"), ("version", "B")]
    record = paths.published / "catalog-build.json"
    record.unlink()
    build_catalog(paths, marts, {"version": "B", "demo": True})
    assert len(built) == 2 and _everything_in(paths.catalog) == copied  # built anew: the same catalog
    assert copied[0] and any(comment for *_, comment in copied[1])
    # what the views are made from: a table's documentation, a file's columns, the catalog file itself
    projects = next(i for i, m in enumerate(marts) if m.name == "projects")
    marts[projects] = replace(marts[projects], description="The projects, described otherwise.")
    build_catalog(paths, marts, {"version": "C"})
    assert len(built) == 3
    assert ("open", "projects", "The projects, described otherwise.") in [
        (v[0], v[1], v[3]) for v in _everything_in(paths.catalog)[0]
    ]
    build_catalog(paths, marts, {"version": "C"})
    assert len(built) == 3
    file = paths.current / "open" / "projects.parquet"
    table = pq.read_table(file)
    pq.write_table(table.append_column("added", pa.array(["x"] * table.num_rows)), file)
    build_catalog(paths, marts, {"version": "D"})
    assert len(built) == 4
    assert any(c[1] == "projects" and c[2] == "added" for c in _everything_in(paths.catalog)[1])
    os.utime(paths.catalog, ns=(1, 1))  # another file than the one built (touched, or replaced by hand)
    build_catalog(paths, marts, {"version": "D"})
    assert len(built) == 5


# --- the sandbox ----------------------------------------------------------------------------

ESCAPES = {
    "copy over a published table": "COPY (SELECT 42) TO '{current}/open/projects.parquet'",
    "copy anywhere": "COPY (SELECT 42) TO '{root}/x.csv'",
    "copy inside an allowed folder": "COPY (SELECT 42 AS n) TO '{current}/open/new.parquet' (FORMAT parquet)",
    "export the database": "EXPORT DATABASE '{current}/open/export'",
    "attach the warehouse": "ATTACH '{root}/warehouse.duckdb' AS w",
    "attach in memory": "ATTACH ':memory:' AS m",
    "install an extension": "INSTALL httpfs",
    "load an extension": "LOAD httpfs",
    "re-enable external access": "SET enable_external_access = true",
    "reset the lock": "RESET lock_configuration",
    "pragma": "PRAGMA enable_profiling",
    "call": "CALL pragma_version()",
    "create a table": "CREATE TABLE t AS SELECT 1",
    "create a macro": "CREATE MACRO m() AS 1",
    "checkpoint": "CHECKPOINT",
    "two statements": "SELECT 1; COPY (SELECT 1) TO '{root}/y.csv'",
    "explain analyze of a copy": "EXPLAIN ANALYZE COPY (SELECT 1) TO '{current}/open/z.csv'",
    "use another catalog": "USE system",
    "detach": "DETACH memory",
    "vacuum": "VACUUM",
    "a copy inside query()": "SELECT * FROM query('COPY (SELECT 1) TO ''{current}/open/q.csv''')",
    "an attach inside query()": "SELECT * FROM query('ATTACH ''{root}/warehouse.duckdb'' AS w')",
    "a setting inside query()": "SELECT * FROM query('SET enable_external_access = true')",
}
READS_OUTSIDE = {
    "system file": "SELECT * FROM read_csv('/etc/passwd')",
    "read_text": "SELECT * FROM read_text('/etc/hostname')",
    "sniff_csv": "SELECT * FROM sniff_csv('/etc/passwd')",
    "glob": "SELECT * FROM glob('/etc/*')",
    "a landing copy": "SELECT content FROM read_blob('{root}/landing/objects/*/*.csv')",
    "the landing log": "SELECT * FROM read_json('{root}/landing/deliveries.jsonl')",
    "the warehouse file": "SELECT * FROM read_blob('{root}/warehouse.duckdb')",
    "the catalog file": "SELECT * FROM read_blob('{root}/published/catalog.duckdb')",
    "up and out of an allowed folder": "SELECT * FROM read_csv('{current}/open/../../../../landing/deliveries.jsonl')",
    "an older version": "SELECT * FROM read_parquet('{root}/published/versions/*/restricted/responses/**/*.parquet')",
    "a relative path": "SELECT * FROM read_csv('landing/deliveries.jsonl')",
    "a URL": "SELECT * FROM read_csv('https://example.org/x.csv')",
    "secrets": "SELECT * FROM duckdb_secrets()",
    "a quoted path as a table": "SELECT * FROM '/etc/passwd'",
    "a relative quoted path": "FROM 'landing/deliveries.jsonl'",
}


def _fill(sql: str, site: Site) -> str:
    return sql.format(root=site.paths.root, current=site.paths.current)


@pytest.mark.parametrize("attack", sorted(ESCAPES))
def test_sandbox_refuses_every_statement_that_is_not_a_query(site: Site, attack: str) -> None:
    before = _published_bytes(site)
    with open_sandbox(site.paths) as sandbox, pytest.raises((QueryRefused, QueryFailed)) as refused:
        list(sandbox.batches(_fill(ESCAPES[attack], site)))
    assert "\n" not in str(refused.value)
    assert _published_bytes(site) == before
    assert not list(site.paths.root.glob("*.csv"))


@pytest.mark.parametrize("attack", sorted(READS_OUTSIDE))
def test_sandbox_reads_nothing_outside_the_published_tables(site: Site, attack: str) -> None:
    with open_sandbox(site.paths) as sandbox, pytest.raises(QueryFailed) as refused:
        list(sandbox.batches(_fill(READS_OUTSIDE[attack], site)))
    message = str(refused.value)
    assert "\n" not in message
    assert "may read only the published tables" in message or "does not exist" in message
    assert "morag" not in message.lower()  # not a byte of what it tried to read


def test_sandbox_hides_tiers_the_reader_may_not_see(site: Site) -> None:
    with open_sandbox(site.paths, TIERS_SEEN["open"]) as sandbox:
        assert {tier for tier, _, _ in sandbox.tables()} == {"open"}
        assert first(sandbox.batches("SELECT count(*) FROM projects")) == 2
        with pytest.raises(QueryFailed, match="the restricted tier is not visible to this reader"):
            list(sandbox.batches("SELECT * FROM restricted.responses"))
        with pytest.raises(QueryFailed, match="does not exist"):
            list(sandbox.batches("SELECT * FROM responses"))  # no unqualified alias either
        with pytest.raises(QueryFailed, match="may read only the published tables"):
            path = (
                site.paths.current
                / mart("responses").as_found(site.paths.current).relative_files(site.paths.current)[0]
            )
            list(sandbox.batches(f"SELECT * FROM read_parquet('{path}')"))  # nor the file by its path
        notice = first(sandbox.batches("SELECT value FROM catalog_metadata WHERE key = 'notice'"))
        assert "DEMO OUTPUT" in notice  # the demo notice reaches every reader
    with open_sandbox(site.paths, TIERS_SEEN["restricted"]) as sandbox:
        assert {tier for tier, _, _ in sandbox.tables()} == {"open", "restricted"}
    with open_sandbox(site.paths, TIERS_SEEN["ops"]) as sandbox:
        assert {tier for tier, _, _ in sandbox.tables()} == {"open", "restricted", "ops"}


def test_sandbox_reads_one_version_even_when_a_publish_swaps_current(site: Site) -> None:
    with open_sandbox(site.paths) as sandbox:
        version = sandbox.version
        assert version == os.path.basename(os.readlink(site.paths.current))
        rows = first(sandbox.batches("SELECT count(*) FROM restricted.responses"))
    assert rows == 4


def test_queries_that_only_read_are_allowed(site: Site) -> None:
    with open_sandbox(site.paths) as sandbox:
        for sql in (
            "SELECT count(*) FROM open.projects",
            "FROM open.projects SELECT project_id",
            "WITH p AS (SELECT * FROM projects) SELECT count(*) FROM p",
            "SUMMARIZE open.projects",
            "DESCRIBE restricted.responses",
            "SHOW TABLES",
            "EXPLAIN SELECT 1",
            "EXPLAIN ANALYZE SELECT count(*) FROM ops.deliveries",
            "VALUES (1), (2)",
            "SELECT column_name, comment FROM duckdb_columns() WHERE table_name = 'project_scores'",
        ):
            assert list(sandbox.batches(sql)), sql


def test_errors_while_fetching_are_one_line(site: Site) -> None:
    with open_sandbox(site.paths) as sandbox:
        with pytest.raises(QueryFailed, match=r"^Invalid Input Error: late$"):
            failing = "SELECT CASE WHEN range > 50000 THEN error('late') END FROM range(100000)"
            list(sandbox.batches(failing, rows=1000))  # fails after the first batches were fetched
        with pytest.raises(QueryFailed, match=r"^Conversion Error: Could not convert string 'x' to INT32$"):
            list(sandbox.batches("SELECT 'x'::INT"))
        with pytest.raises(QueryFailed, match=r"stopped after 0\.5 s"):
            list(sandbox.batches("SELECT count(*) FROM range(1000000000000)", timeout=0.5))
        assert first(sandbox.batches("SELECT 1 AS still_works")) == 1


def test_check_query_names_what_it_refused() -> None:
    with pytest.raises(QueryRefused, match="not COPY statements"):
        check_query("COPY (SELECT 1) TO 'x.csv'")
    with pytest.raises(QueryRefused, match="one query at a time"):
        check_query("SELECT 1; SELECT 2")
    with pytest.raises(QueryRefused, match="no query given"):
        check_query("  -- nothing\n")
    with pytest.raises(QueryFailed, match='syntax error at or near "SELEC"'):
        check_query("SELEC 1")
    assert check_query("  SELECT 1 ;").strip(" ;") == "SELECT 1"  # a trailing semicolon is one statement


def first(batches: Iterator[pa.RecordBatch]) -> object:
    """The first value of a result."""
    return next(iter(batches)).column(0)[0].as_py()


def _published_bytes(site: Site) -> dict[str, bytes]:
    published = site.paths.published
    return {str(p.relative_to(published)): p.read_bytes() for p in sorted(published.rglob("*")) if p.is_file()}


# --- the catalog read by the DuckDB releases report authors have ------------------------------


def test_catalog_storage_version_is_the_promised_one(site: Site) -> None:
    header = site.paths.catalog.read_bytes()[:20]
    assert header[8:12] == b"DUCK"
    assert int.from_bytes(header[12:20], "little") == 64  # DuckDB's storage version 64 is format v1.0.0


OLDER_READER_SCRIPT = """
import duckdb, json, sys
con = duckdb.connect("catalog.duckdb", read_only=True)
print(json.dumps({
    "version": duckdb.__version__,
    "responses": con.sql("SELECT count(*) FROM restricted.responses").fetchall()[0][0],
    "organisations": sorted(r[0] for r in con.sql("SELECT org_id FROM open.organisations").fetchall()),
    "comments": con.sql(
        "SELECT count(*), count(comment) FILTER (comment <> '') FROM duckdb_columns() WHERE table_name = 'responses'"
    ).fetchall()[0],
    "notice": con.sql("SELECT value FROM catalog_metadata WHERE key = 'notice'").fetchall()[0][0],
}))
"""


def test_the_oldest_promised_duckdb_reads_the_catalog_and_its_parquet(site: Site) -> None:
    import json

    from tests.support.readers import run_with
    from warehouse.catalog import OLDEST_READER

    result = run_with(f"duckdb=={OLDEST_READER}", ["python", "-c", OLDER_READER_SCRIPT], site.paths.published)
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout)
    assert seen["version"] == OLDEST_READER
    assert seen["responses"] == 4
    assert seen["organisations"] == ["ORG-A", "ORG-B"]
    columns, commented = seen["comments"]
    assert columns > 0 and commented == columns  # both the tier's view and the unqualified one are documented
    assert "DEMO" in seen["notice"]


def test_readme_first_query_runs_in_the_duckdb_cli_from_pypi(site: Site) -> None:
    """README: `cd .../published && duckdb -readonly catalog.duckdb "SELECT ... FROM open.<table>"`."""
    from tests.support.readers import CLI_RELEASE, run_with

    version = run_with(f"duckdb-cli=={CLI_RELEASE}", ["duckdb", "-version"], site.paths.published)
    assert version.stdout.startswith(f"v{CLI_RELEASE}"), version.stdout + version.stderr
    result = run_with(
        f"duckdb-cli=={CLI_RELEASE}",
        ["duckdb", "-readonly", "-csv", "catalog.duckdb", "SELECT org_id, name FROM open.organisations ORDER BY 1"],
        site.paths.published,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["org_id,name", "ORG-A,Alpha Health Board", "ORG-B,Beta Council"]
