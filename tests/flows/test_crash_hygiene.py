"""A killed `din run` leaves nothing behind that outlives it: no Prefect server, no half-landed file; the
run shows as interrupted as soon as its process is gone; the feedback a run killed after publishing
never wrote is written by the next run.

Runs `din` as an operator does (a real subprocess, SIGKILLed at a checkpoint: din/faults.py): against
the session's Prefect server, and once in ephemeral mode (no PREFECT_API_URL), where `din` starts the
temporary server itself.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.prefect_server import APP, RECORDS, stop_orphans
from tests.support.ops import (
    DIN,
    OFFLINE_ENV,
    PSEUDONYM_KEY,
    SCRUBBED_ENV,
    PrefectServer,
    deliver_new_files,
    din,
    explain,
    write_site,
)
from warehouse.landing import INCOMING_PREFIX, clear_incoming, land
from warehouse.runs import INTERRUPTED_MESSAGE, shown_outcomes

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ops-crash")]


def _servers_of(home: Path) -> list[int]:
    """Live Prefect API servers whose environment names `home` as PREFECT_HOME."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if APP.encode() in command and f"PREFECT_HOME={home}".encode() in environ and state != "Z":
            found.append(int(proc.name))
    return found


def _ephemeral_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env.update(OFFLINE_ENV, PREFECT_HOME=str(home), DIN_PSEUDONYM_KEY=PSEUDONYM_KEY, **extra)
    return env


def _din_ephemeral(config: Path, home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DIN, *args, "--config", str(config)],
        cwd=config.parent,
        env=_ephemeral_env(home, **env),
        capture_output=True,  # a server outliving din would hold these pipes open: the call would hang
        text=True,
        timeout=300,
        check=False,
    )


def test_killed_ephemeral_run_leaves_no_server_and_shows_as_interrupted(tmp_path: Path) -> None:
    config = write_site(tmp_path / "site")
    home = tmp_path / "prefect-home"
    home.mkdir()
    killed = _din_ephemeral(config, home, "run", DIN_INJECT_KILL="merge")
    assert killed.returncode == -signal.SIGKILL, explain(killed)
    deadline = time.monotonic() + 10
    while _servers_of(home) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _servers_of(home) == []  # the kernel stopped it with its parent
    runs = _din_ephemeral(config, home, "runs")
    assert runs.returncode == 0, explain(runs)
    assert "interrupted" in runs.stdout.splitlines()[-1] and "running" not in runs.stdout
    rerun = _din_ephemeral(config, home, "run")
    assert rerun.returncode == 0, explain(rerun)
    assert "succeeded" in rerun.stdout
    assert "Error logging to API" not in rerun.stderr  # logs were sent before the server stopped
    assert _servers_of(home) == []
    assert list((home / RECORDS).glob("*.json")) == []  # the killed run's record cleared too
    outcomes = [line.split()[3] for line in _din_ephemeral(config, home, "runs").stdout.splitlines()[1:]]
    assert outcomes == ["interrupted", "succeeded"]


def test_a_recorded_server_whose_din_is_gone_is_stopped_on_the_next_start(tmp_path: Path) -> None:
    """The safety net where the kernel cannot stop the server (not Linux, or a server left by an older din)."""
    records = tmp_path / RECORDS
    records.mkdir()
    stand_in = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", APP])
    parent = subprocess.Popen([sys.executable, "-c", "pass"])
    parent.wait()  # a process that has ended: its pid names nobody now
    live_parent = os.getpid()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", APP])
    try:
        (records / f"{stand_in.pid}.json").write_text(
            f'{{"pid": {stand_in.pid}, "parent": {parent.pid}, "parent_started": "0"}}'
        )
        started = Path(f"/proc/{live_parent}/stat").read_text().rsplit(")", 1)[1].split()[19]
        (records / f"{other.pid}.json").write_text(
            f'{{"pid": {other.pid}, "parent": {live_parent}, "parent_started": "{started}"}}'
        )
        (records / "garbage.json").write_text("{not json")
        assert stop_orphans(tmp_path) == [stand_in.pid]
        assert stand_in.wait(15) is not None
        assert other.poll() is None  # its din still runs (a second run waiting for the lock must not stop it)
        assert sorted(p.name for p in records.iterdir()) == [f"{other.pid}.json"]
    finally:
        for process in (stand_in, other):
            process.kill()
            process.wait()


def test_kill_while_landing_leaves_no_partial_file(server: PrefectServer, tmp_path: Path) -> None:
    config = write_site(tmp_path / "site")
    killed = din(server, config, "run", DIN_INJECT_KILL="land")
    assert killed.returncode == -signal.SIGKILL, explain(killed)
    objects = tmp_path / "site" / "data" / "landing" / "objects"
    assert sorted(p.name for p in objects.rglob("*") if p.is_file()) == []  # unnamed until complete
    rerun = din(server, config, "run")
    assert rerun.returncode == 0, explain(rerun)
    assert len([p for p in objects.rglob("*") if p.is_file()]) == 7


def test_interrupted_named_landing_files_are_cleared(tmp_path: Path) -> None:
    """Where unnamed files are not available, the partial file has a name: the next run removes it."""
    objects = tmp_path / "objects"
    (objects / "ab").mkdir(parents=True)
    (objects / f"{INCOMING_PREFIX}abc123").write_bytes(b"half a file")
    (objects / "ab" / f"{INCOMING_PREFIX}def456").write_bytes(b"half a copy")
    (objects / "ab" / "ab12.csv").write_bytes(b"a landed file")
    assert sorted(p.name for p in clear_incoming(tmp_path)) == [f"{INCOMING_PREFIX}abc123", f"{INCOMING_PREFIX}def456"]
    assert [p.name for p in objects.rglob("*") if p.is_file()] == ["ab12.csv"]


def test_landing_is_content_addressed_and_read_only(tmp_path: Path) -> None:
    def write(sink: object) -> bool:
        sink.write(b"panel_id\np1\n")  # type: ignore[attr-defined]
        return True

    first = land(tmp_path, write, ".csv")
    again = land(tmp_path, write, ".csv")
    assert first is not None and again == first
    assert first.path.read_bytes() == b"panel_id\np1\n"
    assert first.path.stat().st_mode & 0o777 == 0o440
    assert [p.name for p in (tmp_path / "objects").rglob("*") if p.is_file()] == [first.path.name]
    assert land(tmp_path, lambda sink: False) is None  # "not modified": nothing kept


def test_run_killed_after_publishing_gets_its_feedback_on_the_next_run(server: PrefectServer, tmp_path: Path) -> None:
    config = write_site(tmp_path / "site")
    killed = din(server, config, "run", DIN_INJECT_KILL="feedback")
    assert killed.returncode == -signal.SIGKILL, explain(killed)
    feedback = tmp_path / "site" / "data" / "reports" / "feedback"
    assert not feedback.exists() or list(feedback.iterdir()) == []
    deliver_new_files(tmp_path / "site")
    shutil.rmtree(tmp_path / "site" / "data" / "work", ignore_errors=True)
    rerun = din(server, config, "run")
    assert rerun.returncode == 0, explain(rerun)
    runs = sorted(p.name for p in feedback.iterdir())
    assert len(runs) == 2  # the killed run's feedback, and the rerun's own
    killed_run = runs[0]
    assert (feedback / killed_run / ".complete").exists()
    assert sorted(p.name for p in (feedback / killed_run).iterdir() if p.is_dir()) == ["DIN", "ORG-A", "ORG-B"]
    page = (feedback / killed_run / "ORG-B" / "feedback.html").read_text()
    assert "responses_w1.csv" in page and "rows set aside" in page
    again = din(server, config, "run")  # nothing missing now: nothing written again
    assert again.returncode == 0, explain(again)
    assert "were missing" not in again.stderr + again.stdout
    assert sorted(p.name for p in feedback.iterdir()) == runs


def test_runs_whose_process_is_gone_show_as_interrupted() -> None:
    from datetime import datetime, timedelta

    now = datetime(2026, 3, 1, 12, 0, 0)
    rows = [
        {"run_id": "a", "started_at": now - timedelta(hours=2), "outcome": "running", "message": None},
        {"run_id": "b", "started_at": now - timedelta(hours=1), "outcome": "succeeded", "message": None},
        {"run_id": "c", "started_at": now, "outcome": "running", "message": None},
    ]
    nobody = shown_outcomes(rows, writer_since=None)
    assert [r["outcome"] for r in nobody] == ["interrupted", "succeeded", "interrupted"]
    assert nobody[0]["message"] == INTERRUPTED_MESSAGE
    live = shown_outcomes(rows, writer_since=now - timedelta(seconds=5))
    assert [r["outcome"] for r in live] == ["interrupted", "succeeded", "running"]
