"""Plain CSVs are read by polars (`transforms.fast_csv`), the rest record by record. A run with every CSV read
record by record (`DIN_CSV_READER=python`) must publish, quarantine, count and report exactly what the default
run does: on the bundled demo, on the test network with every bad file of the consolidate tests, and on the
network of survey-tool exports, spreadsheets, JSON and Parquet deliveries."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.flows.test_large_files import _network, _ops
from tests.support.network import Network
from tests.support.ops import REPO
from tests.support.pipeline import content, published, run
from transforms import fast_csv
from transforms.readers import ReadError, read_table

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.xdist_group("prefect")]


def _demo(root: Path) -> Network:
    shutil.copytree(REPO / "examples" / "demo", root / "demo")
    config = root / "demo" / "din.yaml"
    config.write_text(re.sub(r"(?m)^data_dir: .*$", "data_dir: data", config.read_text()))
    return Network(root / "demo", config, root / "demo" / "data")


#: A plain file cut short inside a quoted value: a lenient reader would take the rest of the file as its last value.
CUT_IN_QUOTES = (
    "panel_id,workshop_id,panellist_ref,question_id,question_text,answer\n"
    'p1,W2,P1,Q9,"a question, with a comma",fine\n'
    'p1,W2,P2,Q9,"a question, with a comma","cut short in the\n'
)


#: A plain file with a delimiter after one row's last field: a lenient reader would drop the empty field unseen.
TRAILING_DELIMITER = (
    "panel_id,workshop_id,panellist_ref,question_id,question_text,answer\n"
    "p1,W2,P1,Q10,t,fine\n"
    "p1,W2,P2,Q10,t,one field too many,\n"
)


def _network_of(kind: str, root: Path) -> Network:
    if kind == "demo":
        return _demo(root)
    network = _network(root, mixed=kind == "mixed-formats")
    if kind == "bad-files":
        network.deliver("university/cut-in-quotes.csv", CUT_IN_QUOTES)
        network.deliver("university/trailing-delimiter.csv", TRAILING_DELIMITER)
    return network


def _engine(path: Path) -> str:
    try:
        return read_table(path, path.name).engine
    except ReadError:
        return "refused"


@pytest.mark.parametrize("kind", ["demo", "bad-files", "mixed-formats"])
def test_a_run_reading_every_csv_record_by_record_publishes_what_the_default_run_publishes(
    tmp_path: Path, kind: str
) -> None:
    default, python = _network_of(kind, tmp_path / "default"), _network_of(kind, tmp_path / "python")
    engines = {path.name: _engine(path) for path in sorted(default.root.rglob("*.csv"))}
    assert "polars" in engines.values(), engines  # the comparison covers files polars read
    if kind == "bad-files":
        assert "python" in engines.values(), engines  # and files only the record-by-record reader reads
    assert run(default)["outcome"] == run(python, **{fast_csv.READER_ENV: "python"})["outcome"]
    assert content(published(default)) == content(published(python))
    counts = ["source_name", "original_path", "outcome", "rows_read", "rows_accepted", "rows_quarantined", "message"]
    assert _ops(default, "deliveries", counts) == _ops(python, "deliveries", counts)
    reasons = ["source_row", "rules", "reasons", "columns", "values"]
    assert _ops(default, "quarantine", reasons) == _ops(python, "quarantine", reasons)
    checks = ["rule", "element_count", "unexpected_count", "unexpected_sample"]
    assert _ops(default, "validation_results", checks) == _ops(python, "validation_results", checks)
