"""`din forget` killed (SIGKILL, a real subprocess) at every stage, then run again, finishes the job and
leaves exactly what an uninterrupted erasure leaves; in between, nothing runs and readers see one
complete published version.

The site is the mixed network of tests/support/network.py after one run. The uninterrupted erasure
is the reference; each case restores the site, kills `din forget` at a checkpoint
(`DIN_INJECT_KILL=forget-<stage>`, din/faults.py) and runs it again.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from din.keys import DEMO_KEY
from tests.support.network import ERASED, PANEL, write_mixed_network
from tests.support.pipeline import published_tables, run
from tests.support.traces import traces
from transforms.pseudonymise import pseudonym
from warehouse.erasure import STEPS, pending_journals

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server"), pytest.mark.xdist_group("prefect")]

STAGES = ("stage", *STEPS)
PSEUDONYM = pseudonym(DEMO_KEY, PANEL, ERASED["ref"])
NEEDLES = (ERASED["ref"], PSEUDONYM, ERASED["name"], ERASED["email"], ERASED["phone"], ERASED["postcode"])


def forget(root: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DIN_INJECT")}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "forget",
            ERASED["ref"],
            "--panel",
            PANEL,
            "--config",
            str(root / "din.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**clean, **env},
    )


@dataclass(frozen=True)
class Outcome:
    """The state an erasure leaves: what readers get, what landing holds."""

    version: str
    tables: dict[str, list[str]]  # published rows, sorted, without run ids
    landing: list[str]  # landing files (objects, log, register), relative
    catalog_version: str

    @classmethod
    def of(cls, data: Path) -> Outcome:
        current = data / "published" / "current"
        tables = {}
        for name, frame in published_tables(current).items():
            frame = frame.drop([c for c in ("run_id", "landed_run_id", "processed_run_id") if c in frame.columns])
            if name in ("runs",):
                continue
            tables[name] = sorted(map(str, frame.rows()))
        con = duckdb.connect(str(data / "published" / "catalog.duckdb"), read_only=True)
        catalog = con.sql("SELECT value FROM main.catalog_metadata WHERE key = 'run_id'").fetchall()[0][0]
        con.close()
        landing = sorted(
            p.relative_to(data / "landing").as_posix() for p in (data / "landing").rglob("*") if p.is_file()
        )
        return cls(os.path.basename(os.readlink(current)), tables, landing, catalog)


@dataclass(frozen=True)
class Site:
    snapshot: Path  # the site after one run, before any erasure
    reference: Outcome  # what an uninterrupted erasure leaves
    before: Outcome


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    base = tmp_path_factory.mktemp("erasure-crash")
    network = write_mixed_network(base / "site")
    run(network)
    snapshot = base / "snapshot"
    shutil.copytree(network.root, snapshot, symlinks=True)
    done = forget(network.root)
    assert done.returncode == 0, done.stderr
    return Site(snapshot, Outcome.of(network.data_dir), Outcome.of(snapshot / "data"))


@dataclass(frozen=True)
class Killed:
    root: Path
    killed: subprocess.CompletedProcess[str]
    after_kill: Outcome
    loose_files: list[str]  # files in landing that are neither objects, the log, the register nor a private journal
    run_refused: subprocess.CompletedProcess[str] | None
    pending: list[str]  # erasures the journal says are unfinished, right after the kill
    rerun: subprocess.CompletedProcess[str]
    after_rerun: Outcome


@pytest.fixture(scope="module")
def killed(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Killed]:
    done: dict[str, Killed] = {}

    def get(stage: str) -> Killed:
        if stage not in done:
            root = tmp_path_factory.mktemp(f"kill-{stage}") / "site"
            shutil.copytree(site.snapshot, root, symlinks=True)
            result = forget(root, DIN_INJECT_KILL=f"forget-{stage}")
            after = Outcome.of(root / "data")
            loose = _loose_files(root / "data" / "landing")
            refused = None
            if stage == "publish":  # one `din run` as an operator would try it (the others: the same check, below)
                refused = subprocess.run(
                    [sys.executable, "-m", "app.cli", "run", "--config", str(root / "din.yaml")],
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
            pending = [j.erasure_id for j in pending_journals(root / "data" / "landing")]
            rerun = forget(root)
            done[stage] = Killed(root, result, after, loose, refused, pending, rerun, Outcome.of(root / "data"))
        return done[stage]

    return get


def _loose_files(landing: Path) -> list[str]:
    found = []
    for path in landing.rglob("*"):
        if not path.is_file():
            continue
        relative = path.relative_to(landing).as_posix()
        mode = stat.S_IMODE(path.stat().st_mode)
        if relative.startswith("objects/") and not path.name.startswith(".") and mode == 0o440:
            continue
        if relative == "deliveries.jsonl" or (relative.startswith("erasures/") and mode == 0o600):
            continue
        found.append(f"{relative} ({oct(mode)})")
    return found


def test_the_reference_erasure_removed_them(site: Site) -> None:
    assert site.reference.version != site.before.version
    assert site.reference.tables["panellists"] != site.before.tables["panellists"]
    assert not any(PSEUDONYM in row for rows in site.reference.tables.values() for row in rows)


@pytest.mark.parametrize("stage", STAGES)
def test_forget_killed_at_each_stage_died_by_sigkill(killed: Callable[[str], Killed], stage: str) -> None:
    assert killed(stage).killed.returncode == -signal.SIGKILL, killed(stage).killed.stderr


@pytest.mark.parametrize("stage", STAGES)
def test_after_a_kill_readers_see_one_complete_version_and_landing_holds_no_stray_file(
    killed: Callable[[str], Killed], site: Site, stage: str
) -> None:
    outcome = killed(stage)
    after = outcome.after_kill
    assert after.catalog_version == after.version  # the catalog reads what `current` names
    assert after.version in (site.before.version, after.version)
    if after.version == site.before.version:
        assert after.tables == site.before.tables  # untouched: the person still everywhere readers look
    else:
        assert after.tables == site.reference.tables  # done: the person nowhere readers look
    assert outcome.loose_files == []  # every temporary file is private, and none is world-readable


def test_din_run_refuses_to_start_until_the_erasure_is_finished(killed: Callable[[str], Killed]) -> None:
    refused = killed("publish").run_refused
    assert refused is not None and refused.returncode == 2
    assert "was interrupted before it completed. Run the same `din forget` again" in refused.stderr


@pytest.mark.parametrize("stage", STAGES[1:])
def test_nothing_else_runs_until_the_erasure_is_finished(killed: Callable[[str], Killed], stage: str) -> None:
    assert killed(stage).pending  # what `din run` and `din rebuild` check before any work


@pytest.mark.parametrize("stage", STAGES)
def test_the_same_din_forget_again_finishes_the_job_exactly(
    killed: Callable[[str], Killed], site: Site, stage: str
) -> None:
    outcome = killed(stage)
    assert outcome.rerun.returncode == 0, outcome.rerun.stderr
    if stage != "stage":
        assert "finishing an interrupted erasure" in outcome.rerun.stdout
    after = outcome.after_rerun
    assert after.tables == site.reference.tables
    assert after.landing == site.reference.landing  # the same redacted copies; the originals gone; no journal
    assert traces(outcome.root / "data", NEEDLES) == []
    con = duckdb.connect(str(outcome.root / "data" / "warehouse.duckdb"), read_only=True)
    entries = con.sql("SELECT status, landing_files_redacted FROM ops.erasures").fetchall()
    con.close()
    assert entries == [("completed", 8)]
    assert [p.name for p in (outcome.root / "data" / "published" / "versions").iterdir()] == [after.version]
