"""Survey- and deliberation-tool adapters: read exports exactly as the tools write them into canonical rows.

    mapping = load_mapping("examples/mappings/qualtrics.yaml")
    result = read_survey(Path("Workshop 2_March 12, 2024_18.30.csv"), mapping)
    result.responses, result.project_feedback, result.respondents, result.excluded, result.unmapped_columns
    result.frames()   # every kind's rows (a Polis export also gives statements and response_history)

A file that does not have the declared tool's layout raises `AdapterError` (quarantine it with the
message); a malformed mapping raises `MappingError`. See docs/adapters.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from transforms.dates import DateOrder

from ._common import SOURCE_ROW, TOOL_NAMES, AdapterError, AdapterResult, detect_tool, text_question_id
from .googleforms import read_googleforms
from .mapping import TOOLS, FeedbackMapping, MappingError, SurveyMapping, load_mapping, mapping_from_dict
from .mentimeter import read_mentimeter
from .msforms import read_msforms
from .polis import read_polis
from .qualtrics import read_qualtrics
from .surveymonkey import read_surveymonkey

Reader = Callable[[Path, SurveyMapping, DateOrder | None], AdapterResult]

READERS: dict[str, Reader] = {
    "qualtrics": read_qualtrics,
    "surveymonkey": read_surveymonkey,
    "msforms": read_msforms,
    "googleforms": read_googleforms,
    "mentimeter": read_mentimeter,
}


def read_survey(
    path: Path | str,
    mapping: SurveyMapping,
    date_order: DateOrder | None = None,
    companions: Mapping[str, Path] | None = None,
    erased: Callable[[str], bool] | None = None,
) -> AdapterResult:
    """Canonical rows from a tool's export, read by the adapter of `mapping.tool`.

    `date_order` is the source's declared order of day and month (None: what the file proves);
    `companions` are the files delivered beside this one, by name (a Polis export is several files);
    `erased` tells the panellists erased before (a Polis export leaves out the votes on their statements)."""
    if mapping.tool == "polis":
        return read_polis(Path(path), mapping, date_order, companions, erased)
    return READERS[mapping.tool](Path(path), mapping, date_order)


__all__ = [
    "READERS",
    "SOURCE_ROW",
    "TOOLS",
    "TOOL_NAMES",
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
    "read_polis",
    "read_qualtrics",
    "read_survey",
    "read_surveymonkey",
    "text_question_id",
]
