"""consolidate and rebuild with `storage:` configured, against moto's S3 on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl
import pytest
from distributed import LocalCluster

from din.config import load_config
from din.contract import KINDS
from din.keys import DEMO_KEY
from expectations.batch import BatchSpec, RemoteInputs
from expectations.gate import process_batch
from expectations.remote_batch import LandingUnreachable, saved
from flows.consolidate import consolidate
from tests.support.network import Network, write_network
from tests.support.ops import REPO
from tests.support.pipeline import content, published, published_tables, rebuild, run
from tests.support.servers import NAMES, S3Server, bucket_server, remote_objects
from tools.demo_data import write_scaled
from transforms.delivery import DeliveryToProcess
from warehouse.merge import write_known_references
from warehouse.remote import current_remote_version

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.xdist_group("prefect")]


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with bucket_server() as server:
        yield server


def with_storage(network: Network, s3: S3Server, data_dir: str = "data") -> Network:
    """The network's din.yaml plus a storage section (written to a second file for another data_dir)."""
    text = network.config.read_text().replace("data_dir: data\n", f"data_dir: {data_dir}\n")
    text += (
        "storage:\n"
        f"  landing: s3://{s3.bucket}/network/landing\n"
        f"  published: s3://{s3.bucket}/network/published\n"
        f"  options: {{endpoint_url: '{s3.endpoint}', region: {s3.region}, "
        f"key: {NAMES['key']}, secret: {NAMES['secret']}}}\n"
    )
    config = network.root / f"din-{data_dir}.yaml"
    config.write_text(text)
    return Network(network.root, config, network.root / data_dir)


def test_runs_mirror_landing_and_published_and_a_fresh_machine_rebuilds_from_the_bucket(
    tmp_path: Path, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    _reader_credentials(s3, monkeypatch)
    first = with_storage(write_network(tmp_path), s3)
    storage = load_config(first.config).storage
    assert storage is not None

    summary = run(first)
    landing = first.data_dir / "landing"
    local = {p.relative_to(landing).as_posix(): p.read_bytes() for p in landing.rglob("*") if p.is_file()}
    assert remote_objects(s3, storage.landing) == local
    version = os.path.basename(os.readlink(first.data_dir / "published" / "current"))
    assert version == summary["published_version"]
    assert current_remote_version(storage) == version
    folder = first.data_dir / "published" / "versions" / version
    remote = remote_objects(s3, storage.published)
    for path in folder.rglob("*"):
        if path.is_file():
            assert remote[f"versions/{version}/{path.relative_to(folder).as_posix()}"] == path.read_bytes()

    assert run(first)["deliveries_new"] == 0  # nothing new: nothing pushed, CURRENT unchanged
    assert current_remote_version(storage) == version

    fresh = with_storage(first, s3, data_dir="fresh")  # another machine: same config, empty data dir
    assert rebuild(fresh)["outcome"] == "succeeded"
    assert content(published(fresh), ignore=("run_id",)) == content(published(first), ignore=("run_id",))
    assert current_remote_version(storage) == os.path.basename(os.readlink(fresh.data_dir / "published" / "current"))

    from warehouse.erasure import forget_panellist

    forget_panellist(load_config(first.config), "p1", "P3")  # an erasure reaches the bucket too
    landing_now = {p.relative_to(landing).as_posix(): p.read_bytes() for p in landing.rglob("*") if p.is_file()}
    assert remote_objects(s3, storage.landing) == landing_now
    assert not any(b"Dana Okafor" in body for body in landing_now.values())
    version = os.path.basename(os.readlink(first.data_dir / "published" / "current"))
    remote_versions = {k.split("/")[1] for k in remote_objects(s3, storage.published) if k.startswith("versions/")}
    assert (remote_versions, current_remote_version(storage)) == ({version}, version)


def _reader_credentials(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """The bucket reader's key and secret, in the environment under the names the configs give."""
    key, secret = s3.keys["reader"]
    monkeypatch.setenv(NAMES["key"], key)
    monkeypatch.setenv(NAMES["secret"], secret)
    return key, secret


def _storage_config(network: Network, s3: S3Server, prefix: str, parallelism: str) -> Path:
    text = network.config.read_text() + (
        "storage:\n"
        f"  landing: s3://{s3.bucket}/{prefix}/landing\n"
        f"  published: s3://{s3.bucket}/{prefix}/published\n"
        f"  options: {{endpoint_url: '{s3.endpoint}', region: {s3.region}, "
        f"key: {NAMES['key']}, secret: {NAMES['secret']}}}\n"
        f"parallelism: {parallelism}\n"
    )
    config = network.root / f"din-{prefix}.yaml"
    config.write_text(text)
    return config


def _network_files(which: str, root: Path) -> Path:
    """A network's deliveries and config under `root`: the suite's test network, the bundled demo, or a
    generated network of three panels (12 response files, about 1% faulty rows). Returns its din.yaml."""
    if which == "test-network":
        return write_network(root).config
    if which == "demo":
        shutil.copytree(REPO / "examples" / "demo", root, ignore=shutil.ignore_patterns("data"))
    else:
        write_scaled(root, response_rows=7_200, files=12)
    return root / "din.yaml"


def _with(config: Path, text: str, name: str) -> Path:
    target = config.with_name(f"din-{name}.yaml")
    target.write_text(config.read_text() + text)
    return target


@pytest.mark.parametrize("which", ["test-network", "demo", "generated-3-panels"])
def test_dask_workers_without_the_data_folder_read_landing_from_the_bucket(
    tmp_path: Path, s3: S3Server, monkeypatch: pytest.MonkeyPatch, which: str
) -> None:
    # the workers start before the credentials are in the environment: they can only have them from the run
    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as cluster:
        _reader_credentials(s3, monkeypatch)
        threads_config = _network_files(which, tmp_path / "threads")
        consolidate(config_path=str(threads_config), data_dir=str(tmp_path / "threads-data"))
        dask_config = _network_files(which, tmp_path / "dask")
        prefix = f"dask-{which}-{tmp_path.name}"
        storage = (
            f"storage:\n  landing: s3://{s3.bucket}/{prefix}/landing\n  published: s3://{s3.bucket}/{prefix}/published\n"
            f"  options: {{endpoint_url: '{s3.endpoint}', region: {s3.region}, "
            f"key: {NAMES['key']}, secret: {NAMES['secret']}}}\n"
        )
        remote = f"parallelism: {{runner: dask, address: '{cluster.scheduler_address}'}}\n"  # no shared_data_dir
        summary = consolidate(
            config_path=str(_with(dask_config, storage + remote, "dask")), data_dir=str(tmp_path / "dask-data")
        )
        ran = set(cluster.scheduler.task_prefixes)
    assert summary["outcome"] in ("succeeded", "succeeded_with_warnings")
    assert any("validate" in prefix for prefix in ran), ran
    tables = {
        name: published_tables(tmp_path / name / "published" / "current") for name in ("threads-data", "dask-data")
    }
    assert content(tables["dask-data"]) == content(tables["threads-data"])
    assert sum(frame.height for frame in tables["dask-data"].values()) > 20
    assert remote_objects(s3, f"s3://{s3.bucket}/{prefix}/landing")  # the landing the workers read


def test_a_batch_without_the_data_folder_reads_the_bucket_and_sends_its_files_back(
    tmp_path: Path, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, secret = _reader_credentials(s3, monkeypatch)
    network = write_network(tmp_path / "net")
    consolidate_with = _storage_config(network, s3, "batch", "{runner: threads}")
    consolidate(config_path=str(consolidate_with))  # lands every delivery and mirrors landing to the bucket
    config = load_config(consolidate_with)
    storage, formats = config.storage, {source.name: source.format for source in config.all_sources}
    assert storage is not None and storage.landing
    con = duckdb.connect(str(network.data_dir / "warehouse.duckdb"))
    rows = con.sql(
        "SELECT delivery_id, source, kind, original_path, landing_path, size FROM ops.deliveries "
        "WHERE kind = 'responses' ORDER BY delivery_id"
    ).fetchall()
    roster = [r[0] for r in con.sql("SELECT landing_path FROM ops.deliveries WHERE kind = 'roster'").fetchall()]
    references = write_known_references(con, [KINDS["responses"]], tmp_path / "run" / "references.parquet")
    con.close()
    deliveries = tuple(DeliveryToProcess(d, s, k, o, lp, n, formats[s]) for d, s, k, o, lp, n in rows)
    spec = BatchSpec("t-b0", "responses", deliveries, tmp_path / "run", references, tuple(roster), DEMO_KEY)
    here = process_batch(spec)

    landing = network.data_dir / "landing"
    landing.rename(tmp_path / "landing-elsewhere")  # what a worker on another machine sees of it: nothing
    inputs = RemoteInputs(
        storage.landing.removeprefix("s3://"),
        str(landing),
        dict(storage.options),
        {NAMES["key"]: key, NAMES["secret"]: secret},
        {str(references): references.read_bytes()},
    )
    monkeypatch.delenv(NAMES["key"])
    monkeypatch.delenv(NAMES["secret"])
    shipped = process_batch(dataclasses.replace(spec, remote=inputs))
    assert shipped.shipped is not None and not Path(shipped.quarantine).is_absolute()
    back = saved(shipped, tmp_path / "back")
    for kind, path in here.staged.items():
        assert pl.read_parquet(back.staged[kind]).equals(pl.read_parquet(path))
    assert pl.read_parquet(back.quarantine).equals(pl.read_parquet(here.quarantine))
    assert [d.rows_accepted for d in back.deliveries] == [d.rows_accepted for d in here.deliveries]
    assert sum(d.rows_accepted for d in back.deliveries) > 0

    missing = dataclasses.replace(inputs, bucket_root=storage.landing.removeprefix("s3://") + "-gone")
    with pytest.raises(LandingUnreachable, match=r"landing copy objects/.* is not in s3://"):
        process_batch(dataclasses.replace(spec, remote=missing))
