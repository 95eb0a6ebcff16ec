"""The contract is data (din/contract.yaml), loaded into typed kinds; a malformed contract is explained."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from din.contract import CONTRACT_FILE, KINDS, ColumnType, ContractError, Sensitivity, load_contract


def test_the_contract_defines_every_kind_with_its_key_references_and_sensitive_columns() -> None:
    assert list(KINDS) == [
        "organisations",
        "projects",
        "workshops",
        "population",
        "roster",
        "attendance",
        "responses",
        "project_feedback",
        "recommendations",
        "statements",
        "response_history",
    ]
    roster = KINDS["roster"]
    assert roster.key == ("panel_id", "panellist_ref")
    assert roster.direct_identifiers == ("full_name", "email", "phone", "postcode")
    assert roster.column("panellist_ref").sensitivity is Sensitivity.PSEUDONYMISED
    feedback = KINDS["project_feedback"]
    assert [r.name for r in feedback.references] == ["workshop", "project", "panellist"]
    assert feedback.column("acceptability").allowed == (
        "acceptable",
        "acceptable_with_conditions",
        "unacceptable",
        "unsure",
    )
    assert (feedback.column("benefit").minimum, feedback.column("benefit").maximum) == (1, 5)
    assert KINDS["responses"].column("answered_at").type is ColumnType.DATETIME
    assert ColumnType.BOOLEAN.meaning == "yes or no"


def mutated(tmp_path: Path, change: object) -> Path:
    raw = yaml.safe_load(CONTRACT_FILE.read_text(encoding="utf-8"))
    change(raw)  # type: ignore[operator]
    path = tmp_path / "contract.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda raw: raw["kinds"]["projects"]["columns"][3].update(allowed="@sektors"), "no vocabulary 'sektors'"),
        (lambda raw: raw["kinds"]["projects"]["columns"][0].update(descripton="x"), "unknown setting(s) descripton"),
        (lambda raw: raw["kinds"]["attendance"]["columns"].append({"use": "panel_ref"}), "`use: panel_ref` names"),
        (lambda raw: raw["kinds"]["roster"].update(key=["panel_id", "ref"]), "ref is in the key"),
        (lambda raw: raw["kinds"]["workshops"].update(level=5), "reference workshop needs a kind of a lower level"),
        (lambda raw: raw["kinds"]["projects"]["columns"][0].update(type="number"), "'number' is not a valid"),
    ],
)
def test_a_malformed_contract_is_explained(tmp_path: Path, change: object, message: str) -> None:
    with pytest.raises(ContractError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_contract(mutated(tmp_path, change))
