"""What every format's redaction shares: whom to find, how a file is laid out, what was found, and the
matcher that tells a table's records of the person from everyone else's."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from din.contract import KINDS, normalise_header
from transforms.blocklist import Blocklist
from transforms.readers import EXTENSIONS
from transforms.scrub import PersonIdentifiers, email_key, phone_key

HEADER_SCAN_ROWS = 15  # a survey tool may put a preamble above its header (Mentimeter)
#: Headers whose cells, in the person's own records, identify them (harvested for mention redaction).
IDENTIFIER_HEADERS = {
    "fullname": "name",
    "name": "name",
    "respondentname": "name",
    "email": "email",
    "emailaddress": "email",
    "recipientemail": "email",
    "phone": "phone",
    "phonenumber": "phone",
    "mobile": "phone",
    "telephone": "phone",
    "postcode": "postcode",
    "firstname": "first",
    "recipientfirstname": "first",
    "lastname": "last",
    "surname": "last",
    "recipientlastname": "last",
}
#: The contract's columns that name a panellist (`panellist_ref`; a statement's `author_ref`): pseudonymised.
PANELLIST_COLUMNS = tuple(sorted({c for kind in KINDS.values() for c in kind.pseudonymised_columns}))
#: The contract's direct identifiers, and what kind of identifier each is (for a source's own headers).
IDENTIFIER_COLUMNS = {"full_name": "name", "email": "email", "phone": "phone", "postcode": "postcode"}


@dataclass(frozen=True)
class Person:
    """Whose records to find: the panel, and the values their panellist cells may hold."""

    panel_id: str
    refs: frozenset[str]  # references as on the roster (compared exactly, after trimming)
    emails: frozenset[str] = frozenset()  # e-mail addresses (compared case-insensitively)

    def is_identity(self, value: str | None) -> bool:
        if value is None:
            return False
        value = value.strip()
        return bool(value) and (value in self.refs or ("@" in value and email_key(value) in self.emails))

    def matches(self, panel: str | None, value: str | None) -> bool:
        """Whether a record of `panel` (None: a table that does not say) with this panellist cell is theirs."""
        return (panel is None or panel.strip() == self.panel_id) and self.is_identity(value)

    @property
    def words(self) -> tuple[str, ...]:
        """What a line of text that is not a table must hold, as a whole word, to be about them."""
        return tuple(sorted(self.refs | self.emails))

    def could_be_in(self, text: str) -> bool:
        """A cheap test: False means no cell of `text` can hold one of the person's identities."""
        if any(ref and ref in text for ref in self.refs):
            return True
        if self.emails:
            folded = text.casefold()
            return any(email.split("@")[0] in folded for email in self.emails)
        return False


@dataclass(frozen=True)
class Blocked:
    """Everyone erased before (`transforms.blocklist`): a record is theirs when its panel and panellist cell
    make a blocked token. Nobody's reference is known, so only tables can be searched."""

    blocklist: Blocklist

    def is_identity(self, value: str | None) -> bool:
        return False  # a bare value says nothing without its panel

    def matches(self, panel: str | None, value: str | None) -> bool:
        return panel is not None and self.blocklist.blocks(panel, value)

    def could_be_in(self, text: str) -> bool:
        return bool(self.blocklist)

    @property
    def words(self) -> tuple[str, ...]:
        return ()


Whom = Person | Blocked


@dataclass(frozen=True)
class PolisPerson:
    """What one Polis export holds of the person, learnt from all of its files
    (`transforms.redaction.polis.polis_person`)."""

    panel_id: str
    participants: tuple[tuple[str, str], ...]  # (Polis participant id, the identity the pipeline reads for it)
    keys: tuple[tuple[str, str], ...] = ()  # (Polis participant id, how the blocklist also knows them)
    vote_rows: tuple[tuple[str, str], ...] = ()  # (comment-id, vote) of each of their rows of votes.csv
    final_votes: tuple[tuple[str, str], ...] = ()  # (comment-id, vote): their vote that stands on each statement
    authored: frozenset[str] = frozenset()  # comment-ids of the statements they wrote
    shown: int = 0  # of those, the ones not moderated out (summary.csv counts those)
    group: str | None = None  # their opinion group (participants-votes.csv `group-id`), when they are in one
    votes_known: bool = False  # the export's votes.csv was delivered with the file (counts of votes can be made)

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(p for p, _ in self.participants)

    def identities(self, participant: str) -> set[str]:
        """What the pipeline may read for a participant: their identity, and their key (`keys`)."""
        found = {dict(self.participants).get(participant, participant)}
        return found | ({dict(self.keys)[participant]} if participant in dict(self.keys) else set())


@dataclass(frozen=True)
class Layout:
    """How the pipeline reads a landing copy (from its source's format options)."""

    format: str  # csv | xlsx | json | ndjson | parquet
    encoding: str | None = None
    delimiter: str | None = None
    survey_column: str | None = None  # a survey-tool export: the mapping's panellist column
    survey_panel: str | None = None  # ... and the panel its respondents belong to
    #: Columns a blanked record keeps (normalised headers): in a long layout (Mentimeter) the question
    #: cells say what the survey asked, not who answered, and the adapter learns its questions from them.
    keep: frozenset[str] = frozenset()
    #: The source's own headers for our columns (`format.columns`): (their header, our column) pairs.
    columns: tuple[tuple[str, str], ...] = ()
    #: A file of a Polis export: who the person is in that export (`transforms.redaction.polis`).
    polis: PolisPerson | None = None

    @classmethod
    def for_file(
        cls,
        name: str,
        data: bytes,
        declared: str = "auto",
        encoding: str | None = None,
        delimiter: str | None = None,
        columns: Mapping[str, str] | None = None,
    ) -> Layout:
        """The layout of a file the pipeline reads with its own readers (declared format, else by name or bytes)."""
        mapped = tuple(sorted((columns or {}).items()))
        if declared not in ("auto", "", "survey", None):
            return cls(declared, encoding, delimiter, columns=mapped)
        suffix = Path(name).suffix.lower()
        if suffix in EXTENSIONS:
            fmt = EXTENSIONS[suffix]
            if fmt == "json" and looks_like_ndjson(data[:65536]):
                fmt = "ndjson"
            return cls(fmt, encoding, delimiter, columns=mapped)
        if data.startswith(b"PK\x03\x04"):
            return cls("xlsx", encoding, delimiter, columns=mapped)
        if data.startswith(b"PAR1"):
            return cls("parquet", encoding, delimiter, columns=mapped)
        head = data[:65536].lstrip(b"\xef\xbb\xbf \r\n\t")
        if head.startswith((b"[", b"{")):
            return cls("ndjson" if looks_like_ndjson(data[:65536]) else "json", encoding, delimiter, columns=mapped)
        return cls("csv", encoding, delimiter, columns=mapped)

    def headers_for(self, column: str) -> set[str]:
        """The normalised headers that mean our `column` in this file: its own name, and the source's own."""
        return {normalise_header(column)} | {normalise_header(h) for h, c in self.columns if c == column}


@dataclass
class Redaction:
    """A redacted file and what was found in it."""

    data: bytes
    rows: list[str] = field(default_factory=list)  # where the person's records were ("row 5", "sheet 'X' row 5")
    identities: set[str] = field(default_factory=set)  # their panellist cells as typed (for pseudonyms)
    identifiers: PersonIdentifiers = field(default_factory=PersonIdentifiers)  # harvested from their records
    mentions: int = 0  # identifiers replaced in other people's cells
    note: str | None = None  # how the file was handled when it could not be read as a table
    unchecked: bool = False  # it could not be read at all: the person may be in it, it was left as it was
    recounted: int = 0  # counts made from the person's records (a Polis export's), made again without them

    @property
    def changed(self) -> bool:
        return bool(self.rows or self.mentions or self.recounted)


class RedactionError(ValueError):
    """A file that cannot be redacted in its format (the caller falls back or reports it)."""


class MentionFinder(Protocol):
    """What finds (and replaces) mentions of someone in a text: `transforms.scrub.Mentions` and kin."""

    def might_mention(self, text: str) -> bool: ...

    def redact(self, text: str) -> tuple[str, int]: ...


# --- finding the person's records -----------------------------------------------------------------


@dataclass(frozen=True)
class Columns:
    """Where a table keeps the panellist, the panel and the person's own identifiers."""

    panellist: Hashable
    panel: Hashable | None
    identifiers: tuple[tuple[Hashable, str], ...]
    kept: frozenset[Hashable] = frozenset()  # cells a blanked record keeps (`Layout.keep`)


class Matcher:
    """Finds a table's panellist column and tells the person's records from everyone else's."""

    def __init__(self, layout: Layout, person: Whom) -> None:
        self.layout, self.person = layout, person
        self.wanted = (
            {normalise_header(layout.survey_column)}
            if layout.survey_column
            else {header for column in PANELLIST_COLUMNS for header in layout.headers_for(column)}
        )
        self.panel_headers = layout.headers_for("panel_id")
        self.identifier_headers = dict(IDENTIFIER_HEADERS) | {
            normalise_header(h): IDENTIFIER_COLUMNS[c] for h, c in layout.columns if c in IDENTIFIER_COLUMNS
        }
        self.rows: list[str] = []
        self.identities: set[str] = set()
        self.identifiers = PersonIdentifiers()

    def columns(self, header: Mapping[Hashable, str]) -> Columns | None:
        """The columns of a header row (cell key -> text), or None when it names no panellist column."""
        keys = {column: _header_keys(text) for column, text in header.items()}
        panellist = next((c for c, k in keys.items() if self.wanted & k), None)
        if panellist is None:
            return None
        panel = (
            None if self.layout.survey_column else next((c for c, k in keys.items() if self.panel_headers & k), None)
        )
        identifiers = tuple(
            (c, self.identifier_headers[key]) for c, k in keys.items() for key in k if key in self.identifier_headers
        )
        kept = frozenset(c for c, k in keys.items() if k & self.layout.keep)
        return Columns(panellist, panel, identifiers, kept)

    def find_header(self, rows: Iterable[Mapping[Hashable, str]]) -> tuple[int, Columns] | None:
        """(position, columns) of the first of the leading rows that names the panellist column."""
        for position, row in enumerate(rows):
            if position >= HEADER_SCAN_ROWS:
                break
            found = self.columns(row)
            if found is not None:
                return position, found
        return None

    def is_person(self, columns: Columns, cells: Mapping[Hashable, str], where: str) -> bool:
        """Whether a record is the person's; if so, remember where it was and what identified them."""
        value = cells.get(columns.panellist)
        if self.layout.survey_column:
            panel: str | None = self.layout.survey_panel or ""
        else:
            panel = cells.get(columns.panel) if columns.panel is not None else None
        if value is None or not self.person.matches(panel, value):
            return False
        self.rows.append(where)
        self.identities.add(value.strip())
        self.identifiers = self.identifiers | _harvest(columns, cells, value.strip())
        return True

    def result(self, data: bytes, mentions: int = 0, note: str | None = None, unchecked: bool = False) -> Redaction:
        return Redaction(data, list(self.rows), set(self.identities), self.identifiers, mentions, note, unchecked)


def _header_keys(text: str) -> set[str]:
    """What a header cell may be called: its text (HTML removed), and a Qualtrics ImportId in it."""
    keys = {normalise_header(" ".join(html.unescape(re.sub(r"<[^>]+>", " ", text)).split()))}
    if text.lstrip().startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and parsed.get("ImportId"):
            keys.add(normalise_header(str(parsed["ImportId"])))
    return keys


def _harvest(columns: Columns, cells: Mapping[Hashable, str], identity: str) -> PersonIdentifiers:
    """The person's names, e-mails, phones and postcodes, from their own record."""
    names, emails, phones, postcodes = set(), set(), set(), set()
    first = last = ""
    for column, what in columns.identifiers:
        value = (cells.get(column) or "").strip()
        if not value:
            continue
        if what == "name" and len(value.split()) >= 2:
            names.add(value)
        elif what == "email" and "@" in value:
            emails.add(value)
        elif what == "phone" and len(phone_key(value)) >= 9:
            phones.add(value)
        elif what == "postcode":
            postcodes.add(value)
        elif what == "first":
            first = value
        elif what == "last":
            last = value
    if first and last:
        names.add(f"{first} {last}")
    if "@" in identity:
        emails.add(identity)
    return PersonIdentifiers(frozenset(names), frozenset(emails), frozenset(phones), frozenset(postcodes))


_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


def decode(data: bytes, declared: str | None = None) -> tuple[bytes, str, str]:
    """(BOM, text, codec) as the pipeline's readers decode a text file; `bom + text.encode(codec)` is `data`."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            body = data[len(bom) :]
            codec = declared if declared and codec == "utf-8" else codec
            try:
                return bom, body.decode(codec), codec
            except (UnicodeDecodeError, LookupError) as error:
                raise RedactionError(f"not valid {codec} text ({error})") from None
    if declared:
        try:
            return b"", data.decode(declared), declared
        except (UnicodeDecodeError, LookupError) as error:
            raise RedactionError(f"not valid {declared} text ({error})") from None
    for codec in ("utf-8", "cp1252", "latin-1"):
        try:
            return b"", data.decode(codec), codec
        except UnicodeDecodeError:
            continue
    raise RedactionError("not text")  # pragma: no cover - latin-1 decodes any bytes


def encode(bom: bytes, text: str, codec: str) -> bytes:
    try:
        return bom + text.encode(codec)
    except UnicodeEncodeError as error:  # a placeholder is ASCII: only a broken codec gets here
        raise RedactionError(f"the redacted text cannot be written as {codec} ({error})") from None


def apply_edits(text: str, edits: Sequence[tuple[int, int, str]]) -> str:
    out, done = [], 0
    for start, end, replacement in edits:
        out += [text[done:start], replacement]
        done = end
    out.append(text[done:])
    return "".join(out)


def looks_like_ndjson(head: bytes) -> bool:
    lines = [line.strip() for line in head.lstrip(b"\xef\xbb\xbf").splitlines() if line.strip()]
    return len(lines) > 1 and all(line.startswith(b"{") and line.endswith(b"}") for line in lines[:-1])
