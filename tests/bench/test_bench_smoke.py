"""The benchmark harness end to end at a tiny size: every system runs once and gets a line.

No timing assertions: this only proves `python -m bench.run` works. `din run` goes to a Prefect server
the harness starts with a persistent PREFECT_HOME under bench/work (gitignored), so that after the
first time it restarts warm (~6 s instead of ~29 s); the once-per-size ephemeral run is skipped.
About 27 s at load average 6 on 2 cores; the generous timeout only guards against a hang (on a box
running other test suites at load average 11 it took 100 s).
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOME = ROOT / "bench" / "work" / "prefect-home-smoke"
SYSTEMS = (
    "din run (server)",
    "din run no-change rerun (server)",
    "din run one changed file (server)",
    "din run switched to panel_buckets 64 (server)",
    "din run one changed file, panel_buckets 64 (server)",
    "din run empty config (server)",
    "bare DuckDB",
    "checked DuckDB",
    "din check",
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("bench-smoke")]


def _run(command: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the harness; on a hang, SIGTERM it so that it stops its Prefect server on the way out."""
    with subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as harness:
        try:
            out, err = harness.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            harness.terminate()
            out, err = harness.communicate(timeout=30)
            pytest.fail(f"the harness took over {timeout:.0f} s:\n{out[-3000:]}{err[-3000:]}")
    return subprocess.CompletedProcess(command, harness.returncode, out, err)


def test_bench_harness_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "latest.md"
    command = [
        sys.executable,
        "-m",
        "bench.run",
        "--sizes",
        "T=2000/4",
        "--repeats",
        "1",
        "--no-ephemeral",
        "--prefect-home",
        str(HOME),
        "--check-rows",
        "2000",
        "--memory-mb",
        "0",
        "--settle-seconds",
        "5",
        "--work-dir",
        str(tmp_path / "work"),
        "--out",
        str(out),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    HOME.mkdir(parents=True, exist_ok=True)
    with (HOME.parent / "prefect-home-smoke.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one server per PREFECT_HOME, even across concurrent test sessions
        done = _run(command, env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert out.is_file()
    table = [line for line in out.read_text(encoding="utf-8").splitlines() if line.startswith("| ")]
    for system in SYSTEMS:
        rows = [line for line in table if line.startswith(f"| {system} |")]
        assert rows, f"no line for {system!r} in {out}"
        assert rows[0].split("|")[3].strip() != "–", f"{system} did not run: {rows[0]}"
    dlt = [line for line in table if line.startswith("| dlt append")]
    assert dlt, "no line for dlt"
    if importlib.util.find_spec("dlt") is None:
        assert "not installed" in dlt[0]
    else:
        assert "2,000" in dlt[0], dlt[0]
    assert "| target | measured | bound | verdict |" in out.read_text(encoding="utf-8")
    assert "one untimed `din run` of the empty config against the server" in out.read_text(encoding="utf-8")
    for system in SYSTEMS[:6]:
        assert system in done.stdout
