"""The run's progress as plain objects: the words logged at a stage's start and end, rate and ETA, and
the live display only on a terminal."""

from __future__ import annotations

import io
import os
import pty

import pytest

from din.progress import LiveDisplay, Progress, StageState, duration, for_run, terminal_display


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Lines:
    """A logger that keeps what it was told, formatted."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: str, *args: object) -> None:
        self.lines.append(msg % args)


class Drawn:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.closed = False

    def show(self, state: StageState, now: float) -> None:
        self.lines.append(state.line(now))

    def end(self, state: StageState, now: float) -> None:
        self.lines.append("ended: " + state.line(now))

    def close(self) -> None:
        self.closed = True


def test_a_stage_is_logged_when_it_starts_with_its_counts_and_when_it_ends_with_time_and_rate() -> None:
    clock, log = Clock(), Lines()
    progress = Progress(log, clock=clock)
    progress.start("validate level 2 (attendance, responses)", 800, "files", "in 11 batch(es), 52,000,000 bytes")
    assert log.lines == ["validate level 2 (attendance, responses): 800 files in 11 batch(es), 52,000,000 bytes"]
    for _ in range(8):
        clock.now += 10.5
        progress.advance(100, 500_000)
    progress.finish()
    assert (
        log.lines[1]
        == "validate level 2 (attendance, responses) done: 800 files, 4,000,000 rows in 1 min 24 s (47,619 rows/s)"
    )
    assert progress.current is None
    progress.advance(5)  # after the stage: nothing to count, nothing breaks


def test_the_live_line_has_n_of_n_rows_rate_and_eta() -> None:
    clock, drawn = Clock(), Drawn()
    progress = Progress(display=drawn, clock=clock)
    progress.start("validate level 1 (roster)", 11, "files")
    assert drawn.lines[-1] == "validate level 1 (roster): 0 of 11 files, 0 rows"
    clock.now += 6
    progress.advance(3, 12_400)
    assert drawn.lines[-1] == "validate level 1 (roster): 3 of 11 files, 12,400 rows, 2,067 rows/s, ETA 16 s"
    clock.now += 30
    progress.advance(8, 30_000)
    assert drawn.lines[-1] == "validate level 1 (roster): 11 of 11 files, 42,400 rows, 1,178 rows/s"  # no ETA: done
    progress.finish()
    assert drawn.lines[-1] == "ended: validate level 1 (roster): 11 of 11 files, 42,400 rows, 1,178 rows/s"
    progress.close()
    assert drawn.closed and progress.display is None


def test_a_stage_of_unknown_size_counts_without_a_total_or_eta() -> None:
    state = StageState("pull", None, "files", started=0.0, done=4, rows=0)
    assert state.line(2.0) == "pull: 4 files, 0 rows"
    assert state.eta(2.0) is None and state.rate(2.0) is None


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(0.43, "0.4 s"), (9.96, "10.0 s"), (42.4, "42 s"), (185, "3 min 05 s"), (3720, "1 h 02 min")],
)
def test_durations_are_short_words(seconds: float, words: str) -> None:
    assert duration(seconds) == words


def test_nothing_is_drawn_when_the_output_is_not_a_terminal() -> None:
    assert terminal_display(io.StringIO()) is None
    progress = for_run(Lines(), io.StringIO())
    assert progress.display is None


def test_a_terminal_gets_the_live_display_unless_progress_is_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    leader, follower = pty.openpty()
    try:
        with os.fdopen(follower, "w", closefd=False) as terminal:
            assert isinstance(terminal_display(terminal), LiveDisplay)
            monkeypatch.setenv("DIN_PROGRESS", "off")
            assert terminal_display(terminal) is None
    finally:
        os.close(leader)
        os.close(follower)


def test_the_live_display_draws_the_stage_line_on_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "160")  # rich sizes the line to the terminal; an 80-column one ends it with …
    stream = io.StringIO()
    display = LiveDisplay(stream, force_terminal=True)
    clock = Clock()
    progress = Progress(display=display, clock=clock)
    progress.start("publish version 20260301T000000Z", 25, "tables")
    clock.now += 2
    progress.advance(5, 10_000)
    drawn = stream.getvalue()
    assert "publish version 20260301T000000Z: 5 of 25 tables, 10,000 rows, 5,000 rows/s, ETA 8.0 s" in drawn
    clock.now += 6
    progress.advance(20, 30_000)
    progress.finish()  # the stage's last line stays; nothing is redrawn after it
    ended = stream.getvalue()
    assert ended.rstrip().endswith("\x1b[?25h")  # rich stopped: the cursor is shown again
    assert "publish version 20260301T000000Z: 25 of 25 tables, 40,000 rows, 5,000 rows/s" in ended
    progress.start("next stage", 2, "files")
    assert "next stage: 0 of 2 files" in stream.getvalue()[len(ended) :]
    progress.close()
