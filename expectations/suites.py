"""The Great Expectations suites, one per kind, generated from the contract.

The suites are the single definition of validity. They are written as GX Core 1.x suite JSON to
`expectations/suites/<kind>.json` (reviewable, diffable) by `python -m expectations.suites`,
and a test fails when the stored files drift from the contract. Each expectation carries in its
`meta` a stable `rule` name, the `check` it performs and a plain-words `message`, which is what a
contributor reads when a row is quarantined.

Building the suites needs no GX import: they are plain dicts in GX's serialised form, loaded into
GX objects only where GX itself runs (`expectations.gx_runner`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from din.contract import KINDS, Column, ColumnType, Kind, limit_placeholder

SUITES_DIR = Path(__file__).with_name("suites")
GX_VERSION = "1.24.1"
NUMBER_SUFFIX = "__number"  # derived column: the value as a number, for range checks
REF_PREFIX = "__ref_"  # derived column: a reference's key columns joined, for reference checks
KEY_SEPARATOR = "\x1f"

TYPE_PATTERNS: dict[ColumnType, str] = {
    ColumnType.INTEGER: r"^[+-]?[0-9]+$",
    ColumnType.DECIMAL: r"^[+-]?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$",
}
TIME_FORMATS: dict[ColumnType, str] = {
    ColumnType.DATE: "%Y-%m-%d",
    ColumnType.DATETIME: "%Y-%m-%dT%H:%M:%S",
}


def limit_parameter(name: str) -> str:
    """The suite parameter that carries din.yaml's `limits.<name>` into a validation."""
    return f"limit_{name}"


def suite_name(kind: str) -> str:
    return f"din.{kind}"


def build_suite(kind: Kind) -> dict[str, Any]:
    """The GX suite (serialised form) that defines a valid file and row of `kind`."""
    expectations: list[dict[str, Any]] = []
    for column in kind.columns:
        if column.required:
            expectations.append(_column_exists(column))
    for column in kind.columns:
        expectations.extend(_column_expectations(column))
    expectations.append(_unique_key(kind))
    for reference in kind.references:
        expectations.append(
            _expectation(
                "expect_column_values_to_be_in_set",
                {"column": REF_PREFIX + reference.name, "value_set": {"$PARAMETER": f"known_{reference.name}"}},
                rule=f"{reference.name}_known",
                check="reference",
                columns=list(reference.columns),
                message=f"{' + '.join(reference.columns)} {{value}}: {reference.description}",
            )
        )
    return {
        "name": suite_name(kind.name),
        "expectations": expectations,
        "meta": {
            "great_expectations_version": GX_VERSION,
            "kind": kind.name,
            "generated_from": "din/contract.yaml (python -m expectations.suites)",
        },
        "notes": kind.description,
    }


def _column_exists(column: Column) -> dict[str, Any]:
    return _expectation(
        "expect_column_to_exist",
        {"column": column.name},
        rule=column.present_rule,
        check="column_present",
        columns=[column.name],
        message=column.missing_message,
    )


def _column_expectations(column: Column) -> list[dict[str, Any]]:
    name = column.name
    found: list[dict[str, Any]] = []
    if column.required:
        found.append(
            _expectation(
                "expect_column_values_to_not_be_null",
                {"column": name},
                rule=f"{name}_required",
                check="not_null",
                columns=[name],
                message=f"`{name}` is empty; it is required ({column.expected})",
            )
        )
    if column.allowed:
        found.append(_in_set(column, list(column.allowed), "allowed"))
    elif column.type is ColumnType.BOOLEAN:
        found.append(_in_set(column, ["true", "false"], "boolean"))
    elif column.type in TYPE_PATTERNS:
        found.append(
            _expectation(
                "expect_column_values_to_match_regex",
                {"column": name, "regex": TYPE_PATTERNS[column.type]},
                rule=f"{name}_{'whole_number' if column.type is ColumnType.INTEGER else 'number'}",
                check="type",
                columns=[name],
                message=f"`{name}` is {{value}}; expected {column.expected}",
            )
        )
    elif column.type in TIME_FORMATS:
        found.append(
            _expectation(
                "expect_column_values_to_match_strftime_format",
                {"column": name, "strftime_format": TIME_FORMATS[column.type]},
                rule=f"{name}_{column.type.value}",
                check="type",
                columns=[name],
                message=f"`{name}` is {{value}}; expected {column.expected}",
            )
        )
    if column.minimum is not None or column.maximum is not None or column.maximum_limit is not None:
        kwargs: dict[str, Any] = {"column": name + NUMBER_SUFFIX}
        expected = column.expected
        if column.minimum is not None:
            kwargs["min_value"] = column.minimum
        if column.maximum is not None:
            kwargs["max_value"] = column.maximum
        if column.maximum_limit is not None:
            # The network's own limit (din.yaml `limits:`), bound when the suite runs; its value is
            # put into the message of a row that breaks it.
            kwargs["max_value"] = {"$PARAMETER": limit_parameter(column.maximum_limit)}
            expected = expected.replace(
                f"the `limits.{column.maximum_limit}` of din.yaml", limit_placeholder(column.maximum_limit)
            )
        found.append(
            _expectation(
                "expect_column_values_to_be_between",
                kwargs,
                rule=f"{name}_range",
                check="range",
                columns=[name],
                message=f"`{name}` is {{value}}; expected {expected}",
            )
        )
    return found


def _in_set(column: Column, values: list[str], what: str) -> dict[str, Any]:
    return _expectation(
        "expect_column_values_to_be_in_set",
        {"column": column.name, "value_set": values},
        rule=f"{column.name}_{what}",
        check="allowed",
        columns=[column.name],
        message=f"`{column.name}` is {{value}}; expected {column.expected}",
    )


def _unique_key(kind: Kind) -> dict[str, Any]:
    key = list(kind.key)
    kwargs: dict[str, Any]
    if len(key) == 1:
        type_, kwargs = "expect_column_values_to_be_unique", {"column": key[0]}
    else:
        type_, kwargs = "expect_compound_columns_to_be_unique", {"column_list": key}
    return _expectation(
        type_,
        kwargs,
        rule="key_unique",
        check="unique_key",
        columns=key,
        message=f"{' + '.join(key)} {{value}} appears more than once in this file; keep one row per {', '.join(key)}",
    )


def _expectation(
    type_: str, kwargs: dict[str, Any], *, rule: str, check: str, columns: list[str], message: str
) -> dict[str, Any]:
    return {
        "type": type_,
        "kwargs": kwargs,
        "meta": {"rule": rule, "check": check, "columns": columns, "message": message},
        "severity": "critical",
    }


def suite_path(kind: str) -> Path:
    return SUITES_DIR / f"{kind}.json"


def render(suite: dict[str, Any]) -> str:
    return json.dumps(suite, indent=2, ensure_ascii=False) + "\n"


def load_suite(kind: str) -> dict[str, Any]:
    """The stored suite for `kind` (what validation executes)."""
    suite: dict[str, Any] = json.loads(suite_path(kind).read_text(encoding="utf-8"))
    return suite


def write_suites(directory: Path = SUITES_DIR) -> list[Path]:
    """Regenerate every suite file from the contract."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in KINDS.values():
        path = directory / f"{kind.name}.json"
        path.write_text(render(build_suite(kind)), encoding="utf-8")
        written.append(path)
    return written


def stale_suites() -> list[str]:
    """Kinds whose stored suite differs from what the contract generates."""
    return [
        k.name
        for k in KINDS.values()
        if not suite_path(k.name).exists() or suite_path(k.name).read_text(encoding="utf-8") != render(build_suite(k))
    ]


if __name__ == "__main__":
    for path in write_suites():
        sys.stdout.write(f"wrote {path}\n")
