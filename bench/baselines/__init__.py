"""The peers `din run` is measured against; each runs as its own process (`python -m bench.baselines.X`).

Each prints one line `BENCH-RESULT {json}` with the rows it wrote, so the harness can check that
every system did the same amount of work.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULT_PREFIX = "BENCH-RESULT "


def response_files(data: Path) -> list[str]:
    """Every response CSV of a generated data set, in a stable order."""
    return sorted(str(p) for p in (data / "deliveries" / "responses").glob("*.csv"))


def report(**figures: Any) -> None:
    print(RESULT_PREFIX + json.dumps(figures, sort_keys=True), flush=True)


def parse_result(output: str) -> dict[str, Any]:
    """The figures a baseline printed, or {} when it printed none."""
    for line in reversed(output.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return dict(json.loads(line[len(RESULT_PREFIX) :]))
    return {}
