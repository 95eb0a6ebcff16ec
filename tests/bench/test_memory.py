"""bench.memory: the generated delivery has the size asked for, and the figures say whether the limits hold.
(The measurement itself runs `din run` twice on an ephemeral server: `./dev bench` or `python -m bench.memory`.)"""

from __future__ import annotations

from pathlib import Path

from bench.measure import Sample
from bench.memory import MB, MemoryFigures, ensure_network


def test_the_network_has_one_responses_file_of_about_the_size_asked_for(tmp_path: Path) -> None:
    config, size, rows = ensure_network(tmp_path, 2)
    assert config.is_file()
    assert 1.8 * MB < size < 2.2 * MB and rows > 10_000
    assert ensure_network(tmp_path, 2) == (config, size, rows)  # reused, not generated again


def test_the_figures_compare_what_the_file_adds_with_the_file_and_the_whole_peak_with_1_gb() -> None:
    def sample(peak_mb: float) -> Sample:
        return Sample(wall=10.0, peak_rss=int(peak_mb * MB), returncode=0, output="")

    within = MemoryFigures(200 * MB, 1_000, sample(901), sample(569))
    assert within.under_limits == (True, True)
    assert round(within.ratio, 2) == 4.5 and round(within.added_ratio, 2) == 1.66
    lines = within.lines()
    assert "peak RSS 901 MB (4.50x the file" in lines[0] and "peak RSS 569 MB" in lines[1]
    assert lines[-1].endswith("what the file added under 3x the file: yes; whole peak under 1,024 MB: yes")
    heavy = MemoryFigures(50 * MB, 1_000, sample(800), sample(569))  # under 1 GB, but the file added 4.6x
    assert heavy.under_limits == (False, True)
    over = MemoryFigures(200 * MB, 1_000, sample(1_800), sample(500))
    assert over.under_limits == (False, False)
    assert over.lines()[-1].endswith("what the file added under 3x the file: NO; whole peak under 1,024 MB: NO")
