"""Throughput of `din run` on one generated network with the batches on threads, on one Dask worker and on
two: the figures behind docs/scale.md.

    python -m bench.scale                         # 1M rows in 200 files (S), and 3M rows in 600 files
    python -m bench.scale --sizes T=20000/8       # quick

Each run is a first run on a fresh data folder against one `prefect server` (as in bench.run). Printed per
run: wall seconds, the stages' seconds from `ops.runs` (pull, validate_and_merge, publish), the seconds the
merge took (the `merge level` spans of the run's log), and response rows accepted per second of
validate_and_merge.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.data import Size, ensure_dataset
from bench.measure import run_measured
from bench.prefect_server import clean_env
from bench.run import din_command, din_figures, maybe_server

ROOT = Path(__file__).resolve().parents[1]
RUNNERS = {
    "threads x2": "{runner: threads, max_workers: 2}",
    "dask x1": "{runner: dask, max_workers: 1}",
    "dask x2": "{runner: dask, max_workers: 2}",
}


@dataclass(frozen=True)
class ScaleRun:
    size: Size
    runner: str
    wall: float
    stages: dict[str, float]
    rows: int
    returncode: int
    validate_wall: float = 0.0  # first validate task's start to the last one's end, summed over levels
    validate_task_seconds: float = 0.0  # the validate tasks' own durations, summed (work done on workers)
    merge_seconds: float = 0.0  # the merge tasks (one writer: never parallel)

    @property
    def rows_per_second(self) -> float:
        seconds = self.stages.get("validate_and_merge", 0.0)
        return self.rows / seconds if seconds else 0.0

    def line(self) -> str:
        stages = ", ".join(f"{k} {v:.1f}" for k, v in sorted(self.stages.items()) if v >= 0.05)
        return (
            f"| {self.size.label} | {self.runner} | {self.wall:.1f} | {stages} | {self.validate_wall:.1f} | "
            f"{self.validate_task_seconds:.1f} | {self.merge_seconds:.1f} | {self.rows:,} | "
            f"{self.rows_per_second:,.0f} | {'ok' if self.returncode == 0 else f'exit {self.returncode}'} |"
        )


def task_seconds(api_url: str) -> tuple[float, float, float]:
    """(validate wall, validate task seconds, merge seconds) of the newest flow run, from Prefect's API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        [flow_run] = client.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=1)
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id])))
    spans: dict[str, list[tuple[float, float]]] = {}
    for run in runs:
        if run.start_time is None or run.end_time is None:
            continue
        group = "merge" if run.name.startswith("merge level") else "validate" if run.name.startswith("validate") else ""
        if group:
            spans.setdefault(group, []).append((run.start_time.timestamp(), run.end_time.timestamp()))
    validate = spans.get("validate", [])
    return covered_seconds(validate), sum(e - s for s, e in validate), sum(e - s for s, e in spans.get("merge", []))


def covered_seconds(spans: list[tuple[float, float]]) -> float:
    """Seconds during which at least one of the (start, end) spans ran: the wall time of parallel work."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def measure(work: Path, size: Size, runner: str, api_url: str) -> ScaleRun:
    data = ensure_dataset(work, size)
    run_dir = work / "scale-runs" / f"{size.name}-{runner.replace(' ', '')}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    # beside the generated config, whose folders are relative to it; only the parallelism block differs
    config = data.root / f"din-scale-{runner.replace(' ', '')}.yaml"
    text = re.sub(r"(?m)^parallelism:.*\n", "", data.config.read_text(encoding="utf-8"))
    config.write_text(text + f"parallelism: {RUNNERS[runner]}\n", encoding="utf-8")
    env = clean_env()
    env["PREFECT_API_URL"] = api_url
    command = [*din_command(), "run", "--config", str(config), "--data-dir", str(run_dir / "data")]
    sample = run_measured(command, env, cwd=ROOT, log=run_dir / "din.log")
    stages, rows = din_figures(run_dir / "data")
    validate_wall, validate_busy, merge = task_seconds(api_url)
    return ScaleRun(size, runner, sample.wall, stages, rows, sample.returncode, validate_wall, validate_busy, merge)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="S,M=3000000/600", help="comma-separated: S, L or NAME=ROWS/FILES")
    parser.add_argument("--runners", default=",".join(RUNNERS), help=f"comma-separated, of: {', '.join(RUNNERS)}")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "bench" / "work")
    args = parser.parse_args(argv)
    sizes = [Size.parse(s.strip()) for s in args.sizes.split(",") if s.strip()]
    runners = [r.strip() for r in args.runners.split(",") if r.strip()]
    print(
        "| network | batches on | wall s | stage s | validate wall s | validate task s | merge s | response rows "
        "| rows/s of validate_and_merge | |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    failed = 0
    with maybe_server(args.work_dir, None, wanted=True) as server:
        assert server is not None
        for size in sizes:
            for runner in runners:
                result = measure(args.work_dir, size, runner, server.api_url)
                failed += result.returncode != 0
                print(result.line(), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
