"""A run that dies (SIGKILL) or fails at any stage leaves the published data as it was, and the next
run publishes exactly what an uninterrupted run would have: no row lost, none doubled.

The site has a good published version from a first run; then new and corrected files arrive and
`din run` is interrupted at a checkpoint (din/faults.py), then run again without interruption. The
result is compared with an uninterrupted run on the same deliveries at the same paths.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.ops import (
    FIRST_ROWS,
    NEW_ROWS,
    PrefectServer,
    Published,
    deliver_new_files,
    din,
    explain,
    read_published,
    restore,
    table_differences,
    write_site,
)
from warehouse.catalog import connect_catalog

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ops-crash")]

KILLS = {f"kill-{stage}": {"DIN_INJECT_KILL": stage} for stage in ("pull", "validate", "merge", "publish")}
FAILURES = {"fail-publish": {"DIN_INJECT_FAILURE": "publish"}}
CASES = {**KILLS, **FAILURES}


@dataclass(frozen=True)
class Baseline:
    root: Path
    config: Path
    snapshot: Path  # the site after the first run: published version 1, before the new files
    first: Published  # what readers saw after the first run
    uninterrupted: Published  # what an uninterrupted run on the new files published

    @property
    def data(self) -> Path:
        return self.root / "data"


@dataclass(frozen=True)
class Interruption:
    run: subprocess.CompletedProcess[str]  # the interrupted run
    published_after: Published  # read right after it died
    catalog_counts: dict[str, int]  # what the catalog answered right after it died
    rerun: subprocess.CompletedProcess[str]
    published_after_rerun: Published
    leftovers: list[str]  # half-written versions and run work folders after the rerun


@pytest.fixture(scope="module")
def baseline(server: PrefectServer, tmp_path_factory: pytest.TempPathFactory) -> Baseline:
    base = tmp_path_factory.mktemp("crash")
    root = base / "site"
    config = write_site(root)
    first = din(server, config, "run")
    assert first.returncode == 0, explain(first)
    snapshot = base / "snapshot"
    shutil.copytree(root, snapshot, symlinks=True)
    published_first = read_published(root / "data")
    deliver_new_files(root)
    second = din(server, config, "run")
    assert second.returncode == 0, explain(second)
    return Baseline(root, config, snapshot, published_first, read_published(root / "data"))


@pytest.fixture(scope="module")
def interrupted(server: PrefectServer, baseline: Baseline) -> Callable[[str], Interruption]:
    """Each case runs once (restore the snapshot, deliver, interrupt, rerun); tests share the result."""
    done: dict[str, Interruption] = {}

    def get(case: str) -> Interruption:
        if case not in done:
            done[case] = _interrupt(server, baseline, CASES[case])
        return done[case]

    return get


def _interrupt(server: PrefectServer, baseline: Baseline, injection: dict[str, str]) -> Interruption:
    restore(baseline.snapshot, baseline.root)
    deliver_new_files(baseline.root)
    run = din(server, baseline.config, "run", **injection)
    published_after = read_published(baseline.data)
    counts = _catalog_counts(baseline.data)
    rerun = din(server, baseline.config, "run")
    return Interruption(run, published_after, counts, rerun, read_published(baseline.data), _leftovers(baseline.data))


def _catalog_counts(data: Path) -> dict[str, int]:
    con = connect_catalog(data / "published" / "catalog.duckdb")
    try:
        return {t: con.sql(f"SELECT count(*) FROM restricted.{t}").fetchall()[0][0] for t in FIRST_ROWS}
    finally:
        con.close()


def _leftovers(data: Path) -> list[str]:
    partial = [p.name for p in (data / "published" / "versions").glob(".*.partial")]
    work = data / "work"
    return sorted(partial + ([f"work/{p.name}" for p in work.iterdir()] if work.is_dir() else []))


def test_baseline_is_meaningful(baseline: Baseline) -> None:
    """The uninterrupted run did publish the new deliveries (otherwise the comparisons prove little)."""
    assert {t: len(baseline.first.rows(t)) for t in FIRST_ROWS} == FIRST_ROWS
    assert {t: len(baseline.uninterrupted.rows(t)) for t in NEW_ROWS} == NEW_ROWS
    assert baseline.uninterrupted.version != baseline.first.version


@pytest.mark.parametrize("case", sorted(KILLS))
def test_killed_run_died_by_sigkill(interrupted: Callable[[str], Interruption], case: str) -> None:
    outcome = interrupted(case)
    assert outcome.run.returncode == -signal.SIGKILL, explain(outcome.run)


def test_failed_publish_exits_non_zero_with_the_reason(interrupted: Callable[[str], Interruption]) -> None:
    outcome = interrupted("fail-publish")
    assert outcome.run.returncode != 0, explain(outcome.run)
    assert "injected failure during publish" in outcome.run.stderr


@pytest.mark.parametrize("case", sorted(CASES))
def test_published_data_is_unchanged_after_interruption(
    interrupted: Callable[[str], Interruption], baseline: Baseline, case: str
) -> None:
    outcome = interrupted(case)
    after = outcome.published_after
    assert after.version == baseline.first.version
    assert after.digests == baseline.first.digests  # byte for byte, every file under published/current
    assert after.tables == baseline.first.tables  # and every Parquet reads back the same rows
    assert outcome.catalog_counts == FIRST_ROWS  # the catalog still answers, from the previous version


@pytest.mark.parametrize("case", sorted(CASES))
def test_rerun_publishes_what_an_uninterrupted_run_does(
    interrupted: Callable[[str], Interruption], baseline: Baseline, case: str
) -> None:
    outcome = interrupted(case)
    assert outcome.rerun.returncode == 0, explain(outcome.rerun)
    after = outcome.published_after_rerun
    assert after.version not in (None, baseline.first.version)
    assert sorted(after.tables) == sorted(baseline.uninterrupted.tables)
    assert table_differences(baseline.uninterrupted, after) == []
    assert {t: len(after.rows(t)) for t in NEW_ROWS} == NEW_ROWS


@pytest.mark.parametrize("case", sorted(CASES))
def test_run_history_tells_what_happened(interrupted: Callable[[str], Interruption], case: str) -> None:
    """The published run history: first run, the interrupted one (interrupted or failed), the rerun."""
    runs = sorted(interrupted(case).published_after_rerun.rows("runs"), key=lambda r: r["started_at"])
    interrupted_as = "failed" if case.startswith("fail-") else "interrupted"
    # the rerun publishes while it runs: its own row is still 'running' in what it published
    assert [r["outcome"] for r in runs] == ["succeeded", interrupted_as, "running"]
    if interrupted_as == "failed":
        assert "injected failure during publish" in (runs[1]["message"] or "")


LEFT_BEHIND = ("kill-validate", "kill-merge", "kill-publish", "fail-publish")


@pytest.mark.parametrize("case", LEFT_BEHIND)
def test_next_run_cleans_up_what_an_interrupted_run_left(interrupted: Callable[[str], Interruption], case: str) -> None:
    assert interrupted(case).leftovers == []


def test_nothing_left_behind_by_a_kill_before_any_work(interrupted: Callable[[str], Interruption]) -> None:
    assert interrupted("kill-pull").leftovers == []


def test_failed_run_exits_with_the_error_code_and_a_one_line_reason(
    interrupted: Callable[[str], Interruption],
) -> None:
    run = interrupted("fail-publish").run
    assert run.returncode == 2, explain(run)
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("din: run failed: InjectedFailure: injected failure during publish"), last
