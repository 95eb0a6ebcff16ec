"""Other DuckDB releases than ours, as report authors have them: an older `duckdb` Python package and
the DuckDB CLI from PyPI, each run in a throwaway environment by uv (`uv run --with`).

uv caches the wheels it fetched, so after the first run (CI reaches PyPI) this works offline too: the
cache is tried first. When neither the cache nor the registry can give the release, the test is
skipped with the reason (never passed)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UV = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
#: The interpreter our venv was made from: a throwaway environment on top of the venv itself would
#: still find our own duckdb.
BASE_PYTHON = getattr(sys, "_base_executable", sys.executable)
#: The DuckDB CLI report authors get with `pip install duckdb-cli` (the one issue 17 was reported with).
CLI_RELEASE = "1.5.6"


def run_with(requirement: str, command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`command` in a throwaway environment holding `requirement` (wheel from uv's cache, else the registry)."""
    if UV is None:
        pytest.skip("uv is not installed (./dev installs it into .venv)")
    failures = []
    for network in (("--offline",), ()):  # the cache first, then the registry
        result = subprocess.run(
            [
                UV,
                "run",
                "--no-project",
                "--isolated",
                "--python",
                BASE_PYTHON,
                *network,
                "--with",
                requirement,
                *command,
            ],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        fetch_failed = result.returncode != 0 and _could_not_install(result.stderr)
        if not fetch_failed:
            return result
        failures.append(result.stderr.strip().splitlines()[-1:] or [""])
    pytest.skip(f"{requirement} could not be installed, from uv's cache or the registry: {failures[-1][0]}")


def _could_not_install(stderr: str) -> bool:
    """uv's own failure to resolve or fetch (not the command's failure)."""
    return (
        any(
            marker in stderr
            for marker in ("No solution found", "Failed to fetch", "Failed to download", "network", "offline")
        )
        and "Traceback" not in stderr
    )
