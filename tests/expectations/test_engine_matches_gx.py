"""The suites are the single definition of validity: executing them in DuckDB must give GX's verdicts.

Real Great Expectations (pandas engine) and our DuckDB compilation validate the same frames, built to
hit every expectation type with awkward values; the failing (row, rule) pairs must be identical.
"""

from __future__ import annotations

import polars as pl
import pytest

from din.contract import KINDS
from expectations.engine import DELIVERY, ROW_ID, known_keys_lists, references_frame
from expectations.suites import KEY_SEPARATOR, build_suite, load_suite, stale_suites
from expectations.validate import reference_columns, validate
from transforms.headers import match_headers
from transforms.normalise import canonical_frame
from transforms.readers import ROW

AWKWARD: dict[str, list[str | None]] = {
    "panel_id": ["p1", "p1", "p1", None, "p1", "p2", "p1", "p1", "p1"],
    "workshop_id": ["W1", "W1", "W9", "W1", None, "W1", "W1", "W2", "W1"],
    "project_id": ["PRJ-1", "PRJ-1", "PRJ-X", "PRJ-1", "PRJ-1", "PRJ-2", None, "PRJ-1", "PRJ-1"],
    "panellist_ref": ["P1", "P1", "P2", "P3", "P1", "P1", "P2", "", "P9"],
    "benefit": ["3", "3", "yes", "0", "6", "5.5", "2.0", "-1", None],
    "risk": ["1", "x", "5", None, "3", "1e1", "٣", "4", "2"],
    "acceptability": [
        "acceptable",
        "Acceptable",
        "maybe",
        None,
        "unsure",
        "UNACCEPTABLE",
        "acceptable with conditions",
        "",
        "acceptable",
    ],
    "conditions": [None] * 9,
    "comment": ["ok"] * 9,
    "answered_at": [
        "2026-03-12T10:00:00",
        "2026-02-30T10:00:00",
        "12/03/2026 10:00",
        "2026-3-5",
        None,
        "x",
        "2026-03-12T25:00:00",
        "46085.25",
        "2026-03-12",
    ],
    "held_on": ["2026-03-12", "2026-02-30", "31/04/2026", "2026-13-01", "46085", None, "x", "12/03/2026", "2026-3-5"],
    "number": ["1", "7", "0", "x", "6", None, "3.0", "2", "1"],
    "attended": ["yes", "no", "maybe", "1", "0", "TRUE", None, "y", "2"],
    "share": ["0.5", "1.5", "-0.1", "x", "50%", "1", "0", None, "1e-1"],
    "votes_for": ["3", "-1", "1,200", "x", "0", None, "2.5", "7", "1"],
}
KNOWN = {
    "known_workshop": [f"p1{KEY_SEPARATOR}W1", f"p1{KEY_SEPARATOR}W2"],
    "known_project": ["PRJ-1", "PRJ-2"],
    "known_panellist": [f"p1{KEY_SEPARATOR}P1", f"p1{KEY_SEPARATOR}P2", f"p1{KEY_SEPARATOR}P3"],
    "known_lead_organisation": ["ORG-A"],
    "known_facilitator_organisation": ["ORG-A"],
}


def awkward_frame(kind_name: str) -> pl.DataFrame:
    kind = KINDS[kind_name]
    raw = {c.name: (AWKWARD.get(c.name) or [f"{c.name}-{i % 3}" for i in range(9)]) for c in kind.columns}
    raw[ROW] = list(range(2, 11))
    frame = pl.DataFrame(raw, schema={**{c: pl.String for c in raw if c != ROW}, ROW: pl.Int64})
    frame = canonical_frame(frame, kind, match_headers([c for c in frame.columns if c != ROW], kind))
    two_deliveries = pl.concat([frame, frame])  # uniqueness is per delivery: the copy must not collide
    return two_deliveries.with_columns(
        pl.int_range(pl.len(), dtype=pl.Int64).alias(ROW_ID),
        (pl.int_range(pl.len(), dtype=pl.Int64) // frame.height + 1).alias(DELIVERY),
    )


@pytest.mark.parametrize("kind_name", sorted(KINDS))
def test_duckdb_execution_gives_the_same_verdicts_as_great_expectations(kind_name: str) -> None:
    kind = KINDS[kind_name]
    frame = awkward_frame(kind_name)
    known = {f"known_{r.name}": KNOWN[f"known_{r.name}"] for r in kind.references}
    ours = validate(frame, kind, known, engine="duckdb")
    theirs = validate(frame, kind, known, engine="gx")
    ours_pairs = sorted(
        zip(
            ours.quarantined["source_row"].to_list(),
            ours.quarantined["delivery_id"].to_list(),
            ours.quarantined["rules"].to_list(),
            strict=True,
        )
    )
    gx_pairs = sorted(
        zip(
            theirs.quarantined["source_row"].to_list(),
            theirs.quarantined["delivery_id"].to_list(),
            theirs.quarantined["rules"].to_list(),
            strict=True,
        )
    )
    assert ours_pairs == gx_pairs
    assert ours.accepted.height == theirs.accepted.height
    assert ours.quarantined.height > 0  # the frame really exercises the suite
    assert reference_columns(kind).keys() == {r.name for r in kind.references}


@pytest.mark.parametrize("kind_name", sorted(k for k in KINDS if KINDS[k].references))
def test_the_known_keys_as_a_frame_give_the_same_verdicts_as_the_lists(kind_name: str) -> None:
    """The gate reads the keys the merge wrote into a frame of (parameter, key) rows and hands it on as it is;
    both engines judge with it exactly as with the lists, a reference with no known key included."""
    kind = KINDS[kind_name]
    frame = awkward_frame(kind_name)
    known = {f"known_{r.name}": KNOWN[f"known_{r.name}"] for r in kind.references}
    known[next(iter(known))] = []  # nothing exists yet for the first reference: no row of it in the frame
    rows = references_frame(known)
    assert rows.columns == ["parameter", "key"] and rows.height == sum(len(v) for v in known.values())
    for engine in ("duckdb", "gx"):
        lists, rows_given = validate(frame, kind, known, engine=engine), validate(frame, kind, rows, engine=engine)
        assert rows_given.quarantined.sort("delivery_id", "source_row").equals(
            lists.quarantined.sort("delivery_id", "source_row")
        ), engine
        assert rows_given.accepted.equals(lists.accepted), engine
        assert lists.quarantined.height > 0
    assert known_keys_lists(rows) == {k: v for k, v in known.items() if v}


def test_stored_suites_match_the_contract() -> None:
    assert stale_suites() == []
    for name, kind in KINDS.items():
        suite = load_suite(name)
        assert suite == build_suite(kind)
        rules = [e["meta"]["rule"] for e in suite["expectations"]]
        assert len(rules) == len(set(rules)), f"{name}: rule names must be unique"
