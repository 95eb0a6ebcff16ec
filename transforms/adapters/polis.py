"""Polis conversation exports: the statements participants wrote and voted on, and every vote.

Polis (compdemocracy.org) exports a conversation as a handful of CSV files, written by its server's
`export.ts` (the "Export data" page of a conversation's report, or the compdemocracy openData
repository), each recognised here by its header:

- `comments.csv` (timestamp, datetime, comment-id, author-id, agrees, disagrees, moderated,
  comment-body): the statements;
- `votes.csv` (timestamp, datetime, comment-id, voter-id, vote): every vote cast, 1 agree, -1
  disagree, 0 pass;
- `participants-votes.csv` or `participant-votes.csv` (participant, [xid], group-id, n-comments,
  n-votes, n-agree, n-disagree, one column per comment): each participant's final votes, checked
  against votes.csv, and the participants' xids;
- `summary.csv` (key,value rows: topic, url, voters, comments, ...): checked;
- `comment-groups.csv` (comment-id, comment, total-votes, ...): nothing, it is derived from the votes;
- `<id>-xid.csv` (participant, xid): who each participant is outside Polis.

`timestamp` is epoch milliseconds in older exports and epoch seconds in newer ones (told apart by
size); `datetime` is the server's `Date.toString()` with a local zone abbreviation and is not used.
A participant may vote on a statement more than once: the last vote (latest timestamp, then file
order) is the answer, and the earlier ones are kept as `response_history`, not quarantined.

An erasure (`din forget`, `transforms.redaction.polis`) blanks a statement whose author is erased but
its `comment-id`: such a row is an *erased statement*, not read, and the votes on it are left out and
counted (`on_erased_statement`), as they are when the export is delivered again by a partner and its
author is on the blocklist (`erased`).

Each file of the export is one delivery; a file that needs another (votes need the statements' text)
finds it among the files delivered beside it (`companions`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from din.contract import KINDS, normalise_header
from transforms.dates import DateOrder

from ._common import (
    SOURCE_ROW,
    AdapterError,
    AdapterResult,
    Cell,
    Row,
    cell,
    data_rows,
    polis_role,
    read_table,
    text,
    wrong_layout,
)
from .mapping import SurveyMapping

#: Polis' own encoding of a vote, and what it means.
VOTES = {"1": "agree", "-1": "disagree", "0": "pass"}
#: `moderated` in comments.csv: 1 accepted by a moderator, 0 not moderated (yet), -1 moderated out.
MODERATION = {"1": "accepted", "0": "unmoderated", "-1": "moderated_out"}
MODERATED_OUT = "moderated_out"
ON_ERASED_STATEMENT = "on_erased_statement"  # votes left out: the statement's author was erased
EPOCH_MILLISECONDS = 100_000_000_000  # epoch seconds stay below this until the year 5138
SNIFF_ROWS = 40  # enough for summary.csv, whose rows are its keys

FILE_NAMES = {
    "comments": "comments.csv",
    "votes": "votes.csv",
    "participants_votes": "participants-votes.csv",
    "summary": "summary.csv",
    "comment_groups": "comment-groups.csv",
    "xids": "xid.csv",
}
COMPANION_ONLY = {
    "participants_votes": "each participant's final votes, a summary of votes.csv: checked against it",
    "summary": "the conversation's summary (topic and counts): checked against comments.csv and votes.csv",
    "comment_groups": "vote counts per opinion group, derived from votes.csv",
    "xids": "the participants' external ids, read with votes.csv and comments.csv",
}
_HEADERS = {"commentid": "comment-id", "voterid": "voter-id", "authorid": "author-id", "commentbody": "comment-body"}
_EXPECTED = (
    "expected a file of a Polis export: comments.csv (comment-id, author-id, moderated, comment-body, ...), "
    "votes.csv (comment-id, voter-id, vote, ...), participants-votes.csv or summary.csv"
)
STATEMENT_COLUMNS = KINDS["statements"].column_names
HISTORY_COLUMNS = KINDS["response_history"].column_names
RESPONSE_COLUMNS = KINDS["responses"].column_names


@dataclass(frozen=True)
class _Statement:
    statement_id: str
    text: str
    moderation: str
    author: str = ""  # who wrote it, as the pipeline knows them (participant id or xid)
    erased: bool = False  # blanked by an erasure: only its comment-id is left


#: Who was erased (`din forget`), by participant as the pipeline knows them: their statements are not
#: read again, nor the votes on them.
Erased = Callable[[str], bool]


def read_polis(
    path: Path | str,
    mapping: SurveyMapping,
    date_order: DateOrder | None = None,
    companions: Mapping[str, Path] | None = None,
    erased: Erased | None = None,
) -> AdapterResult:
    """Canonical rows from one file of a Polis export; `companions` are the export's other files by name.

    comments.csv gives `statements`; votes.csv gives `responses` (each participant's last vote on
    each statement) and `response_history` (the votes it replaced). The other files only
    accompany these. `date_order` is accepted for a uniform signature: Polis dates are epoch times.
    `erased` tells the participants erased before (the blocklist): votes on their statements are left
    out (their own rows are the blocklist's to drop)."""
    path = Path(path)
    rows = read_table(path)
    role = polis_role(rows[:SNIFF_ROWS])
    if role is None:
        raise _wrong_layout(path)
    others = _companion_roles(companions or {})
    if role == "comments":
        return _statements_result(path, rows, mapping, others, erased)
    if role == "votes":
        return _votes_result(path, rows, mapping, others, erased)
    return _companion_result(path, role)


def _wrong_layout(path: Path) -> AdapterError:
    return wrong_layout(path, "polis", _EXPECTED)


def _companion_roles(companions: Mapping[str, Path]) -> dict[str, Path]:
    """The export's other files by role (a role found twice: the file named as Polis names it wins)."""
    found: dict[str, Path] = {}
    for name, landing in sorted(companions.items()):
        try:
            role = polis_role(read_table(Path(landing), limit=SNIFF_ROWS))
        except (AdapterError, OSError):
            continue
        if role is not None and (role not in found or Path(name).name == FILE_NAMES[role]):
            found[role] = Path(landing)
    return found


# --- comments.csv ----------------------------------------------------------------------------------


def _statements_result(
    path: Path, rows: list[list[Cell]], mapping: SurveyMapping, others: Mapping[str, Path], erased: Erased | None
) -> AdapterResult:
    header = _header(rows, path)
    xids = _xids(others, path, mapping) if mapping.panellist_column == "xid" else None
    who = _identities(mapping, xids, erased)
    records = []
    authors: set[str] = set()
    moderation: Counter[str] = Counter()
    blanked = 0
    for number, row in data_rows(rows, 2):
        comment = _value(row, header, "commentid", path, number)
        if _is_erased(row, header):
            blanked += 1
            continue
        moderated = _value(row, header, "moderated", path, number)
        if moderated not in MODERATION:
            raise AdapterError(
                f"{path.name}: row {number}, column 'moderated': {moderated!r} is not 1 (accepted), 0 (unmoderated) "
                "or -1 (moderated out)"
            )
        author = who(_value(row, header, "authorid", path, number, required=False))
        if author:
            authors.add(author)
        moderation[MODERATION[moderated]] += 1
        records.append(
            {
                "panel_id": mapping.panel_id,
                "workshop_id": mapping.workshop_id,
                "statement_id": mapping.statement_prefix + comment,
                "text": text(cell(row, header["commentbody"])).strip() or None,
                "author_ref": author or None,
                "moderation": MODERATION[moderated],
                "created_at": _moment(_value(row, header, "timestamp", path, number, required=False), path, number),
                SOURCE_ROW: number,
            }
        )
    shown = len(records) - moderation[MODERATED_OUT]
    notes = [
        f"{len(records)} statement(s) by {len(authors)} author(s): {shown} shown, {moderation[MODERATED_OUT]} "
        "moderated out (kept out of what is published, counted here)"
    ]
    if blanked:
        notes.append(f"{blanked} statement(s) erased with their author (din forget): only their comment-id is left")
    notes += _summary_check(others, "comments", shown, "shown statements")
    return AdapterResult(
        responses=_empty(RESPONSE_COLUMNS),
        project_feedback=_empty(KINDS["project_feedback"].column_names),
        respondents=0,  # statements are not answers: their authors are counted in the note
        excluded={},
        unmapped_columns=[],
        statements=_frame(records, STATEMENT_COLUMNS),
        notes=notes,
    )


# --- votes.csv -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Vote:
    row: int
    voter: str
    statement: str
    answer: str
    moment: str | None
    order: tuple[int, int]  # (epoch milliseconds, file row): the later vote wins


def _votes_result(
    path: Path, rows: list[list[Cell]], mapping: SurveyMapping, others: Mapping[str, Path], erased: Erased | None
) -> AdapterResult:
    comments = others.get("comments")
    if comments is None:
        raise AdapterError(
            f"{path.name}: the votes of a Polis export need its comments.csv (the statements' text) delivered in "
            "the same folder; deliver the export's files together"
        )
    header = _header(rows, path)
    xids = _xids(others, path, mapping) if mapping.panellist_column == "xid" else None
    who = _identities(mapping, xids, erased)
    statements = _read_statements(comments, mapping, who)
    votes: list[_Vote] = []
    excluded: Counter[str] = Counter()
    unknown: list[str] = []
    for number, row in data_rows(rows, 2):
        comment = _value(row, header, "commentid", path, number)
        raw_vote = _value(row, header, "vote", path, number)
        if raw_vote not in VOTES:
            raise AdapterError(
                f"{path.name}: row {number}, column 'vote': {raw_vote!r} is not 1 (agree), -1 (disagree) or 0 (pass)"
            )
        statement = statements.get(comment)
        if statement is None:
            unknown.append(comment)
            continue
        if statement.moderation == MODERATED_OUT:
            excluded["on_moderated_out_statement"] += 1
            continue
        voter = who(_value(row, header, "voterid", path, number))
        if not voter:
            excluded["no_panellist_ref"] += 1
            continue
        if _erased_statement(statement, voter, erased):
            excluded[ON_ERASED_STATEMENT] += 1
            continue
        stamp = _value(row, header, "timestamp", path, number, required=False)
        votes.append(
            _Vote(number, voter, comment, VOTES[raw_vote], _moment(stamp, path, number), (epoch_millis(stamp), number))
        )
    if unknown:
        listed = ", ".join(sorted(set(unknown), key=_numeric)[:10])
        raise AdapterError(
            f"{path.name}: {len(unknown)} vote(s) on comment-id(s) {listed}, which the export's comments.csv does not "
            "have; deliver the comments.csv exported with these votes"
        )
    latest, history = _latest_votes(votes)
    responses = [_response(v, statements[v.statement], mapping) for v in latest]
    earlier = [
        {
            "panel_id": mapping.panel_id,
            "workshop_id": mapping.workshop_id,
            "panellist_ref": vote.voter,
            "question_id": mapping.statement_prefix + vote.statement,
            "revision": str(revision),
            "answer": vote.answer,
            "answered_at": vote.moment,
            SOURCE_ROW: vote.row,
        }
        for vote, revision in history
    ]
    voters = {v.voter for v in latest}
    notes = [
        f"{len(votes)} vote(s) by {len(voters)} participant(s) on {len({v.statement for v in latest})} statement(s): "
        f"{len(latest)} latest vote(s) become responses, {len(earlier)} earlier vote(s) are kept in response_history"
    ]
    notes += _summary_check(others, "voters", len(voters), "participants who voted")
    notes += _final_votes_check(others, latest, xids, path)
    return AdapterResult(
        responses=_frame(responses, RESPONSE_COLUMNS),
        project_feedback=_empty(KINDS["project_feedback"].column_names),
        respondents=len(voters),
        excluded=dict(excluded),
        unmapped_columns=[],
        response_history=_frame(earlier, HISTORY_COLUMNS),
        notes=notes,
    )


def _latest_votes(votes: Sequence[_Vote]) -> tuple[list[_Vote], list[tuple[_Vote, int]]]:
    """Per participant and statement: the last vote, and the earlier ones with their revision number."""
    by_pair: dict[tuple[str, str], list[_Vote]] = {}
    for vote in votes:
        by_pair.setdefault((vote.voter, vote.statement), []).append(vote)
    latest: list[_Vote] = []
    history: list[tuple[_Vote, int]] = []
    for pair_votes in by_pair.values():
        ordered = sorted(pair_votes, key=lambda v: v.order)
        latest.append(ordered[-1])
        history.extend((vote, revision) for revision, vote in enumerate(ordered[:-1], start=1))
    return sorted(latest, key=lambda v: v.row), sorted(history, key=lambda h: h[0].row)


def _response(vote: _Vote, statement: _Statement, mapping: SurveyMapping) -> dict[str, object]:
    return {
        "panel_id": mapping.panel_id,
        "workshop_id": mapping.workshop_id,
        "panellist_ref": vote.voter,
        "question_id": statement.statement_id,
        "question_text": statement.text,
        "answer": vote.answer,
        "answered_at": vote.moment,
        SOURCE_ROW: vote.row,
    }


def _read_statements(path: Path, mapping: SurveyMapping, who: Callable[[str], str]) -> dict[str, _Statement]:
    """comment-id -> the statement, from the export's comments.csv."""
    rows = read_table(path)
    header = _header(rows, path)
    found = {}
    for number, row in data_rows(rows, 2):
        comment = _value(row, header, "commentid", path, number)
        found[comment] = _Statement(
            mapping.statement_prefix + comment,
            text(cell(row, header["commentbody"])).strip(),
            MODERATION.get(_value(row, header, "moderated", path, number, required=False), "unmoderated"),
            who(_value(row, header, "authorid", path, number, required=False)),
            _is_erased(row, header),
        )
    return found


def _is_erased(row: Row, header: Mapping[str, int]) -> bool:
    """Whether a comments.csv row is a statement an erasure blanked: nothing but its comment-id is left."""
    kept = header.get("commentid")
    return all(not text(value).strip() for index, value in enumerate(row) if index != kept)


def _erased_statement(statement: _Statement, voter: str, erased: Erased | None) -> bool:
    """Whether a vote is on a statement whose author was erased (blanked in landing, or on the blocklist).

    A vote of the erased person themselves is left to the blocklist, which drops and counts their rows."""
    if statement.erased:
        return True
    if erased is None or not statement.author or erased(voter):
        return False
    return erased(statement.author)


# --- checks against the export's own summaries -----------------------------------------------------


def _summary_check(others: Mapping[str, Path], key: str, counted: int, what: str) -> list[str]:
    """A note when summary.csv's count differs from what the file holds (nothing when they agree)."""
    summary = others.get("summary")
    if summary is None:
        return []
    values = {normalise_header(text(cell(r, 0))): text(cell(r, 1)).strip() for r in read_table(summary) if r}
    stated = values.get(normalise_header(key))
    if stated is None or not stated.isdigit() or int(stated) == counted:
        return []
    return [f"summary.csv states {stated} {key}, but the export holds {counted} {what}"]


def _final_votes_check(
    others: Mapping[str, Path], latest: Sequence[_Vote], xids: Mapping[str, str] | None, path: Path
) -> list[str]:
    """A note when participants-votes.csv's final votes differ from the latest votes of votes.csv."""
    table = others.get("participants_votes")
    if table is None:
        return []
    rows = read_table(table)
    header = [text(v).strip() for v in rows[0]]
    keys = [normalise_header(h) for h in header]
    if "participant" not in keys:
        return []
    participant = keys.index("participant")
    comment_columns = [(i, h) for i, h in enumerate(header) if h.isdigit()]
    ours = {(v.voter, v.statement): v.answer for v in latest}
    differing = 0
    for _, row in data_rows(rows, 2):
        voter = _participant(text(cell(row, participant)).strip(), xids)
        for index, comment in comment_columns:
            value = text(cell(row, index)).strip()
            if value in VOTES and (voter, comment) in ours and ours[(voter, comment)] != VOTES[value]:
                differing += 1
    if not differing:
        return []
    return [f"participants-votes.csv has {differing} final vote(s) that differ from the last vote in {path.name}"]


# --- the other files -------------------------------------------------------------------------------


def _companion_result(path: Path, role: str) -> AdapterResult:
    return AdapterResult(
        responses=_empty(RESPONSE_COLUMNS),
        project_feedback=_empty(KINDS["project_feedback"].column_names),
        respondents=0,
        excluded={},
        unmapped_columns=[],
        companion=f"a Polis {FILE_NAMES[role]}: {COMPANION_ONLY[role]}; nothing of its own to load",
    )


def _xids(others: Mapping[str, Path], path: Path, mapping: SurveyMapping) -> dict[str, str]:
    """participant -> xid, from the export's xid file or participants-votes.csv's `xid` column."""
    for role in ("xids", "participants_votes"):
        table = others.get(role)
        if table is None:
            continue
        rows = read_table(table)
        keys = [normalise_header(text(v)) for v in rows[0]] if rows else []
        if "xid" in keys and "participant" in keys:
            participant, xid = keys.index("participant"), keys.index("xid")
            found = {text(cell(r, participant)).strip(): text(cell(r, xid)).strip() for _, r in data_rows(rows, 2)}
            return {p: x for p, x in found.items() if x}
    raise AdapterError(
        f"{path.name}: the mapping reads participants by xid, but no file of the export beside it has an xid column "
        "(participants-votes.csv or the <id>-xid.csv export); deliver it with the export, or use "
        "panellist_column: participant"
    )


def _participant(participant: str, xids: Mapping[str, str] | None) -> str:
    return participant if xids is None else xids.get(participant, "")


def participant_key(mapping: SurveyMapping, participant: str) -> str:
    """A participant as the blocklist knows them besides their xid: by conversation (the mapping's workshop
    and statement prefix) and Polis participant id. An erasure blanks their xid with everything else, so
    a later export whose xid file is the redacted one still names them by participant id only."""
    return f"polis:{mapping.workshop_id}:{mapping.statement_prefix}:{participant}"


def _identities(mapping: SurveyMapping, xids: Mapping[str, str] | None, erased: Erased | None) -> Callable[[str], str]:
    """Polis participant id -> the panellist reference the pipeline reads for them (their xid, by xid).

    A participant erased before whose xid the export no longer gives is read as their `participant_key`,
    so that the blocklist drops (and counts) their rows and the votes on their statements are left out."""

    def who(participant: str) -> str:
        identity = _participant(participant, xids)
        if identity or not participant or erased is None:
            return identity
        key = participant_key(mapping, participant)
        return key if erased(key) else ""

    return who


# --- cells -----------------------------------------------------------------------------------------


def _header(rows: Sequence[Row], path: Path) -> dict[str, int]:
    if not rows:
        raise _wrong_layout(path)
    header: dict[str, int] = {}
    for index, value in enumerate(rows[0]):
        header.setdefault(normalise_header(text(value)), index)
    return header


def _value(row: Row, header: Mapping[str, int], key: str, path: Path, number: int, required: bool = True) -> str:
    value = text(cell(row, header.get(key))).strip()
    if required and not value:
        raise AdapterError(f"{path.name}: row {number}: the {_HEADERS.get(key, key)} cell is empty")
    return value


def epoch_millis(stamp: str) -> int:
    """An epoch timestamp in milliseconds, whether Polis wrote seconds or milliseconds (0 when missing)."""
    try:
        value = int(float(stamp))
    except ValueError:
        return 0
    return value if value >= EPOCH_MILLISECONDS else value * 1000


def _moment(stamp: str, path: Path, number: int) -> str | None:
    """The epoch timestamp as UTC wall-clock time `YYYY-MM-DDTHH:MM:SS` (None when the cell is empty)."""
    if not stamp:
        return None
    try:
        float(stamp)
    except ValueError:
        raise AdapterError(
            f"{path.name}: row {number}, column 'timestamp': {stamp!r} is not an epoch time (seconds or milliseconds)"
        ) from None
    moment = datetime.fromtimestamp(epoch_millis(stamp) / 1000, tz=UTC)
    return moment.replace(tzinfo=None).isoformat(timespec="seconds")


def _numeric(value: str) -> tuple[int, str]:
    return (int(value), value) if value.lstrip("-").isdigit() else (10**12, value)


def _frame(rows: Sequence[Mapping[str, object]], columns: Sequence[str]) -> pl.DataFrame:
    schema = {name: pl.String for name in columns} | {SOURCE_ROW: pl.Int64}
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)


def _empty(columns: Sequence[str]) -> pl.DataFrame:
    return _frame([], columns)
