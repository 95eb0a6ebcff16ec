"""A delivery of `STREAM_BYTES` or more is read, protected and validated a chunk at a time from files spilled
to the run's work folder (`expectations.gate`). With the threshold at 0 every delivery takes that path: the
run must publish, quarantine, count and report exactly what the in-memory path does, bad files included."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tests.flows.test_consolidate import BAD_FILES
from tests.support.network import Network, write_mixed_network, write_network
from tests.support.pipeline import content, published, run

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.xdist_group("prefect")]

RAGGED_AND_NUL = (
    "panel_id,workshop_id,panellist_ref,question_id,question_text,answer\n"
    "p1,W2,P1,Q7,t,fine\n"
    "p1,W2,P2,Q7,t,cut short\n"  # one field short below
    "p1,W2,P3,Q7,t\n"
    "p1,W2,P1,Q8,t,a NUL\x00 here\n"
    'p1,W2,P2,Q8,t,"broken"quote\n'
    "p1,W2,P3,Q8,t,last\n"
)


def _network(root: Path, mixed: bool) -> Network:
    """The test network with every bad file of the consolidate tests and a file of broken records; or the
    network of survey-tool exports, spreadsheets, JSON and Parquet deliveries."""
    if mixed:
        return write_mixed_network(root)
    network = write_network(root)
    for relative, body, _, _ in BAD_FILES.values():
        network.deliver(relative, body)
    network.deliver("university/ragged.csv", RAGGED_AND_NUL)
    return network


def _ops(network: Network, table: str, keep: list[str]) -> list[str]:
    """The table's rows (these columns), with the network's own folder taken out of the paths."""
    rows = published(network)[table].select(keep).rows()
    return sorted(str(row).replace(str(network.root), "<network>") for row in rows)


@pytest.mark.parametrize("mixed", [False, True], ids=["bad-files", "mixed-formats"])
def test_every_file_read_in_chunks_from_disk_publishes_what_the_in_memory_read_publishes(
    tmp_path: Path, mixed: bool
) -> None:
    in_memory, chunked = _network(tmp_path / "memory", mixed), _network(tmp_path / "chunked", mixed)
    assert run(in_memory)["outcome"] == run(chunked, DIN_STREAM_BYTES="0")["outcome"]
    assert content(published(chunked)) == content(published(in_memory))
    counts = ["source_name", "original_path", "outcome", "rows_read", "rows_accepted", "rows_quarantined"]
    assert _ops(chunked, "deliveries", counts) == _ops(in_memory, "deliveries", counts)
    reasons = ["source_row", "rules", "reasons", "columns", "values"]
    assert _ops(chunked, "quarantine", reasons) == _ops(in_memory, "quarantine", reasons)
    checks = ["rule", "element_count", "unexpected_count", "unexpected_sample"]
    assert _ops(chunked, "validation_results", checks) == _ops(in_memory, "validation_results", checks)
    assert not list((chunked.data_dir / "work").rglob("*.spill"))  # spilled files go when the batch ends
    quarantine = published(chunked)["quarantine"]
    assert quarantine.filter(pl.col("source_row").is_not_null()).height >= 3
    if not mixed:  # the comparison covers rows set aside by the reader, by the suite, and files refused whole
        rules = {rule for rules in quarantine["rules"].to_list() for rule in rules}
        assert {"row_field_count", "value_nul_byte", "record_unreadable", "key_unique", "file_unreadable"} <= rules
