"""Peak memory of `din run` on one large delivery: a large file is read, protected and validated a chunk at
a time from files spilled to disk, so what the file adds to the process tree's peak stays under 3x the
file, and the whole peak under 1 GB for a 200 MB CSV.

The 3x is measured on what the file adds, above the fixed cost of a run (Prefect's ephemeral server and
client, DuckDB, polars: about 570 MB here): held against the whole peak, it could not be met by any file
under about 190 MB, however it was read.

    python -m bench.memory              # a 200 MB responses CSV (generated once, reused)
    python -m bench.memory --mb 20      # smaller, quicker

Two runs of `din run` as an operator starts it (ephemeral Prefect server included, each on a fresh data
dir): one on a network whose responses are a single file of about `--mb` megabytes, one on the same
network with a small file, whose peak is the fixed cost (Prefect's server and client, DuckDB, polars).
The process tree's summed RSS is sampled (bench.measure); the figures printed are the peak, the fixed
cost, and what the large file added, each against the file's size. `./dev bench` runs this too.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import tools.demo_data as demo_data
from bench.measure import Sample, run_measured
from bench.prefect_server import clean_env

ROOT = Path(__file__).resolve().parents[1]
MB = 1024 * 1024
SAMPLE_ROWS = 20_000
LIMIT_FACTOR = 3.0  # peak RSS under 3x the largest delivered file
LIMIT_200MB = 1024 * MB  # and under 1 GB for a 200 MB file


@dataclass(frozen=True)
class MemoryFigures:
    """One measurement: the file, the peak of the large run, the peak of the small (fixed cost) run."""

    file_bytes: int
    rows: int
    large: Sample
    small: Sample

    @property
    def ratio(self) -> float:
        return self.large.peak_rss / self.file_bytes

    @property
    def added_ratio(self) -> float:
        """What the large file added to the fixed cost, per byte of file."""
        return max(0, self.large.peak_rss - self.small.peak_rss) / self.file_bytes

    @property
    def under_limits(self) -> tuple[bool, bool]:
        """(what the file added under 3x the file, the whole peak under 1 GB)."""
        added = self.large.peak_rss - self.small.peak_rss
        return added < LIMIT_FACTOR * self.file_bytes, self.large.peak_rss < LIMIT_200MB

    def lines(self) -> list[str]:
        under_factor, under_gb = self.under_limits
        return [
            f"memory: one responses CSV of {self.file_bytes / MB:,.0f} MB ({self.rows:,} rows): `din run` peak RSS "
            f"{self.large.peak_rss / MB:,.0f} MB ({self.ratio:.2f}x the file; exit {self.large.returncode}, "
            f"{self.large.wall:.0f} s)",
            f"memory: the same network with a small file (the fixed cost: Prefect's ephemeral server and client, "
            f"DuckDB, polars): peak RSS {self.small.peak_rss / MB:,.0f} MB",
            f"memory: what the large file added: {(self.large.peak_rss - self.small.peak_rss) / MB:,.0f} MB "
            f"({self.added_ratio:.2f}x the file)",
            f"memory: limits: what the file added under {LIMIT_FACTOR:g}x the file: {'yes' if under_factor else 'NO'}; "
            f"whole peak under {LIMIT_200MB // MB:,} MB: {'yes' if under_gb else 'NO'}",
        ]


def ensure_network(work: Path, megabytes: float) -> tuple[Path, int, int]:
    """A scaled demo network whose responses are one CSV of about `megabytes` MB: (config, bytes, rows)."""
    root = work / f"memory-{megabytes:g}mb"
    manifest = root / "done"
    if manifest.exists():
        rows = int(manifest.read_text())
        files = sorted((root / "deliveries" / "responses").glob("*.csv"))
        return root / "din.yaml", files[0].stat().st_size, rows
    shutil.rmtree(root, ignore_errors=True)
    sample = demo_data.write_scaled(work / "memory-sample", SAMPLE_ROWS, 1)
    per_row = sample.files[0].stat().st_size / SAMPLE_ROWS
    shutil.rmtree(work / "memory-sample", ignore_errors=True)
    rows = int(megabytes * MB / per_row)
    written = demo_data.write_scaled(root, rows, 1)
    manifest.write_text(str(rows))
    return written.config, written.files[0].stat().st_size, rows


def measure_memory(work: Path, megabytes: float) -> MemoryFigures:
    """Run `din run` on the large network and on a small one; their peaks."""
    config, size, rows = ensure_network(work, megabytes)
    small_config, _, _ = ensure_network(work, 0.5)
    env = clean_env()
    env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "180"
    samples = []
    for name, cfg in (("large", config), ("small", small_config)):
        out = work / "memory-runs" / name
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        command = [sys.executable, "-m", "app.cli", "run", "--config", str(cfg), "--data-dir", str(out / "data")]
        samples.append(run_measured(command, env, ROOT, out / "run.log", timeout=3600))
    return MemoryFigures(size, rows, samples[0], samples[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=200.0, help="size of the large delivery (default 200)")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "bench" / "work")
    args = parser.parse_args(argv)
    figures = measure_memory(args.work_dir, args.mb)
    for line in figures.lines():
        print(line)
    return 0 if figures.large.returncode in (0, 4) else 1


if __name__ == "__main__":
    sys.exit(main())
