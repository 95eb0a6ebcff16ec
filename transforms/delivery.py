"""One landed delivery, from its landing copy to canonical frames that are safe to store.

    read_delivery   landing copy → canonical frames by kind (or the reason the whole file is refused)
    protect         drop direct identifiers → drop erased panellists' rows → pseudonymise panellist
                    references → scrub free text

A delivery normally yields rows of its source's kind; a survey-tool export may also yield
project_feedback rows. Nothing here writes anywhere: the validation gate (`expectations.gate`)
calls these and decides what is accepted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from din.config import FormatOptions
from din.contract import FILE_HAS_NO_ROWS, FILE_UNREADABLE, KINDS, SURVEY_EXPORT_UNREADABLE, Kind
from transforms.headers import match_headers
from transforms.normalise import canonical_frame
from transforms.pseudonymise import pseudonymise
from transforms.readers import ROW, ReadError, ReadOptions, read_table

if TYPE_CHECKING:
    from transforms.blocklist import Blocklist
    from transforms.scrub import Scrubber


@dataclass(frozen=True)
class DeliveryToProcess:
    """A landed delivery to read: where its landing copy is and how its source says to read it."""

    delivery_id: int
    source: str
    kind: str
    original_path: str
    landing_path: str
    size: int
    format: FormatOptions


@dataclass
class DeliveryOutcome:
    """What became of one delivery: how it was read, and how many rows were accepted or set aside."""

    delivery_id: int
    rows_read: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    rows_blocked: int = 0  # rows of erased panellists, dropped unread (`transforms.blocklist`)
    format: str | None = None
    encoding: str | None = None
    headers: list[str] | None = None  # the header row as delivered; None when the file could not be read
    extra_columns: list[str] = field(default_factory=list)
    missing_optional_columns: list[str] = field(default_factory=list)
    scrub_counts: dict[str, int] = field(default_factory=dict)
    message: str | None = None

    @property
    def outcome(self) -> str:
        if self.rows_accepted and not self.rows_quarantined:
            return "accepted"
        if self.rows_accepted:
            return "partly_accepted"
        return "quarantined" if self.rows_quarantined or self.message else "empty"


@dataclass(frozen=True)
class FileProblem:
    """Why a whole file is refused: the rules it breaks with their reasons, and its rows when they were read."""

    rules: tuple[str, ...]
    reasons: tuple[str, ...]
    rows: tuple[int, ...] = ()


def read_delivery(delivery: DeliveryToProcess, outcome: DeliveryOutcome) -> dict[str, pl.DataFrame] | FileProblem:
    """The delivery as canonical frames by kind, or the FileProblem that explains why not.

    Fills in what was learnt about the file on `outcome` (format, encoding, headers, extra columns)."""
    if delivery.format.type == "survey":
        return _survey_delivery(delivery, outcome)
    kind = KINDS[delivery.kind]
    name = Path(delivery.original_path).name
    options = ReadOptions(
        delivery.format.type, delivery.format.sheet, delivery.format.delimiter, delivery.format.encoding
    )
    try:
        raw = read_table(Path(delivery.landing_path), delivery.original_path, options)
    except ReadError as error:
        outcome.message = f"{name}: {error}"
        return FileProblem((FILE_UNREADABLE,), (outcome.message,))
    outcome.format, outcome.encoding = raw.format, raw.encoding
    outcome.rows_read = raw.frame.height
    outcome.headers = list(raw.headers)
    match = match_headers(raw.headers, kind)
    outcome.extra_columns = list(match.extra)
    outcome.missing_optional_columns = list(match.missing_optional)
    if raw.frame.height == 0:
        outcome.message = f"{name}: the file has a header row but no data rows"
        return FileProblem((FILE_HAS_NO_ROWS,), (outcome.message,))
    problems = match.problems()
    if problems:
        outcome.message = f"{name}: {match.problem()}"
        reasons = tuple(p.message + (f" ({p.suggestion})" if p.suggestion else "") for p in problems)
        return FileProblem(tuple(p.rule for p in problems), reasons, tuple(raw.frame[ROW].to_list()))
    return {kind.name: canonical_frame(raw.frame, kind, match)}


def _survey_delivery(delivery: DeliveryToProcess, outcome: DeliveryOutcome) -> dict[str, pl.DataFrame] | FileProblem:
    """A survey-tool export, read by its adapter into responses (and project_feedback) rows."""
    from transforms.adapters import AdapterError, MappingError, load_mapping, read_survey

    name = Path(delivery.original_path).name
    try:
        if delivery.format.mapping is None:
            raise MappingError("a survey source needs format.mapping")
        mapping = load_mapping(delivery.format.mapping)
        result = read_survey(Path(delivery.landing_path), mapping)
    except (AdapterError, MappingError, ReadError) as error:
        outcome.message = f"{name}: {error}"
        return FileProblem((SURVEY_EXPORT_UNREADABLE,), (outcome.message,))
    outcome.format = f"survey:{mapping.tool}"
    excluded = ", ".join(f"{count} {reason}" for reason, count in sorted(result.excluded.items()) if count)
    outcome.message = f"{result.respondents} respondent(s) loaded" + (f"; excluded {excluded}" if excluded else "")
    outcome.extra_columns = list(result.unmapped_columns)
    frames: dict[str, pl.DataFrame] = {}
    for kind_name, frame in (("responses", result.responses), ("project_feedback", result.project_feedback)):
        if frame.height:
            kind = KINDS[kind_name]
            frame = frame.rename({"source_row": ROW}) if "source_row" in frame.columns else frame
            frames[kind_name] = canonical_frame(frame, kind, match_headers(list(kind.column_names), kind))
            outcome.rows_read += frame.height
    return frames


def protect(
    frame: pl.DataFrame,
    kind: Kind,
    key_secret: bytes,
    scrubber: Scrubber | None,
    outcome: DeliveryOutcome,
    blocklist: Blocklist | None = None,
) -> pl.DataFrame:
    """Drop direct identifiers and the rows of erased panellists (counted on `outcome`), pseudonymise
    panellist references, scrub free text (counting what was replaced on `outcome`). `scrubber` may be
    None only for kinds without free text."""
    frame = frame.drop([c for c in kind.direct_identifiers if c in frame.columns])
    if kind.pseudonymised_columns:
        if blocklist:
            frame, blocked = blocklist.drop(frame)
            outcome.rows_blocked += blocked
        frame = pseudonymise(frame, key_secret)
    if kind.free_text_columns:
        if scrubber is None:
            raise ValueError(f"kind {kind.name} has free text: a Scrubber is needed")
        frame, counts = scrubber.scrub_frame(frame, kind.free_text_columns)
        for name, value in counts.as_dict().items():
            outcome.scrub_counts[name] = outcome.scrub_counts.get(name, 0) + value
    return frame


def scrubber_for(roster_paths: Sequence[str], blocklist: Blocklist | None = None) -> Scrubber:
    """A Scrubber that knows the roster's names (read from its landing copies, held in memory only) and,
    by token, the names of people erased before (no longer on any roster)."""
    from transforms.scrub import Scrubber

    erased = blocklist.erased_mentions() if blocklist is not None and blocklist.mentions else None
    return Scrubber(roster_names(roster_paths), erased)


def roster_names(paths: Sequence[str]) -> list[str]:
    """Full names from the roster's landing copies, held in memory only, for scrubbing free text."""
    roster = KINDS["roster"]
    names: set[str] = set()
    for path in paths:
        try:
            raw = read_table(Path(path), path)
        except ReadError:
            continue
        match = match_headers(raw.headers, roster)
        header = next((h for h, c in match.mapping.items() if c == "full_name"), None)
        if header is not None:
            names.update(v.strip() for v in raw.frame[header].drop_nulls().to_list() if v and v.strip())
    return sorted(names)
