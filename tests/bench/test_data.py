"""The benchmark's private network copy and its one changed file leave the shared data set as generated."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from bench.data import Size, change_one_file, ensure_dataset, private_network


def test_one_changed_file_changes_only_the_private_copy(tmp_path: Path) -> None:
    data = ensure_dataset(tmp_path / "work", Size("T", 300, 3))
    before = {p: p.read_bytes() for p in data.root.rglob("*") if p.is_file()}
    network = private_network(data, tmp_path / "network")
    assert network.config.is_file() and len(network.response_files) == 3
    changed = change_one_file(network)
    assert changed == network.response_files[1]
    assert {p: p.read_bytes() for p in data.root.rglob("*") if p.is_file()} == before
    original = pl.read_csv(data.response_files[1], infer_schema=False)
    now = pl.read_csv(changed, infer_schema=False)
    assert changed.read_bytes() != data.response_files[1].read_bytes()
    assert now.reverse().equals(original)  # the same rows, re-exported in another order
    assert network.response_files[0].read_bytes() == data.response_files[0].read_bytes()
    with network.config.open("a", encoding="utf-8") as config:  # an experiment's setting, written in place
        config.write("publish: {partition_by_panel: true}\n")
    assert {p: p.read_bytes() for p in data.root.rglob("*") if p.is_file()} == before
