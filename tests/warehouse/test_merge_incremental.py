"""The merge recomputes only the core keys whose staged rows changed, and their key conflicts, and always
ends where a whole rebuild of core and a whole recount of conflicts from staging would: after deliveries
arrive, are superseded or read again, in any order, with conflicting organisations and an ownership rule in
play."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from din.contract import KINDS
from warehouse.merge import refresh_key_conflicts, refresh_kind
from warehouse.schema import KEY_CONFLICT, connect, core_rows_sql, create_schema, key_conflicts_sql

ATTENDANCE = KINDS["attendance"]  # owned: the workshop's facilitator wins a conflict
ORGANISATIONS = ("ORG-A", "ORG-B", "ORG-C")
PEOPLE = [f"P{n}" for n in range(6)]


def _warehouse(path: Path | None = None) -> duckdb.DuckDBPyConnection:
    con = connect(path) if path is not None else duckdb.connect()  # in memory: quick for many examples
    create_schema(con)
    con.execute(
        "INSERT INTO core.workshops (panel_id, workshop_id, number, facilitator_org_id, delivery_id) "
        "VALUES ('p1', 'W1', 1, 'ORG-A', 0), ('p1', 'W2', 2, 'ORG-B', 0)"
    )
    return con


def _deliver(con: duckdb.DuckDBPyConnection, delivery_id: int, organisation: str, rows: list[tuple]) -> None:
    con.execute(
        """INSERT OR REPLACE INTO ops.deliveries (delivery_id, source, organisation, kind, original_path,
               relative_path, size, sha256, landing_path, first_seen, run_id, status)
           VALUES (?, ?, ?, 'attendance', 'x', 'x', 1, 'x', 'x', now(), 'r', 'processed')""",
        [delivery_id, f"src-{organisation}", organisation],
    )
    con.execute("DELETE FROM stg.attendance WHERE delivery_id = ?", [delivery_id])
    if not rows:
        return
    con.executemany(
        "INSERT INTO stg.attendance (panel_id, workshop_id, panellist_ref, attended, delivery_id, source_row) "
        "VALUES ('p1', ?, ?, ?, ?, ?)",
        [(w, p, attended, delivery_id, n + 2) for n, (w, p, attended) in enumerate(rows)],
    )


def _core(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return sorted(con.execute("SELECT * FROM core.attendance").fetchall(), key=str)


def _whole_rebuild(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return sorted(con.execute(core_rows_sql(ATTENDANCE)).fetchall(), key=str)


CONFLICT_COLUMNS = "kind, key, delivery_id, source_row, organisation, owner, rule, kept, others, reason"


def _conflicts(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return sorted(con.execute(f"SELECT {CONFLICT_COLUMNS} FROM ops.key_conflicts").fetchall(), key=str)


def _whole_conflicts(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return sorted(con.execute(f"SELECT {CONFLICT_COLUMNS} FROM ({key_conflicts_sql(ATTENDANCE)})").fetchall(), key=str)


def _set_aside(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """The quarantine's key-conflict rows, as (delivery, row, reason)."""
    rows = con.execute("SELECT delivery_id, source_row, reasons FROM ops.quarantine WHERE rules = ?", [[KEY_CONFLICT]])
    return sorted((d, r, reasons[0]) for d, r, reasons in rows.fetchall())


def _refresh(con: duckdb.DuckDBPyConnection, loaded: list[int], full: bool = False) -> int | None:
    return refresh_kind(con, ATTENDANCE, loaded, "run", full=full)[0]


row = st.tuples(st.sampled_from(["W1", "W2"]), st.sampled_from(PEOPLE), st.booleans())
step = st.one_of(
    st.tuples(st.just("deliver"), st.integers(1, 6), st.sampled_from(ORGANISATIONS), st.lists(row, max_size=5)),
    st.tuples(st.just("retire"), st.integers(1, 6), st.none(), st.none()),
    st.tuples(st.just("requeue"), st.integers(1, 6), st.sampled_from(ORGANISATIONS), st.lists(row, max_size=5)),
)


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=8))
def test_incremental_core_equals_a_whole_rebuild_after_every_step(steps: list) -> None:
    con = _warehouse()
    try:
        for action, delivery_id, organisation, rows in steps:
            if action == "deliver":  # a new delivery, or one read again with other rows
                _deliver(con, delivery_id, organisation, rows)
                loaded = [delivery_id]
            elif action == "retire":  # superseded, or refused on a re-read: its staged rows are gone
                con.execute("DELETE FROM stg.attendance WHERE delivery_id = ?", [delivery_id])
                loaded = []
            else:  # requeued (warehouse.reread forgets its conflicts too), then read again
                con.execute("DELETE FROM ops.key_conflicts WHERE delivery_id = ?", [delivery_id])
                _deliver(con, delivery_id, organisation, rows)
                loaded = [delivery_id]
            _refresh(con, loaded)
            assert _core(con) == _whole_rebuild(con), (action, delivery_id)
            whole = _whole_conflicts(con)
            assert _conflicts(con) == whole, (action, delivery_id)
            assert _set_aside(con) == sorted((c[2], c[3], c[9]) for c in whole if not c[7]), (action, delivery_id)
    finally:
        con.close()


def test_one_new_delivery_recomputes_only_its_own_keys(tmp_path: Path) -> None:
    con = _warehouse(tmp_path / "warehouse.duckdb")
    many = [(f"W{1 + n % 2}", f"Q{n}", True) for n in range(400)]
    _deliver(con, 1, "ORG-A", many)
    assert _refresh(con, [1]) is None  # an empty core is built whole
    _deliver(con, 2, "ORG-A", [("W1", "Q0", False), ("W2", "NEW", True)])  # one correction, one new key
    assert _refresh(con, [2]) == 2
    con.execute("DELETE FROM stg.attendance WHERE delivery_id = 2")  # the correction is withdrawn
    assert _refresh(con, []) == 2
    assert _core(con) == _whole_rebuild(con) and len(_core(con)) == 400
    # an ownership rule that looks at a changed table settles every key again
    assert _refresh(con, [], full=True) is None
    assert _core(con) == _whole_rebuild(con)


@pytest.mark.parametrize("withdrawn", [1, 2])
def test_a_conflict_is_settled_again_when_one_side_is_withdrawn(tmp_path: Path, withdrawn: int) -> None:
    con = _warehouse(tmp_path / "warehouse.duckdb")
    _deliver(con, 3, "ORG-A", [("W1", "P2", True)])  # a bystander, so that core is not empty
    _deliver(con, 1, "ORG-A", [("W2", "P1", True)])
    _refresh(con, [3, 1])
    _deliver(con, 2, "ORG-C", [("W2", "P1", False)])  # W2's facilitator is ORG-B: neither row wins
    _refresh(con, [2])
    assert [r[2] for r in _core(con)] == ["P2"]
    assert sorted(c[2] for c in _conflicts(con)) == [1, 2] and len(_set_aside(con)) == 2
    con.execute("DELETE FROM stg.attendance WHERE delivery_id = ?", [withdrawn])
    assert _refresh(con, []) == 1
    assert _conflicts(con) == [] and _set_aside(con) == []  # the withdrawn side's conflict goes with it
    assert sorted((r[2], r[3]) for r in _core(con)) == [("P1", withdrawn == 2), ("P2", True)]  # the other's value


def test_a_key_whose_staged_rows_did_not_change_is_not_looked_at_again(tmp_path: Path) -> None:
    """What makes one new delivery cheap: its keys' conflicts are looked for, not every key's. A dispute
    written into staging behind the merge's back is found only by a whole recount (erasure does one)."""
    con = _warehouse(tmp_path / "warehouse.duckdb")
    _deliver(con, 1, "ORG-A", [("W1", "P1", True), ("W1", "P2", True)])
    _refresh(con, [1])
    _deliver(con, 2, "ORG-C", [("W1", "P1", False)])  # not loaded by a merge: outside any scope
    _deliver(con, 3, "ORG-A", [("W2", "P3", True)])
    assert _refresh(con, [3]) == 1 and _conflicts(con) == []
    refresh_key_conflicts(con, ATTENDANCE, "run")  # every key
    assert [(c[2], c[7]) for c in _conflicts(con)] == [(1, True), (2, False)]  # W1's facilitator ORG-A wins
