"""Run `din run` beside its peers on the same files, in one invocation, and report the figures.

    python -m bench.run                      # S and L, 3 repeats each (./dev bench)
    python -m bench.run --quick              # tiny sizes, 1 repeat: a few minutes
    python -m bench.run --sizes S --repeats 5

Per size, every repeat runs each system once, in a rotating order (so that no system always runs
first or last): `din run` against a local Prefect server on a fresh data dir followed by its
no-change rerun, an empty-config `din run`, bare DuckDB, the checked DuckDB script and dlt. `din run`
in ephemeral mode runs once per size, `din check` on a 100k-row file `--repeats` times at the end, and
last the peak memory of `din run` on one 200 MB delivery (bench.memory; `--memory-mb 0` leaves it out).
Results go to `--out` (rewritten after every run, so a long run can be watched) and to stdout.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from bench import report
from bench.baselines import parse_result
from bench.data import (
    QUICK,
    Dataset,
    Size,
    change_one_file,
    check_file,
    empty_config,
    ensure_dataset,
    private_network,
)
from bench.measure import Sample, run_measured
from bench.memory import measure_memory
from bench.prefect_server import SETTLE_SECONDS, Server, clean_env, prefect_server

ROOT = Path(__file__).resolve().parents[1]
EPHEMERAL_STARTUP_SECONDS = "180"  # Prefect's default of 20 s is too short for a cold start on a busy 2-core box
RUN_TIMEOUT = 4 * 3600.0
TRACKED_RESULTS = ROOT / "bench" / "results" / "latest.md"
QUICK_RESULTS = "results-quick.md"  # tiny sizes say little: their page stays out of the tracked results


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="S,L", help="comma-separated: S, L or NAME=ROWS/FILES (default S,L)")
    parser.add_argument("--repeats", type=int, default=None, help="runs per system and size (default 3; quick: 1)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (S=10k rows/10 files, L=100k/100)")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"the results page (default {TRACKED_RESULTS.relative_to(ROOT)}; with --quick <work-dir>/{QUICK_RESULTS})",
    )
    parser.add_argument("--work-dir", type=Path, default=ROOT / "bench" / "work", help="data and scratch space")
    parser.add_argument("--check-rows", type=int, default=100_000, help="rows of the `din check` file")
    parser.add_argument("--no-server", action="store_true", help="run `din run` in ephemeral mode only")
    parser.add_argument(
        "--settle-seconds",
        type=float,
        default=SETTLE_SECONDS,
        help=f"at most this long, wait for a new Prefect server to be idle before timing (default {SETTLE_SECONDS:g})",
    )
    parser.add_argument(
        "--shared-prefect-home",
        action="store_true",
        help="ephemeral runs share one PREFECT_HOME under the work dir (warm database; used by the smoke test)",
    )
    parser.add_argument(
        "--prefect-home", type=Path, default=None, help="the server's PREFECT_HOME (default: <work-dir>/prefect-home)"
    )
    parser.add_argument("--no-ephemeral", action="store_true", help="skip the once-per-size ephemeral `din run`")
    parser.add_argument("--no-dlt", action="store_true", help="leave dlt out")
    parser.add_argument("--keep", action="store_true", help="keep each run's output folder")
    parser.add_argument(
        "--memory-mb",
        type=float,
        default=None,
        help="size of the one delivery whose `din run` peak memory is measured (default 200; quick: 20; 0: skip)",
    )
    return parser


@dataclass
class Bench:
    """The state of one benchmark invocation."""

    work: Path
    repeats: int
    server: Server | None
    shared_home: bool
    ephemeral: bool
    keep: bool
    with_dlt: bool
    quick: bool = False
    results: report.Results = field(default_factory=report.Results)
    notes: list[str] = field(default_factory=list)
    on_progress: Callable[[], None] = lambda: None
    settle_seconds: float = SETTLE_SECONDS  # at most, waiting for the server to be idle

    @property
    def mode(self) -> str:
        return report.SERVER if self.server else report.EPHEMERAL

    # -- environments and commands ------------------------------------------------------------

    def din_env(self, mode: str) -> dict[str, str]:
        env = clean_env()
        if mode == report.SERVER and self.server is not None:
            env["PREFECT_API_URL"] = self.server.api_url
        else:
            env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = EPHEMERAL_STARTUP_SECONDS
            if self.shared_home:
                env["PREFECT_HOME"] = str(self.work / "prefect-ephemeral")
        return env

    def scratch(self, *parts: str) -> Path:
        path = self.work.joinpath("runs", *parts)
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def done_with(self, path: Path, ok: bool) -> None:
        """Remove a run's folder, unless asked to keep it or a run in it failed (its log explains why)."""
        if ok and not self.keep:
            shutil.rmtree(path, ignore_errors=True)

    # -- measuring ----------------------------------------------------------------------------

    def measure(self, system: str, size: str, command: list[str], env: dict[str, str], log: Path) -> Sample:
        series = self.results.get(system, size)
        series.loads.append(os.getloadavg()[0])
        if self.server is not None:
            self.server.sample_rss()
        sample = run_measured(command, env, ROOT, log, timeout=RUN_TIMEOUT)
        ok = sample.ok or (system == report.CHECK and sample.returncode == 1)  # 1: the file has problems
        if ok:
            series.walls.append(sample.wall)
            series.peaks.append(sample.peak_rss)
        else:
            series.errors.append(f"exit {sample.returncode}: {error_line(sample.output)} (log {log})")
        _progress(system, size, sample, ok)
        return sample

    def din_run(self, data: Dataset, repeat: int, mode: str) -> None:
        """A first full load on a fresh data dir, then (server mode) its no-change rerun and a run after
        one response file changed (on a private hard-linked copy of the network, so the data set stays)."""
        out = self.scratch(data.size.name, f"din-{mode}-{repeat}")
        network = private_network(data, out / "network")
        command = [*din_command(), "run", "--config", str(network.config), "--data-dir", str(out / "data")]
        env = self.din_env(mode)

        def timed(system: str, log: str) -> Sample:
            label = report.din(system, mode)
            sample = self.measure(label, data.size.name, command, env, out / log)
            self._record_din(label, data.size.name, sample, out / "data")
            return sample

        samples = [timed(report.DIN_RUN, "run.log")]
        if samples[0].ok and (mode == self.mode):
            samples.append(timed(report.DIN_RERUN, "rerun.log"))
            change_one_file(network)
            samples.append(timed(report.DIN_CHANGED, "changed.log"))
            # The same network with its row-level tables in a fixed number of files: the switch publishes
            # every table anew (what a first load pays for the layout), then one changed file again.
            with network.config.open("a", encoding="utf-8") as config:
                config.write(f"\npublish: {{panel_buckets: {report.BENCH_BUCKETS}}}\n")
            samples.append(timed(report.DIN_TO_BUCKETS, "to-buckets.log"))
            change_one_file(network, index=0)  # another file than the first change's
            samples.append(timed(report.DIN_CHANGED_BUCKETS, "changed-b.log"))
        self.done_with(out, all(s.ok for s in samples))

    def _record_din(self, system: str, size: str, sample: Sample, data_dir: Path) -> None:
        if not sample.ok:
            return
        stages, rows = din_figures(data_dir)
        series = self.results.get(system, size)
        series.stages.append(stages)
        series.rows_out.append(rows)

    def warm_up(self) -> None:
        """One `din run` of the empty config against the server, not timed, then the server left to settle:
        the first run against a new server paid 0.5-0.7 s more than the next for the server's own first
        requests, and whichever system came first in the rotation paid it."""
        out = self.scratch("warm-up")
        config = empty_config(self.work)
        command = [*din_command(), "run", "--config", str(config), "--data-dir", str(out / "data")]
        sample = run_measured(command, self.din_env(self.mode), ROOT, out / "run.log", timeout=RUN_TIMEOUT)
        if self.server is not None:
            self.server.settle(timeout=self.settle_seconds)
        self.notes.append(
            f"Before the timed runs: one untimed `din run` of the empty config against the server "
            f"({sample.wall:.1f} s, exit {sample.returncode}), then the server left until it was idle."
        )
        self.done_with(out, sample.ok)

    def din_empty(self, data: Dataset, repeat: int) -> None:
        out = self.scratch(data.size.name, f"din-empty-{repeat}")
        config = empty_config(self.work)
        command = [*din_command(), "run", "--config", str(config), "--data-dir", str(out / "data")]
        system = report.din(report.DIN_EMPTY, self.mode)
        sample = self.measure(system, data.size.name, command, self.din_env(self.mode), out / "run.log")
        self.done_with(out, sample.ok)

    def baseline(self, system: str, module: str, data: Dataset, repeat: int) -> None:
        out = self.scratch(data.size.name, f"{module}-{repeat}")
        command = [sys.executable, "-m", f"bench.baselines.{module}", "--data", str(data.root), "--out", str(out)]
        sample = self.measure(system, data.size.name, command, clean_env(), out / "run.log")
        figures = parse_result(sample.output)
        if sample.ok and "rows_out" in figures:
            self.results.get(system, data.size.name).rows_out.append(int(figures["rows_out"]))
        self.done_with(out, sample.ok)

    def units(self, data: Dataset) -> list[Callable[[int], None]]:
        """What one repeat runs, each system once."""
        units: list[Callable[[int], None]] = [
            lambda r: self.din_run(data, r, self.mode),
            lambda r: self.din_empty(data, r),
            lambda r: self.baseline(report.BARE, "bare_duckdb", data, r),
            lambda r: self.baseline(report.CHECKED, "checked_duckdb", data, r),
        ]
        if self.with_dlt:
            units.append(lambda r: self.baseline(report.DLT, "dlt_load", data, r))
        return units

    def run_size(self, data: Dataset) -> None:
        units = self.units(data)
        for repeat in range(self.repeats):
            shift = repeat % len(units)
            for unit in units[shift:] + units[:shift]:
                unit(repeat)
                self.on_progress()
        if self.server is not None and self.ephemeral:
            self.din_run(data, 0, report.EPHEMERAL)
            self.on_progress()

    def run_check(self, path: Path, rows: int) -> None:
        command = [*din_command(), "check", str(path), "--kind", "responses"]
        for repeat in range(self.repeats):
            out = self.scratch("check", str(repeat))
            sample = self.measure(report.CHECK, f"{rows:,} rows", command, clean_env(), out / "check.log")
            self.results.get(report.CHECK, f"{rows:,} rows").rows_out.append(rows)
            self.done_with(out, sample.returncode in (0, 1))
            self.on_progress()


def error_line(output: str) -> str:
    """The line of a failed run's output that names the error (else its last line)."""
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "Exception" in line]
    return (errors or lines or ["(no output)"])[-1][:300]


def din_command() -> list[str]:
    """The `din` entry point of this environment."""
    script = Path(sys.executable).parent / "din"
    return [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]


def din_figures(data_dir: Path) -> tuple[dict[str, float], int]:
    """Stage seconds of the latest run and the response rows accepted so far, from the warehouse."""
    try:
        con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    except duckdb.Error:
        return {}, 0
    try:
        stages = con.execute("SELECT stage_seconds FROM ops.runs ORDER BY started_at DESC LIMIT 1").fetchall()
        rows = con.execute(
            "SELECT coalesce(sum(rows_accepted), 0) FROM ops.deliveries "
            "WHERE kind = 'responses' AND status = 'processed'"
        ).fetchall()
    finally:
        con.close()
    parsed = json.loads(stages[0][0]) if stages and stages[0][0] else {}
    return {k: float(v) for k, v in parsed.items()}, int(rows[0][0])


def _progress(system: str, size: str, sample: Sample, ok: bool) -> None:
    status = "ok" if ok else f"FAILED (exit {sample.returncode})"
    print(
        f"  {system:<40} {size:<9} {sample.wall:8.2f} s {sample.peak_rss / report.MB:8,.0f} MB  {status}",
        flush=True,
    )


def dlt_available() -> bool:
    return importlib.util.find_spec("dlt") is not None


@contextmanager
def maybe_server(
    bench_work: Path, home: Path | None, wanted: bool, settle: float = SETTLE_SECONDS
) -> Iterator[Server | None]:
    if not wanted:
        yield None
        return
    prefect = Path(sys.executable).parent / "prefect"
    home = home or bench_work / "prefect-home"
    with prefect_server(prefect, home, bench_work / "prefect-server.log") as server:
        server.settled_in = server.settle(timeout=settle)
        yield server


def results_path(args: argparse.Namespace, work: Path) -> Path:
    """Where the results page goes: `--out`, else the tracked page, but never that one for --quick."""
    if args.out is not None:
        return Path(args.out)
    return work / QUICK_RESULTS if args.quick else TRACKED_RESULTS


def sizes_of(args: argparse.Namespace) -> list[Size]:
    if args.quick:
        wanted = {s.strip() for s in args.sizes.split(",")}
        return [s for s in QUICK if s.name in wanted] or list(QUICK)
    return [Size.parse(s.strip()) for s in args.sizes.split(",") if s.strip()]


def git_state() -> str:
    """The commit the pipeline code was at, and whether it had uncommitted changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "din", "flows", "warehouse", "transforms", "expectations"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
    except OSError:
        return "unknown"
    return head.stdout.strip() + (" + uncommitted pipeline changes" if dirty.stdout.strip() else "")


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # so that the server and the running child are stopped on the way out


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    args = _parser().parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    work = args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    out = results_path(args, work)
    command = "python -m bench.run " + shlex.join(sys.argv[1:] if argv is None else argv)
    sizes = sizes_of(args)
    memory_lines: list[str] = []
    datasets = [_dataset(work, size) for size in sizes]
    check_path = check_file(work, args.check_rows)
    with_dlt = not args.no_dlt and dlt_available()
    info = report.machine()
    info["pipeline code"] = git_state()
    with maybe_server(work, args.prefect_home, not args.no_server, args.settle_seconds) as server:
        bench = Bench(
            work, repeats, server, args.shared_prefect_home, not args.no_ephemeral, args.keep, with_dlt, args.quick
        )
        bench.settle_seconds = args.settle_seconds
        bench.notes += _notes(args, datasets, server, with_dlt, repeats)
        bench.on_progress = lambda: _write(out, bench, info, datasets, command)
        if server is not None:
            bench.warm_up()
        load_before = os.getloadavg()
        for data in datasets:
            print(f"{data.size.label}: {'reused' if data.reused else 'generated'} {data.root}", flush=True)
            bench.run_size(data)
        bench.run_check(check_path, args.check_rows)
        memory_mb = args.memory_mb if args.memory_mb is not None else (20.0 if args.quick else 200.0)
        if memory_mb > 0:
            print(f"memory: `din run` on one responses CSV of {memory_mb:g} MB (and on a small one)", flush=True)
            memory_lines = measure_memory(work, memory_mb).lines()
            bench.notes += memory_lines
        if server is not None:
            bench.notes.append(f"Prefect server peak RSS (sampled between runs): {server.peak_rss / report.MB:,.0f} MB")
    if not with_dlt:
        bench.results.get(report.DLT, "-").skipped = _dlt_skip_reason(args)
    if git_state() != info["pipeline code"]:
        bench.notes.append(f"The pipeline code changed during the benchmark: now {git_state()}; compare with care.")
    bench.notes.append(
        f"1-minute load average: {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after "
        f"(on {os.cpu_count()} cores; other work on the machine inflates walls)"
    )
    _write(out, bench, info, datasets, command)
    print()
    print(report.console(bench.results, bench.mode, quick=args.quick))
    for line in memory_lines:
        print(line)
    print(f"\nwritten: {out}")
    return 0


def _dataset(work: Path, size: Size) -> Dataset:
    began = time.perf_counter()
    data = ensure_dataset(work, size)
    if not data.reused:
        print(f"generated {size.label} in {time.perf_counter() - began:.1f} s", flush=True)
    return data


def _dlt_skip_reason(args: argparse.Namespace) -> str:
    return "left out (--no-dlt)" if args.no_dlt else "dlt is not installed (install bench/requirements.lock)"


def _notes(
    args: argparse.Namespace, datasets: list[Dataset], server: Server | None, with_dlt: bool, repeats: int
) -> list[str]:
    notes = [
        f"{repeats} repeat(s) per system and size, systems in rotating order; ephemeral `din run` once per size.",
        "Walls include process start-up and imports; peak RSS is the summed RSS of the process tree "
        "(psutil, every 50 ms), so the ephemeral mode includes its temporary Prefect server.",
        "Every `din run` starts on a fresh data dir (first full load); the rerun repeats it on the same dir; "
        "then the middle response file is re-exported with its rows reversed (same rows, new content) and "
        "`din run` runs once more: the one-changed-file case. Then the config asks for "
        f"`publish: {{panel_buckets: {report.BENCH_BUCKETS}}}` and `din run` publishes every table anew in that "
        "layout (the switch), and the first response file is changed the same way: the one-changed-file case "
        "in that layout.",
        "`din check` exits 1 on the file's planted faults; that counts as a completed run.",
    ]
    if server is not None:
        home = args.prefect_home or "<work-dir>/prefect-home"
        notes.append(
            f"Prefect server (PREFECT_HOME={home}) healthy after {server.started_in:.1f} s, idle (under a tenth "
            f"of a core over two seconds) {server.settled_in:.1f} s later."
        )
    else:
        notes.append("No Prefect server (--no-server): every `din run` ran in ephemeral mode.")
    if args.quick:
        notes.append(
            "--quick: tiny sizes; targets that are defined at S and L are not evaluated "
            "(only the empty-config run and `din check` are size-independent)."
        )
    if with_dlt:
        notes.append(
            "dlt uses `read_csv_duckdb(use_pyarrow=True, chunk_size=100000)`; its default `read_csv()` "
            "(pandas → dicts, row-by-row normalisation) took 483 s and 2.9 GB for 1M rows here."
        )
    for data in datasets:
        notes.append(
            f"{data.size.name}: {data.manifest['written']['response_rows']:,} responses "
            f"({data.valid_rows:,} valid), {data.bytes / report.MB:,.0f} MB of CSV, "
            f"{'reused' if data.reused else 'generated'}."
        )
    return notes


def _write(out: Path, bench: Bench, info: dict[str, str], datasets: list[Dataset], command: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    labels = [d.size.label for d in datasets]
    text = report.markdown(bench.results, info, labels, bench.notes, command, bench.mode, quick=bench.quick)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)


if __name__ == "__main__":
    sys.exit(main())
