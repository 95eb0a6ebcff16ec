"""A batch's table deliveries are read one by one, then normalised and protected together
(`expectations.gate`). A run with every delivery normalised and protected alone
(`DIN_BATCH_DELIVERIES=one-by-one`) must publish, quarantine, count, scrub and report exactly what the default
run does: on the bundled demo, on the test network with every bad file of the consolidate tests, and on the
network of survey-tool exports, spreadsheets, JSON and Parquet deliveries."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from expectations.gate import TOGETHER_ENV
from tests.flows.test_csv_readers import _network_of
from tests.flows.test_large_files import _ops
from tests.support.pipeline import content, published, run

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.xdist_group("prefect")]


@pytest.mark.parametrize("kind", ["demo", "bad-files", "mixed-formats"])
def test_a_run_protecting_each_delivery_alone_publishes_what_the_default_run_publishes(
    tmp_path: Path, kind: str
) -> None:
    together, alone = _network_of(kind, tmp_path / "together"), _network_of(kind, tmp_path / "alone")
    assert run(together)["outcome"] == run(alone, **{TOGETHER_ENV: "one-by-one"})["outcome"]
    deliveries = published(together)["deliveries"]
    read = deliveries.filter(deliveries["rows_read"] > 0)
    assert max(Counter(read["kind"].to_list()).values()) > 1  # some batch held several files of one kind
    assert content(published(together)) == content(published(alone))
    counts = ["source_name", "original_path", "outcome", "rows_read", "rows_accepted", "rows_quarantined"]
    counts += ["rows_blocked", "scrub_counts", "message", "extra_columns", "missing_optional_columns"]
    assert _ops(together, "deliveries", counts) == _ops(alone, "deliveries", counts)
    reasons = ["source_row", "rules", "reasons", "columns", "values"]
    assert _ops(together, "quarantine", reasons) == _ops(alone, "quarantine", reasons)
    checks = ["rule", "element_count", "unexpected_count", "unexpected_sample"]
    assert _ops(together, "validation_results", checks) == _ops(alone, "validation_results", checks)
