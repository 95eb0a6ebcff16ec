"""The datapackage.json of a published version: valid Frictionless, true to the Parquet files, with the
contract's constraints, and every column described from the table definitions."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from frictionless import Package, validate

from din.contract import KINDS
from tests.support.marts import described_marts
from transforms.disclosure import DisclosureRule
from warehouse.datapackage import arrow_frictionless_type, datapackage_descriptor, frictionless_type, write_datapackage
from warehouse.mart_files import write_mart
from warehouse.marts import PSEUDONYM_COLUMN, SCHEMA_VERSION, marts
from warehouse.publish import PublishedTable
from warehouse.schema import create_schema
from warehouse.verify import resource_files


@pytest.fixture(scope="module")
def described() -> dict[str, list[tuple[str, str]]]:
    """Ground truth: each mart's columns and types, from an empty warehouse."""
    return described_marts()


@pytest.fixture(scope="module")
def version_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[PublishedTable]]:
    """Every mart written from an empty warehouse, as publish writes it."""
    folder = tmp_path_factory.mktemp("versions") / "20260101T000000000-abcdef"
    con = duckdb.connect()
    create_schema(con)
    tables = []
    for mart in marts():
        (folder / mart.tier).mkdir(parents=True, exist_ok=True)
        write_mart(con, mart, folder / mart.relative_path, DisclosureRule())
        tables.append(PublishedTable(mart.name, mart.tier, mart.relative_path, 0))
    con.close()
    return folder, tables


def test_datapackage_is_valid_and_matches_the_parquet(
    version_dir: tuple[Path, list[PublishedTable]], described: dict[str, list[tuple[str, str]]]
) -> None:
    folder, tables = version_dir
    path = write_datapackage(folder, tables)
    descriptor = json.loads(path.read_text(encoding="utf-8"))
    report = Package.validate_descriptor(descriptor)
    assert report.valid, report.flatten(["type", "note"])
    content = validate(str(path))  # reads the (empty) Parquet: labels against fields, hashes
    assert content.valid, [task.flatten(["type", "note"]) for task in content.tasks]
    assert descriptor["schema_version"] == SCHEMA_VERSION
    assert descriptor["published_version"] == folder.name
    assert datapackage_descriptor(folder, tables[:1], version="v7")["published_version"] == "v7"
    assert [r["name"] for r in descriptor["resources"]] == [m.name for m in marts()]
    for resource in descriptor["resources"]:
        (relative, recorded), *more = resource_files(resource)
        assert not more  # an empty warehouse: a partitioned table is one zero-row file
        file = folder / relative
        schema = pq.read_schema(file)
        fields = resource["schema"]["fields"]
        assert [f["name"] for f in fields] == schema.names
        assert [f["type"] for f in fields] == [arrow_frictionless_type(t) for t in schema.types]
        assert [f["type"] for f in fields] == [frictionless_type(t) for _, t in described[resource["name"]]]
        assert all(f["description"] for f in fields)
        assert recorded == "sha256:" + hashlib.sha256(file.read_bytes()).hexdigest()
        assert set(resource["schema"].get("primaryKey", [])) <= set(schema.names)


def test_datapackage_carries_contract_constraints(version_dir: tuple[Path, list[PublishedTable]]) -> None:
    folder, tables = version_dir
    descriptor = datapackage_descriptor(folder, tables)
    feedback = next(r for r in descriptor["resources"] if r["name"] == "project_feedback")
    fields = {f["name"]: f for f in feedback["schema"]["fields"]}
    assert fields["acceptability"]["constraints"]["enum"] == list(
        KINDS["project_feedback"].column("acceptability").allowed
    )
    assert fields["benefit"]["constraints"] == {"minimum": 1, "maximum": 5}
    assert PSEUDONYM_COLUMN in feedback["schema"]["primaryKey"]
