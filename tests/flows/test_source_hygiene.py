"""What a careless or hostile partner leaves in a delivery folder, through a real run: links out of the
folder, hidden files, a FIFO, a glob that matches nothing. Each is a reported, reasoned outcome; nothing
outside the folder is ever read, landed, published or shown to anyone."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.support.network import Network, write_network
from tests.support.pipeline import duckdb_text, run

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.xdist_group("prefect")]

SECRET = "root:$6$planted-secret-line:19000:0:99999:7:::"


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> tuple[Network, dict[str, Any], dict[str, Any]]:
    root = tmp_path_factory.mktemp("hygiene")
    network = write_network(root)
    outside = root / "outside"
    outside.mkdir()
    (outside / "shadow").write_text(SECRET + "\n")
    alpha = network.root / "deliveries" / "alpha"
    (alpha / "x.csv").symlink_to(outside / "shadow")
    (alpha / ".feedback-w3.csv").write_text((alpha / "feedback-w2.csv").read_text())
    os.mkfifo(alpha / "pipe.csv")
    (alpha / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    config = network.config.read_text()
    config += "  - {name: beta-jsonl, organisation: ORG-B, kind: responses, location: deliveries/beta/*.jsonl}\n"
    (network.root / "deliveries" / "beta").mkdir()
    (network.root / "deliveries" / "beta" / "responses.csv").write_text("not, a, jsonl\n")
    network.config.write_text(config)
    first = run(network)
    second = run(network)
    return network, first, second


def _source(summary: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in summary["sources"] if s["source"] == name)


def test_every_file_not_taken_is_a_warning_with_its_reason(outcome: tuple[Network, dict, dict]) -> None:
    _, first, _ = outcome
    alpha = _source(first, "alpha-feedback")
    assert alpha["files_new"] == 1  # the one real delivery
    assert alpha["files_skipped"] == 4  # the link, the hidden file, the FIFO, .DS_Store
    warnings = sorted(alpha["warnings"])
    assert len(warnings) == 3  # .DS_Store is clutter: counted, not a warning
    assert warnings[0].startswith(".feedback-w3.csv: a hidden file")
    assert warnings[1].startswith("pipe.csv: a FIFO (named pipe), not a file")
    assert warnings[2].startswith("x.csv: a link to a file outside the source's folder")
    beta = _source(first, "beta-jsonl")
    assert beta["warnings"] == [
        f"no file at {outcome[0].root / 'deliveries/beta/*.jsonl'}: check the location (a glob must match the "
        "files' names) or ask the organisation whether they delivered"
    ]
    assert first["outcome"] == "succeeded_with_warnings"  # files not taken need someone's attention


def test_warnings_stay_until_fixed_but_feedback_tells_the_partner_once(outcome: tuple[Network, dict, dict]) -> None:
    network, first, second = outcome
    assert sorted(_source(second, "alpha-feedback")["warnings"]) == sorted(_source(first, "alpha-feedback")["warnings"])
    page = (network.data_dir / "reports" / "feedback" / first["run_id"] / "ORG-A" / "feedback.html").read_text()
    assert "Files we did not take" in page
    assert ".feedback-w3.csv" in page and "a hidden file" in page and "outside the source&#39;s folder" in page
    assert ".DS_Store" not in page
    again = network.data_dir / "reports" / "feedback" / second["run_id"] / "ORG-A" / "feedback.html"
    assert not again.exists()  # nothing new for ORG-A in the second run


def test_nothing_from_outside_the_folder_reaches_any_file(outcome: tuple[Network, dict, dict]) -> None:
    network, _, _ = outcome
    checked = 0
    for path in network.data_dir.rglob("*"):
        if not path.is_file() or path.is_symlink() or ".prefect" in path.parts:
            continue
        text = duckdb_text(path) if path.suffix == ".duckdb" else path.read_bytes().decode("utf-8", "replace")
        if path.suffix == ".parquet":
            import polars as pl

            text = "\n".join(map(str, pl.read_parquet(path).rows()))
        assert "planted-secret-line" not in text, path
        checked += 1
    assert checked > 20


def test_an_empty_portal_inbox_is_not_a_warning(tmp_path: Path) -> None:
    """Nothing submitted through the portal since the last run is the normal state of an inbox."""
    network = write_network(tmp_path)
    network.config.write_text(
        network.config.read_text()
        + "  - {name: alpha-portal, organisation: ORG-A, kind: attendance, location: 'inbox://'}\n"
    )
    summary = run(network)
    portal = next(s for s in summary["sources"] if s["source"] == "alpha-portal")
    assert portal["warnings"] == [] and summary["outcome"] == "succeeded"
