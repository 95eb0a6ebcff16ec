"""`din forget` and the commands it guards, run as an operator runs them (real subprocesses, no Prefect)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.support.network import write_network
from warehouse.erasure import Journal

DIN = [sys.executable, "-m", "app.cli"]


def din(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DIN, *args], capture_output=True, text=True, timeout=120)


def test_forget_says_what_it_takes() -> None:
    result = din("forget", "--help")
    assert result.returncode == 0
    for option in ("--panel", "--requested-by", "--dry-run"):
        assert option in result.stdout


def test_an_unknown_panellist_exits_1_before_anything_was_ever_run(tmp_path: Path) -> None:
    network = write_network(tmp_path)
    result = din("forget", "P9", "--panel", "p1", "--config", str(network.config))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "din: no panellist 'P9' on panel 'p1' in landing or the warehouse; nothing was changed. Check the "
        "reference (as on the roster) and the panel id; the panels here are: none yet."
    )
    assert not (network.data_dir / "landing" / "erasures").exists()


def interrupted(network_root: Path, erasure_id: str = "erasure-0123456789ab") -> None:
    """An erasure's journal, as an interrupted `din forget` leaves it."""
    journal = Journal(erasure_id, "p1", "er_x", ["er_x"], [], [], "dpo@example.org", "2026-12-01T10:00:00")
    journal.save(network_root / "data" / "landing")


def test_run_and_rebuild_refuse_to_start_while_an_erasure_is_unfinished(tmp_path: Path) -> None:
    network = write_network(tmp_path)
    interrupted(network.root)
    for command in ("run", "rebuild"):
        started = time.perf_counter()
        result = din(command, "--config", str(network.config))
        assert result.returncode == 2, result.stderr
        assert "erasure erasure-0123456789ab (requested by dpo@example.org at 2026-12-01T10:00:00 UTC" in result.stderr
        assert "Run the same `din forget` again" in result.stderr
        assert time.perf_counter() - started < 20  # refused before Prefect starts
    assert not (network.data_dir / "warehouse.duckdb").exists()


def test_another_erasure_is_refused_while_one_is_unfinished(tmp_path: Path) -> None:
    network = write_network(tmp_path)
    interrupted(network.root)
    result = din("forget", "P2", "--panel", "p1", "--config", str(network.config))
    assert result.returncode == 2
    assert "erasure-0123456789ab" in result.stderr and "was interrupted" in result.stderr


def test_a_landing_copy_that_cannot_be_read_is_named_and_the_exit_code_says_so(tmp_path: Path) -> None:
    from tests.support.network import ROSTER
    from warehouse.landing import land_local_file
    from warehouse.manifest import append_landing_log

    network = write_network(tmp_path)
    landing = network.data_dir / "landing"
    delivered = {"roster.csv": ROSTER.encode(), "old_roster.xlsx": b"PK\x03\x04 a workbook cut short"}
    for number, (name, body) in enumerate(delivered.items(), start=1):
        path = tmp_path / name
        path.write_bytes(body)
        landed = land_local_file(landing, path, path.suffix)
        entry = {"delivery_id": number, "source": "recruiter-roster", "relative_path": name, "original_path": name}
        append_landing_log(
            landing,
            [
                {
                    **entry,
                    "sha256": landed.sha256,
                    "size": landed.size,
                    "landing_path": landed.path.relative_to(landing).as_posix(),
                }
            ],
        )
    result = din("forget", "P1", "--panel", "p1", "--config", str(network.config))
    assert result.returncode == 3, result.stderr
    assert "NEEDS ATTENTION old_roster.xlsx (recruiter-roster): could not be read" in result.stdout.replace(
        "\n    ", " "
    )
    assert (
        "1 landing file(s) could not be read, so could not be checked for this panellist (old_roster.xlsx)"
        in result.stderr
    )
    assert "roster.csv (recruiter-roster): 1 row(s)" in result.stdout
