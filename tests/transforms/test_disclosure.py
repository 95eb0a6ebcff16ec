"""Tests for transforms.disclosure: hand-worked tables plus property-based checks."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from transforms.disclosure import (
    DisclosureRule,
    _bridges,
    _protect_per_table,
    is_recoverable,
    protect_counts,
    protect_means,
    protect_shares,
    recoverable,
)

RULE = DisclosureRule()
PUB, ZERO, SUP, SEC, RND = "published", "zero", "suppressed", "suppressed_secondary", "rounded"
SUPPRESSED = {SUP, SEC}
PROPERTY = settings(
    max_examples=120, derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def expected(rows: list[tuple], names: list[str], rule: str = "suppress_under_5") -> pl.DataFrame:
    """Expected protect_counts output from (keys..., n, n_status, is_total) tuples."""
    schema = {name: pl.String for name in names} | {"n": pl.Int64, "n_status": pl.String, "is_total": pl.Boolean}
    return pl.DataFrame(rows, schema=schema, orient="row").with_columns(disclosure_rule=pl.lit(rule))


# --- DisclosureRule -------------------------------------------------------------------------------


def test_rule_defaults_and_labels() -> None:
    assert DisclosureRule("suppress_under_5", 5) == RULE
    assert (RULE.threshold, RULE.label, RULE.rounding) == (5, "suppress_under_5", None)
    assert DisclosureRule("suppress_under_10").threshold == 10
    assert DisclosureRule("suppress_under_5", 7).label == "suppress_under_7"
    assert DisclosureRule("round_to_5").label == "round_to_5"
    assert DisclosureRule("round_to_5", 10).label == "round_to_5_suppress_under_10"


def test_rule_from_config() -> None:
    assert DisclosureRule.from_config({"profile": "suppress_under_10"}) == DisclosureRule("suppress_under_10", 10)
    assert DisclosureRule.from_config({"profile": "round_to_5", "threshold": 10}).threshold == 10
    assert DisclosureRule.from_config(None) == RULE
    with pytest.raises(ValueError, match="unknown disclosure setting"):
        DisclosureRule.from_config({"profil": "round_to_5"})


@pytest.mark.parametrize(
    ("profile", "threshold", "error"),
    [
        ("suppress_under_3", None, ValueError),
        ("suppress_under_10", 5, ValueError),
        ("suppress_under_5", True, TypeError),
    ],
)
def test_rule_rejects_unknown_or_weaker_settings(profile: str, threshold: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        DisclosureRule(profile, threshold)  # type: ignore[arg-type]


def test_rule_description_is_plain_words() -> None:
    assert "Counts from 1 to 9 are suppressed" in DisclosureRule("suppress_under_10").description
    text = DisclosureRule("round_to_5").description
    assert "Counts from 1 to 4" in text and "nearest multiple of 5" in text and "3 or 4 rounds up" in text


# --- protect_counts: hand-worked tables -----------------------------------------------------------


def test_1d_complement_is_smallest_published_cell() -> None:
    cells = pl.DataFrame({"k": ["a", "b", "c", "d"], "n": [12, 3, 0, 20]})
    out = protect_counts(cells, count="n", groups=["k"], rule=RULE)
    want = [
        ("a", None, SEC, False),
        ("b", None, SUP, False),
        ("c", 0, ZERO, False),
        ("d", 20, PUB, False),
        (None, 35, PUB, True),
    ]
    assert_frame_equal(out, expected(want, ["k"]))


def test_1d_small_total_is_suppressed_and_needs_no_complement() -> None:
    out = protect_counts(pl.DataFrame({"k": ["a", "b", "c"], "n": [3, 0, 1]}), count="n", groups=["k"], rule=RULE)
    assert out["n_status"].to_list() == [SUP, ZERO, SUP, SUP]
    assert out["n"].to_list() == [None, 0, None, None]


def test_1d_by_makes_independent_tables() -> None:
    cells = pl.DataFrame(
        {"panel": ["p2", "p2", "p1", "p1"], "k": ["x", "y", "x", "y"], "n": [9, 7, 4, 30]},
        schema_overrides={"n": pl.UInt8},
    )
    out = protect_counts(cells, count="n", groups=["k"], by=["panel"], rule=RULE)
    want = [
        ("p1", "x", None, SUP, False),
        ("p1", "y", None, SEC, False),
        ("p1", None, 34, PUB, True),
        ("p2", "x", 9, PUB, False),
        ("p2", "y", 7, PUB, False),
        ("p2", None, 16, PUB, True),
    ]
    assert_frame_equal(out, expected(want, ["panel", "k"]))


def test_2d_complement_is_cheapest_rectangle() -> None:
    #        a   b   c | total          a   b   c | total
    # g1    14   3   6 |   23    ->    14  S   S2 |  23
    # g2     8   9  20 |   37           8   9  20 |  37
    # g3     0  15   7 |   22           0  S2  S2 |  22
    # total 22  27  33 |   82          22  27  33 |  82
    # a cycle through (g1, b) costs 6+7+15=28 via c/g3, 14+8+9=31 via a/g2, 35 via c/g2, more via totals.
    values = [[14, 3, 6], [8, 9, 20], [0, 15, 7]]
    cells = pl.DataFrame(
        [(g, c, values[i][j]) for i, g in enumerate(["g1", "g2", "g3"]) for j, c in enumerate("abc")],
        schema=["g", "c", "n"],
        orient="row",
    )
    out = protect_counts(cells, count="n", groups=["g"], categories="c", rule=RULE)
    want = [
        ("g1", "a", 14, PUB, False),
        ("g1", "b", None, SUP, False),
        ("g1", "c", None, SEC, False),
        ("g2", "a", 8, PUB, False),
        ("g2", "b", 9, PUB, False),
        ("g2", "c", 20, PUB, False),
        ("g3", "a", 0, ZERO, False),
        ("g3", "b", None, SEC, False),
        ("g3", "c", None, SEC, False),
        ("g1", None, 23, PUB, True),
        ("g2", None, 37, PUB, True),
        ("g3", None, 22, PUB, True),
        (None, "a", 22, PUB, True),
        (None, "b", 27, PUB, True),
        (None, "c", 33, PUB, True),
        (None, None, 82, PUB, True),
    ]
    assert_frame_equal(out, expected(want, ["g", "c"]))


def test_2d_single_row_suppresses_category_totals_that_would_reveal_cells() -> None:
    # One recommendation: each category total equals its cell, so it must be suppressed with it.
    votes = pl.DataFrame({"rec": ["r1"] * 3, "vote": ["for", "against", "abstain"], "n": [12, 3, 0]})
    out = protect_counts(votes, count="n", groups=["rec"], categories="vote", rule=RULE)
    want = [
        ("r1", "abstain", 0, ZERO, False),
        ("r1", "against", None, SUP, False),
        ("r1", "for", None, SEC, False),
        ("r1", None, 15, PUB, True),
        (None, "abstain", 0, ZERO, True),
        (None, "against", None, SUP, True),
        (None, "for", None, SEC, True),
        (None, None, 15, PUB, True),
    ]
    assert_frame_equal(out, expected(want, ["rec", "vote"]))


def test_2d_missing_combinations_are_output_as_zeros() -> None:
    cells = pl.DataFrame({"w": [1, 1, 2], "attended": ["yes", "no", "yes"], "n": [20, 6, 25]})
    out = protect_counts(cells, count="n", groups=["w"], categories="attended", rule=RULE)
    cell = out.filter(pl.col("w") == 2, pl.col("attended") == "no")
    assert cell.select("n", "n_status", "is_total").row(0) == (0, ZERO, False)
    assert out.height == 2 * 2 + 2 + 2 + 1


def test_round_to_5_rounds_every_published_count() -> None:
    # cells 13, 3, 0, 22, 8 (total 46): 3 is primary, 8 the smallest complement; 13->15, 22->20, 46->45.
    cells = pl.DataFrame({"k": list("abcde"), "n": [13, 3, 0, 22, 8]})
    out = protect_counts(cells, count="n", groups=["k"], rule=DisclosureRule("round_to_5"))
    want = [
        ("a", 15, RND, False),
        ("b", None, SUP, False),
        ("c", 0, ZERO, False),
        ("d", 20, RND, False),
        ("e", None, SEC, False),
        (None, 45, RND, True),
    ]
    assert_frame_equal(out, expected(want, ["k"], rule="round_to_5"))


def test_round_to_5_marks_exact_multiples_rounded_too() -> None:
    cells = pl.DataFrame({"k": ["a", "b"], "n": [10, 27]})
    out = protect_counts(cells, count="n", groups=["k"], rule=DisclosureRule("round_to_5"))
    assert out.select("n", "n_status").rows() == [(10, RND), (25, RND), (35, RND)]


def test_output_does_not_depend_on_row_order() -> None:
    rng = np.random.default_rng(7)
    cells = pl.DataFrame(
        [(f"g{i}", f"c{j}", int(rng.integers(0, 15))) for i in range(5) for j in range(4)],
        schema=["g", "c", "n"],
        orient="row",
    )
    first = protect_counts(cells, count="n", groups=["g"], categories="c", rule=RULE)
    again = protect_counts(
        cells.sample(fraction=1.0, shuffle=True, seed=3), count="n", groups=["g"], categories="c", rule=RULE
    )
    assert_frame_equal(first, again)


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (pl.DataFrame({"k": ["a", None], "n": [1, 2]}), ValueError),
        (pl.DataFrame({"k": ["a", "a"], "n": [1, 2]}), ValueError),
        (pl.DataFrame({"k": ["a", "b"], "n": [1, -2]}), ValueError),
        (pl.DataFrame({"k": ["a", "b"], "n": [1.0, 2.0]}), TypeError),
        (pl.DataFrame({"k": ["a", "b"], "n": [1, 2], "share": [0.3, 0.7]}), ValueError),
    ],
)
def test_protect_counts_rejects_bad_input(frame: pl.DataFrame, error: type[Exception]) -> None:
    with pytest.raises(error):
        protect_counts(frame, count="n", groups=["k"], rule=RULE)


# --- means and shares -----------------------------------------------------------------------------


def test_protect_means_suppresses_means_of_fewer_than_threshold() -> None:
    df = pl.DataFrame(
        {"project": ["p1", "p2", "p3"], "n": [3, 12, 0], "benefit": [4.0, 3.5, None], "risk": [2.0, 2.25, None]}
    )
    out = protect_means(df, n="n", values=["benefit", "risk"], rule=RULE)
    want = pl.DataFrame(
        {
            "project": ["p1", "p2", "p3"],
            "n": [None, 12, 0],
            "benefit": [None, 3.5, None],
            "risk": [None, 2.25, None],
            "n_status": [SUP, PUB, ZERO],
            "disclosure_rule": ["suppress_under_5"] * 3,
            "benefit_status": [SUP, PUB, SUP],
            "risk_status": [SUP, PUB, SUP],
        },
        schema_overrides={"n": pl.Int64},
    )
    assert_frame_equal(out, want)


def test_protect_means_threshold_10_and_rounded_n() -> None:
    df = pl.DataFrame({"n": [9, 10, 12], "benefit": [4.0, 3.0, 2.5]})
    out = protect_means(df, n="n", values=["benefit"], rule=DisclosureRule("round_to_5", 10))
    assert out.rows() == [
        (None, None, SUP, "round_to_5_suppress_under_10", SUP),
        (10, 3.0, RND, "round_to_5_suppress_under_10", PUB),
        (10, 2.5, RND, "round_to_5_suppress_under_10", PUB),
    ]


def test_protect_shares_follows_count_and_denominator() -> None:
    df = pl.DataFrame(
        {
            "n": [3, 6, 0, 20, 2],
            "total": [29, 29, 29, 40, 4],
            "share": [3 / 29, 6 / 29, 0.0, 0.5, 0.5],
        }
    )
    out = protect_shares(df, count="n", share="share", denominator="total", rule=RULE)
    assert out["share_status"].to_list() == [SUP, PUB, ZERO, PUB, SUP]
    assert out["share"].to_list() == [None, 6 / 29, 0.0, 0.5, None]
    assert out["n_status"].to_list() == [SUP, PUB, ZERO, PUB, SUP]
    assert out["total_status"].to_list() == [PUB, PUB, PUB, PUB, SUP]


def test_protect_shares_keeps_secondary_pattern_of_protected_counts() -> None:
    votes = pl.DataFrame({"rec": ["r1"] * 3, "vote": ["for", "against", "abstain"], "n": [12, 3, 0]})
    counts = protect_counts(votes, count="n", groups=["rec"], categories="vote", rule=RULE)
    cells = counts.filter(~pl.col("is_total")).join(
        counts.filter(pl.col("is_total"), pl.col("vote").is_null()).select("rec", total="n", total_status="n_status"),
        on="rec",
        maintain_order="left",
    )
    cells = cells.with_columns(share=pl.Series([0 / 15, 3 / 15, 12 / 15]))
    out = protect_shares(cells, count="n", share="share", denominator="total", rule=RULE)
    assert out.select("vote", "share", "share_status").rows() == [
        ("abstain", 0.0, ZERO),
        ("against", None, SUP),
        ("for", None, SEC),
    ]


def test_protect_shares_under_rounding_recomputes_from_rounded_counts() -> None:
    df = pl.DataFrame({"n": [8, 13], "total": [21, 21], "share": [8 / 21, 13 / 21]})
    out = protect_shares(df, count="n", share="share", denominator="total", rule=DisclosureRule("round_to_5"))
    assert out.select("n", "total", "share", "share_status").rows() == [(10, 20, 0.5, RND), (15, 20, 0.75, RND)]
    with pytest.raises(ValueError, match="denominator"):
        protect_shares(df, count="n", share="share", rule=DisclosureRule("round_to_5"))


def test_protect_shares_refuses_frame_protected_under_another_rule() -> None:
    counts = protect_counts(pl.DataFrame({"k": ["a"], "n": [12]}), count="n", groups=["k"], rule=RULE)
    with pytest.raises(ValueError, match="another rule"):
        protect_shares(
            counts.with_columns(share=pl.lit(1.0)), count="n", share="share", rule=DisclosureRule("suppress_under_10")
        )


# --- the linear-algebra check ---------------------------------------------------------------------


def margins(shape: tuple[int, ...]) -> np.ndarray:
    """Independent constraint matrix over an extended table: each line's cells minus its total = 0."""
    if len(shape) == 1:
        return np.array([[1.0] * (shape[0] - 1) + [-1.0]])
    rows = []
    for axis in (0, 1):
        for line in range(shape[axis]):
            coefficients = np.zeros(shape)
            index = (line, slice(None)) if axis == 0 else (slice(None), line)
            coefficients[index] = 1.0
            last = (line, -1) if axis == 0 else (-1, line)
            coefficients[last] = -1.0
            rows.append(coefficients.ravel())
    return np.array(rows)


def determined_by_rank(mask: np.ndarray) -> np.ndarray:
    """Suppressed entries whose unit vector lies in the row space of the constraints on suppressed entries."""
    unknowns = np.flatnonzero(mask.ravel())
    out = np.zeros(mask.size, dtype=bool)
    if unknowns.size:
        system = margins(mask.shape)[:, unknowns]
        rank = np.linalg.matrix_rank(system)
        for position, entry in enumerate(unknowns):
            unit = np.eye(unknowns.size)[position]
            out[entry] = np.linalg.matrix_rank(np.vstack([system, unit])) == rank
    return out.reshape(mask.shape)


def test_recoverable_1d() -> None:
    assert recoverable(np.array([True, False, False, False])).tolist() == [True, False, False, False]
    assert not is_recoverable(np.array([True, True, False, False]))
    assert not is_recoverable(np.array([True, False, True, True]))


def test_recoverable_catches_bridge_that_margin_counts_miss() -> None:
    # Two 2x2 rectangles of suppressed cells joined by one suppressed cell (row 1, column 2): every line
    # holds 0 or >= 2 suppressed entries, yet the joining cell is fixed by the linear system.
    mask = np.zeros((5, 5), dtype=bool)
    for i, j in [(0, 0), (0, 1), (1, 0), (1, 1), (2, 2), (2, 3), (3, 2), (3, 3), (1, 2)]:
        mask[i, j] = True
    assert all(line.sum() != 1 for line in [*mask, *mask.T])
    got = recoverable(mask)
    assert np.array_equal(got, determined_by_rank(mask))
    assert np.argwhere(got).tolist() == [[1, 2]]


def test_recoverable_rectangle_and_total_cycles_are_safe() -> None:
    rectangle = np.zeros((4, 4), dtype=bool)
    rectangle[np.ix_([0, 2], [1, 2])] = True
    assert not is_recoverable(rectangle)
    through_totals = np.zeros((3, 3), dtype=bool)
    through_totals[np.ix_([0, 2], [0, 2])] = True  # cell, its row total, its column total, grand total
    assert not is_recoverable(through_totals)


@PROPERTY
@given(st.integers(1, 7), st.integers(1, 6), st.data())
def test_bridges_match_linear_algebra(rows: int, cols: int, data: st.DataObject) -> None:
    flags = data.draw(st.lists(st.booleans(), min_size=rows * cols, max_size=rows * cols))
    mask = np.array(flags).reshape(rows, cols)
    by_rank = determined_by_rank(mask)
    assert np.array_equal(recoverable(mask), by_rank)
    assert [tuple(cell) for cell in np.argwhere(by_rank).tolist()] == _bridges(mask.astype(np.int8))
    line = mask.ravel()[: rows + 1]
    assert np.array_equal(recoverable(line), determined_by_rank(line))


# --- property-based: random 1-D and 2-D tables ----------------------------------------------------

counts = st.one_of(st.integers(0, 12), st.integers(0, 40))
rules = st.sampled_from(
    [
        DisclosureRule(),
        DisclosureRule("suppress_under_10"),
        DisclosureRule("round_to_5"),
        DisclosureRule("round_to_5", 10),
    ]
)


def check_protected(extended: np.ndarray, values: np.ndarray, status: np.ndarray, rule: DisclosureRule) -> None:
    """Properties (a)-(d) on an extended table rebuilt from the output frame."""
    t = rule.limit
    suppressed = np.isin(status, list(SUPPRESSED))
    # (a) nothing published in 1..t-1; suppression marks exactly the nulls; primary = small true values
    assert not ((values >= 1) & (values < t)).any()
    assert np.array_equal(np.isnan(values), suppressed)
    assert np.array_equal(status == SUP, (extended >= 1) & (extended < t))
    # (b) no suppressed entry can be recomputed from the published ones and the margins
    assert not determined_by_rank(suppressed).any()
    lines = [suppressed] if suppressed.ndim == 1 else [*suppressed, *suppressed.T]
    assert all(line.sum() != 1 for line in lines)
    # (c) published values are the true ones, or multiples of 5 within 2.5 under rounding
    shown = ~suppressed
    if rule.rounding is None:
        assert np.array_equal(values[shown], extended[shown])
        assert set(status[shown & (extended > 0)]) <= {PUB}
    else:
        assert (values[shown] % 5 == 0).all() and (np.abs(values[shown] - extended[shown]) <= 2.5).all()
        assert set(status[shown & (extended > 0)]) <= {RND}
    # (d) zeros stay 0 with status "zero"
    assert np.array_equal(status == ZERO, extended == 0)
    assert (values[extended == 0] == 0).all()


@PROPERTY
@given(st.lists(counts, min_size=1, max_size=6), rules)
def test_property_1d(cells: list[int], rule: DisclosureRule) -> None:
    frame = pl.DataFrame({"k": list(range(len(cells))), "n": cells})
    out = protect_counts(frame.reverse(), count="n", groups=["k"], rule=rule)
    assert out.height == len(cells) + 1 and out["is_total"].to_list() == [False] * len(cells) + [True]
    assert out["k"].to_list()[:-1] == list(range(len(cells))) and out["k"][-1] is None
    extended = np.array([*cells, sum(cells)])
    check_protected(extended, out["n"].cast(pl.Float64).fill_null(np.nan).to_numpy(), out["n_status"].to_numpy(), rule)
    assert (out["disclosure_rule"] == rule.label).all()


@PROPERTY
@given(st.integers(1, 6), st.integers(1, 5), st.data(), rules)
def test_property_2d(rows: int, cols: int, data: st.DataObject, rule: DisclosureRule) -> None:
    matrix = np.array(data.draw(st.lists(counts, min_size=rows * cols, max_size=rows * cols))).reshape(rows, cols)
    frame = pl.DataFrame(
        [(i, f"c{j}", int(matrix[i, j])) for i in range(rows) for j in range(cols)],
        schema=["g", "c", "n"],
        orient="row",
    )
    out = protect_counts(
        frame.sample(fraction=1.0, shuffle=True, seed=1), count="n", groups=["g"], categories="c", rule=rule
    )
    extended = np.zeros((rows + 1, cols + 1), dtype=np.int64)
    extended[:rows, :cols] = matrix
    extended[:rows, cols] = matrix.sum(axis=1)
    extended[rows, :] = extended[:rows].sum(axis=0)
    values = np.full(extended.shape, -1.0)
    status = np.full(extended.shape, "", dtype=object)
    for g, c, n, n_status, is_total, _ in out.iter_rows():
        i, j = rows if g is None else g, cols if c is None else int(c[1:])
        assert is_total == (g is None or c is None) and status[i, j] == ""
        values[i, j], status[i, j] = np.nan if n is None else n, n_status
    assert out.height == extended.size
    check_protected(extended, values, status.astype(str), rule)


@PROPERTY
@given(st.lists(st.lists(counts, min_size=1, max_size=5), min_size=1, max_size=6), rules, st.randoms())
def test_1d_tables_are_protected_set_wise_exactly_as_one_table_at_a_time(
    tables: list[list[int]], rule: DisclosureRule, shuffle: Any
) -> None:
    """Many 1-D tables (one per `by` value) in one frame, in any row order: the set-wise path gives the
    same values, statuses and order as protecting each table on its own with the numpy reference."""
    rows = [(f"t{t}", f"g{g}", n) for t, cells in enumerate(tables) for g, n in enumerate(cells)]
    shuffle.shuffle(rows)
    frame = pl.DataFrame(rows, schema={"table": pl.String, "g": pl.String, "n": pl.Int64}, orient="row")
    set_wise = protect_counts(frame, count="n", groups=["g"], by=["table"], rule=rule)
    reference = _protect_per_table(frame, count="n", groups=["g"], categories=None, rule=rule, by=["table"])
    assert set_wise.rows() == reference.rows()


@PROPERTY
@given(
    st.lists(st.tuples(st.integers(1, 4), st.integers(1, 3), st.booleans()), min_size=1, max_size=5),
    st.data(),
    rules,
)
def test_2d_tables_without_small_cells_are_built_set_wise_exactly_as_one_table_at_a_time(
    shapes: list[tuple[int, int, bool]], data: st.DataObject, rule: DisclosureRule
) -> None:
    """Tables with no small cell skip the search (nothing in them is suppressed), the others take it; in
    one frame, in any row order, the result equals protecting each table on its own."""
    rows = []
    for t, (n_rows, n_cols, large) in enumerate(shapes):
        cells = st.integers(rule.limit, 60) if large else counts
        for g in range(n_rows):
            for c in range(n_cols):
                if data.draw(st.booleans()) or (g == 0 and c == 0):  # some combinations missing: zeros
                    rows.append((f"t{t}", f"g{g}", f"c{c}", data.draw(cells)))
    rows = data.draw(st.permutations(rows))
    frame = pl.DataFrame(rows, schema={"t": pl.String, "g": pl.String, "c": pl.String, "n": pl.Int64}, orient="row")
    fast = protect_counts(frame, count="n", groups=["g"], categories="c", by=["t"], rule=rule)
    reference = _protect_per_table(frame, count="n", groups=["g"], categories="c", rule=rule, by=["t"])
    assert fast.rows() == reference.rows()
    one = frame.filter(pl.col("t") == "t0").drop("t")  # and a single table, without `by`
    fast = protect_counts(one, count="n", groups=["g"], categories="c", rule=rule)
    assert fast.rows() == _protect_per_table(one, count="n", groups=["g"], categories="c", rule=rule, by=[]).rows()
