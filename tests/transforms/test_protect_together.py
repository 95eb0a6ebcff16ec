"""Protecting several deliveries' rows at once (`protect_deliveries`, as the gate does a batch's files) leaves
every row as protecting its own delivery alone leaves it, and counts on each delivery what was dropped and
replaced in its rows: erased panellists' rows, e-mail addresses, phone numbers, roster names."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from din.contract import KINDS
from transforms.blocklist import Blocklist, erasure_token
from transforms.delivery import DeliveryOutcome, protect, protect_deliveries
from transforms.scrub import Scrubber

KEY = b"k" * 32
RESPONSES = KINDS["responses"]
BY = "_delivery"
ROSTER = ["Rowan Kerr", "Ailsa Grant"]
BLOCKLIST = Blocklist(KEY, frozenset({erasure_token(KEY, "p1", "P2"), erasure_token(KEY, "p2", "P7")}))
TEXTS = [
    "fine",
    "mail me at rowan.kerr@example.org",
    "ring 07700 900461 after six",
    "Ailsa Grant said so",
    "ask Rowan Kerr or Ailsa Grant, or rowan@example.org",
    "",
    "nothing to see",
]

row = st.tuples(
    st.sampled_from(["p1", "p2"]),
    st.sampled_from(["P1", "P2", "P7", "P9"]),
    st.sampled_from(TEXTS),
    st.sampled_from(TEXTS),
)


def _frame(rows: list[tuple[str, str, str, str]], delivery: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "panel_id": [r[0] for r in rows],
            "workshop_id": ["W1"] * len(rows),
            "panellist_ref": [r[1] for r in rows],
            "question_id": [f"Q{n}" for n in range(len(rows))],
            "question_text": [r[2] for r in rows],
            "answer": [r[3] for r in rows],
            "answered_at": [None] * len(rows),
            BY: [delivery] * len(rows),
        },
        schema_overrides={"answered_at": pl.String, BY: pl.Int64},
    )


def _counts(outcome: DeliveryOutcome) -> tuple[int, dict[str, int]]:
    return outcome.rows_blocked, outcome.scrub_counts


@settings(max_examples=60, deadline=None, database=None)
@given(st.lists(st.lists(row, min_size=1, max_size=6), min_size=1, max_size=4), st.booleans())
def test_a_batch_protected_together_is_each_delivery_protected_alone(
    deliveries: list[list[tuple[str, str, str, str]]], erased: bool
) -> None:
    blocklist = BLOCKLIST if erased else None
    frames = [_frame(rows, delivery) for delivery, rows in enumerate(deliveries)]
    alone = {delivery: DeliveryOutcome(delivery) for delivery in range(len(frames))}
    expected = pl.concat(
        [protect(f, RESPONSES, KEY, Scrubber(ROSTER), alone[n], blocklist) for n, f in enumerate(frames)]
    )
    together = {delivery: DeliveryOutcome(delivery) for delivery in range(len(frames))}
    got = protect_deliveries(pl.concat(frames), RESPONSES, KEY, Scrubber(ROSTER), dict(together), BY, blocklist)
    assert got.equals(expected)
    assert {n: _counts(o) for n, o in together.items()} == {n: _counts(o) for n, o in alone.items()}


def test_each_delivery_is_told_what_was_taken_from_its_own_rows() -> None:
    first = _frame([("p1", "P1", "fine", "mail me at rowan.kerr@example.org"), ("p1", "P2", "x", "y")], 1)
    second = _frame([("p1", "P3", "Ailsa Grant said so", "ring 07700 900461 after six")], 2)
    outcomes = {1: DeliveryOutcome(1), 2: DeliveryOutcome(2)}
    got = protect_deliveries(
        pl.concat([first, second]), RESPONSES, KEY, Scrubber(ROSTER), dict(outcomes), BY, BLOCKLIST
    )
    assert got.height == 2 and "rowan.kerr" not in got["answer"][0]
    assert outcomes[1].rows_blocked == 1 and outcomes[2].rows_blocked == 0  # P2 of p1 was erased
    assert outcomes[1].scrub_counts == {"email": 1, "phone": 0, "postcode": 0, "health_id": 0, "name": 0}
    assert outcomes[2].scrub_counts == {"email": 0, "phone": 1, "postcode": 0, "health_id": 0, "name": 1}
