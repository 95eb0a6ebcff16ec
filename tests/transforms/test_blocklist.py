"""The blocklist drops erased panellists' rows by keyed token, before anything else sees them."""

from __future__ import annotations

import polars as pl

from transforms.blocklist import Blocklist, erasure_token
from transforms.pseudonymise import pseudonym

KEY = b"k" * 32


def test_a_token_is_keyed_and_is_not_the_pseudonym() -> None:
    token = erasure_token(KEY, "p1", "P2")
    assert token.startswith("er_") and token == erasure_token(KEY, " p1", " P2 ")
    assert token != erasure_token(b"x" * 32, "p1", "P2")  # without the key it cannot be made or checked
    assert token != erasure_token(KEY, "p2", "P2")  # references are per panel
    assert token[3:] not in pseudonym(KEY, "p1", "P2")
    assert erasure_token(KEY, "p1", "Rowan.Kerr@Example.org") == erasure_token(KEY, "p1", "rowan.kerr@example.org")


def test_drop_removes_and_counts_only_the_blocked_panellists_rows() -> None:
    blocklist = Blocklist(KEY, frozenset({erasure_token(KEY, "p1", "P2"), erasure_token(KEY, "p1", "r@example.org")}))
    frame = pl.DataFrame(
        {
            "panel_id": ["p1", "p1", "p2", "p1", "p1", None],
            "panellist_ref": ["P1", "P2", "P2", "R@Example.org", None, "P2"],
            "answer": ["a", "b", "c", "d", "e", "f"],
        }
    )
    kept, dropped = blocklist.drop(frame)
    assert dropped == 2
    assert kept["answer"].to_list() == ["a", "c", "e", "f"]  # another panel's P2, nulls: kept, in order
    assert Blocklist().drop(frame) == (frame, 0)
    assert not Blocklist() and blocklist
    assert "k" * 32 not in repr(blocklist)


def test_protect_drops_the_statements_an_erased_panellist_wrote_by_their_author_ref() -> None:
    from din.contract import KINDS
    from transforms.delivery import DeliveryOutcome, protect
    from transforms.scrub import Scrubber

    blocklist = Blocklist(KEY, frozenset({erasure_token(KEY, "p1", "23")}))
    frame = pl.DataFrame(
        {
            "panel_id": ["p1", "p1", "p1"],
            "workshop_id": ["W4", "W4", "W4"],
            "statement_id": ["S35", "S36", "S0"],
            "text": ["theirs", "someone else's", "the moderator's"],
            "author_ref": ["23", "25", None],
            "moderation": ["accepted", "accepted", "accepted"],
            "created_at": [None, None, None],
        }
    )
    outcome = DeliveryOutcome(1)
    kept = protect(frame, KINDS["statements"], KEY, Scrubber([]), outcome, blocklist)
    assert kept["statement_id"].to_list() == ["S36", "S0"] and outcome.rows_blocked == 1
    assert kept["author_ref"][0] == pseudonym(KEY, "p1", "25")  # pseudonymised after the blocklist
