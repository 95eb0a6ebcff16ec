"""The SQL normalisation (the fast path's) gives exactly the text the polars normalisation gives."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from din.contract import ColumnType
from transforms.normalise import normalise_expr
from transforms.normalise_sql import WHITESPACE, normalise_sql, unsure_sql

CORPUS = [
    None,
    "",
    " ",
    "\u00a0x\u3000",
    "\t=1+1",
    " =SUM(A1)",
    "\u2003-2",
    " @x ",
    "plain",
    "  padded  ",
    "Acceptable With Conditions",
    "social-care",
    "third sector",
    "A/B\u00a0c",
    "Yes",
    " no ",
    "TRUE",
    "T",
    "0",
    "1",
    "maybe",
    "1,200",
    "12,34",
    "-1,234,567.50",
    "5.0",
    "+7.00",
    "1.5",
    "16%",
    "0.5%",
    "%",
    "5 %",
    "1_000%",
    "1e3%",
    "nan%",
    "inf%",
    "0.001%",
    "100%",
    "2026-03-12",
    "2026-3-5",
    "2026/03/12",
    "12/03/2026",
    "5/3/2026",
    "5/3/26",
    "06.12.2025",
    "6-12-2025 9:41",
    "6/12/2025 9:41 PM",
    "6/12/2025, 12:05 am",
    "6/12/2025T07:08:09.5",
    "46093",
    "46093.5",
    "46093.999999",
    "2026-03-12 00:00:00",
    "2026-03-12T18:10:53",
    "2026-03-12 18:10",
    "2026-03-12T18:10:53.123Z",
    "2026-3-2 7:05",
    "12/03/2026 18:10:53",
    "31/02/2026",
    "soon",
    "2026-03-12T25:99:99",
    "١٢/٠٣/٢٠٢٦",
    "İstanbul",
    "ÀÉÎ Straße",
    "ΟΔΟΣ",
]
TYPES = list(ColumnType)


def polars_text(values: list[str | None], column_type: ColumnType, day_first: bool) -> list[str | None]:
    from transforms.dates import DateOrder

    order = DateOrder.DAY_FIRST if day_first else DateOrder.MONTH_FIRST
    frame = pl.DataFrame({"v": values}, schema={"v": pl.String})
    return frame.select(normalise_expr(pl.col("v"), column_type, order).alias("v"))["v"].to_list()


CON = duckdb.connect()


def sql_text(values: list[str | None], column_type: ColumnType, day_first: bool) -> list[tuple[str | None, bool]]:
    frame = pl.DataFrame({"v": values, "i": range(len(values))}, schema={"v": pl.String, "i": pl.Int64})
    unsure = unsure_sql('"v"', column_type) or "false"
    normalised = normalise_sql('"v"', column_type, "true" if day_first else "false")
    cursor = CON.cursor()
    cursor.register("t", frame)
    rows = cursor.sql(f"SELECT {normalised}, {unsure} FROM t ORDER BY i").fetchall()
    cursor.close()
    return [(text, bool(flag)) for text, flag in rows]


def assert_same(values: list[str | None], column_type: ColumnType, day_first: bool) -> None:
    expected = polars_text(values, column_type, day_first)
    got = sql_text(values, column_type, day_first)
    for value, want, (text, unsure) in zip(values, expected, got, strict=True):
        if unsure:
            continue  # such a file is read by the polars path
        assert text == want, (column_type, value, want, text)


@pytest.mark.parametrize("column_type", TYPES)
@pytest.mark.parametrize("day_first", [True, False])
def test_sql_normalisation_equals_polars_on_the_corpus(column_type: ColumnType, day_first: bool) -> None:
    assert_same(CORPUS, column_type, day_first)


def test_only_exotic_percentages_are_unsure() -> None:
    got = dict(zip(CORPUS, (u for _, u in sql_text(CORPUS, ColumnType.DECIMAL, True)), strict=True))
    assert {v for v, unsure in got.items() if unsure} == {"nan%", "inf%", "0.001%"}
    enums = dict(zip(CORPUS, (u for _, u in sql_text(CORPUS, ColumnType.ENUM, True)), strict=True))
    assert {v for v, unsure in enums.items() if unsure} == {"ΟΔΟΣ"}


ALPHABET = st.sampled_from(list("0123456789/.-:,%+ TZaApPmM=@_xé") + list(WHITESPACE))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.none(), st.text(ALPHABET, max_size=22)), min_size=1, max_size=40))
def test_sql_normalisation_equals_polars_on_generated_values(values: list[str | None]) -> None:
    for column_type in TYPES:
        assert_same(values, column_type, day_first=bool(len(values) % 2))
