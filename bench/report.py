"""The benchmark's figures: one line per system and size, the ratios, and the targets (PASS/FAIL)."""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata

import psutil

GB = 1024**3
MB = 1024**2
PACKAGES = ("prefect", "duckdb", "polars", "great-expectations", "dlt", "pyarrow", "psutil")

# the systems, in the order the report lists them; `din run` systems carry their Prefect mode
DIN_RUN = "din run"
DIN_RERUN = "din run no-change rerun"
DIN_CHANGED = "din run one changed file"
DIN_EMPTY = "din run empty config"
BENCH_BUCKETS = 64  # the panel_buckets of the benchmark's runs in that layout
DIN_TO_BUCKETS = f"din run switched to panel_buckets {BENCH_BUCKETS}"
DIN_CHANGED_BUCKETS = f"din run one changed file, panel_buckets {BENCH_BUCKETS}"
BARE = "bare DuckDB"
CHECKED = "checked DuckDB"
DLT = "dlt append (arrow reader)"
CHECK = "din check"
SYSTEMS = (DIN_RUN, DIN_RERUN, DIN_CHANGED, DIN_TO_BUCKETS, DIN_CHANGED_BUCKETS, DIN_EMPTY, BARE, CHECKED, DLT, CHECK)
SERVER, EPHEMERAL = "server", "ephemeral"


def din(system: str, mode: str) -> str:
    """The label of a `din run` system in a Prefect mode, e.g. `din run (server)`."""
    return f"{system} ({mode})"


def _order(label: str) -> tuple[int, int]:
    for index, system in enumerate(SYSTEMS):
        if label == system or label.startswith(system + " ("):
            return index, int(label.endswith(f"({EPHEMERAL})"))
    return len(SYSTEMS), 0


@dataclass
class Series:
    """Every run of one system at one size."""

    system: str
    size: str
    walls: list[float] = field(default_factory=list)
    peaks: list[int] = field(default_factory=list)
    rows_out: list[int] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)  # 1-minute load average when each run started
    stages: list[dict[str, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    skipped: str | None = None

    @property
    def wall(self) -> float | None:
        return statistics.median(self.walls) if self.walls else None

    @property
    def peak(self) -> int | None:
        return int(statistics.median(self.peaks)) if self.peaks else None

    @property
    def max_peak(self) -> int | None:
        return max(self.peaks) if self.peaks else None

    def line(self) -> str:
        """One row of the results table."""
        if not self.walls:
            why = self.skipped or ("; ".join(self.errors[:1]) if self.errors else "not run")
            return f"| {self.system} | {self.size} | – | – | – | – | – | {why} |"
        walls = f"{min(self.walls):.2f}–{max(self.walls):.2f}"
        peaks = f"{min(self.peaks) / MB:,.0f}–{max(self.peaks) / MB:,.0f}"
        rows = ", ".join(sorted({f"{r:,}" for r in self.rows_out})) or "–"
        note = f"{len(self.errors)} failed run(s): {self.errors[0][:80]}" if self.errors else ""
        load = f"{min(self.loads):.1f}–{max(self.loads):.1f}" if self.loads else "–"
        return (
            f"| {self.system} | {self.size} | {len(self.walls)} | {self.wall:.2f} ({walls}) | "
            f"{self.peak / MB:,.0f} ({peaks}) | {rows} | {load} | {note} |"
        )


class Results:
    """All series, keyed by (system, size)."""

    def __init__(self) -> None:
        self.series: dict[tuple[str, str], Series] = {}
        self.sizes: list[str] = []  # in the order they were first measured

    def get(self, system: str, size: str) -> Series:
        if size not in self.sizes:
            self.sizes.append(size)
        return self.series.setdefault((system, size), Series(system, size))

    def find(self, system: str, size: str) -> Series | None:
        found = self.series.get((system, size))
        return found if found and found.walls else None

    def ordered(self) -> list[Series]:
        return sorted(self.series.values(), key=lambda s: (_order(s.system), self.sizes.index(s.size)))


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "memory": f"{psutil.virtual_memory().total / GB:.1f} GB",
        "cpu": _cpu_model(),
        "os": platform.platform(),
        "python": platform.python_version(),
        **{name: _version(name) for name in PACKAGES},
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


@dataclass(frozen=True)
class Target:
    """One row of the target table: a measured value against a bound."""

    name: str
    value: str
    bound: str
    verdict: str  # PASS, FAIL or n/a


def _ratio(a: Series | None, b: Series | None) -> float | None:
    if a is None or b is None or not a.wall or not b.wall:
        return None
    return a.wall / b.wall


def _target(name: str, value: float | None, bound: str, ok: Callable[[float], bool], unit: str = "×") -> Target:
    if value is None:
        return Target(name, "–", bound, "n/a")
    shown = f"{value:.2f} s" if unit == "s" else f"{value:.2f}{unit}"
    return Target(name, shown, bound, "PASS" if ok(value) else "FAIL")


QUICK_VERDICT = "not evaluated (--quick)"


def targets(
    results: Results, mode: str = SERVER, small: str = "S", large: str = "L", quick: bool = False
) -> list[Target]:
    """The issue's target table, evaluated on what was measured (n/a where a figure is missing).

    With `quick` the sizes are tiny stand-ins named S and L: a target defined at S or L says nothing
    there, so only the size-independent ones (the empty-config run, `din check` on its fixed file) get
    a verdict and the rest are marked as not evaluated rather than failed.
    """
    din_l, din_s = results.find(din(DIN_RUN, mode), large), results.find(din(DIN_RUN, mode), small)
    rerun, empty, changed = din(DIN_RERUN, mode), din(DIN_EMPTY, mode), din(DIN_CHANGED, mode)
    check = next((s for s in results.ordered() if s.system == CHECK and s.walls), None)
    scaled = [
        _target(
            f"`din run` ({mode}) {large} / bare DuckDB {large}",
            _ratio(din_l, results.find(BARE, large)),
            "≤ 2.5",
            lambda v: v <= 2.5,
        ),
        _target(
            f"`din run` ({mode}) {large} / checked DuckDB {large}",
            _ratio(din_l, results.find(CHECKED, large)),
            "≤ 1.5",
            lambda v: v <= 1.5,
        ),
        _target(
            f"dlt append {large} / `din run` {large}",
            _ratio(results.find(DLT, large), din_l),
            "≥ 5",
            lambda v: v >= 5,
        ),
        _target(
            f"`din run` ({mode}) {small} / bare DuckDB {small}",
            _ratio(din_s, results.find(BARE, small)),
            "≤ 3",
            lambda v: v <= 3,
        ),
        _target(
            f"one changed file of the network ({large})",
            _wall(results.find(changed, large)),
            "≤ 3 s",
            lambda v: v <= 3,
            unit="s",
        ),
        _target(
            f"one changed file of the network ({large}), publish.panel_buckets {BENCH_BUCKETS}",
            _wall(results.find(din(DIN_CHANGED_BUCKETS, mode), large)),
            "≤ 3 s",
            lambda v: v <= 3,
            unit="s",
        ),
        _target(f"no-change rerun ({small})", _wall(results.find(rerun, small)), "≤ 2 s", lambda v: v <= 2, unit="s"),
        _target(
            f"no-change rerun / empty-config run ({small})",
            _ratio(results.find(rerun, small), results.find(empty, small)),
            "≤ 1.2",
            lambda v: v <= 1.2,
        ),
        _memory_target(din_l, din_s, large, small),
        _target(f"`din run` wall {large} / {small}", _ratio(din_l, din_s), "≤ 8", lambda v: v <= 8),
    ]
    if quick:
        scaled = [Target(t.name, t.value, t.bound, QUICK_VERDICT) for t in scaled]
    empty_run = results.find(empty, small) or results.find(empty, large)
    fixed = [
        _target("empty-config run", _wall(empty_run), "≤ 2 s", lambda v: v <= 2, unit="s"),
        _target(
            f"`din check` on {check.size if check else '100k rows'}",
            check.wall if check else None,
            "≤ 2 s",
            lambda v: v <= 2,
            unit="s",
        ),
    ]
    return scaled + fixed


def _wall(series: Series | None) -> float | None:
    return series.wall if series is not None else None


def _memory_target(din_l: Series | None, din_s: Series | None, large: str, small: str) -> Target:
    name = f"`din run` peak RSS {large} (max over runs; ÷ peak {small} for information)"
    if din_l is None or din_l.max_peak is None:
        return Target(name, "–", "≤ 1.5 GB", "n/a")
    peak_l = din_l.max_peak
    value = f"{peak_l / GB:.2f} GB"
    if din_s is not None and din_s.max_peak:
        value += f", {peak_l / din_s.max_peak:.2f}×"
    return Target(name, value, "≤ 1.5 GB", "PASS" if peak_l <= 1.5 * GB else "FAIL")


def stage_table(results: Results) -> list[str]:
    """Median seconds per stage of `din run` (from ops.runs.stage_seconds), per system and size."""
    lines = ["| system | size | stage seconds (median over runs) |", "|---|---|---|"]
    for s in results.ordered():
        if not s.stages:
            continue
        names = sorted({k for stage in s.stages for k in stage})
        medians = {n: statistics.median(st.get(n, 0.0) for st in s.stages) for n in names}
        lines.append(f"| {s.system} | {s.size} | " + ", ".join(f"{n} {v:.2f}" for n, v in medians.items()) + " |")
    return lines if len(lines) > 2 else []


def markdown(
    results: Results,
    info: dict[str, str],
    sizes: Sequence[str],
    notes: Sequence[str],
    command: str,
    mode: str = SERVER,
    quick: bool = False,
) -> str:
    """The whole results page."""
    out = ["# din-engagement benchmark results", "", f"Command: `{command}`", ""]
    out += ["## Machine", "", "| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in info.items()]
    out += ["", "## Data", ""] + [f"- {s}" for s in sizes]
    out += ["", "## Results (wall s and peak RSS MB of the whole process tree: median (min–max))", ""]
    out += [
        "| system | size | runs | wall s | peak RSS MB | rows out | load avg at start | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    out += [s.line() for s in results.ordered()]
    out += ["", "## Targets", "", "| target | measured | bound | verdict |", "|---|---|---|---|"]
    out += [f"| {t.name} | {t.value} | {t.bound} | {t.verdict} |" for t in targets(results, mode, quick=quick)]
    stages = stage_table(results)
    if stages:
        out += ["", "## Where `din run` spends its time (ops.runs.stage_seconds)", "", *stages]
    if notes:
        out += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(out) + "\n"


def console(results: Results, mode: str = SERVER, quick: bool = False) -> str:
    """One line per system and size, then the targets: what `python -m bench.run` prints."""
    lines = [f"{'system':<40} {'size':<9} {'runs':>4} {'wall s (min–max)':>24} {'peak RSS MB':>12}  rows out"]
    for s in results.ordered():
        if not s.walls:
            lines.append(f"{s.system:<40} {s.size:<9} {'–':>4} {'skipped: ' + (s.skipped or 'failed'):>24}")
            continue
        span = f"{s.wall:.2f} ({min(s.walls):.2f}–{max(s.walls):.2f})"
        rows = ",".join(sorted({str(r) for r in s.rows_out})) or "–"
        err = f"  [{len(s.errors)} failed]" if s.errors else ""
        lines.append(f"{s.system:<40} {s.size:<9} {len(s.walls):>4} {span:>24} {s.peak / MB:>12,.0f}  {rows}{err}")
    lines.append("")
    lines += [f"{t.verdict:<5} {t.name}: {t.value} (target {t.bound})" for t in targets(results, mode, quick=quick)]
    return "\n".join(lines)
