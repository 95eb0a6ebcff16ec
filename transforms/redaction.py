"""Take one person out of a delivered file, in the file's own format, touching nothing else.

    redact(data, name, layout, person, mentions) -> Redaction

An erasure (`warehouse.erasure`) runs this on every landing copy. The person's records are
*blanked*, not removed: a blank record is padding every reader skips, so every other record keeps
its row number and published `source_row` values keep pointing at the same rows. Mentions of the
person (name, e-mail, phone: `transforms.scrub.Mentions`) in anyone else's cells are replaced with
the scrubber's placeholders. Everything else stays as it was:

- CSV (any encoding, delimiter, quoting, BOM, line endings): the decoded text is edited record by
  record; records and fields that do not change keep every character, and the text is encoded back
  with the codec and BOM it came with.
- XLSX (every sheet, hidden ones included): the worksheet XML is edited in place, cell by cell;
  shared strings only the person's cells used are emptied; other parts of the workbook (comments,
  pivot caches, document properties, ...) lose the person's mentions. Unchanged parts of the zip
  keep their bytes.
- JSON, NDJSON: the person's records become `{}`; other values change only where they mention the
  person.
- Parquet: rewritten with the same schema, metadata and compression; the person's rows become
  all-null rows.

A file that cannot be read as a table (malformed CSV or JSON) is handled line by line: a line that
holds the person's reference as a whole word is blanked. A binary file that cannot be read is left
as it is and said so (`Redaction.note`).

The person's records are found by their panellist column: `panellist_ref` for the contract's
kinds (with `panel_id` when the table has it), the mapping's panellist column for a survey-tool
export (whose panel is the mapping's). A record matches when that cell holds one of the person's
references, or one of their e-mail addresses (survey tools often key respondents by e-mail).
"""

from __future__ import annotations

import csv
import html
import io
import json
import posixpath
import re
import zipfile
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from xml.sax.saxutils import escape

from din.contract import normalise_header
from transforms.blocklist import Blocklist
from transforms.readers import EXTENSIONS, sniff_delimiter
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
_PANELLIST = normalise_header("panellist_ref")
_PANEL = normalise_header("panel_id")


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

    @classmethod
    def for_file(
        cls, name: str, data: bytes, declared: str = "auto", encoding: str | None = None, delimiter: str | None = None
    ) -> Layout:
        """The layout of a file the pipeline reads with its own readers (declared format, else by name or bytes)."""
        if declared not in ("auto", "", "survey", None):
            return cls(declared, encoding, delimiter)
        suffix = Path(name).suffix.lower()
        if suffix in EXTENSIONS:
            fmt = EXTENSIONS[suffix]
            if fmt == "json" and _looks_like_ndjson(data[:65536]):
                fmt = "ndjson"
            return cls(fmt, encoding, delimiter)
        if data.startswith(b"PK\x03\x04"):
            return cls("xlsx", encoding, delimiter)
        if data.startswith(b"PAR1"):
            return cls("parquet", encoding, delimiter)
        head = data[:65536].lstrip(b"\xef\xbb\xbf \r\n\t")
        if head.startswith((b"[", b"{")):
            return cls("ndjson" if _looks_like_ndjson(data[:65536]) else "json", encoding, delimiter)
        return cls("csv", encoding, delimiter)


@dataclass
class Redaction:
    """A redacted file and what was found in it."""

    data: bytes
    rows: list[str] = field(default_factory=list)  # where the person's records were ("row 5", "sheet 'X' row 5")
    identities: set[str] = field(default_factory=set)  # their panellist cells as typed (for pseudonyms)
    identifiers: PersonIdentifiers = field(default_factory=PersonIdentifiers)  # harvested from their records
    mentions: int = 0  # identifiers replaced in other people's cells
    note: str | None = None  # how the file was handled when it could not be read as a table

    @property
    def changed(self) -> bool:
        return bool(self.rows or self.mentions)


class RedactionError(ValueError):
    """A file that cannot be redacted in its format (the caller falls back or reports it)."""


class MentionFinder(Protocol):
    """What finds (and replaces) mentions of someone in a text: `transforms.scrub.Mentions` and kin."""

    def might_mention(self, text: str) -> bool: ...

    def redact(self, text: str) -> tuple[str, int]: ...


def redact(data: bytes, name: str, layout: Layout, person: Whom, mentions: MentionFinder | None = None) -> Redaction:
    """`data` (a landing copy of the delivered file `name`) without the person, and what was found.

    With `mentions` None only the person's own records are blanked."""
    handlers: dict[str, Callable[[bytes, str, Layout, _Matcher, MentionFinder | None], Redaction]] = {
        "csv": _redact_csv,
        "xlsx": _redact_xlsx,
        "json": _redact_json,
        "ndjson": _redact_ndjson,
        "parquet": _redact_parquet,
    }
    handler = handlers.get(layout.format)
    matcher = _Matcher(layout, person)
    if handler is None:
        return _redact_lines(data, layout, matcher, mentions, f"format {layout.format!r} is not a table format")
    try:
        return handler(data, name, layout, matcher, mentions)
    except RedactionError as error:
        if layout.format in ("xlsx", "parquet"):
            return Redaction(data, note=f"could not be read ({error}); left as it was")
        return _redact_lines(data, layout, matcher, mentions, str(error))


# --- finding the person's records -----------------------------------------------------------------


@dataclass(frozen=True)
class _Columns:
    """Where a table keeps the panellist, the panel and the person's own identifiers."""

    panellist: Hashable
    panel: Hashable | None
    identifiers: tuple[tuple[Hashable, str], ...]
    kept: frozenset[Hashable] = frozenset()  # cells a blanked record keeps (`Layout.keep`)


class _Matcher:
    """Finds a table's panellist column and tells the person's records from everyone else's."""

    def __init__(self, layout: Layout, person: Whom) -> None:
        self.layout, self.person = layout, person
        self.wanted = normalise_header(layout.survey_column) if layout.survey_column else _PANELLIST
        self.rows: list[str] = []
        self.identities: set[str] = set()
        self.identifiers = PersonIdentifiers()

    def columns(self, header: Mapping[Hashable, str]) -> _Columns | None:
        """The columns of a header row (cell key -> text), or None when it names no panellist column."""
        keys = {column: _header_keys(text) for column, text in header.items()}
        panellist = next((c for c, k in keys.items() if self.wanted in k), None)
        if panellist is None:
            return None
        panel = None if self.layout.survey_column else next((c for c, k in keys.items() if _PANEL in k), None)
        identifiers = tuple(
            (c, IDENTIFIER_HEADERS[key]) for c, k in keys.items() for key in k if key in IDENTIFIER_HEADERS
        )
        kept = frozenset(c for c, k in keys.items() if k & self.layout.keep)
        return _Columns(panellist, panel, identifiers, kept)

    def find_header(self, rows: Iterable[Mapping[Hashable, str]]) -> tuple[int, _Columns] | None:
        """(position, columns) of the first of the leading rows that names the panellist column."""
        for position, row in enumerate(rows):
            if position >= HEADER_SCAN_ROWS:
                break
            found = self.columns(row)
            if found is not None:
                return position, found
        return None

    def is_person(self, columns: _Columns, cells: Mapping[Hashable, str], where: str) -> bool:
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

    def result(self, data: bytes, mentions: int = 0, note: str | None = None) -> Redaction:
        return Redaction(data, list(self.rows), set(self.identities), self.identifiers, mentions, note)


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


def _harvest(columns: _Columns, cells: Mapping[Hashable, str], identity: str) -> PersonIdentifiers:
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


# --- CSV ------------------------------------------------------------------------------------------

_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
_TERMINATOR = re.compile(r"(?:\r\n|\n|\r)\Z")
_QUOTED = re.compile(r'"(?:[^"]|"")*"')


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


def _encode(bom: bytes, text: str, codec: str) -> bytes:
    try:
        return bom + text.encode(codec)
    except UnicodeEncodeError as error:  # a placeholder is ASCII: only a broken codec gets here
        raise RedactionError(f"the redacted text cannot be written as {codec} ({error})") from None


def _csv_records(text: str, delimiter: str) -> Iterator[tuple[int, int, list[str]]]:
    """(start, end, fields) of each record: exactly the records Python's csv module (and polars) read."""
    sizes: list[int] = []

    def lines() -> Iterator[str]:
        for line in io.StringIO(text, newline=""):
            sizes.append(len(line))
            yield line

    position = 0
    try:
        # strict: a quote left open (the pipeline's reader refuses such a file) must not hide records
        for fields in csv.reader(lines(), delimiter=delimiter, strict=True):
            length = sum(sizes)
            sizes.clear()
            yield position, position + length, fields
            position += length
    except csv.Error as error:
        raise RedactionError(f"not a well-formed CSV ({error})") from None


def _field_spans(content: str, delimiter: str) -> list[tuple[int, int]]:
    """Where each field of one record's text starts and ends (quotes included)."""
    spans, position = [], 0
    while True:
        start = position
        if content.startswith('"', position):
            quoted = _QUOTED.match(content, position)
            position = quoted.end() if quoted else len(content)
        end = content.find(delimiter, position)
        if end < 0:
            spans.append((start, len(content)))
            return spans
        spans.append((start, end))
        position = end + len(delimiter)


def _csv_field(original: str, value: str, delimiter: str) -> str:
    if original.startswith('"') or any(c in value for c in (delimiter, '"', "\r", "\n")):
        return '"' + value.replace('"', '""') + '"'
    return value


def _redact_csv(data: bytes, name: str, layout: Layout, matcher: _Matcher, mentions: MentionFinder | None) -> Redaction:
    bom, text, codec = decode(data, layout.encoding)
    if "\x00" in text[:4096]:
        raise RedactionError("binary data, not text")
    if not (matcher.person.could_be_in(text) or (mentions is not None and mentions.might_mention(text))):
        return matcher.result(data)
    if layout.survey_column:
        delimiter = "\t" if name.lower().endswith(".tsv") else ","
    else:
        delimiter = layout.delimiter or sniff_delimiter(text)
    out: list[str] = []
    done = 0
    header: _Columns | None = None
    replaced = 0
    for number, (start, end, fields) in enumerate(_csv_records(text, delimiter), start=1):
        record = text[start:end]
        cells: dict[Hashable, str] = dict(enumerate(fields))
        if header is None:
            header = matcher.columns(cells) if number <= HEADER_SCAN_ROWS else None
        elif matcher.is_person(header, cells, f"row {number}"):
            out += [text[done:start], _blank_record(record, fields, delimiter, header.kept)]
            done = end
            continue
        if mentions is not None and mentions.might_mention(record):
            edited, n = _redact_record(record, fields, delimiter, mentions)
            if n:
                out += [text[done:start], edited]
                done = end
                replaced += n
    if not matcher.rows and not replaced:
        return matcher.result(data)
    out.append(text[done:])
    return matcher.result(_encode(bom, "".join(out), codec), replaced)


def _blank_record(record: str, fields: Sequence[str], delimiter: str, kept: frozenset[Hashable]) -> str:
    """The record with every field emptied (but the ones kept), its delimiters and line ending left."""
    terminator = _TERMINATOR.search(record)
    tail = terminator.group() if terminator else ""
    if len(fields) < 2:
        return '""' + tail  # one empty field: a record, not an empty line
    content = record[: len(record) - len(tail)]
    spans = _field_spans(content, delimiter) if kept else []
    if len(spans) != len(fields):
        return delimiter * (len(fields) - 1) + tail
    return delimiter.join(content[a:b] if i in kept else "" for i, (a, b) in enumerate(spans)) + tail


def _redact_record(record: str, fields: Sequence[str], delimiter: str, mentions: MentionFinder) -> tuple[str, int]:
    terminator = _TERMINATOR.search(record)
    tail = terminator.group() if terminator else ""
    content = record[: len(record) - len(tail)]
    spans = _field_spans(content, delimiter)
    if len(spans) != len(fields):  # quoting this scanner reads differently: leave the record as it was
        return record, 0
    parts, done, total = [], 0, 0
    for (start, end), value in zip(spans, fields, strict=True):
        new, n = mentions.redact(value)
        if n:
            parts += [content[done:start], _csv_field(content[start:end], new, delimiter)]
            done = end
            total += n
    parts.append(content[done:])
    return "".join(parts) + tail, total


# --- text that is not a table ---------------------------------------------------------------------


def _redact_lines(
    data: bytes, layout: Layout, matcher: _Matcher, mentions: MentionFinder | None, why: str
) -> Redaction:
    """A text file the pipeline cannot read as a table: blank each line holding one of the person's
    references as a whole word; replace mentions elsewhere."""
    try:
        bom, text, codec = decode(data, layout.encoding)
    except RedactionError:
        return matcher.result(data, note=f"could not be read ({why}); left as it was")
    if "\x00" in text[:4096]:
        return matcher.result(data, note=f"could not be read ({why}); left as it was")
    person = matcher.person
    words = [re.escape(w) for w in person.words if w]
    pattern = re.compile(rf"(?<![\w@.-])(?:{'|'.join(words)})(?![\w@-])", re.IGNORECASE) if words else None
    out, replaced = [], 0
    for number, line in enumerate(io.StringIO(text, newline=""), start=1):
        body = line.rstrip("\r\n")
        if pattern is not None and pattern.search(body):
            matcher.rows.append(f"line {number}")
            matcher.identities.update(m.group() for m in pattern.finditer(body) if person.is_identity(m.group()))
            out.append(line[len(body) :])
            continue
        if mentions is not None:
            body, n = mentions.redact(body)
            replaced += n
        out.append(body + line[len(line.rstrip("\r\n")) :])
    note = f"could not be read as a table ({why}); redacted line by line"
    if not matcher.rows and not replaced:
        return matcher.result(data, note=note if words and person.could_be_in(text) else None)
    return matcher.result(_encode(bom, "".join(out), codec), replaced, note)


# --- XLSX -----------------------------------------------------------------------------------------

_PREFIX = r"(?P<p>(?:[A-Za-z_][\w.-]*:)?)"


def _element(tag: str) -> re.Pattern[str]:
    """An XML element `tag` (any namespace prefix), empty or with a body (elements of one tag do not nest)."""
    return re.compile(rf"<{_PREFIX}{tag}\b(?P<attrs>[^>]*?)(?:/>|>(?P<body>.*?)</(?P=p){tag}\s*>)", re.S)


_SHEET_DATA = _element("sheetData")
_ROW = _element("row")
_CELL = _element("c")
_VALUE = _element("v")
_FORMULA = _element("f")
_INLINE = _element("is")
_TEXT = _element("t")
_PHONETIC = _element("rPh")
_SHARED = _element("si")
_ATTRIBUTE = re.compile(r"([A-Za-z_][\w:.-]*)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")
_CELL_REF = re.compile(r"([A-Za-z]{1,3})([0-9]+)")
_TEXT_NODE = re.compile(r">([^<]+)<")
#: Attributes of other workbook parts that hold text people typed (pivot-cache items, authors, titles).
_TEXT_ATTRIBUTES = re.compile(r"(\s(v|name|displayName|userId|title|description|Target)\s*=\s*\")([^\"]*)(\")")
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def _attributes(text: str) -> dict[str, str]:
    return {
        m.group(1): html.unescape(m.group(2) if m.group(2) is not None else m.group(3))
        for m in _ATTRIBUTE.finditer(text)
    }


def _column_number(letters: str) -> int:
    number = 0
    for letter in letters.upper():
        number = number * 26 + ord(letter) - 64
    return number


def _texts(body: str | None) -> str:
    """The text of a rich-text string (`<t>` runs; phonetic guides left out)."""
    if not body:
        return ""
    body = _PHONETIC.sub("", body)
    return "".join(html.unescape(m.group("body") or "") for m in _TEXT.finditer(body))


def _number_text(raw: str) -> str:
    """A numeric cell as the readers give it: `1004`, not `1004.0`."""
    if _NUMBER.fullmatch(raw):
        value = float(raw)
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
    return raw


@dataclass
class _Cell:
    match: re.Match[str]
    column: int
    attrs: dict[str, str]
    text: str
    shared: int | None  # index into the shared strings


@dataclass
class _Workbook:
    """What the redaction needs of a workbook: its sheets (name, part) and its shared strings."""

    members: dict[str, bytes]
    sheets: list[tuple[str, str]]
    shared_part: str | None
    shared: list[re.Match[str]]
    shared_text: list[str]


def _open_workbook(data: bytes) -> tuple[list[zipfile.ZipInfo], _Workbook]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
        members = {info.filename: archive.read(info) for info in infos}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise RedactionError(f"not a readable Excel workbook: {error}") from None
    workbook = _xml(members, "xl/workbook.xml")
    relations = _relations(members, "xl/_rels/workbook.xml.rels")
    sheets = []
    for match in re.finditer(r"<(?:[A-Za-z_][\w.-]*:)?sheet\b([^>]*?)/?>", workbook):
        attrs = _attributes(match.group(1))
        rel = next((v for k, v in attrs.items() if k.endswith(":id")), None)
        target = relations.get(rel or "", ("", ""))
        if target[0].endswith("/worksheet") and target[1] in members:
            sheets.append((attrs.get("name", target[1]), target[1]))
    known = {part for _, part in sheets}
    sheets += [
        (p, p) for p in sorted(members) if p.startswith("xl/worksheets/") and p.endswith(".xml") and p not in known
    ]
    shared_part = next((t for kind, t in relations.values() if kind.endswith("/sharedStrings")), None)
    if shared_part is None and "xl/sharedStrings.xml" in members:
        shared_part = "xl/sharedStrings.xml"
    shared = list(_SHARED.finditer(_xml(members, shared_part))) if shared_part in members else []
    return infos, _Workbook(members, sheets, shared_part, shared, [_texts(m.group("body")) for m in shared])


def _xml(members: Mapping[str, bytes], part: str | None) -> str:
    if part is None or part not in members:
        return ""
    try:
        return members[part].decode("utf-8")
    except UnicodeDecodeError as error:
        raise RedactionError(f"{part} is not UTF-8 XML ({error})") from None


def _relations(members: Mapping[str, bytes], part: str) -> dict[str, tuple[str, str]]:
    """Relationship id -> (type, target part) of a .rels part."""
    found = {}
    for match in re.finditer(r"<(?:[A-Za-z_][\w.-]*:)?Relationship\b([^>]*?)/?>", _xml(members, part)):
        attrs = _attributes(match.group(1))
        target = attrs.get("Target", "")
        resolved = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join("xl", target))
        found[attrs.get("Id", "")] = (attrs.get("Type", ""), resolved)
    return found


def _cells(row_body: str | None, shared_text: Sequence[str]) -> list[_Cell]:
    cells, column = [], 0
    for match in _CELL.finditer(row_body or ""):
        attrs = _attributes(match.group("attrs"))
        ref = _CELL_REF.fullmatch(attrs.get("r", ""))
        column = _column_number(ref.group(1)) if ref else column + 1
        body = match.group("body") or ""
        kind = attrs.get("t", "n")
        value = _VALUE.search(body)
        raw = html.unescape(value.group("body") or "") if value else ""
        shared = None
        if kind == "s" and raw.strip().isdigit():
            shared = int(raw)
            text = shared_text[shared] if shared < len(shared_text) else ""
        elif kind == "inlineStr":
            inline = _INLINE.search(body)
            text = _texts(inline.group("body")) if inline else ""
        elif kind in ("n", "") and raw:
            text = _number_text(raw)
        else:
            text = raw
        cells.append(_Cell(match, column, attrs, text, shared))
    return cells


def _blank_cell(cell: _Cell, prefix: str) -> str:
    """The cell without its value (its position and style stay)."""
    kept = "".join(
        f' {name}="{escape(cell.attrs[name], {chr(34): "&quot;"})}"' for name in ("r", "s") if name in cell.attrs
    )
    return f"<{prefix}c{kept}/>"


def _with_body(match: re.Match[str], tag: str, body: str) -> str:
    """An element like `match` (same prefix and attributes) with a new text body."""
    prefix = match.group("p")
    return f"<{prefix}{tag}{match.group('attrs')}>{escape(body)}</{prefix}{tag}>"


def _redact_cell(cell: _Cell, mentions: MentionFinder) -> tuple[str, int]:
    """The cell's XML with mentions replaced in its own text: an inline string, a formula's text result,
    the formula itself (shared strings are redacted once, in their own part)."""
    xml = cell.match.group()
    total = 0
    kind = cell.attrs.get("t", "n")
    if kind == "inlineStr":
        inline = _INLINE.search(xml)
        new, n = mentions.redact(cell.text)
        if inline is not None and n:
            total += n
            p = inline.group("p")
            element = f'<{p}is><{p}t xml:space="preserve">{escape(new)}</{p}t></{p}is>'
            xml = xml[: inline.start()] + element + xml[inline.end() :]
    for pattern, tag in ((_VALUE, "v"), (_FORMULA, "f")):
        if tag == "v" and kind not in ("str", "e"):
            continue
        found = pattern.search(xml)
        if found is None or not found.group("body"):
            continue
        new, n = mentions.redact(html.unescape(found.group("body")))
        if n:
            total += n
            xml = xml[: found.start()] + _with_body(found, tag, new) + xml[found.end() :]
    return xml, total


def _splice_row(match: re.Match[str], new_body: str) -> str:
    """A row element with a new body (its start tag and attributes kept)."""
    row = match.group()
    if match.group("body") is None:
        return row
    start, end = match.start("body") - match.start(), match.end("body") - match.start()
    return row[:start] + new_body + row[end:]


def _shared_formula_masters(cells: Sequence[_Cell]) -> set[str]:
    """The shared-formula groups (`si`) whose defining cell is among `cells`."""
    masters = set()
    for cell in cells:
        formula = _FORMULA.search(cell.match.group())
        if formula is not None:
            attrs = _attributes(formula.group("attrs"))
            if attrs.get("t") == "shared" and "ref" in attrs and "si" in attrs:
                masters.add(attrs["si"])
    return masters


def _orphan_formulas(xml: str, groups: set[str]) -> str:
    """Cells that shared a formula defined in a blanked row keep their value, not the dangling formula."""
    if not groups:
        return xml

    def drop(match: re.Match[str]) -> str:
        attrs = _attributes(match.group("attrs"))
        return "" if attrs.get("t") == "shared" and attrs.get("si") in groups and "ref" not in attrs else match.group()

    return _FORMULA.sub(drop, xml)


def _redact_sheet(
    name: str, xml: str, book: _Workbook, matcher: _Matcher, mentions: MentionFinder | None
) -> tuple[str, set[int], set[int], int]:
    """The worksheet's XML without the person; the shared strings its blanked and kept cells use; mentions."""
    blanked: set[int] = set()
    kept: set[int] = set()
    found = _SHEET_DATA.search(xml)
    if found is None or not found.group("body"):
        return xml, blanked, kept, 0
    body = found.group("body")
    if "<!--" in body or "<![CDATA[" in body:
        raise RedactionError(f"sheet {name!r} holds XML comments or CDATA, which are not redacted")
    rows = []
    number = 0
    for match in _ROW.finditer(body):
        attrs = _attributes(match.group("attrs"))
        number = int(attrs["r"]) if attrs.get("r", "").isdigit() else number + 1
        rows.append((match, number, _cells(match.group("body"), book.shared_text)))
    header = matcher.find_header({c.column: c.text for c in cells} for _, _, cells in rows)
    edits: list[tuple[int, int, str]] = []
    orphaned: set[str] = set()
    replaced = 0
    for position, (match, number, cells) in enumerate(rows):
        values: dict[Hashable, str] = {c.column: c.text for c in cells}
        where = f"sheet {name!r} row {number}"
        if header is not None and position > header[0] and matcher.is_person(header[1], values, where):
            keep = [c for c in cells if c.column in header[1].kept]
            gone = [c for c in cells if c.column not in header[1].kept]
            blanked.update(c.shared for c in gone if c.shared is not None)
            kept.update(c.shared for c in keep if c.shared is not None)
            orphaned |= _shared_formula_masters(gone)
            new_body = "".join(c.match.group() if c in keep else _blank_cell(c, c.match.group("p")) for c in cells)
            edits.append((match.start(), match.end(), _splice_row(match, new_body)))
            continue
        kept.update(c.shared for c in cells if c.shared is not None)
        if mentions is None or not any(c.shared is None and mentions.might_mention(c.match.group()) for c in cells):
            continue
        row_body = match.group("body") or ""
        cell_edits = []
        for cell in cells:
            if cell.shared is None:
                new, n = _redact_cell(cell, mentions)
                if n:
                    cell_edits.append((cell.match.start(), cell.match.end(), new))
                    replaced += n
        if cell_edits:
            edits.append((match.start(), match.end(), _splice_row(match, _apply(row_body, cell_edits))))
    if not edits:
        return xml, blanked, kept, 0
    new_body = _orphan_formulas(_apply(body, edits), orphaned)
    return xml[: found.start("body")] + new_body + xml[found.end("body") :], blanked, kept, replaced


def _redact_shared(book: _Workbook, unused: set[int], mentions: MentionFinder | None) -> tuple[str | None, int]:
    """The shared strings part with strings only the person used emptied and mentions replaced."""
    xml = _xml(book.members, book.shared_part)
    out, done, replaced = [], 0, 0
    for index, match in enumerate(book.shared):
        prefix = match.group("p")
        new_text: str | None = None
        if index in unused:
            new_text = ""
        elif mentions is not None:
            candidate, n = mentions.redact(book.shared_text[index])
            if n:
                new_text, replaced = candidate, replaced + n
        if new_text is None:
            continue
        element = (
            f'<{prefix}si><{prefix}t xml:space="preserve">{escape(new_text)}</{prefix}t></{prefix}si>'
            if new_text
            else f"<{prefix}si><{prefix}t/></{prefix}si>"
        )
        out += [xml[done : match.start()], element]
        done = match.end()
    if done == 0:
        return None, 0
    out.append(xml[done:])
    return "".join(out), replaced


def _redact_other_part(xml: str, mentions: MentionFinder, person: Whom) -> tuple[str, int]:
    """Another part of the workbook (comments, pivot caches, document properties, relationships):
    mentions replaced in its text and in the attributes that hold typed text; a pivot cache's items
    that are one of the person's references emptied."""
    total = 0

    def clean(text: str, exact: bool) -> str:
        nonlocal total
        value = html.unescape(text)
        if exact and person.is_identity(value):
            total += 1
            return ""
        new, n = mentions.redact(value)
        if not n:
            return text
        total += n
        return escape(new, {'"': "&quot;"})

    xml = _TEXT_NODE.sub(lambda m: ">" + clean(m.group(1), exact=False) + "<", xml)
    xml = _TEXT_ATTRIBUTES.sub(lambda m: m.group(1) + clean(m.group(3), exact=m.group(2) == "v") + m.group(4), xml)
    return xml, total


def _redact_xlsx(
    data: bytes, name: str, layout: Layout, matcher: _Matcher, mentions: MentionFinder | None
) -> Redaction:
    infos, book = _open_workbook(data)
    changed: dict[str, str] = {}
    blanked: set[int] = set()
    kept: set[int] = set()
    replaced = 0
    for sheet_name, part in book.sheets:
        xml = _xml(book.members, part)
        new, sheet_blanked, sheet_kept, n = _redact_sheet(sheet_name, xml, book, matcher, mentions)
        blanked |= sheet_blanked
        kept |= sheet_kept
        replaced += n
        if new != xml:
            changed[part] = new
    shared, n = _redact_shared(book, blanked - kept, mentions)
    replaced += n
    if shared is not None and book.shared_part is not None:
        changed[book.shared_part] = shared
    sheet_parts = {part for _, part in book.sheets} | {book.shared_part}
    for part, content in book.members.items():
        if mentions is None or part in sheet_parts or not part.endswith((".xml", ".rels")):
            continue
        try:
            xml = content.decode("utf-8")
        except UnicodeDecodeError:
            continue
        new, n = _redact_other_part(xml, mentions, matcher.person)
        if n:
            changed[part] = new
            replaced += n
    if not changed:
        return matcher.result(data)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for info in infos:
            content = (
                changed[info.filename].encode("utf-8") if info.filename in changed else book.members[info.filename]
            )
            archive.writestr(info, content)
    return matcher.result(out.getvalue(), replaced)


# --- JSON and NDJSON ------------------------------------------------------------------------------

_JSON_WS = re.compile(r"[ \t\n\r]*")
_JSON_SCALAR = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null")


@dataclass
class _Node:
    """A JSON value and where it is in the text."""

    kind: str  # string | scalar | array | object
    start: int
    end: int
    value: Any = None
    items: list[tuple[_Node | None, _Node]] = field(default_factory=list)  # (key, value); key None in arrays


def _parse_json(text: str, position: int = 0) -> _Node:
    position = _JSON_WS.match(text, position).end()  # type: ignore[union-attr]
    if position >= len(text):
        raise RedactionError("the JSON ends too early")
    char = text[position]
    if char == '"':
        try:
            value, end = json.decoder.scanstring(text, position + 1)  # type: ignore[attr-defined]
        except json.JSONDecodeError as error:
            raise RedactionError(f"not valid JSON ({error.msg} at character {error.pos})") from None
        return _Node("string", position, end, value)
    if char in "[{":
        closing = "]" if char == "[" else "}"
        node = _Node("array" if char == "[" else "object", position, position)
        position = _JSON_WS.match(text, position + 1).end()  # type: ignore[union-attr]
        if text.startswith(closing, position):
            node.end = position + 1
            return node
        while True:
            key = None
            if char == "{":
                key = _parse_json(text, position)
                if key.kind != "string":
                    raise RedactionError(f"not valid JSON (a key that is not a string at character {key.start})")
                position = _JSON_WS.match(text, key.end).end()  # type: ignore[union-attr]
                if not text.startswith(":", position):
                    raise RedactionError(f"not valid JSON (':' expected at character {position})")
                position += 1
            value = _parse_json(text, position)
            node.items.append((key, value))
            position = _JSON_WS.match(text, value.end).end()  # type: ignore[union-attr]
            if text.startswith(",", position):
                position += 1
                continue
            if text.startswith(closing, position):
                node.end = position + 1
                return node
            raise RedactionError(f"not valid JSON (',' or '{closing}' expected at character {position})")
    scalar = _JSON_SCALAR.match(text, position)
    if scalar is None:
        raise RedactionError(f"not valid JSON (unexpected {char!r} at character {position})")
    return _Node("scalar", position, scalar.end(), json.loads(scalar.group()))


def _json_value(node: _Node, text: str) -> Any:
    return json.loads(text[node.start : node.end]) if node.kind in ("array", "object") else node.value


def _json_cell(node: _Node, text: str) -> str:
    """A value as the JSON readers give it as text (`transforms.readers._json_text`)."""
    value = _json_value(node, text)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _record_cells(node: _Node, text: str) -> dict[Hashable, str]:
    return {key.value: _json_cell(value, text) for key, value in node.items if key is not None}


def _json_records(document: _Node) -> list[_Node]:
    """The records the JSON reader reads: a top-level array, or the first of rows/data/records/items."""
    if document.kind == "object":
        members = {key.value: value for key, value in document.items if key is not None}
        for name in ("rows", "data", "records", "items"):
            if name in members and members[name].kind == "array":
                return [value for _, value in members[name].items]
        return []
    return [value for _, value in document.items] if document.kind == "array" else []


def _string_nodes(node: _Node) -> Iterator[_Node]:
    """Every string value under `node` (object keys left out)."""
    if node.kind == "string":
        yield node
    for _, value in node.items:
        yield from _string_nodes(value)


def _json_string(original: str, value: str) -> str:
    return json.dumps(value, ensure_ascii="\\u" in original)


def _json_edits(
    text: str, document: _Node, matcher: _Matcher, mentions: MentionFinder | None, where: Callable[[int], str]
) -> tuple[list[tuple[int, int, str]], int]:
    """(start, end, replacement) edits that take the person out of one JSON document; mentions replaced."""
    edits: list[tuple[int, int, str]] = []
    blanked: list[_Node] = []
    records = [r for r in _json_records(document) if r.kind == "object"]
    columns = matcher.columns({key: str(key) for r in records for key in _record_cells(r, text)}) if records else None
    for number, record in enumerate(records, start=1):
        if columns is not None and matcher.is_person(columns, _record_cells(record, text), where(number)):
            edits.append((record.start, record.end, "{}"))
            blanked.append(record)
    replaced = 0
    if mentions is not None:
        for node in _string_nodes(document):
            if any(r.start <= node.start < r.end for r in blanked) or not mentions.might_mention(node.value):
                continue
            new, n = mentions.redact(node.value)
            if n:
                edits.append((node.start, node.end, _json_string(text[node.start : node.end], new)))
                replaced += n
    return sorted(edits), replaced


def _apply(text: str, edits: Sequence[tuple[int, int, str]]) -> str:
    out, done = [], 0
    for start, end, replacement in edits:
        out += [text[done:start], replacement]
        done = end
    out.append(text[done:])
    return "".join(out)


def _redact_json(
    data: bytes, name: str, layout: Layout, matcher: _Matcher, mentions: MentionFinder | None
) -> Redaction:
    bom, text, codec = decode(data, layout.encoding or "utf-8")
    if not (matcher.person.could_be_in(text) or (mentions is not None and mentions.might_mention(text))):
        return matcher.result(data)
    document = _parse_json(text)
    if _JSON_WS.match(text, document.end).end() != len(text):  # type: ignore[union-attr]
        raise RedactionError("not valid JSON (extra data after the document)")
    edits, replaced = _json_edits(text, document, matcher, mentions, lambda n: f"record {n}")
    if not edits:
        return matcher.result(data)
    return matcher.result(_encode(bom, _apply(text, edits), codec), replaced)


def _redact_ndjson(
    data: bytes, name: str, layout: Layout, matcher: _Matcher, mentions: MentionFinder | None
) -> Redaction:
    bom, text, codec = decode(data, layout.encoding or "utf-8")
    if not (matcher.person.could_be_in(text) or (mentions is not None and mentions.might_mention(text))):
        return matcher.result(data)
    out, replaced, changed = [], 0, False
    lines = list(io.StringIO(text, newline=""))
    keys: dict[Hashable, str] = {}
    parsed: list[_Node | None] = []
    for line in lines:
        body = line.rstrip("\r\n")
        if not body.strip():
            parsed.append(None)
            continue
        record = _parse_json(body)
        if record.kind != "object":
            raise RedactionError("a line that is not a JSON object")
        keys.update({key.value: key.value for key, _ in record.items if key is not None})
        parsed.append(record)
    columns = matcher.columns(keys) if keys else None
    for number, (line, node) in enumerate(zip(lines, parsed, strict=True), start=1):
        body = line.rstrip("\r\n")
        tail = line[len(body) :]
        if node is None:
            out.append(line)
            continue
        if columns is not None and matcher.is_person(columns, _record_cells(node, body), f"line {number}"):
            out.append("{}" + tail)
            changed = True
            continue
        if mentions is not None and mentions.might_mention(body):
            edits = []
            for string in _string_nodes(node):
                new, n = mentions.redact(string.value)
                if n:
                    edits.append((string.start, string.end, _json_string(body[string.start : string.end], new)))
                    replaced += n
            if edits:
                out.append(_apply(body, sorted(edits)) + tail)
                changed = True
                continue
        out.append(line)
    if not changed:
        return matcher.result(data)
    return matcher.result(_encode(bom, "".join(out), codec), replaced)


def _looks_like_ndjson(head: bytes) -> bool:
    lines = [line.strip() for line in head.lstrip(b"\xef\xbb\xbf").splitlines() if line.strip()]
    return len(lines) > 1 and all(line.startswith(b"{") and line.endswith(b"}") for line in lines[:-1])


# --- Parquet --------------------------------------------------------------------------------------


def _redact_parquet(
    data: bytes, name: str, layout: Layout, matcher: _Matcher, mentions: MentionFinder | None
) -> Redaction:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(io.BytesIO(data))
        table = parquet.read()
    except Exception as error:  # pyarrow raises several error types for a damaged file
        raise RedactionError(f"not a readable Parquet file: {error}") from None
    columns = matcher.columns({n: n for n in table.column_names})
    texts = {n: _arrow_texts(table.column(n)) for n in table.column_names}
    person_rows = []
    if columns is not None:
        for index in range(table.num_rows):
            cells: dict[Hashable, str] = {n: texts[n][index] for n in table.column_names}
            if matcher.is_person(columns, cells, f"row {index + 1}"):
                person_rows.append(index)
    replaced = 0
    new_columns = []
    blanked = set(person_rows)
    mask = pa.array([i in blanked for i in range(table.num_rows)], type=pa.bool_())
    for index in range(table.num_columns):
        column = table.column(index)
        if person_rows:
            column = pc.if_else(mask, pa.scalar(None, type=column.type), column)
        if mentions is not None and (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            values = column.to_pylist()
            cache: dict[str, tuple[str, int]] = {}
            edited = False
            for position, value in enumerate(values):
                if value is None or not mentions.might_mention(value):
                    continue
                if value not in cache:
                    cache[value] = mentions.redact(value)
                new, n = cache[value]
                if n:
                    values[position] = new
                    replaced += n
                    edited = True
            if edited:
                column = pa.chunked_array([pa.array(values, type=column.type)])
        new_columns.append(column)
    if not person_rows and not replaced:
        return matcher.result(data)
    schema = pa.schema([f.with_nullable(True) for f in table.schema], metadata=table.schema.metadata)
    redacted = pa.Table.from_arrays(new_columns, schema=schema)
    metadata = parquet.metadata
    codec = (
        metadata.row_group(0).column(0).compression.lower()
        if metadata.num_row_groups and metadata.num_columns
        else "none"
    )
    rows_per_group = max((metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)), default=0)
    out = io.BytesIO()
    pq.write_table(
        redacted, out, compression=codec if codec != "uncompressed" else "none", row_group_size=rows_per_group or None
    )
    return matcher.result(out.getvalue(), replaced)


def _arrow_texts(column: Any) -> list[str]:
    """A column's values as the Parquet reader gives them as text (dates ISO, integers without `.0`)."""
    import pyarrow as pa

    out = []
    date = pa.types.is_date(column.type)
    for value in column.to_pylist():
        if value is None:
            out.append("")
        elif date:
            out.append(value.isoformat())
        elif isinstance(value, float) and value.is_integer():
            out.append(str(int(value)))
        elif isinstance(value, bool):
            out.append("true" if value else "false")
        else:
            out.append(str(value))
    return out
