"""Per-source mapping: which export columns become which canonical questions and project feedback.

A mapping is a small YAML file kept with the source's configuration (see docs/adapters.md). It names
the tool, the panel and workshop the export belongs to, the column that identifies a respondent, and,
optionally, which questions to load under which canonical `question_id`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from din.contract import ACCEPTABILITY
from din.source_options import SURVEY_TOOLS

TOOLS = SURVEY_TOOLS
#: Polis: who a vote or a statement is from, and how statement ids are made.
POLIS_PARTICIPANT_COLUMNS = ("participant", "xid")
POLIS_KEYS = {"tool", "panel_id", "workshop_id", "panellist_column", "statement_prefix"}

#: The column each tool uses for "when the response was recorded" when a mapping names none.
DEFAULT_ANSWERED_AT: dict[str, tuple[str, ...]] = {
    "qualtrics": ("EndDate",),
    "surveymonkey": ("End Date",),
    "msforms": ("Completion time",),
    "googleforms": ("Timestamp",),
    "mentimeter": ("Submitted at", "Timestamp", "Date (UTC)"),
    "polis": ("timestamp",),
}

FEEDBACK_FIELDS = ("benefit", "risk", "acceptability", "conditions", "comment")
_VALUE_MAPS = ("benefit_values", "risk_values", "acceptability_values")


class MappingError(ValueError):
    """A mapping file is malformed: the message names the file and the offending key."""


@dataclass(frozen=True)
class FeedbackMapping:
    """Which questions give one project's feedback, and how their answers become canonical values."""

    project_id: str
    benefit: str | None = None
    risk: str | None = None
    acceptability: str | None = None
    conditions: str | None = None
    comment: str | None = None
    benefit_values: Mapping[str, str] = field(default_factory=dict)  # answer label -> "1".."5"
    risk_values: Mapping[str, str] = field(default_factory=dict)
    acceptability_values: Mapping[str, str] = field(default_factory=dict)  # label -> acceptable, ...

    def selectors(self) -> dict[str, str]:
        """The mapped fields and the question selector of each."""
        return {name: sel for name in FEEDBACK_FIELDS if (sel := getattr(self, name)) is not None}

    def values_for(self, field_name: str) -> Mapping[str, str]:
        return getattr(self, f"{field_name}_values", {})


@dataclass(frozen=True)
class SurveyMapping:
    """How one source's survey export becomes canonical rows."""

    tool: str
    panel_id: str
    workshop_id: str
    panellist_column: str
    questions: Mapping[str, str] = field(default_factory=dict)  # selector -> question_id; empty = all
    project_feedback: Sequence[FeedbackMapping] = ()
    answered_at_column: str | None = None  # None = the tool's default (DEFAULT_ANSWERED_AT)
    value_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # selector -> code -> label
    multi_select: Sequence[str] = ()  # selectors of one-column multi-selects the file cannot reveal
    choices: Mapping[str, Sequence[str]] = field(default_factory=dict)  # selector -> options, in order
    statement_prefix: str = "S"  # Polis: statement (and question) id = prefix + comment-id

    @property
    def answered_at_candidates(self) -> tuple[str, ...]:
        return (self.answered_at_column,) if self.answered_at_column else DEFAULT_ANSWERED_AT[self.tool]


class _MappingLoader(yaml.SafeLoader):
    """YAML 1.1 reads Yes/No/On/Off as booleans, but they are common answer labels: keep them text."""


_MappingLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_MappingLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_mapping(path: Path | str) -> SurveyMapping:
    """Read and check a mapping YAML file."""
    path = Path(path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_MappingLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise MappingError(f"{path.name}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise MappingError(f"{path.name}: expected a YAML mapping (key: value lines) at the top level")
    return mapping_from_dict(data, source=path.name)


def mapping_from_dict(data: Mapping[str, Any], source: str = "mapping") -> SurveyMapping:
    """Check a parsed mapping and build a `SurveyMapping`; `source` names it in error messages."""
    if "day_first" in data:
        raise MappingError(
            f"{source}: day_first is no longer a mapping key: the order of day and month is the source's "
            "`date_order` (day_first or month_first) under `format:` in din.yaml, the same for every file"
        )
    tool = _required_text(data, "tool", source).lower()
    if tool not in TOOLS:
        raise MappingError(f"{source}: tool {tool!r} is not one of {', '.join(TOOLS)}")
    if tool == "polis":
        return _polis_mapping(data, source)
    _reject_unknown(data, {f.name for f in SurveyMapping.__dataclass_fields__.values()} - {"statement_prefix"}, source)
    questions = _text_map(data.get("questions"), "questions", source)
    _reject_duplicate_ids(questions, source)
    return SurveyMapping(
        tool=tool,
        panel_id=_required_text(data, "panel_id", source),
        workshop_id=_required_text(data, "workshop_id", source),
        panellist_column=_required_text(data, "panellist_column", source),
        questions=questions,
        project_feedback=tuple(
            _feedback(item, f"{source}: project_feedback[{i}]")
            for i, item in enumerate(_list(data.get("project_feedback"), "project_feedback", source))
        ),
        answered_at_column=_optional_text(data, "answered_at_column", source),
        value_labels={
            str(sel): _text_map(codes, f"value_labels[{sel}]", source)
            for sel, codes in _dict(data.get("value_labels"), "value_labels", source).items()
        },
        multi_select=tuple(str(s) for s in _list(data.get("multi_select"), "multi_select", source)),
        choices={
            str(sel): tuple(str(c) for c in _list(options, f"choices[{sel}]", source))
            for sel, options in _dict(data.get("choices"), "choices", source).items()
        },
    )


def _polis_mapping(data: Mapping[str, Any], source: str) -> SurveyMapping:
    """A Polis conversation's mapping: the panel, the workshop, and who a participant is."""
    _reject_unknown(data, POLIS_KEYS, source)
    column = (_optional_text(data, "panellist_column", source) or "participant").lower()
    if column not in POLIS_PARTICIPANT_COLUMNS:
        raise MappingError(
            f"{source}: panellist_column of a Polis export is participant (Polis' participant id) or xid (the "
            f"external id your site gave Polis), not {column!r}"
        )
    prefix = _optional_text(data, "statement_prefix", source) or "S"
    return SurveyMapping(
        tool="polis",
        panel_id=_required_text(data, "panel_id", source),
        workshop_id=_required_text(data, "workshop_id", source),
        panellist_column=column,
        statement_prefix=prefix,
    )


def _feedback(item: Any, where: str) -> FeedbackMapping:
    if not isinstance(item, dict):
        raise MappingError(f"{where}: expected project_id and question selectors (key: value lines)")
    _reject_unknown(item, {f.name for f in FeedbackMapping.__dataclass_fields__.values()}, where)
    selectors = {name: _optional_text(item, name, where) for name in FEEDBACK_FIELDS}
    if not any(selectors.values()):
        raise MappingError(f"{where}: names no question for any of {', '.join(FEEDBACK_FIELDS)}")
    values = {name: _text_map(item.get(name), name, where) for name in _VALUE_MAPS}
    bad = sorted(set(values["acceptability_values"].values()) - set(ACCEPTABILITY))
    if bad:
        raise MappingError(f"{where}: acceptability_values map to {bad}; allowed: {', '.join(ACCEPTABILITY)}")
    return FeedbackMapping(project_id=_required_text(item, "project_id", where), **selectors, **values)  # type: ignore[arg-type]


def _reject_unknown(data: Mapping[str, Any], known: set[str], where: str) -> None:
    # A misspelt key would otherwise be ignored silently and a question quietly not loaded.
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        raise MappingError(f"{where}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(known))}")


def _reject_duplicate_ids(questions: Mapping[str, str], where: str) -> None:
    seen: dict[str, str] = {}
    for selector, question_id in questions.items():
        if question_id in seen:
            raise MappingError(
                f"{where}: questions {seen[question_id]!r} and {selector!r} both map to question_id {question_id!r}"
            )
        seen[question_id] = selector


def _required_text(data: Mapping[str, Any], key: str, where: str) -> str:
    value = _optional_text(data, key, where)
    if not value:
        raise MappingError(f"{where}: {key} is required")
    return value


def _optional_text(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        raise MappingError(f"{where}: {key} should be a single value, not {type(value).__name__}")
    text = _scalar(value).strip()
    return text or None


def _text_map(value: Any, key: str, where: str) -> dict[str, str]:
    return {_scalar(k): _scalar(v) for k, v in _dict(value, key, where).items()}


def _dict(value: Any, key: str, where: str) -> dict[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MappingError(f"{where}: {key} should be key: value lines")
    return value


def _list(value: Any, key: str, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise MappingError(f"{where}: {key} should be a list (lines starting with '- ')")
    return value


def _scalar(value: Any) -> str:
    # YAML turns 5 into an int and 4.0 into a float; canonical values are text ("5").
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
