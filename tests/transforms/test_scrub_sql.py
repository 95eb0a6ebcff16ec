"""The fast path's scrub prefilter (a DuckDB regex) never skips a value the exact scrubber would change."""

from __future__ import annotations

import duckdb
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.transforms.test_scrub import ROSTER, free_text
from transforms.scrub import Scrubber

CON = duckdb.connect()
NAMES = ["Morag Henderson", "Zoë Ødegård-Łukasz", "Ali Green"]


def sql_hits(scrubber: Scrubber, values: list[str | None]) -> set[str]:
    cursor = CON.cursor()
    cursor.register("t", pl.DataFrame({"v": values}, schema={"v": pl.String}))
    rows = cursor.sql(f"SELECT v FROM t WHERE {scrubber.sql_candidates(chr(34) + 'v' + chr(34))}").fetchall()
    cursor.close()
    return {r[0] for r in rows}


def changed(scrubber: Scrubber, values: list[str | None]) -> set[str]:
    return {v for v in values if v is not None and scrubber.scrub(v)[0] != v}


def test_the_sql_prefilter_finds_every_kind_of_identifier_and_folded_names() -> None:
    scrubber = Scrubber(NAMES)
    values = [
        "mail me at jo@example.org",
        "ring 07700 900461 tomorrow",
        "DD2 3AB is home",
        "CHI 0101701234",
        "jo (at) example (dot) org",
        "ask ZOE ODEGARD-LUKASZ",
        "ask Zoë Ødegård-Łukasz",
        "zoë ødegård-łukasz said",
        "nothing to see",
        "Ødegård alone",
        None,
    ]
    hits = sql_hits(scrubber, values)
    assert changed(scrubber, values) <= hits
    assert "nothing to see" not in hits


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.none(), free_text), min_size=1, max_size=8))
def test_the_sql_prefilter_is_a_superset_of_what_scrub_changes(values: list[str | None]) -> None:
    for scrubber in (Scrubber(ROSTER), Scrubber()):
        assert changed(scrubber, values) <= sql_hits(scrubber, values)
        polars = set(scrubber.candidates(pl.Series(values, dtype=pl.String).drop_nulls()).to_list())
        assert sql_hits(scrubber, values) == polars  # the same prefilter, in another regex engine
