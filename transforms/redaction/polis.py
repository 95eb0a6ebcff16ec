"""A Polis export: one participant is in several files, under other columns, and in counts made from their votes.

    participants = polis_participants(files, panel_id, "participant" | "xid", whom)
    person = polis_person(panel_id, participants, export)   # export: the files delivered together, by role
    redact(data, name, Layout("csv", polis=person), whom, mentions)

A participant is found by their Polis participant id, or (a mapping that reads participants by `xid`)
by the external id their site gave Polis, which `participants-votes.csv` or `<id>-xid.csv` pair with
the participant id the other files use. Then, in each file:

- `comments.csv`: the statements they wrote are blanked but their `comment-id` (an *erased
  statement*: the votes on it still name it, and the adapter leaves those votes out and counts them);
  `agrees` and `disagrees` of everyone else's statements are counted again without their votes (Polis
  counts every vote row, a repeated vote twice: so is each of theirs taken off);
- `votes.csv`, `participants-votes.csv` (`participant-votes.csv`), `<id>-xid.csv`: their rows are
  blanked;
- `comment-groups.csv`: the rows of their statements are blanked; on everyone else's statements their
  vote that stands is taken off the totals and off their opinion group's counts;
- `summary.csv`: `views`, `voters`, `voters-in-conv`, `commenters` and `comments` are counted again
  without them.

Counts are made again so that no difference between what landing keeps and what is published (which
is counted from the votes) can tell how they voted. A count that the export's own files do not allow
to make again exactly (no `votes.csv` delivered with `comments.csv`, no opinion group known) is left
as it was. Everything else keeps its bytes; mentions of the person in anyone's text are replaced as
in every other file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from din.contract import normalise_header
from transforms.adapters._common import polis_role, read_table
from transforms.adapters.polis import epoch_millis

from ._common import (
    Layout,
    Matcher,
    MentionFinder,
    Person,
    PolisPerson,
    Redaction,
    RedactionError,
    Whom,
    decode,
    encode,
)
from .text import RecordEdit, _csv_records, edit_csv, redact_csv

SNIFF_ROWS = 40  # as the adapter sniffs a file's role
#: The column that names a participant in each file of the export (normalised header).
PARTICIPANT_COLUMNS = {
    "comments": "authorid",
    "votes": "voterid",
    "participants_votes": "participant",
    "xids": "participant",
}
#: What a blanked record keeps: an erased statement keeps its id, which the votes on it name.
KEPT = {"comments": frozenset({"commentid"})}
VOTE_COUNTS = {"1": "agrees", "-1": "disagrees", "0": "passes"}  # the columns a vote counts in


def file_rows(data: bytes) -> list[list[str]]:
    """The records of a CSV file of the export (empty when it is not readable CSV)."""
    try:
        _, text, _ = decode(data)
        return [fields for _, _, fields in _csv_records(text, ",")]
    except RedactionError:
        return []


def file_role(rows: list[list[str]]) -> str | None:
    """Which file of a Polis export these records are (`comments`, `votes`, ...), as the adapter tells."""
    return polis_role(rows[:SNIFF_ROWS]) if rows else None


def unsearchable(path: Path, data: bytes) -> str | None:
    """Why a file the Polis adapter reads as one of an export's files cannot be searched for a participant
    here: it is not the comma-separated CSV Polis writes (a workbook, a tab-separated re-save), so its
    participant columns are not found (None: a Polis CSV file, or no file the adapter reads as Polis)."""
    if file_role(file_rows(data)) is not None:
        return None
    try:
        role = polis_role(read_table(path, SNIFF_ROWS))
    except (ValueError, OSError):  # the adapter refuses it as well: nothing of it was read
        return None
    if role is None:
        return None
    return (
        f"read by the Polis adapter as the export's {role} file, but it is not the comma-separated CSV Polis "
        "writes: its participant columns were not searched; check it by hand, or have it replaced with the "
        "CSV file the export gave"
    )


def polis_participants(
    files: Iterable[bytes], panel_id: str, column: str, whom: Whom, key: Callable[[str], str] | None = None
) -> dict[str, str]:
    """Participant id -> identity (as the mapping's `panellist_column` reads it) of the person in the export.

    `column` participant: any file's participant cell the person's reference; xid: a participant whose
    xid is (participants-votes.csv, `<id>-xid.csv`). `key` gives a participant as the blocklist knows
    them besides (`transforms.adapters.polis.participant_key`): someone erased before, whose xid the
    export's files no longer give, is found by it."""
    found: dict[str, str] = {}
    seen: set[str] = set()
    for data in files:
        rows = file_rows(data)
        role = file_role(rows)
        if role is None:
            continue
        keys = [normalise_header(h) for h in rows[0]]
        if column == "xid" and "xid" in keys and "participant" in keys:
            at, xid_at = keys.index("participant"), keys.index("xid")
            for row in rows[1:]:
                participant, xid = _cell(row, at), _cell(row, xid_at)
                if participant and xid and whom.matches(panel_id, xid):
                    found[participant] = xid
        wanted = PARTICIPANT_COLUMNS.get(role)
        if wanted in keys:
            at = keys.index(wanted)
            seen.update(_cell(row, at) for row in rows[1:])
    seen.discard("")
    for participant in sorted(seen - set(found)):
        if column != "xid" and whom.matches(panel_id, participant):
            found[participant] = participant
        elif key is not None and whom.matches(panel_id, key(participant)):
            found[participant] = key(participant)
    return found


def polis_person(
    panel_id: str,
    participants: Mapping[str, str],
    export: Mapping[str, bytes],
    keys: Mapping[str, str] | None = None,
) -> PolisPerson:
    """What the export's files (by role: the files delivered together) hold of these participants; `keys`:
    each participant as the blocklist knows them besides their identity (`polis_participants`)."""
    ids = set(participants)
    person = PolisPerson(panel_id, tuple(sorted(participants.items())), keys=tuple(sorted((keys or {}).items())))
    votes = _table(export.get("votes"))
    if votes is not None:
        header, rows = votes
        comment, voter, vote, stamp = (header.get(k) for k in ("commentid", "voterid", "vote", "timestamp"))
        theirs = [
            (epoch_millis(_cell(r, stamp)), number, _cell(r, comment), _cell(r, vote))
            for number, r in enumerate(rows, start=2)
            if _cell(r, voter) in ids and _cell(r, comment)
        ]
        latest = {c: v for _, _, c, v in sorted(theirs)}  # the later vote stands, as the adapter reads it
        person = replace(
            person,
            vote_rows=tuple((c, v) for _, _, c, v in theirs),
            final_votes=tuple(sorted(latest.items())),
            votes_known=True,
        )
    table = _table(export.get("participants_votes"))
    if table is not None:
        header, rows = table
        for row in rows:
            if _cell(row, header.get("participant")) not in ids:
                continue
            group = _cell(row, header.get("groupid"))
            final = {h: _cell(row, i) for h, i in header.items() if h.isdigit() and _cell(row, i) in VOTE_COUNTS}
            # the opinion groups' counts were made from this snapshot of their votes
            votes_then = tuple(sorted(final.items())) or person.final_votes
            person = replace(person, group=group or None, final_votes=votes_then)
    comments = _table(export.get("comments"))
    if comments is not None:
        header, rows = comments
        authored = {
            _cell(r, header.get("commentid")): _cell(r, header.get("moderated"))
            for r in rows
            if _cell(r, header.get("authorid")) in ids
        }
        authored.pop("", None)
        person = replace(person, authored=frozenset(authored), shown=sum(m != "-1" for m in authored.values()))
    return person


def redact_polis(data: bytes, name: str, layout: Layout, mentions: MentionFinder | None) -> Redaction:
    """One file of a Polis export without the person (`layout.polis`), and its counts made again without them."""
    person = layout.polis
    assert person is not None
    rows = file_rows(data)
    role = file_role(rows)
    if role is None:
        raise RedactionError("not a file of a Polis export (no header Polis writes)")
    own = replace(
        layout,
        survey_column=PARTICIPANT_COLUMNS.get(role),  # summary.csv, comment-groups.csv: nobody's records
        survey_panel=person.panel_id,
        keep=KEPT.get(role, frozenset()),
        polis=None,
    )
    redaction = redact_csv(data, name, own, Matcher(own, Person(person.panel_id, person.ids)), mentions)
    edit = _recount(role, _header(rows[0]), person)
    blanked: list[int] = []
    if edit is None:
        recounted, redacted = 0, redaction.data
    else:
        bom, text, codec = decode(redaction.data, layout.encoding)
        text, blanked, recounted = edit_csv(text, ",", edit)
        redacted = encode(bom, text, codec) if recounted or blanked else redaction.data
    return Redaction(
        redacted,
        redaction.rows + [f"row {n}" for n in blanked],
        {i for p in redaction.identities for i in person.identities(p)},
        redaction.identifiers,
        redaction.mentions,
        redaction.note,
        redaction.unchecked,
        recounted,
    )


# --- counts made again without the person ----------------------------------------------------------

Edit = Callable[[int, list[str]], RecordEdit]


def _recount(role: str, header: Mapping[str, int], person: PolisPerson) -> Edit | None:
    """How the file's counts change without the person (None: the file has none made from them)."""
    if role == "comments" and person.votes_known:
        return _comment_counts(header, person)
    if role == "comment_groups":
        return _group_counts(header, person)
    if role == "summary":
        return _summary_counts(person)
    return None


def _comment_counts(header: Mapping[str, int], person: PolisPerson) -> Edit:
    """comments.csv: `agrees` and `disagrees` of each statement, less the person's vote rows on it."""

    def edit(number: int, fields: list[str]) -> RecordEdit:
        comment = _cell(fields, header.get("commentid"))
        if number == 1 or not comment:
            return None
        theirs = [v for c, v in person.vote_rows if c == comment]
        return _fewer(fields, {header.get("agrees"): theirs.count("1"), header.get("disagrees"): theirs.count("-1")})

    return edit


def _group_counts(header: Mapping[str, int], person: PolisPerson) -> Edit:
    """comment-groups.csv: the person's statements blanked; their vote that stands taken off the totals and off
    their opinion group's counts (Polis' `group-<letter>-...`, letter a for group 0). In no group, they were
    counted nowhere."""
    final = dict(person.final_votes)
    letter = chr(ord("a") + int(person.group)) if person.group and person.group.isdigit() else None
    group = f"group{letter}" if letter and f"group{letter}votes" in header else None

    def edit(number: int, fields: list[str]) -> RecordEdit:
        comment = _cell(fields, header.get("commentid"))
        if number == 1 or not comment:
            return None
        if comment in person.authored:
            return "blank"
        vote = final.get(comment)
        if vote is None or group is None:
            return None
        return _fewer(fields, {header.get(p + c): 1 for p in ("total", group) for c in ("votes", VOTE_COUNTS[vote])})

    return edit


def _summary_counts(person: PolisPerson) -> Edit:
    """summary.csv (key,value rows): the conversation's counts without the person."""
    less = {
        "views": 1,  # Polis counts every participant
        "voters": int(bool(person.vote_rows or person.final_votes)),
        "votersinconv": int(person.group is not None),  # in an opinion group: in the conversation's maths
        "commenters": int(bool(person.authored)),
        "comments": person.shown,
    }

    def edit(number: int, fields: list[str]) -> RecordEdit:
        return _fewer(fields, {1: less.get(normalise_header(_cell(fields, 0)), 0)})

    return edit


def _fewer(fields: list[str], less: Mapping[int | None, int]) -> dict[int, str] | None:
    """The count fields made smaller by `less` (column -> by how much): only whole numbers that held them."""
    change = {}
    for index, by in less.items():
        value = _cell(fields, index)
        if index is not None and by > 0 and value.isdigit() and int(value) >= by:
            change[index] = str(int(value) - by)
    return change or None


# --- cells -----------------------------------------------------------------------------------------


def _table(data: bytes | None) -> tuple[dict[str, int], list[list[str]]] | None:
    """(header, data rows) of one file of the export."""
    if data is None:
        return None
    rows = file_rows(data)
    return (_header(rows[0]), rows[1:]) if rows else None


def _header(row: list[str]) -> dict[str, int]:
    """Normalised header -> column (the first of two alike, as the adapter reads it)."""
    return {normalise_header(h): i for i, h in reversed(list(enumerate(row)))}


def _cell(row: list[str], index: int | None) -> str:
    return row[index].strip() if index is not None and index < len(row) else ""
