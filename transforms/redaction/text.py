"""CSV (record by record, in the text's own encoding) and text that is not a table (line by line)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from typing import Literal

from transforms.readers import sniff_delimiter

from ._common import (
    HEADER_SCAN_ROWS,
    Columns,
    Layout,
    Matcher,
    MentionFinder,
    Redaction,
    RedactionError,
    decode,
    encode,
)

# --- CSV ------------------------------------------------------------------------------------------

_TERMINATOR = re.compile(r"(?:\r\n|\n|\r)\Z")
_QUOTED = re.compile(r'"(?:[^"]|"")*"')


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


def redact_csv(data: bytes, name: str, layout: Layout, matcher: Matcher, mentions: MentionFinder | None) -> Redaction:
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
    header: Columns | None = None
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
    return matcher.result(encode(bom, "".join(out), codec), replaced)


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


#: What `edit_csv` does to one record: nothing (None), replace some fields (index -> new value), or blank it.
RecordEdit = Mapping[int, str] | Literal["blank"] | None


def edit_csv(text: str, delimiter: str, edit: Callable[[int, list[str]], RecordEdit]) -> tuple[str, list[int], int]:
    """`text` with each record as `edit(record number, fields)` says, every other character kept.

    Returns the text, the numbers of the records blanked, and how many fields were replaced."""
    out: list[str] = []
    done, replaced, blanked = 0, 0, []
    for number, (start, end, fields) in enumerate(_csv_records(text, delimiter), start=1):
        change = edit(number, list(fields))
        if not change:
            continue
        record = text[start:end]
        if change == "blank":
            out += [text[done:start], _blank_record(record, fields, delimiter, frozenset())]
            blanked.append(number)
            done = end
            continue
        terminator = _TERMINATOR.search(record)
        tail = terminator.group() if terminator else ""
        content = record[: len(record) - len(tail)]
        spans = _field_spans(content, delimiter)
        if len(spans) != len(fields):  # quoting this scanner reads differently: leave the record as it was
            continue
        parts, position = [], 0
        for index, (a, b) in enumerate(spans):
            if index in change and change[index] != fields[index]:
                parts += [content[position:a], _csv_field(content[a:b], change[index], delimiter)]
                position = b
                replaced += 1
        parts.append(content[position:])
        out += [text[done:start], "".join(parts) + tail]
        done = end
    out.append(text[done:])
    return "".join(out), blanked, replaced


# --- text that is not a table ---------------------------------------------------------------------


def redact_lines(data: bytes, layout: Layout, matcher: Matcher, mentions: MentionFinder | None, why: str) -> Redaction:
    """A text file the pipeline cannot read as a table: blank each line holding one of the person's
    references as a whole word; replace mentions elsewhere."""
    try:
        bom, text, codec = decode(data, layout.encoding)
    except RedactionError:
        return matcher.result(data, note=f"could not be read ({why}); left as it was", unchecked=True)
    if "\x00" in text[:4096]:
        return matcher.result(data, note=f"could not be read ({why}); left as it was", unchecked=True)
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
    return matcher.result(encode(bom, "".join(out), codec), replaced, note)
