"""One landed delivery, from its landing copy to canonical frames that are safe to store.

    read_delivery   landing copy → canonical frames by kind (or the reason the whole file is refused)
    protect         drop direct identifiers → drop erased panellists' rows → pseudonymise panellist
                    references → scrub free text

A delivery normally yields rows of its source's kind; a survey-tool export may also yield
project_feedback rows, and a Polis export statements and response_history. Nothing here writes
anywhere: the validation gate (`expectations.gate`) and `din check` call these (the same reading
for both) and decide what is accepted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from din.config import FormatOptions
from din.contract import FILE_HAS_NO_ROWS, FILE_UNREADABLE, KINDS, SURVEY_EXPORT_UNREADABLE, ColumnType, Kind
from transforms.dates import DateOrder, DateOrderProblem, date_order_option, evidence_of, resolve_date_order
from transforms.headers import HeaderMatch, match_headers
from transforms.normalise import canonical_frame, normalised_frame, renamed_frame
from transforms.pseudonymise import pseudonymise
from transforms.readers import (
    ROW,
    ROW_REASON,
    ROW_RULE,
    RawTable,
    ReadError,
    ReadOptions,
    StreamedTable,
    open_streamed,
    read_table,
)

REFUSED = "refused"  # outcome of a file refused whole: unreadable, wrong layout, a required column missing, ...
COMPANION = "companion"  # outcome of a file read only with the files beside it (a Polis summary.csv)

if TYPE_CHECKING:
    from transforms.adapters import SurveyMapping
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
    companions: tuple[tuple[str, str], ...] = ()  # (relative path, landing copy) of the files delivered beside it
    columns: Mapping[str, str] = field(default_factory=dict)  # the organisation's column mapping saved in the portal
    columns_error: str | None = None  # why its saved mapping could not be used (the file is refused)


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
    refused: bool = False  # the whole file was refused (the reason is `message`)
    companion: bool = False  # read only with the files beside it: nothing of its own to load
    tool: str | None = None  # the survey or deliberation tool whose export it is
    respondents: int | None = None  # people whose answers were read (tool exports)
    answers: int | None = None  # answers read (tool exports: rows of `responses`)
    excluded: dict[str, int] = field(default_factory=dict)  # respondents or votes left out, by reason
    notes: list[str] = field(default_factory=list)  # what the reader noticed (counts, checks against the export)
    read_options: str | None = None  # how it was read (din.config.FormatOptions.fingerprint)

    @property
    def outcome(self) -> str:
        if self.refused:
            return REFUSED
        if self.companion:
            return COMPANION
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


def read_delivery(
    delivery: DeliveryToProcess,
    outcome: DeliveryOutcome,
    mapping: SurveyMapping | None = None,
    blocklist: Blocklist | None = None,
) -> dict[str, pl.DataFrame] | FileProblem:
    """The delivery as canonical frames by kind, or the FileProblem that explains why the whole file is refused.

    Fills in what was learnt about the file on `outcome` (format, encoding, headers, extra columns).
    A tool's export (`format.type: survey`) is read with its source's mapping file, or with `mapping`
    when one is given (`din check` previews an export that way). `blocklist`: the erased panellists,
    whose rows `protect` drops; a deliberation export also leaves out the votes on their statements."""
    if delivery.format.type == "survey":
        outcome.read_options = delivery.format.fingerprint()
        return _survey_delivery(delivery, outcome, mapping, blocklist)
    read = read_table_delivery(delivery, outcome)
    if isinstance(read, FileProblem):
        return read
    return {read.kind.name: normalised_frame(read.frame, read.kind, read.date_order)}


@dataclass(frozen=True)
class RenamedDelivery:
    """A table delivery read and checked as a whole: its rows under the contract's names, values as delivered
    (`transforms.normalise.renamed_frame`), and the order its dates are read in."""

    kind: Kind
    frame: pl.DataFrame
    date_order: DateOrder | None


def read_table_delivery(delivery: DeliveryToProcess, outcome: DeliveryOutcome) -> RenamedDelivery | FileProblem:
    """`read_delivery` for a table (any format but a tool's export), stopping before normalising: deliveries
    of a batch whose dates read in the same order are normalised and protected together (`expectations.gate`)."""
    outcome.read_options = delivery.format.fingerprint()
    try:
        raw = read_table(Path(delivery.landing_path), delivery.original_path, _read_options(delivery))
    except ReadError as error:
        return refuse(outcome, FileProblem((FILE_UNREADABLE,), (f"{_name(delivery)}: {error}",)))
    checked = _checked(delivery, outcome, raw, raw.frame.lazy())
    if isinstance(checked, FileProblem):
        return checked
    kind, match, order = checked
    return RenamedDelivery(kind, renamed_frame(raw.frame, kind, match), order)


def read_delivery_in_chunks(
    delivery: DeliveryToProcess, outcome: DeliveryOutcome, blocklist: Blocklist | None = None
) -> dict[str, Iterator[pl.DataFrame]] | FileProblem:
    """`read_delivery` for a large file, never held whole: a CSV is read once for what is decided about it as
    a whole (its headers, the records that could not be read, the order of day and month in its dates) and
    then again a chunk at a time, each chunk turned into canonical rows, the same rows `read_delivery`
    gives. Nothing is written: the caller protects each chunk before it keeps it. Other formats are read
    whole, as one chunk."""
    outcome.read_options = delivery.format.fingerprint()
    if delivery.format.type != "survey":
        try:
            raw = open_streamed(Path(delivery.landing_path), delivery.original_path, _read_options(delivery))
            if isinstance(raw, StreamedTable):
                kind = KINDS[delivery.kind]
                # the date columns, from the header alone (an empty unnamed column never is one)
                provisional = match_headers(raw.all_headers, kind, {**delivery.columns, **delivery.format.columns})
                index = raw.index(_dated_headers(kind, provisional))
        except ReadError as error:
            return refuse(outcome, FileProblem((FILE_UNREADABLE,), (f"{_name(delivery)}: {error}",)))
        if isinstance(raw, StreamedTable):
            checked = _checked(delivery, outcome, raw, index.lazy())
            if isinstance(checked, FileProblem):
                return checked
            kind, match, order = checked
            return {kind.name: (canonical_frame(chunk, kind, match, order) for chunk in raw.chunks())}
    whole = read_delivery(delivery, outcome, blocklist=blocklist)
    return whole if isinstance(whole, FileProblem) else {name: iter([frame]) for name, frame in whole.items()}


def _name(delivery: DeliveryToProcess) -> str:
    return Path(delivery.original_path).name


def _read_options(delivery: DeliveryToProcess) -> ReadOptions:
    return ReadOptions(delivery.format.type, delivery.format.sheet, delivery.format.delimiter, delivery.format.encoding)


def _checked(
    delivery: DeliveryToProcess, outcome: DeliveryOutcome, raw: RawTable | StreamedTable, records: pl.LazyFrame
) -> tuple[Kind, HeaderMatch, DateOrder | None] | FileProblem:
    """What is decided for the file as a whole, before any row is used: its headers against the contract,
    whether any row could be read, the order of day and month in its dates. `records` holds its rows (the
    file in memory, or a streamed file's index); only counts, row numbers and the date columns are taken."""
    kind = KINDS[delivery.kind]
    name = _name(delivery)
    outcome.format, outcome.encoding = raw.format, raw.encoding
    height, unread_count = records.select(pl.len(), pl.col(ROW_RULE).is_not_null().sum()).collect().row(0)
    outcome.rows_read = height
    outcome.headers = raw.delivered_headers

    def rows() -> tuple[int, ...]:
        return tuple(records.select(ROW).collect()[ROW].to_list())

    if delivery.columns_error is not None:
        from transforms.column_mapping import MAPPING_INVALID

        return refuse(outcome, FileProblem((MAPPING_INVALID,), (f"{name}: {delivery.columns_error}",), rows()))
    # The source's own mapping (din.yaml, set by the network's engineers) wins over one an organisation saved.
    # The header row as delivered: a header given twice is a duplicate (refused when it names a contract column).
    match = match_headers(raw.delivered_headers, kind, {**delivery.columns, **delivery.format.columns})
    outcome.extra_columns = list(match.extra)
    outcome.missing_optional_columns = list(match.missing_optional)
    if height == 0:
        return refuse(
            outcome, FileProblem((FILE_HAS_NO_ROWS,), (f"{name}: the file has a header row but no data rows",))
        )
    problems = match.problems()
    if unread_count == height:  # nothing in the file can be used: refused, never a silent loss
        first = records.filter(pl.col(ROW_RULE).is_not_null()).head(1).collect().row(0, named=True)
        reason = (
            f"{name}: no row could be read as its header says (row {first[ROW]}: {first[ROW_REASON]}); "
            "send the whole file again"
        )
        return refuse(outcome, FileProblem((FILE_UNREADABLE,), (reason,), rows()))
    if problems:
        reasons = tuple(p.message + (f" ({p.suggestion})" if p.suggestion else "") for p in problems)
        outcome.message = f"{name}: {match.problem()}"
        return refuse(outcome, FileProblem(tuple(p.rule for p in problems), reasons, rows()), message=outcome.message)
    order = file_date_order(records, kind, match, date_order_option(delivery.format.date_order))
    if isinstance(order, DateOrderProblem):
        return refuse(outcome, FileProblem((order.rule,), (f"{name}: {order.message}",), rows()))
    return kind, match, order


def refuse(outcome: DeliveryOutcome, problem: FileProblem, message: str | None = None) -> FileProblem:
    """Record on `outcome` that the whole file is refused (its message: the reasons), and return why."""
    outcome.refused = True
    outcome.message = message or "; ".join(problem.reasons)
    return problem


def file_date_order(
    records: pl.LazyFrame, kind: Kind, match: HeaderMatch, declared: DateOrder | None
) -> DateOrder | DateOrderProblem | None:
    """The order of day and month for the file's date columns (`transforms.dates`: declared, else proven)."""
    headers = _dated_headers(kind, match)
    if not headers:
        return declared
    frame = records.select(headers).collect()
    return resolve_date_order(evidence_of({header: frame[header] for header in headers}), declared)


def _dated_headers(kind: Kind, match: HeaderMatch) -> list[str]:
    dated = {ColumnType.DATE, ColumnType.DATETIME}
    return [header for header, column in match.mapping.items() if kind.column(column).type in dated]


def _survey_delivery(
    delivery: DeliveryToProcess, outcome: DeliveryOutcome, given: SurveyMapping | None, blocklist: Blocklist | None
) -> dict[str, pl.DataFrame] | FileProblem:
    """A tool's export, read by its adapter into responses (and project_feedback, statements, ...) rows."""
    from transforms.adapters import TOOL_NAMES, AdapterError, MappingError, load_mapping, read_survey

    name = Path(delivery.original_path).name
    try:
        if given is None and delivery.format.mapping is None:
            raise MappingError("a survey source needs format.mapping")
        mapping = given or load_mapping(delivery.format.mapping)  # type: ignore[arg-type]
        if delivery.format.tool and delivery.format.tool != mapping.tool:
            raise MappingError(
                f"the source declares format.tool {delivery.format.tool}, but its mapping is for {mapping.tool}"
            )
        companions = {relative: Path(landing) for relative, landing in delivery.companions}
        erased = _erased_of(blocklist, mapping.panel_id)
        result = read_survey(
            Path(delivery.landing_path), mapping, date_order_option(delivery.format.date_order), companions, erased
        )
    except AdapterError as error:
        return refuse(outcome, FileProblem((error.rule,), (_named(str(error), delivery),)))
    except (MappingError, ReadError) as error:
        return refuse(outcome, FileProblem((SURVEY_EXPORT_UNREADABLE,), (_named(str(error), delivery),)))
    outcome.format, outcome.tool = f"survey:{mapping.tool}", mapping.tool
    outcome.notes = list(result.notes)
    outcome.extra_columns = list(result.unmapped_columns)
    if result.companion is not None:
        outcome.companion = True
        outcome.message = f"{name}: {result.companion}"
        return {}
    outcome.respondents, outcome.answers, outcome.excluded = result.respondents, result.answers, dict(result.excluded)
    excluded = ", ".join(f"{count} {reason}" for reason, count in sorted(result.excluded.items()) if count)
    read = f": {result.respondents} respondent(s), {result.answers} answer(s) loaded" if result.answers else ""
    outcome.message = (
        f"{TOOL_NAMES[mapping.tool]} export{read}"
        + (f"; excluded {excluded}" if excluded else "")
        + "".join(f"; {note}" for note in result.notes)
    )
    frames: dict[str, pl.DataFrame] = {}
    for kind_name, frame in result.frames().items():
        kind = KINDS[kind_name]
        frame = frame.rename({"source_row": ROW}) if "source_row" in frame.columns else frame
        frames[kind_name] = canonical_frame(frame, kind, match_headers(list(kind.column_names), kind))
        outcome.rows_read += frame.height
    return frames


def _erased_of(blocklist: Blocklist | None, panel_id: str) -> Callable[[str], bool] | None:
    """Whether a panellist of `panel_id` (as the export names them) was erased, for an adapter (None: nobody was)."""
    return partial(blocklist.blocks, panel_id) if blocklist else None


def _named(message: str, delivery: DeliveryToProcess) -> str:
    """A reader's message about the landing copy, naming the file as the contributor named it."""
    name = Path(delivery.original_path).name
    message = message.replace(Path(delivery.landing_path).name, name)
    return message if message.startswith(f"{name}: ") else f"{name}: {message}"


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
    return protect_deliveries(frame, kind, key_secret, scrubber, {None: outcome}, None, blocklist)


def protect_deliveries(
    frame: pl.DataFrame,
    kind: Kind,
    key_secret: bytes,
    scrubber: Scrubber | None,
    outcomes: Mapping[Any, DeliveryOutcome],
    by: str | None,
    blocklist: Blocklist | None = None,
) -> pl.DataFrame:
    """`protect` for the rows of several deliveries at once: column `by` says whose each row is, and what is
    dropped or replaced is counted on that delivery's outcome in `outcomes` (by None: every row is the one
    delivery's under the key None). Every step is row by row, so each row ends as protecting its delivery
    alone would leave it."""
    frame = frame.drop([c for c in kind.direct_identifiers if c in frame.columns])
    if blocklist:
        for column in kind.pseudonymised_columns:  # a statement's `author_ref` too: what they wrote goes with them
            before = frame
            frame, blocked = blocklist.drop(frame, column)
            if blocked:
                kept = _rows_by(frame, by)
                for owner, count in _rows_by(before, by).items():
                    outcomes[owner].rows_blocked += count - kept.get(owner, 0)
    for column in kind.pseudonymised_columns:
        frame = pseudonymise(frame, key_secret, column)
    if kind.free_text_columns:
        if scrubber is None:
            raise ValueError(f"kind {kind.name} has free text: a Scrubber is needed")
        from transforms.scrub import ScrubCounts

        frame, found = scrubber.scrub_frame_by(frame, kind.free_text_columns, by)
        for owner, outcome in outcomes.items():  # every type named, with 0 where none was found
            for name, value in found.get(owner, ScrubCounts()).as_dict().items():
                outcome.scrub_counts[name] = outcome.scrub_counts.get(name, 0) + value
    return frame


def _rows_by(frame: pl.DataFrame, by: str | None) -> dict[Any, int]:
    """How many rows `frame` holds of each value of column `by` (None: all of them, under None)."""
    if by is None:
        return {None: frame.height}
    return dict(frame.group_by(by).len().iter_rows())


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
            opened = open_streamed(Path(path), path)
            # a CSV's header alone says whether it names anyone: a roster without names is not read
            if isinstance(opened, StreamedTable) and "full_name" not in _header_columns(opened.all_headers, roster):
                continue
            raw = opened if isinstance(opened, RawTable) else read_table(Path(path), path)
        except ReadError:
            continue
        match = match_headers(raw.headers, roster)
        header = next((h for h, c in match.mapping.items() if c == "full_name"), None)
        if header is not None:
            names.update(v.strip() for v in raw.frame[header].drop_nulls().to_list() if v and v.strip())
    return sorted(names)


def _header_columns(headers: list[str], kind: Kind) -> set[str]:
    return set(match_headers(headers, kind).mapping.values())
