"""polars' allocator hands freed memory back at once (`din/__init__.py`): the setting only counts when it is
in the environment before polars is loaded, so every entry point must import `din` before polars."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.support.ops import REPO


@pytest.mark.parametrize("entry", ["app.cli", "flows.consolidate", "flows.rebuild"])
def test_din_is_loaded_before_polars_by_every_entry_point(entry: str) -> None:
    command = [sys.executable, "-X", "importtime", "-c", f"import {entry}, os; print(os.environ['_RJEM_MALLOC_CONF'])"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True, env={"PATH": "/usr/bin"})
    # polars puts its own defaults in front when it loads; jemalloc takes the last value of each option
    assert done.stdout.strip().endswith("dirty_decay_ms:0,muzzy_decay_ms:0")
    loaded = [m.group(1) for m in re.finditer(r"\|\s+(din|polars)\n", done.stderr)]
    assert loaded and loaded[0] == "din", loaded
