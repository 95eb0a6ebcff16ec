"""The data contract, typed: every canonical kind, loaded once from `din/contract.yaml`.

The YAML is the single definition (kinds, columns, types, allowed values, keys, references and their
prose); this module gives it types and the rules that follow from it. The contract documentation,
the blank templates, the Great Expectations suites and the DuckDB tables are all generated from,
or checked against, what it loads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import yaml


class ColumnType(StrEnum):
    """How a column's values are typed once normalised."""

    STRING = "string"  # an identifier or short label
    TEXT = "text"  # free text written by a person: scrubbed of identifiers on the way in
    ENUM = "enum"  # one of a fixed set of lower-case codes
    INTEGER = "integer"
    DECIMAL = "decimal"
    DATE = "date"
    DATETIME = "datetime"
    BOOLEAN = "boolean"

    @property
    def meaning(self) -> str:
        """What a value of this type is, in words a contributor understands (`types` in contract.yaml)."""
        return type_meanings()[self]


def read_yaml(path: Path) -> Any:
    """One of the project's own YAML files (the contract, the table models), parsed by libyaml when PyYAML
    has it (ten times faster than the pure-Python parser, which a run's start-up otherwise pays for)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(path.read_text(encoding="utf-8"), Loader=loader)


def type_meanings() -> dict[ColumnType, str]:
    raw = read_yaml(CONTRACT_FILE)["types"]
    return {ColumnType(name): " ".join(str(text).split()) for name, text in raw.items()}


#: DuckDB type of each column type in the warehouse and the published Parquet.
SQL_TYPES: dict[ColumnType, str] = {
    ColumnType.STRING: "VARCHAR",
    ColumnType.TEXT: "VARCHAR",
    ColumnType.ENUM: "VARCHAR",
    ColumnType.INTEGER: "BIGINT",
    ColumnType.DECIMAL: "DOUBLE",
    ColumnType.DATE: "DATE",
    ColumnType.DATETIME: "TIMESTAMP",
    ColumnType.BOOLEAN: "BOOLEAN",
}


class Sensitivity(StrEnum):
    """What a column says about a person, which decides how it is handled on the way in."""

    NONE = "none"
    DIRECT_IDENTIFIER = "direct_identifier"  # dropped on the way in; never leaves landing
    PSEUDONYMISED = "pseudonymised"  # replaced with a keyed HMAC pseudonym
    FREE_TEXT = "free_text"  # scrubbed of emails, phones, postcodes, health ids and roster names


@dataclass(frozen=True)
class Column:
    """One canonical column of a kind."""

    name: str
    type: ColumnType
    description: str
    example: str
    required: bool = True
    allowed: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    sensitivity: Sensitivity = Sensitivity.NONE
    unit: str = ""
    maximum_limit: str | None = None  # `limits.<name>` in din.yaml caps the value (see LIMITS)

    @property
    def sql_type(self) -> str:
        return SQL_TYPES[self.type]

    @property
    def present_rule(self) -> str:
        """The rule a file breaks when this required column is missing (one name everywhere)."""
        return f"{self.name}_present"

    @property
    def missing_message(self) -> str:
        """What a contributor reads when this required column is missing."""
        return f"required column `{self.name}` is missing from the file"

    @property
    def is_direct_identifier(self) -> bool:
        return self.sensitivity is Sensitivity.DIRECT_IDENTIFIER

    @property
    def expected(self) -> str:
        """What a valid value looks like, in words a contributor understands."""
        if self.allowed:
            return "one of " + ", ".join(self.allowed)
        if self.type is ColumnType.INTEGER and self.minimum is not None and self.maximum is not None:
            return f"a whole number from {_number(self.minimum)} to {_number(self.maximum)}"
        if self.type is ColumnType.INTEGER and self.minimum is not None and self.maximum_limit is not None:
            return f"a whole number from {_number(self.minimum)} to the `limits.{self.maximum_limit}` of din.yaml"
        if self.type is ColumnType.INTEGER and self.minimum is not None:
            return f"a whole number of at least {_number(self.minimum)}"
        if self.type is ColumnType.INTEGER:
            return "a whole number"
        if self.type is ColumnType.DECIMAL and self.minimum is not None and self.maximum is not None:
            return f"a number from {_number(self.minimum)} to {_number(self.maximum)}"
        if self.type is ColumnType.DECIMAL:
            return "a number"
        if self.type is ColumnType.DATE:
            return "a date (2024-03-12, 12/03/2024 in the source's date order, or an Excel date)"
        if self.type is ColumnType.DATETIME:
            return "a date and time (2024-03-12T18:10:53, or 12/03/2024 18:10 in the source's date order)"
        if self.type is ColumnType.BOOLEAN:
            return "yes/no, true/false or 1/0"
        return "text"


#: Rules about a file as a whole, checked before any row (with each required column's `present_rule`).
FILE_UNREADABLE = "file_unreadable"
FILE_HAS_NO_ROWS = "file_has_no_rows"
DUPLICATE_COLUMNS = "duplicate_columns"
SURVEY_EXPORT_UNREADABLE = "survey_export_unreadable"
DATE_ORDER_AMBIGUOUS = "date_order_ambiguous"  # dates readable day- or month-first, nothing decides
DATE_ORDER_CONFLICT = "date_order_conflict"  # dates that contradict each other or the declared order

#: Rules about one record as read, before its values are checked: the record is set aside with the reason.
ROW_FIELD_COUNT = "row_field_count"  # a CSV row with more or fewer fields than the header
RECORD_UNREADABLE = "record_unreadable"  # broken quoting, an NDJSON line that is not an object, a key given twice
VALUE_NUL_BYTE = "value_nul_byte"  # a value holding a NUL byte: the file is damaged there
RECORD_RULES = (ROW_FIELD_COUNT, RECORD_UNREADABLE, VALUE_NUL_BYTE)


@dataclass(frozen=True)
class Reference:
    """Values of `columns` in this kind must exist as `target_columns` of kind `target`."""

    name: str
    columns: tuple[str, ...]
    target: str
    target_columns: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class Owner:
    """Which organisation owns a row when two organisations deliver the same key: the one the row's
    `reference` names in column `column` of its target (the project's lead organisation, the workshop's
    facilitator). The reference's columns are part of the key, so every row of a key has the same owner."""

    reference: Reference
    column: str
    description: str  # in words: "the project's lead organisation"


@dataclass(frozen=True)
class Kind:
    """One kind of delivered file: its columns, natural key and references."""

    name: str
    group: str  # "reference" (maintained by the network) or "panel" (contributed by partners)
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    references: tuple[Reference, ...] = ()
    level: int = 0  # kinds of a lower level are merged first, so later ones can reference them
    owner: Owner | None = None  # None: no organisation may overrule another's row of the same key

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.name} has no column {name!r}")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    @property
    def stored_columns(self) -> tuple[Column, ...]:
        """Columns kept beyond landing: everything but direct identifiers."""
        return tuple(c for c in self.columns if not c.is_direct_identifier)

    @property
    def direct_identifiers(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.is_direct_identifier)

    @property
    def free_text_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.sensitivity is Sensitivity.FREE_TEXT)

    @property
    def pseudonymised_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.sensitivity is Sensitivity.PSEUDONYMISED)


def limit_placeholder(name: str) -> str:
    """Where a config limit's value goes in a rule's message (filled in when a row breaks it)."""
    return "{limit:" + name + "}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


# --- loading the contract ------------------------------------------------------------------------

CONTRACT_FILE = Path(__file__).with_name("contract.yaml")
_COLUMN_KEYS = {"name", "type", "description", "example", "required", "allowed", "minimum", "maximum"}
_COLUMN_KEYS |= {"sensitivity", "unit"}
_LIMIT_KEYS = {"limit"}
_REFERENCE_KEYS = {"name", "columns", "target", "target_columns", "description"}
_KIND_KEYS = {"group", "level", "description", "key", "columns", "references", "owner"}
_OWNER_KEYS = {"reference", "column", "description"}


class ContractError(ValueError):
    """din/contract.yaml is malformed: the message names the place."""


def load_contract(path: Path = CONTRACT_FILE) -> tuple[dict[str, tuple[str, ...]], dict[str, Kind]]:
    """The vocabularies and kinds defined in `path`, checked (each kind's key, references and values)."""
    raw = read_yaml(path)
    if not isinstance(raw, dict) or not isinstance(raw.get("kinds"), dict):
        raise ContractError(f"{path}: expected a mapping with vocabularies, columns, references and kinds")
    vocabularies = {str(k): tuple(str(v) for v in values) for k, values in (raw.get("vocabularies") or {}).items()}
    limits = {str(k): " ".join(str(v).split()) for k, v in (raw.get("limits") or {}).items()}
    shared_columns = {
        c.name: c for c in (_column(e, vocabularies, limits, f"{path}: columns") for e in raw.get("columns") or [])
    }
    shared_references = {r.name: r for r in (_reference(e, f"{path}: references") for e in raw.get("references") or [])}
    kinds: dict[str, Kind] = {}
    for name, entry in raw["kinds"].items():
        where = f"{path}: kinds.{name}"
        _known_keys(entry, _KIND_KEYS, where)
        columns = tuple(
            _shared(e, shared_columns, where) or _column(e, vocabularies, limits, f"{where}.columns")
            for e in entry["columns"]
        )
        references = tuple(
            _shared(e, shared_references, where) or _reference(e, f"{where}.references")
            for e in entry.get("references") or []
        )
        kind = Kind(
            str(name),
            str(entry["group"]),
            str(entry["description"]),
            columns,
            tuple(str(c) for c in entry["key"]),
            references,
            int(entry.get("level", 0)),
            _owner(entry.get("owner"), references, f"{where}.owner"),
        )
        _check_kind(kind, where)
        kinds[kind.name] = kind
    for kind in kinds.values():
        for reference in kind.references:
            target = kinds.get(reference.target)
            if target is None or target.level >= kind.level:
                raise ContractError(
                    f"{path}: kinds.{kind.name}: reference {reference.name} needs a kind of a lower level"
                )
        if kind.owner is not None and kind.owner.column not in kinds[kind.owner.reference.target].column_names:
            raise ContractError(
                f"{path}: kinds.{kind.name}.owner: {kind.owner.reference.target} has no column {kind.owner.column}"
            )
    return vocabularies, kinds


def _owner(entry: Any, references: tuple[Reference, ...], where: str) -> Owner | None:
    if entry is None:
        return None
    _known_keys(entry, _OWNER_KEYS, where)
    by_name = {r.name: r for r in references}
    if entry.get("reference") not in by_name:
        raise ContractError(f"{where}: reference must be one of this kind's references ({', '.join(by_name)})")
    return Owner(by_name[entry["reference"]], str(entry["column"]), " ".join(str(entry["description"]).split()))


def _shared(entry: Any, shared: Mapping[str, _T], where: str) -> _T | None:
    if isinstance(entry, dict) and set(entry) == {"use"}:
        if entry["use"] not in shared:
            raise ContractError(f"{where}: `use: {entry['use']}` names nothing shared; shared: {', '.join(shared)}")
        return shared[entry["use"]]
    return None


def _column(entry: Any, vocabularies: Mapping[str, tuple[str, ...]], limits: Mapping[str, str], where: str) -> Column:
    _known_keys(entry, _COLUMN_KEYS, where)
    maximum: Any = entry.get("maximum")
    maximum_limit = None
    if isinstance(maximum, dict):
        _known_keys(maximum, _LIMIT_KEYS, f"{where}: {entry.get('name')}.maximum")
        maximum_limit, maximum = str(maximum.get("limit")), None
        if maximum_limit not in limits:
            raise ContractError(f"{where}: {entry['name']}: no limit {maximum_limit!r}; limits: {', '.join(limits)}")
    allowed: Any = entry.get("allowed") or ()
    if isinstance(allowed, str) and allowed.startswith("@"):
        if allowed[1:] not in vocabularies:
            raise ContractError(f"{where}: {entry['name']}: no vocabulary {allowed[1:]!r}")
        allowed = vocabularies[allowed[1:]]
    try:
        column_type, sensitivity = ColumnType(entry["type"]), Sensitivity(entry.get("sensitivity", "none"))
    except (KeyError, ValueError) as error:
        raise ContractError(f"{where}: {entry.get('name')}: {error}") from None
    return Column(
        str(entry["name"]),
        column_type,
        " ".join(str(entry["description"]).split()),
        str(entry["example"]),
        required=bool(entry.get("required", True)),
        allowed=tuple(str(v) for v in allowed),
        minimum=float(entry["minimum"]) if entry.get("minimum") is not None else None,
        maximum=float(maximum) if maximum is not None else None,
        sensitivity=sensitivity,
        unit=str(entry.get("unit", "")),
        maximum_limit=maximum_limit,
    )


def _reference(entry: Any, where: str) -> Reference:
    _known_keys(entry, _REFERENCE_KEYS, where)
    return Reference(
        str(entry["name"]),
        tuple(str(c) for c in entry["columns"]),
        str(entry["target"]),
        tuple(str(c) for c in entry["target_columns"]),
        " ".join(str(entry["description"]).split()),
    )


def _known_keys(entry: Any, known: set[str], where: str) -> None:
    if not isinstance(entry, dict):
        raise ContractError(f"{where}: expected a mapping, not {entry!r}")
    unknown = sorted(set(entry) - known)
    if unknown:
        raise ContractError(
            f"{where}: unknown setting(s) {', '.join(unknown)}; the settings are {', '.join(sorted(known))}"
        )


def _check_kind(kind: Kind, where: str) -> None:
    names = kind.column_names
    if len(set(names)) != len(names):
        raise ContractError(f"{where}: a column is defined twice")
    for column in (*kind.key, *(c for r in kind.references for c in r.columns)):
        if column not in names:
            raise ContractError(f"{where}: {column} is in the key or a reference but is not a column")
    if kind.owner is not None and not set(kind.owner.reference.columns) <= set(kind.key):
        raise ContractError(f"{where}.owner: the owner's reference must use key columns only")


def load_limits(path: Path = CONTRACT_FILE) -> dict[str, str]:
    """The limits a network sets in din.yaml (`limits:`), each with what it means."""
    raw = read_yaml(path).get("limits") or {}
    return {str(name): " ".join(str(text).split()) for name, text in raw.items()}


_T = TypeVar("_T")
VOCABULARIES, KINDS = load_contract()
LIMITS = load_limits()
SECTORS = VOCABULARIES["sectors"]
STAGES = VOCABULARIES["stages"]
DIMENSIONS = VOCABULARIES["dimensions"]
CONSENT = VOCABULARIES["consent"]
ACCEPTABILITY = VOCABULARIES["acceptability"]

REFERENCE_KINDS = tuple(name for name, kind in KINDS.items() if kind.group == "reference")
PANEL_KINDS = tuple(name for name, kind in KINDS.items() if kind.group == "panel")


def kind(name: str) -> Kind:
    """The kind called `name`, or a KeyError listing the kinds there are."""
    try:
        return KINDS[name]
    except KeyError:
        raise KeyError(f"unknown kind {name!r}; the kinds are: {', '.join(KINDS)}") from None


def kinds_by_level() -> list[list[Kind]]:
    """Kinds grouped by processing level: each group may reference the groups before it."""
    levels = sorted({k.level for k in KINDS.values()})
    return [[k for k in KINDS.values() if k.level == level] for level in levels]


def normalise_header(header: str) -> str:
    """Header matching key: case-, space- and punctuation-insensitive (`Panellist Ref.` → `panellistref`)."""
    return re.sub(r"[^0-9a-z]", "", header.strip().lower())
