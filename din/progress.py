"""How far a run has got: the stage, units (sources, files, tables) n of N, rows, rate and ETA.

One small object is handed down to whatever does the work (`start` a stage, `advance` it, `finish`
it), so a stage written another way (a DuckDB-native validate, a partitioned publish) keeps calling
the same three methods. What it reports goes two ways:

- the log, at each stage's start and end (the counts known then), for the Prefect UI and any log
  reader: `validate level 2 (attendance, responses): 800 files in 11 batches` ... `... done: 800 files,
  4,000,000 rows in 84.0 s (47,619 rows/s)`;
- on a terminal only, a live display (rich, which Prefect brings) redrawn as units complete. Nothing is
  drawn when the output is not a terminal (a worker, a pipe, CI), or with `DIN_PROGRESS=off`.

Lines that other log handlers print to the same terminal while the display is live (Prefect's console
handler prints through a rich console too) are printed above it, never through it.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO


class Log(Protocol):
    def info(self, msg: str, *args: object) -> None: ...


@dataclass
class StageState:
    """One stage's counts; `line` says them in words."""

    name: str
    total: int | None
    unit: str
    started: float
    done: int = 0
    rows: int = 0

    def elapsed(self, now: float) -> float:
        return max(now - self.started, 0.0)

    def rate(self, now: float) -> float | None:
        """Rows per second so far (None until there are rows and time has passed)."""
        elapsed = self.elapsed(now)
        return self.rows / elapsed if self.rows and elapsed > 0 else None

    def eta(self, now: float) -> float | None:
        """Seconds left at the pace of the units done so far (None until one is done)."""
        if not self.total or not self.done:
            return None
        return self.elapsed(now) * max(self.total - self.done, 0) / self.done

    def line(self, now: float) -> str:
        """`validate level 2: 3 of 11 files, 12,400 rows, 4,100 rows/s, ETA 6 s`."""
        parts = [f"{self.done} of {self.total} {self.unit}" if self.total is not None else f"{self.done} {self.unit}"]
        parts.append(f"{self.rows:,} rows")
        rate, eta = self.rate(now), self.eta(now)
        if rate is not None:
            parts.append(f"{rate:,.0f} rows/s")
        if eta is not None and self.done < (self.total or 0):
            parts.append(f"ETA {duration(eta)}")
        return f"{self.name}: " + ", ".join(parts)


def duration(seconds: float) -> str:
    """`0.4 s`, `42 s`, `3 min 05 s`, `1 h 02 min`: short, for people."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class Display(Protocol):
    """What draws the current stage (the live terminal display; tests can pass their own)."""

    def show(self, state: StageState, now: float) -> None: ...

    def end(self, state: StageState, now: float) -> None:
        """The stage is over: its last line stays, and nothing is redrawn until the next stage."""

    def close(self) -> None: ...


@dataclass
class Progress:
    """The run's progress: one stage at a time, logged at its start and end, drawn live on a terminal."""

    log: Log | None = None
    display: Display | None = None
    clock: Callable[[], float] = time.monotonic
    current: StageState | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def start(self, name: str, total: int | None, unit: str, detail: str = "") -> None:
        """A stage begins: `total` units of `unit` to do (None: not known); `detail` is logged with it."""
        with self._lock:
            self.current = StageState(name, total, unit, self.clock())
            if self.log is not None:
                counted = f"{total} {unit}" if total is not None else unit
                self.log.info("%s: %s%s", name, counted, f" {detail}" if detail else "")
            self._draw()

    def advance(self, units: int = 1, rows: int = 0) -> None:
        """`units` more done, having read or written `rows` rows."""
        with self._lock:
            if self.current is None:
                return
            self.current.done += units
            self.current.rows += rows
            self._draw()

    def finish(self, detail: str = "") -> None:
        """The stage is done: its counts, time and rate are logged."""
        with self._lock:
            state, self.current = self.current, None
            if state is None:
                return
            now = self.clock()
            if self.display is not None:
                self.display.end(state, now)
            if self.log is None:
                return
            rate = state.rate(now)
            self.log.info(
                "%s done: %s, %s rows in %s%s%s",
                state.name,
                f"{state.done} {state.unit}",
                f"{state.rows:,}",
                duration(state.elapsed(now)),
                f" ({rate:,.0f} rows/s)" if rate is not None else "",
                f"; {detail}" if detail else "",
            )

    def close(self) -> None:
        with self._lock:
            if self.display is not None:
                self.display.close()
                self.display = None

    def _draw(self) -> None:
        if self.display is not None and self.current is not None:
            self.display.show(self.current, self.clock())


#: For callers that report nowhere (a plain function called on its own, a test).
def silent() -> Progress:
    return Progress()


def for_run(log: Log | None, stream: TextIO | None = None) -> Progress:
    """A run's progress: logged, and drawn live when `stream` (default stderr) is a terminal."""
    return Progress(log, terminal_display(stream if stream is not None else sys.stderr))


def terminal_display(stream: TextIO) -> Display | None:
    """A live display on `stream` if it is a terminal (and DIN_PROGRESS is not `off`); else None."""
    if os.environ.get("DIN_PROGRESS", "").lower() in ("off", "0", "false", "no"):
        return None
    try:
        interactive = stream.isatty()
    except (AttributeError, ValueError):
        interactive = False
    return LiveDisplay(stream) if interactive else None


class LiveDisplay:
    """rich's progress bar with our words beside it; other rich consoles' lines go above it while it is live."""

    def __init__(self, stream: TextIO, force_terminal: bool | None = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn

        self.console = Console(file=stream, force_terminal=force_terminal, highlight=False)
        self._progress = Progress(
            TextColumn("{task.fields[line]}"),
            BarColumn(bar_width=24),
            console=self.console,
            transient=False,
            auto_refresh=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._task: Any = None
        self._stage: str | None = None
        self._borrowed: list[tuple[Any, Any]] = []

    def show(self, state: StageState, now: float) -> None:
        if self._task is None:
            self._borrow_consoles()
            self._progress.start()
        if state.name != self._stage:
            if self._task is not None:
                self._progress.update(self._task, visible=False)
            self._task = self._progress.add_task(state.name, total=state.total or None, line="")
            self._stage = state.name
        self._progress.update(self._task, completed=state.done, line=state.line(now))
        self._progress.refresh()

    def end(self, state: StageState, now: float) -> None:
        """Draw the stage's last line and stop: between stages the log prints as it would without us."""
        if self._task is None:
            return
        self.show(state, now)
        self.close()

    def close(self) -> None:
        if self._task is not None:
            self._progress.stop()
            self._progress.remove_task(self._task)
            self._task = None
            self._stage = None
        for handler, console in self._borrowed:
            setattr(handler, "console", console)  # noqa: B010
        self._borrowed = []

    def _borrow_consoles(self) -> None:
        """Handlers printing through their own rich console on our stream print through ours while live."""
        for handler in _handlers():
            console = getattr(handler, "console", None)
            if console is not None and getattr(console, "file", None) is self.console.file:
                self._borrowed.append((handler, console))
                setattr(handler, "console", self.console)  # noqa: B010 (a handler of another library)


def _handlers() -> list[logging.Handler]:
    loggers = [logging.getLogger()] + [
        logger for logger in logging.Logger.manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    return [handler for logger in loggers for handler in logger.handlers]
