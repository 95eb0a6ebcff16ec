"""Wall time and peak RSS of a whole process tree, sampled with psutil.

Every system runs as a subprocess in its own session; a sampler thread sums the resident set size of
the process and all of its descendants every `interval` seconds and keeps the peak. Summing RSS
counts shared pages once per process, so the figure is an upper bound of what the tree needs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

SAMPLE_SECONDS = 0.05
TAIL_CHARS = 4000


@dataclass(frozen=True)
class Sample:
    """One measured run of one command."""

    wall: float  # seconds, from spawn to exit
    peak_rss: int  # bytes, peak of the summed RSS of the process tree
    returncode: int
    output: str  # the tail of stdout and stderr together
    log: Path | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def tree_rss(process: psutil.Process) -> int:
    """Summed RSS of `process` and its descendants (processes that vanish meanwhile count as 0)."""
    total = 0
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            continue
    return total


class _Sampler(threading.Thread):
    def __init__(self, pid: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, tree_rss(self.process))
            self.done.wait(self.interval)


def run_measured(
    command: Sequence[str],
    env: Mapping[str, str],
    cwd: Path,
    log: Path,
    timeout: float | None = None,
    interval: float = SAMPLE_SECONDS,
) -> Sample:
    """Run `command`, writing its output to `log`; return wall time, peak tree RSS and exit code."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as sink:
        started = time.perf_counter()
        child = subprocess.Popen(
            list(command), cwd=cwd, env=dict(env), stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
        sampler = _Sampler(child.pid, interval)
        sampler.start()
        try:
            returncode = child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_group(child)
            returncode = -1
        except BaseException:  # interrupted (Ctrl-C, SIGTERM): take the child's whole group down too
            stop_group(child)
            raise
        wall = time.perf_counter() - started
        sampler.done.set()
        sampler.join()
    return Sample(wall, sampler.peak, returncode, tail(log), log)


def stop_group(child: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Stop a child started with `start_new_session=True` and everything in its process group."""
    if child.poll() is not None:
        return
    try:
        os.killpg(child.pid, signal.SIGTERM)
        child.wait(timeout=grace)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()


def tail(path: Path, chars: int = TAIL_CHARS) -> str:
    """The last `chars` characters of a log file."""
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - chars))
        return handle.read().decode("utf-8", errors="replace")
