"""consolidate and rebuild with `storage:` configured, against moto's S3 on 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from din.config import load_config
from tests.support.network import Network, write_network
from tests.support.pipeline import content, published, rebuild, run
from tests.support.servers import NAMES, S3Server, bucket_server, remote_objects
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
    key, secret = s3.keys["reader"]
    monkeypatch.setenv(NAMES["key"], key)
    monkeypatch.setenv(NAMES["secret"], secret)
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
