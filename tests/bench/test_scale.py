"""bench.scale: the wall time of parallel validate tasks is the time covered by at least one of them."""

from __future__ import annotations

from bench.scale import covered_seconds


def test_parallel_spans_count_once_and_gaps_not_at_all() -> None:
    assert covered_seconds([]) == 0.0
    assert covered_seconds([(0.0, 4.0), (1.0, 3.0)]) == 4.0  # one inside the other
    assert covered_seconds([(0.0, 2.0), (1.0, 5.0)]) == 5.0  # overlapping
    assert covered_seconds([(10.0, 12.0), (0.0, 1.0), (0.5, 2.0)]) == 4.0  # two levels, a gap between
