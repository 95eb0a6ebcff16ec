"""`canonical_frame` converts only the dates that are not ISO yet and lets the rest pass by one pattern test;
the result must be exactly what normalising each whole column with `normalise_expr` gives."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from din.contract import KINDS, ColumnType, Kind
from tests.transforms.test_normalise_sql import ALPHABET, CORPUS
from transforms.dates import DateOrder
from transforms.headers import match_headers
from transforms.normalise import canonical_frame, normalise_expr
from transforms.readers import ROW

#: Kinds with a date column (workshops) and a date-time column (responses).
DATED = (KINDS["workshops"], KINDS["responses"])


def _delivered(kind: Kind, values: list[str | None]) -> pl.DataFrame:
    """Every column of the kind holding `values` (dates among them: ISO, slashed, serial, nonsense)."""
    return pl.DataFrame(
        {c.name: pl.Series(values, dtype=pl.String) for c in kind.columns}
        | {ROW: pl.Series(range(2, len(values) + 2), dtype=pl.Int64)}
    )


def _column_by_column(kind: Kind, frame: pl.DataFrame, order: DateOrder | None) -> pl.DataFrame:
    return frame.select([normalise_expr(pl.col(c.name), c.type, order).alias(c.name) for c in kind.columns] + [ROW])


def assert_same(values: list[str | None], order: DateOrder | None) -> None:
    for kind in DATED:
        frame = _delivered(kind, values)
        got = canonical_frame(frame, kind, match_headers(list(kind.column_names), kind), order)
        assert got.rows() == _column_by_column(kind, frame, order).rows()


def test_the_kinds_have_dates() -> None:
    assert [{c.type for c in kind.columns} & {ColumnType.DATE, ColumnType.DATETIME} for kind in DATED] == [
        {ColumnType.DATE},
        {ColumnType.DATETIME},
    ]


@pytest.mark.parametrize("order", [None, DateOrder.DAY_FIRST, DateOrder.MONTH_FIRST])
def test_the_corpus_mixed_with_iso_dates(order: DateOrder | None) -> None:
    assert_same([*CORPUS, "2026-03-12T18:10:53", "2026-03-12"] * 3, order)
    assert_same(["2026-03-12T18:10:53"] * 5, order)  # nothing to convert
    assert_same(["12/03/2026 18:10", None, "2026-03-12T18:10:53"], order)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(st.none(), st.text(ALPHABET, max_size=22), st.sampled_from(["2026-03-12T18:10:53", "2026-03-12"])),
        min_size=1,
        max_size=40,
    )
)
def test_generated_values(values: list[str | None]) -> None:
    assert_same(values, DateOrder.MONTH_FIRST if len(values) % 2 else DateOrder.DAY_FIRST)
