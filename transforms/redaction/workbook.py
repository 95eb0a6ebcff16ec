"""XLSX: the worksheet XML edited in place, cell by cell; shared strings and the other parts of the workbook."""

from __future__ import annotations

import html
import io
import posixpath
import re
import zipfile
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from ._common import (
    Layout,
    Matcher,
    MentionFinder,
    Redaction,
    RedactionError,
    Whom,
    apply_edits,
)

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
    name: str, xml: str, book: _Workbook, matcher: Matcher, mentions: MentionFinder | None
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
            edits.append((match.start(), match.end(), _splice_row(match, apply_edits(row_body, cell_edits))))
    if not edits:
        return xml, blanked, kept, 0
    new_body = _orphan_formulas(apply_edits(body, edits), orphaned)
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


def redact_xlsx(data: bytes, name: str, layout: Layout, matcher: Matcher, mentions: MentionFinder | None) -> Redaction:
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
