"""`din verify` and the repair of a damaged current version, on real published data: files are checked
against the sha256 in datapackage.json, the catalog must read every table, and the next run publishes a
damaged version again from the warehouse."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from din.paths import DataPaths
from tests.app.test_cli import din
from tests.support.network import Network, write_network
from tests.support.pipeline import content, published, run
from warehouse.marts import mart
from warehouse.verify import verify_published

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.xdist_group("prefect")]


@dataclass(frozen=True)
class Original:
    network: Network
    version: str
    tables: dict[str, list]


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Original:
    network = write_network(tmp_path_factory.mktemp("verify") / "site")
    summary = run(network)
    return Original(network, summary["published_version"], content(published(network)))


def copy_of(original: Original, tmp_path: Path) -> tuple[Network, DataPaths, Path]:
    """A copy of the site (data folder included) to damage; returns it, its paths and its current version."""
    root = tmp_path / "site"
    shutil.copytree(original.network.root, root, symlinks=True)
    network = Network(root, root / "din.yaml", root / "data")
    paths = DataPaths(network.data_dir)
    return network, paths, paths.current.resolve()


def _writable(path: Path) -> Path:
    os.chmod(path, 0o644)
    return path


def test_an_intact_version_verifies(original: Original) -> None:
    check = verify_published(DataPaths(original.network.data_dir))
    assert check.ok, check.problems
    assert check.version == original.version
    assert check.files_checked == len(list((original.network.data_dir / "published" / "current").rglob("*.parquet")))
    result = din("verify", "--config", str(original.network.config))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"version {original.version}: {check.files_checked} files match")


def test_a_truncated_table_is_found_and_the_next_run_publishes_it_again(original: Original, tmp_path: Path) -> None:
    network, paths, version_dir = copy_of(original, tmp_path)
    relative = mart("responses").as_found(version_dir).relative_files(version_dir)[-1]
    table = _writable(version_dir / relative)
    table.write_bytes(table.read_bytes()[:200])
    check = verify_published(paths)
    assert not check.ok
    assert [str(p) for p in check.problems if "responses" in p.path] == [
        f"versions/{original.version}/{relative}: damaged: its sha256 is not the one in datapackage.json (200 bytes)"
    ]
    result = din("verify", "--config", str(network.config))
    assert result.returncode == 1
    assert f"{relative}: damaged" in result.stdout and "the next `din run`" in result.stdout
    summary = run(network)  # nothing new delivered: without the check this run would leave it as it is
    assert summary["deliveries_new"] == 0
    assert summary["published_version"] != original.version
    assert any("was damaged" in w and relative in w for w in summary["run_warnings"])
    assert verify_published(paths).ok
    assert content(published(network)) == original.tables  # the same rows, from the warehouse


def test_a_missing_table_and_a_stray_file_are_found(original: Original, tmp_path: Path) -> None:
    _, paths, version_dir = copy_of(original, tmp_path)
    (version_dir / "open" / "projects.parquet").unlink()
    (version_dir / "open" / "extra.parquet").write_bytes(b"PAR1")
    messages = {p.path.rsplit("/", 1)[-1]: p.message for p in verify_published(paths).problems}
    assert messages["projects.parquet"] == "missing"
    assert messages["extra.parquet"] == "not part of the published version"


def test_a_corrupt_catalog_is_found_and_rebuilt_by_the_next_run(original: Original, tmp_path: Path) -> None:
    network, paths, _ = copy_of(original, tmp_path)
    _writable(paths.catalog).write_bytes(b"\0garbage" * 512)
    problems = verify_published(paths).problems
    assert [p.path for p in problems] == ["catalog.duckdb"] and "cannot be opened" in problems[0].message
    summary = run(network)
    assert any("catalog.duckdb" in w for w in summary["run_warnings"])
    assert verify_published(paths).ok


def test_a_catalog_of_another_version_is_found(original: Original, tmp_path: Path) -> None:
    network, paths, _ = copy_of(original, tmp_path)
    network.deliver(
        "alpha/feedback-w3.csv",
        "panel_id,workshop_id,project_id,panellist_ref,benefit,risk,acceptability,"
        "conditions,comment\np1,W2,PRJ-2,P1,4,2,acceptable,,\n",
    )
    old_catalog = paths.catalog.read_bytes()
    run(network)
    _writable(paths.catalog).write_bytes(old_catalog)
    problems = verify_published(paths).problems
    assert len(problems) == 1 and problems[0].message.startswith(f"describes version {original.version}, not")


def test_a_missing_datapackage_or_version_is_found(original: Original, tmp_path: Path) -> None:
    _, paths, version_dir = copy_of(original, tmp_path)
    (version_dir / "datapackage.json").unlink()
    assert verify_published(paths).problems[0].message == "missing: nothing to check the files against"
    shutil.rmtree(version_dir)
    check = verify_published(paths)
    assert [str(p) for p in check.problems] == [f"current: points to versions/{original.version}, which does not exist"]
    shutil.rmtree(paths.published)
    assert verify_published(paths).version is None
    assert not verify_published(paths).ok
