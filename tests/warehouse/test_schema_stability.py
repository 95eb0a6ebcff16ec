"""Published schemas are a promise to report authors: an unintended column change fails here.

To change a published table on purpose: bump warehouse.marts.SCHEMA_VERSION, record the change in
CHANGELOG.md, and refresh the snapshot with `python -m tests.test_schema_stability`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from warehouse.catalog import connect_catalog
from warehouse.datapackage import published_columns
from warehouse.mart_files import scan_table, table_schema
from warehouse.marts import SCHEMA_VERSION, marts

SNAPSHOT = Path(__file__).with_name("snapshots") / "published_schemas.json"


def current_schemas() -> dict[str, object]:
    tables = {name: [[c.name, c.sql_type] for c in columns] for name, columns in published_columns().items()}
    return {"schema_version": SCHEMA_VERSION, "tables": tables}


def test_published_schemas_match_the_snapshot() -> None:
    snapshot = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    current = current_schemas()
    if current["tables"] != snapshot["tables"]:
        changed = sorted(
            name
            for name in set(current["tables"]) | set(snapshot["tables"])  # type: ignore[arg-type]
            if current["tables"].get(name) != snapshot["tables"].get(name)
        )  # type: ignore[union-attr]
        pytest.fail(
            f"published schema changed for {', '.join(changed)}: if intended, bump SCHEMA_VERSION, "
            "note it in CHANGELOG.md and refresh the snapshot (python -m tests.warehouse.test_schema_stability)"
        )
    assert snapshot["schema_version"] == SCHEMA_VERSION


def test_changelog_records_the_current_schema_version() -> None:
    assert f"schema version {SCHEMA_VERSION}" in (REPO / "CHANGELOG.md").read_text(encoding="utf-8")


@pytest.mark.usefixtures("prefect_server")
@pytest.mark.xdist_group("prefect")
def test_published_files_carry_their_schema_version_and_the_catalog_documents_every_column(tmp_path: Path) -> None:

    from tests.support.network import write_network
    from tests.support.pipeline import run

    network = write_network(tmp_path)
    run(network)
    current = network.data_dir / "published" / "current"
    catalog = connect_catalog(network.data_dir / "published" / "catalog.duckdb")
    for mart in marts():
        path = current / mart.as_found(current).relative_path
        metadata = table_schema(path).metadata
        assert metadata[b"din.schema_version"] == str(SCHEMA_VERSION).encode(), mart.name
        assert metadata[b"din.tier"] == mart.tier.encode()
        from_view = catalog.sql(f'SELECT * FROM "{mart.tier}"."{mart.name}"').pl()
        assert from_view.sort(from_view.columns).equals(scan_table(path).collect().sort(from_view.columns)), mart.name
        comments = catalog.sql(
            "SELECT column_name, comment FROM duckdb_columns() WHERE schema_name = ? AND table_name = ?",
            params=[mart.tier, mart.name],
        ).fetchall()
        assert comments and all(comment for _, comment in comments), mart.name
        view_comment = catalog.sql(
            "SELECT comment FROM duckdb_views() WHERE schema_name = ? AND view_name = ?", params=[mart.tier, mart.name]
        ).fetchall()
        assert view_comment[0][0] == mart.description


if __name__ == "__main__":
    SNAPSHOT.parent.mkdir(exist_ok=True)
    SNAPSHOT.write_text(json.dumps(current_schemas(), indent=1) + "\n", encoding="utf-8")
    sys.stdout.write(f"wrote {SNAPSHOT}\n")
