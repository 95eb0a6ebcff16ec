"""Pseudonyms computed in DuckDB SQL are the ones `transforms.pseudonymise` computes in Python."""

from __future__ import annotations

import duckdb
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.pseudonymise import PYTHON_WHITESPACE, hmac_pads, pseudonym, pseudonym_sql

TEXT = st.text(st.sampled_from(list("Pp0123-_/éß ") + list(PYTHON_WHITESPACE)), max_size=8)


def sql_pseudonyms(key: bytes, pairs: list[tuple[str | None, str | None]]) -> list[str | None]:
    con = duckdb.connect()
    frame = pl.DataFrame(pairs, schema={"panel": pl.String, "ref": pl.String}, orient="row").with_row_index("i")
    con.register("t", frame)
    rows = con.execute(f"SELECT {pseudonym_sql('panel', 'ref')} FROM t ORDER BY i", hmac_pads(key)).fetchall()
    con.close()
    return [r[0] for r in rows]


def test_the_demo_key_and_a_long_key_give_the_python_pseudonyms() -> None:
    pairs: list[tuple[str | None, str | None]] = [
        ("p1", "P1"),
        ("p1", " P1 "),
        (None, "P2"),
        ("p2", None),
        ("p", "\x1fx\x1c"),
    ]
    for key in (b"demo-key", b"k" * 64, b"x" * 200):
        expected = [pseudonym(key, panel or "", ref) if ref is not None else None for panel, ref in pairs]
        assert sql_pseudonyms(key, pairs) == expected


@settings(max_examples=40, deadline=None)
@given(
    st.binary(min_size=1, max_size=100), st.lists(st.tuples(st.one_of(st.none(), TEXT), TEXT), min_size=1, max_size=20)
)
def test_sql_pseudonyms_equal_python_for_any_key_and_reference(key: bytes, pairs: list[tuple[str | None, str]]) -> None:
    assert sql_pseudonyms(key, list(pairs)) == [pseudonym(key, panel or "", ref) for panel, ref in pairs]
