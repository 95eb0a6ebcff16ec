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
