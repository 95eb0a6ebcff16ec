"""An organisation's saved column mapping: checked when saved and loaded, used by header matching."""

from __future__ import annotations

from pathlib import Path

import pytest

from din.contract import KINDS
from transforms.column_mapping import (
    ColumnMapping,
    ColumnMappingError,
    load_mapping,
    mapping_path,
    mapping_problems,
    save_mapping,
)
from transforms.headers import match_headers


def test_a_saved_mapping_makes_their_headers_our_columns(tmp_path: Path) -> None:
    save_mapping(
        tmp_path, ColumnMapping("ORG-A", "attendance", {"Name of attendee": "panellist_ref", "Here?": "attended"})
    )
    loaded = load_mapping(tmp_path, "ORG-A", "attendance")
    assert loaded is not None and dict(loaded.columns) == {"Name of attendee": "panellist_ref", "Here?": "attended"}
    headers = ["panel_id", "workshop_id", "name of attendee ", "Here?"]
    match = match_headers(headers, KINDS["attendance"], loaded.columns)
    assert match.usable and match.mapping["name of attendee "] == "panellist_ref"
    assert not match_headers(headers, KINDS["attendance"]).usable  # without it the file is refused


def test_a_mapping_that_names_a_column_twice_reports_a_duplicate_not_a_silent_choice() -> None:
    match = match_headers(
        ["panel_id", "workshop_id", "panellist_ref", "Ref"], KINDS["attendance"], {"Ref": "panellist_ref"}
    )
    assert "panellist_ref" in match.duplicates and not match.usable


@pytest.mark.parametrize(
    ("columns", "fragment"),
    [
        ({"Score": "benifit"}, "not a column of project_feedback"),
        ({"A": "benefit", "B": "benefit"}, "both mapped to `benefit`"),
    ],
)
def test_bad_mappings_are_refused_when_saved(tmp_path: Path, columns: dict[str, str], fragment: str) -> None:
    assert any(fragment in p for p in mapping_problems("project_feedback", columns))
    with pytest.raises(ColumnMappingError, match=fragment.split("`")[0]):
        save_mapping(tmp_path, ColumnMapping("ORG-A", "project_feedback", columns))


def test_a_damaged_or_foreign_mapping_file_is_refused_when_loaded(tmp_path: Path) -> None:
    path = mapping_path(tmp_path, "ORG-A", "attendance")
    path.parent.mkdir(parents=True)
    path.write_text("organisation: ORG-A\nkind: attendance\ncolumns: {X: nonsense}\n")
    with pytest.raises(ColumnMappingError, match="not a column of attendance"):
        load_mapping(tmp_path, "ORG-A", "attendance")
    path.write_text("organisation: ORG-B\nkind: attendance\ncolumns: {}\n")
    with pytest.raises(ColumnMappingError, match="mapping of ORG-B"):
        load_mapping(tmp_path, "ORG-A", "attendance")
    path.write_text("columns: [unclosed\n")
    with pytest.raises(ColumnMappingError, match="cannot be read"):
        load_mapping(tmp_path, "ORG-A", "attendance")
    assert load_mapping(tmp_path, "ORG-C", "attendance") is None


def test_a_saved_mapping_that_cannot_be_used_refuses_the_file_with_its_reason(tmp_path: Path) -> None:
    from din.config import FormatOptions
    from transforms.delivery import DeliveryOutcome, DeliveryToProcess, FileProblem, read_delivery
    from warehouse.batches import saved_mappings
    from warehouse.manifest import PendingDelivery

    path = mapping_path(tmp_path / "mappings", "ORG-A", "attendance")
    path.parent.mkdir(parents=True)
    path.write_text("organisation: ORG-A\nkind: attendance\ncolumns: {'Here?': presence}\n")
    landing = tmp_path / "attendance.csv"
    landing.write_text("panel_id,workshop_id,panellist_ref,Here?\np1,W1,P1,yes\np1,W1,P2,no\n")
    pending = PendingDelivery(1, "alpha", "ORG-A", "attendance", "attendance.csv", str(landing), 10, None)
    found = saved_mappings(tmp_path / "mappings", [pending])
    error = found[("ORG-A", "attendance")]
    assert isinstance(error, str) and "presence" in error
    delivery = DeliveryToProcess(
        1, "alpha", "attendance", "attendance.csv", str(landing), 10, FormatOptions(), columns_error=error
    )
    problem = read_delivery(delivery, DeliveryOutcome(1))
    assert isinstance(problem, FileProblem) and problem.rules == ("column_mapping_invalid",)
    assert problem.rows == (2, 3) and "Save the mapping again in the portal" in problem.reasons[0]
    assert str(tmp_path) not in problem.reasons[0]  # the reason reaches the partner: no server paths
    good = DeliveryToProcess(
        1, "alpha", "attendance", "attendance.csv", str(landing), 10, FormatOptions(), columns={"Here?": "attended"}
    )
    frames = read_delivery(good, DeliveryOutcome(1))
    assert isinstance(frames, dict) and frames["attendance"]["attended"].to_list() == ["true", "false"]
