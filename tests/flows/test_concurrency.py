"""One writer per warehouse: a second `din run` on the same data waits for the writer lock, gives up
after lock_timeout_seconds with a clear message and touches nothing; readers are never blocked.

The first run is paused (SIGSTOP) the moment it holds the lock, which makes it as slow as needed
without a large input; it resumes (SIGCONT) once the second run and the readers are done.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from din.lock import writer_lock
from tests.support.ops import (
    COMMAND_SECONDS,
    FIRST_ROWS,
    NEW_ROWS,
    PrefectServer,
    Published,
    deliver_new_files,
    din,
    explain,
    lock_is_held,
    read_published,
    site_config,
    start_din,
    wait_for_lock_holder,
    write_site,
)
from warehouse.catalog import connect_catalog

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ops-server")]

BUSY = "another run is writing to this warehouse"
IMPATIENT_SECONDS = 2


@dataclass(frozen=True)
class Contest:
    first_pid: int
    first: subprocess.CompletedProcess[str]
    second: subprocess.CompletedProcess[str]
    second_seconds: float
    lock_held_during_second: bool
    query_during_first: subprocess.CompletedProcess[str]
    catalog_counts_during_first: dict[str, int]
    before: Published
    after: Published
    history: list[tuple[str, str]]  # (run_id, outcome) in the warehouse, oldest first


@pytest.fixture(scope="module")
def contest(server: PrefectServer, tmp_path_factory: pytest.TempPathFactory) -> Contest:
    root = tmp_path_factory.mktemp("contest") / "site"
    config = write_site(root, lock_timeout_seconds=120)
    impatient = root / "din-impatient.yaml"
    impatient.write_text(site_config(lock_timeout_seconds=IMPATIENT_SECONDS), encoding="utf-8")
    base = din(server, config, "run")
    assert base.returncode == 0, explain(base)
    before = read_published(root / "data")
    deliver_new_files(root)
    first = start_din(server, config, "run")
    try:
        wait_for_lock_holder(root / "data" / "warehouse.lock", first)
        os.kill(first.pid, signal.SIGSTOP)
        try:
            query = din(server, config, "query", "SELECT count(*) AS n FROM restricted.responses", "--format", "json")
            counts = _catalog_counts(root / "data")
            started = time.monotonic()
            second = din(server, impatient, "run")
            seconds = time.monotonic() - started
            held = lock_is_held(root / "data" / "warehouse.lock")
        finally:
            os.kill(first.pid, signal.SIGCONT)
        out, err = first.communicate(timeout=COMMAND_SECONDS)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    finished = subprocess.CompletedProcess(first.args, first.returncode, out, err)
    return Contest(
        first.pid,
        finished,
        second,
        seconds,
        held,
        query,
        counts,
        before,
        read_published(root / "data"),
        _history(root / "data"),
    )


def _catalog_counts(data: Path) -> dict[str, int]:
    con = connect_catalog(data / "published" / "catalog.duckdb")
    try:
        return {t: con.sql(f"SELECT count(*) FROM restricted.{t}").fetchall()[0][0] for t in FIRST_ROWS}
    finally:
        con.close()


def _history(data: Path) -> list[tuple[str, str]]:
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        return [(r, o) for r, o in con.sql("SELECT run_id, outcome FROM ops.runs ORDER BY started_at").fetchall()]
    finally:
        con.close()


def test_second_run_gives_up_with_a_clear_message(contest: Contest) -> None:
    second = contest.second
    assert contest.lock_held_during_second
    assert second.returncode == 2, explain(second)
    last_line = second.stderr.strip().splitlines()[-1]  # what the operator reads last, after Prefect's log
    assert last_line.startswith(f"din: {BUSY} (process {contest.first_pid}); waited {IMPATIENT_SECONDS} s."), last_line
    assert "raise lock_timeout_seconds" in last_line  # and what to do about it
    assert contest.second_seconds >= IMPATIENT_SECONDS  # it did wait before giving up


def test_first_run_finishes_and_publishes_the_new_deliveries(contest: Contest) -> None:
    assert contest.first.returncode == 0, explain(contest.first)
    run_id = re.search(r"^run (\S+)( \([^)]*\))?: succeeded", contest.first.stdout, re.MULTILINE)
    assert run_id, contest.first.stdout
    assert contest.after.version == run_id.group(1) != contest.before.version
    assert {t: len(contest.after.rows(t)) for t in NEW_ROWS} == NEW_ROWS
    quarantined = {(r["source_name"], r["source_row"]) for r in contest.after.rows("quarantine")}
    assert quarantined == {("responses", 8), ("responses", 9)}


def test_refused_run_left_no_trace_in_the_warehouse(contest: Contest) -> None:
    """Only the two runs that held the lock are in the history: the refused one never wrote."""
    assert [outcome for _, outcome in contest.history] == ["succeeded", "succeeded"]
    assert contest.history[-1][0] == contest.after.version


def test_readers_work_while_a_run_holds_the_lock(contest: Contest) -> None:
    query = contest.query_during_first
    assert query.returncode == 0, explain(query)
    assert json.loads(query.stdout) == [{"n": FIRST_ROWS["responses"]}]
    assert contest.catalog_counts_during_first == FIRST_ROWS  # the previous version, complete


def test_run_gives_up_without_touching_the_data_dir(server: PrefectServer, tmp_path: Path) -> None:
    """While another process holds the lock (here: this test), a run waits, then leaves everything alone."""
    config = write_site(tmp_path / "site", lock_timeout_seconds=IMPATIENT_SECONDS)
    data = tmp_path / "site" / "data"
    with writer_lock(data / "warehouse.lock", timeout_seconds=0):
        started = time.monotonic()
        result = din(server, config, "run")
        seconds = time.monotonic() - started
    assert result.returncode == 2, explain(result)
    assert f"din: {BUSY} (process {os.getpid()}); waited {IMPATIENT_SECONDS} s." in result.stderr
    assert seconds >= IMPATIENT_SECONDS
    assert sorted(p.name for p in data.iterdir()) == ["warehouse.lock"]  # no warehouse, landing or publish
