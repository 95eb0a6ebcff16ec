"""The quarantine records built set-wise are the ones a contributor was always given: each failing row's
rules in order, the reasons with the value as they typed it (cut at 80 characters), the columns involved,
and their values as the JSON object Python's json.dumps writes."""

from __future__ import annotations

import json
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from din.contract import limit_placeholder
from expectations.engine import DELIVERY, ROW_ID
from expectations.validate import QUARANTINE_SCHEMA, VALUE_LIMIT, quarantine_records
from transforms.readers import ROW

SUITE: dict[str, Any] = {
    "expectations": [
        {"type": "t", "meta": {"rule": "answer_required", "columns": ["answer"], "message": "needs an answer"}},
        {
            "type": "t",
            "meta": {
                "rule": "score_range",
                "columns": ["score", "answer"],
                "message": "score {value} is above " + limit_placeholder("max_score") + " (was {value})",
            },
        },
        {"type": "t", "meta": {"rule": "a_row_rule", "columns": [], "message": "{value} is not allowed"}},
        {"type": "t", "meta": {"rule": "known_panel", "columns": ["panel_id"], "message": "unknown panel {value}"}},
    ]
}
RULES = [e["meta"]["rule"] for e in SUITE["expectations"]]
LIMITS = {"max_score": 7.5}
COLUMNS = ["panel_id", "answer", "score"]

# text as partners type it, and as readers and scrubbers leave it: quotes, backslashes, every control
# character, non-ASCII letters and symbols, formulas, long values
TEXT = st.one_of(
    st.none(),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12),
    st.text(alphabet=st.sampled_from(['"', "\\", "\n", "\r", "\t", "\x00", "\x1f", "\x7f", "é", "…", "=", "a", " "])),
    st.text(alphabet="ab\u2028", min_size=VALUE_LIMIT - 2, max_size=VALUE_LIMIT + 3),
)


def expected(frame: pl.DataFrame, failures: pl.DataFrame) -> list[dict[str, Any]]:
    """What each quarantine record says, worked out row by row with json.dumps (the format's definition)."""
    meta = {e["meta"]["rule"]: e["meta"] for e in SUITE["expectations"]}
    rows = {row[ROW_ID]: row for row in frame.iter_rows(named=True)}
    broken: dict[int, list[tuple[str, str | None]]] = {}
    for row_id, rule, value in failures.iter_rows():
        broken.setdefault(row_id, []).append((rule, value))
    records = []
    for row_id in sorted(broken):
        pairs = sorted(broken[row_id])
        columns = sorted({c for rule, _ in pairs for c in meta[rule]["columns"]})
        reasons = []
        for rule, value in pairs:
            shown = "(empty)" if value is None else value
            if len(shown) > VALUE_LIMIT:
                shown = shown[: VALUE_LIMIT - 1] + "…"
            message = meta[rule]["message"].replace("{limit:max_score}", "7.5")
            reasons.append(message.replace("{value}", shown if value is None else f"'{shown}'"))
        records.append(
            {
                "delivery_id": rows[row_id][DELIVERY],
                "source_row": rows[row_id][ROW],
                "rules": [rule for rule, _ in pairs],
                "reasons": reasons,
                "columns": columns,
                "values": json.dumps({c: rows[row_id][c] for c in columns}, ensure_ascii=False),
            }
        )
    return records


@settings(max_examples=80, deadline=None, database=None)
@given(
    st.lists(st.tuples(TEXT, TEXT, TEXT), min_size=1, max_size=12),
    st.data(),
)
def test_records_built_set_wise_are_those_json_dumps_and_the_messages_give(
    values: list[tuple[str | None, str | None, str | None]], data: st.DataObject
) -> None:
    frame = pl.DataFrame(
        {
            ROW_ID: list(range(len(values))),
            DELIVERY: [7 + i % 2 for i in range(len(values))],
            ROW: [i + 2 for i in range(len(values))],
            **{column: [v[i] for v in values] for i, column in enumerate(COLUMNS)},
            "other": ["not involved"] * len(values),
        },
        schema={
            ROW_ID: pl.Int64,
            DELIVERY: pl.Int64,
            ROW: pl.Int64,
            **dict.fromkeys(COLUMNS, pl.String),
            "other": pl.String,
        },
    )
    failing = []
    for row_id in data.draw(st.sets(st.sampled_from(range(len(values))), min_size=1)):
        for rule in data.draw(st.sets(st.sampled_from(RULES), min_size=1)):
            failing.append((row_id, rule, data.draw(TEXT)))
    failures = pl.DataFrame(failing, schema={ROW_ID: pl.Int64, "rule": pl.String, "value": pl.String}, orient="row")
    failures = failures.sample(fraction=1.0, shuffle=True, seed=data.draw(st.integers(0, 99)))  # any order

    records = quarantine_records(frame.lazy(), failures, SUITE, LIMITS)

    assert records.schema == QUARANTINE_SCHEMA
    assert records.to_dicts() == expected(frame, failures)
    for record in records.iter_rows(named=True):
        assert json.loads(record["values"]).keys() == set(record["columns"])


def test_a_typed_column_is_written_as_json_dumps_writes_it() -> None:
    """Frames are text once normalised; one that is not (a number, a date) is still written exactly."""
    frame = pl.DataFrame(
        {
            ROW_ID: [0, 1],
            DELIVERY: [1, 1],
            ROW: [2, 3],
            "panel_id": ["p", None],
            "answer": ["x", "y"],
            "score": [9, None],
        }
    )
    failures = pl.DataFrame({ROW_ID: [1, 0], "rule": ["score_range", "score_range"], "value": [None, "9"]})
    records = quarantine_records(frame, failures, SUITE, LIMITS).to_dicts()
    assert [r["values"] for r in records] == ['{"answer": "x", "score": 9}', '{"answer": "y", "score": null}']
    assert records[0]["reasons"] == ["score '9' is above 7.5 (was '9')"]
    assert records[1]["reasons"] == ["score (empty) is above 7.5 (was (empty))"]


def test_no_failures_no_records() -> None:
    frame = pl.DataFrame({ROW_ID: [0], DELIVERY: [1], ROW: [2], "panel_id": ["p"], "answer": ["a"], "score": ["1"]})
    empty = pl.DataFrame(schema={ROW_ID: pl.Int64, "rule": pl.String, "value": pl.String})
    assert quarantine_records(frame, empty, SUITE).height == 0
