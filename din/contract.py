"""The data contract: every canonical kind, defined once.

The contract documentation, the blank templates, the Great Expectations suites and the DuckDB
tables are all generated from, or checked against, the definitions in this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


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
        """What a value of this type is, in words a contributor understands."""
        return TYPE_MEANINGS[self]


TYPE_MEANINGS: dict[ColumnType, str] = {
    ColumnType.STRING: "an identifier or short label, kept as written (trimmed)",
    ColumnType.TEXT: "free text written by a person; scrubbed of identifiers on the way in",
    ColumnType.ENUM: "one of a fixed set of lower-case codes (case, spaces, hyphens and slashes are forgiven)",
    ColumnType.INTEGER: "a whole number (thousands separators are allowed)",
    ColumnType.DECIMAL: "a number (a percentage such as 16% is read as a proportion)",
    ColumnType.DATE: "a calendar date (day first when written with slashes)",
    ColumnType.DATETIME: "a date and time",
    ColumnType.BOOLEAN: "yes or no",
}


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
        if self.type is ColumnType.INTEGER and self.minimum is not None:
            return f"a whole number of at least {_number(self.minimum)}"
        if self.type is ColumnType.INTEGER:
            return "a whole number"
        if self.type is ColumnType.DECIMAL and self.minimum is not None and self.maximum is not None:
            return f"a number from {_number(self.minimum)} to {_number(self.maximum)}"
        if self.type is ColumnType.DECIMAL:
            return "a number"
        if self.type is ColumnType.DATE:
            return "a date (2024-03-12, 12/03/2024 or an Excel date)"
        if self.type is ColumnType.DATETIME:
            return "a date and time (2024-03-12T18:10:53 or 12/03/2024 18:10)"
        if self.type is ColumnType.BOOLEAN:
            return "yes/no, true/false or 1/0"
        return "text"


#: Rules about a file as a whole, checked before any row (with each required column's `present_rule`).
FILE_UNREADABLE = "file_unreadable"
FILE_HAS_NO_ROWS = "file_has_no_rows"
DUPLICATE_COLUMNS = "duplicate_columns"
SURVEY_EXPORT_UNREADABLE = "survey_export_unreadable"


@dataclass(frozen=True)
class Reference:
    """Values of `columns` in this kind must exist as `target_columns` of kind `target`."""

    name: str
    columns: tuple[str, ...]
    target: str
    target_columns: tuple[str, ...]
    description: str


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


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


SECTORS = ("health", "social_care", "environment", "education", "justice", "third_sector", "other")
STAGES = ("past", "ongoing", "future")
DIMENSIONS = ("age_band", "gender", "ethnic_group", "simd_quintile", "urban_rural", "council_area")
CONSENT = ("consented", "withdrawn")
ACCEPTABILITY = ("acceptable", "acceptable_with_conditions", "unacceptable", "unsure")

S, T, E = ColumnType.STRING, ColumnType.TEXT, ColumnType.ENUM
INT, D, DT, DTT, B = (
    ColumnType.INTEGER,
    ColumnType.DECIMAL,
    ColumnType.DATE,
    ColumnType.DATETIME,
    ColumnType.BOOLEAN,
)
PSEUDO, DIRECT, FREE = Sensitivity.PSEUDONYMISED, Sensitivity.DIRECT_IDENTIFIER, Sensitivity.FREE_TEXT

_panel_id = Column("panel_id", S, "The panel the row belongs to (the pilot is one panel).", "din-pilot-2026")
_workshop_id = Column("workshop_id", S, "The workshop, unique within its panel.", "W4")
_panellist_ref = Column(
    "panellist_ref",
    S,
    "The recruiter's reference for a panellist; published only as a keyed pseudonym.",
    "P017",
    sensitivity=PSEUDO,
)

_workshop_ref = Reference(
    "workshop",
    ("panel_id", "workshop_id"),
    "workshops",
    ("panel_id", "workshop_id"),
    "the workshop must be listed in the workshops reference data for that panel",
)
_panellist_ref_check = Reference(
    "panellist",
    ("panel_id", "panellist_ref"),
    "roster",
    ("panel_id", "panellist_ref"),
    "the panellist must be on the panel's roster",
)

KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind(
            "organisations",
            "reference",
            "Member organisations of the network.",
            (
                Column("org_id", S, "Short stable identifier of the organisation.", "ORG-NHS-TAY"),
                Column("name", S, "The organisation's name.", "NHS Tayside"),
                Column("sector", E, "The organisation's sector.", "health", allowed=SECTORS),
            ),
            key=("org_id",),
            level=0,
        ),
        Kind(
            "projects",
            "reference",
            "Data-led projects of member organisations that the panel reviews.",
            (
                Column("project_id", S, "Short stable identifier of the project.", "PRJ-03"),
                Column("title", S, "The project's title.", "Predicting missed GP appointments"),
                Column("lead_org_id", S, "The organisation leading the project.", "ORG-NHS-TAY"),
                Column("sector", E, "The sector the project serves.", "health", allowed=SECTORS),
                Column("stage", E, "Whether the project is past, ongoing or future.", "past", allowed=STAGES),
            ),
            key=("project_id",),
            references=(
                Reference(
                    "lead_organisation",
                    ("lead_org_id",),
                    "organisations",
                    ("org_id",),
                    "the lead organisation must be listed in the organisations reference data",
                ),
            ),
            level=1,
        ),
        Kind(
            "workshops",
            "reference",
            "The workshops each panel holds (six for the pilot).",
            (
                _panel_id,
                _workshop_id,
                Column("number", INT, "The workshop's position in the series.", "4", minimum=1, maximum=6),
                Column("held_on", DT, "The date the workshop was held.", "2026-03-12"),
                Column("title", S, "The workshop's title.", "Deliberation: acceptable uses"),
                Column("facilitator_org_id", S, "The organisation that facilitated the workshop.", "ORG-UNI-DUN"),
            ),
            key=("panel_id", "workshop_id"),
            references=(
                Reference(
                    "facilitator_organisation",
                    ("facilitator_org_id",),
                    "organisations",
                    ("org_id",),
                    "the facilitating organisation must be listed in the organisations reference data",
                ),
            ),
            level=1,
        ),
        Kind(
            "population",
            "reference",
            "The population the panel should reflect: the share of each category per dimension.",
            (
                Column("dimension", E, "The demographic dimension.", "age_band", allowed=DIMENSIONS),
                Column("category", S, "A category of the dimension, as used in the roster.", "35-44"),
                Column(
                    "share",
                    D,
                    "The category's share of the population.",
                    "0.16",
                    minimum=0,
                    maximum=1,
                    unit="proportion (0..1)",
                ),
            ),
            key=("dimension", "category"),
            level=1,
        ),
        Kind(
            "roster",
            "panel",
            "The panel's members, held by the recruiter. Direct identifiers never leave landing.",
            (
                _panel_id,
                _panellist_ref,
                Column("age_band", S, "Age band, as in the population reference.", "35-44", required=False),
                Column("gender", S, "Gender, as the panellist describes it.", "Woman", required=False),
                Column("ethnic_group", S, "Ethnic group (census categories).", "White Scottish", required=False),
                Column("council_area", S, "Council area of residence.", "Dundee City", required=False),
                Column(
                    "simd_quintile",
                    INT,
                    "Scottish Index of Multiple Deprivation quintile (1 most deprived).",
                    "2",
                    required=False,
                    minimum=1,
                    maximum=5,
                ),
                Column("urban_rural", S, "Urban/rural classification.", "Large urban area", required=False),
                Column("consent", E, "Whether the panellist's consent stands.", "consented", allowed=CONSENT),
                Column(
                    "full_name",
                    S,
                    "Direct identifier: dropped on the way in.",
                    "Morag Henderson",
                    required=False,
                    sensitivity=DIRECT,
                ),
                Column(
                    "email",
                    S,
                    "Direct identifier: dropped on the way in.",
                    "morag.h@example.co.uk",
                    required=False,
                    sensitivity=DIRECT,
                ),
                Column(
                    "phone",
                    S,
                    "Direct identifier: dropped on the way in.",
                    "07700 900461",
                    required=False,
                    sensitivity=DIRECT,
                ),
                Column(
                    "postcode",
                    S,
                    "Direct identifier: dropped on the way in.",
                    "DD2 3AB",
                    required=False,
                    sensitivity=DIRECT,
                ),
            ),
            key=("panel_id", "panellist_ref"),
            level=2,
        ),
        Kind(
            "attendance",
            "panel",
            "Who attended each workshop.",
            (
                _panel_id,
                _workshop_id,
                _panellist_ref,
                Column("attended", B, "Whether the panellist attended.", "yes"),
            ),
            key=("panel_id", "workshop_id", "panellist_ref"),
            references=(_workshop_ref, _panellist_ref_check),
            level=3,
        ),
        Kind(
            "responses",
            "panel",
            "Answers to workshop polls and questionnaires, one answer per row.",
            (
                _panel_id,
                _workshop_id,
                _panellist_ref,
                Column("question_id", S, "Stable identifier of the question.", "W4-Q02"),
                Column("question_text", S, "The question as asked.", "How comfortable are you with ...?"),
                Column(
                    "answer", T, "The answer as given; free text is scrubbed.", "Fairly comfortable", sensitivity=FREE
                ),
                Column("answered_at", DTT, "When the answer was recorded.", "2026-03-12T18:10:53", required=False),
            ),
            key=("panel_id", "workshop_id", "panellist_ref", "question_id"),
            references=(_workshop_ref, _panellist_ref_check),
            level=3,
        ),
        Kind(
            "project_feedback",
            "panel",
            "Panellists' views of the data-led projects reviewed in workshops.",
            (
                _panel_id,
                _workshop_id,
                Column("project_id", S, "The project reviewed.", "PRJ-03"),
                _panellist_ref,
                Column(
                    "benefit",
                    INT,
                    "Perceived benefit, 1 (none) to 5 (very high).",
                    "4",
                    required=False,
                    minimum=1,
                    maximum=5,
                    unit="score 1..5",
                ),
                Column(
                    "risk",
                    INT,
                    "Perceived risk, 1 (none) to 5 (very high).",
                    "2",
                    required=False,
                    minimum=1,
                    maximum=5,
                    unit="score 1..5",
                ),
                Column(
                    "acceptability",
                    E,
                    "The panellist's verdict on the project.",
                    "acceptable_with_conditions",
                    allowed=ACCEPTABILITY,
                ),
                Column(
                    "conditions",
                    T,
                    "Conditions the panellist attaches; scrubbed.",
                    "Only with an opt-out",
                    required=False,
                    sensitivity=FREE,
                ),
                Column(
                    "comment",
                    T,
                    "Any other comment; scrubbed.",
                    "Clear benefits for patients.",
                    required=False,
                    sensitivity=FREE,
                ),
            ),
            key=("panel_id", "workshop_id", "project_id", "panellist_ref"),
            references=(
                _workshop_ref,
                Reference(
                    "project",
                    ("project_id",),
                    "projects",
                    ("project_id",),
                    "the project must be listed in the projects reference data",
                ),
                _panellist_ref_check,
            ),
            level=3,
        ),
        Kind(
            "recommendations",
            "panel",
            "The panel's recommendations and the votes on them.",
            (
                _panel_id,
                _workshop_id,
                Column("recommendation_id", S, "Stable identifier of the recommendation.", "R07"),
                Column(
                    "text",
                    T,
                    "The recommendation's wording; scrubbed.",
                    "Tell people how their data is used.",
                    sensitivity=FREE,
                ),
                Column("theme", S, "The theme it belongs to.", "transparency"),
                Column("votes_for", INT, "Votes in favour.", "21", minimum=0, unit="votes"),
                Column("votes_against", INT, "Votes against.", "3", minimum=0, unit="votes"),
                Column("votes_abstain", INT, "Abstentions.", "2", minimum=0, unit="votes"),
            ),
            key=("panel_id", "workshop_id", "recommendation_id"),
            references=(_workshop_ref,),
            level=3,
        ),
    )
}

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
