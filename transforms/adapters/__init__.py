"""Survey-tool adapters: read exports exactly as the tools write them into canonical `responses` rows.

    mapping = load_mapping("examples/mappings/qualtrics.yaml")
    result = read_survey(Path("Workshop 2_March 12, 2024_18.30.csv"), mapping)
    result.responses, result.project_feedback, result.respondents, result.excluded, result.unmapped_columns

A file that does not have the declared tool's layout raises `AdapterError` (quarantine it with the
message); a malformed mapping raises `MappingError`. See docs/adapters.md.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ._common import SOURCE_ROW, AdapterError, AdapterResult, detect_tool
from .googleforms import read_googleforms
from .mapping import TOOLS, FeedbackMapping, MappingError, SurveyMapping, load_mapping, mapping_from_dict
from .mentimeter import read_mentimeter
from .msforms import read_msforms
from .qualtrics import read_qualtrics
from .surveymonkey import read_surveymonkey

Reader = Callable[[Path, SurveyMapping], AdapterResult]

READERS: dict[str, Reader] = {
    "qualtrics": read_qualtrics,
    "surveymonkey": read_surveymonkey,
    "msforms": read_msforms,
    "googleforms": read_googleforms,
    "mentimeter": read_mentimeter,
}


def read_survey(path: Path | str, mapping: SurveyMapping) -> AdapterResult:
    """Canonical rows from a survey export, read by the adapter of `mapping.tool`."""
    return READERS[mapping.tool](Path(path), mapping)


__all__ = [
    "READERS",
    "SOURCE_ROW",
    "TOOLS",
    "AdapterError",
    "AdapterResult",
    "FeedbackMapping",
    "MappingError",
    "SurveyMapping",
    "detect_tool",
    "load_mapping",
    "mapping_from_dict",
    "read_googleforms",
    "read_mentimeter",
    "read_msforms",
    "read_qualtrics",
    "read_survey",
    "read_surveymonkey",
]
