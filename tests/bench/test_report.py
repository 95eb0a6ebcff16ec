"""The benchmark's target table: every issue target present, and --quick never fails a target defined at S and L."""

from __future__ import annotations

from pathlib import Path

from bench import report
from bench.run import QUICK_RESULTS, TRACKED_RESULTS, _parser, results_path

SERVER_RUN = report.din(report.DIN_RUN, report.SERVER)


def _results(slow: bool) -> report.Results:
    """Figures for S and L; `slow` makes every din figure miss its target."""
    factor = 10.0 if slow else 1.0
    results = report.Results()
    figures = {
        (SERVER_RUN, "S"): 3.0 * factor,
        (SERVER_RUN, "L"): 20.0 * factor,
        (report.din(report.DIN_RERUN, report.SERVER), "S"): 1.5 * factor,
        (report.din(report.DIN_EMPTY, report.SERVER), "S"): 1.4 * factor,
        (report.din(report.DIN_CHANGED, report.SERVER), "L"): 2.5 * factor,
        (report.din(report.DIN_CHANGED_BUCKETS, report.SERVER), "L"): 2.0 * factor,
        (report.BARE, "S"): 1.6,
        (report.BARE, "L"): 10.5,
        (report.CHECKED, "L"): 14.0,
        (report.DLT, "L"): 200.0,
        (report.CHECK, "100,000 rows"): 1.5 * factor,
    }
    for (system, size), wall in figures.items():
        series = results.get(system, size)
        series.walls.append(wall)
        series.peaks.append(int((1.2 if not slow else 3.0) * report.GB))
    return results


def _verdicts(results: report.Results, quick: bool) -> dict[str, str]:
    return {t.name: t.verdict for t in report.targets(results, report.SERVER, quick=quick)}


def test_every_issue_target_is_evaluated_at_s_and_l() -> None:
    passing, failing = _verdicts(_results(slow=False), False), _verdicts(_results(slow=True), False)
    names = " ".join(passing)
    for wanted in (
        "L / bare DuckDB L",
        "L / checked DuckDB L",
        "dlt append L",
        "S / bare DuckDB S",
        "one changed file",
        "one changed file of the network (L), publish.panel_buckets 64",
        "no-change rerun (S)",
        "peak RSS L",
        "empty-config run",
        "din check",
    ):
        assert wanted in names, wanted
    assert set(passing.values()) == {"PASS"}, passing
    ratios_kept = ("no-change rerun / empty-config", "wall L / S")  # every din figure ×10: these ratios hold
    assert all(v == "FAIL" for k, v in failing.items() if not any(r in k for r in ratios_kept)), failing
    assert all(v == "PASS" for k, v in failing.items() if any(r in k for r in ratios_kept)), failing


def test_quick_marks_scaled_targets_not_evaluated_and_keeps_size_independent_ones() -> None:
    verdicts = _verdicts(_results(slow=True), True)
    assert "FAIL" not in {v for k, v in verdicts.items() if k not in ("empty-config run",) and "din check" not in k}
    assert verdicts["empty-config run"] == "FAIL"  # no data at all: the same run at any size
    assert [v for k, v in verdicts.items() if "din check" in k] == ["FAIL"]
    scaled = [v for k, v in verdicts.items() if k != "empty-config run" and "din check" not in k]
    assert scaled and set(scaled) == {report.QUICK_VERDICT}
    page = report.markdown(_results(slow=True), {}, ["S", "L"], [], "python -m bench.run --quick", quick=True)
    assert page.count("| FAIL |") == 2


def test_quick_results_stay_out_of_the_tracked_file(tmp_path: Path) -> None:
    assert results_path(_parser().parse_args(["--quick"]), tmp_path) == tmp_path / QUICK_RESULTS
    assert results_path(_parser().parse_args([]), tmp_path) == TRACKED_RESULTS
    chosen = tmp_path / "mine.md"
    assert results_path(_parser().parse_args(["--quick", "--out", str(chosen)]), tmp_path) == chosen
