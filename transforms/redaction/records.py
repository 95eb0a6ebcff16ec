"""JSON and NDJSON: the person's records become `{}`; other values change only where they mention them."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ._common import (
    Layout,
    Matcher,
    MentionFinder,
    Redaction,
    RedactionError,
    apply_edits,
    decode,
    encode,
)

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
    text: str, document: _Node, matcher: Matcher, mentions: MentionFinder | None, where: Callable[[int], str]
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


def redact_json(data: bytes, name: str, layout: Layout, matcher: Matcher, mentions: MentionFinder | None) -> Redaction:
    bom, text, codec = decode(data, layout.encoding or "utf-8")
    if not (matcher.person.could_be_in(text) or (mentions is not None and mentions.might_mention(text))):
        return matcher.result(data)
    document = _parse_json(text)
    if _JSON_WS.match(text, document.end).end() != len(text):  # type: ignore[union-attr]
        raise RedactionError("not valid JSON (extra data after the document)")
    edits, replaced = _json_edits(text, document, matcher, mentions, lambda n: f"record {n}")
    if not edits:
        return matcher.result(data)
    return matcher.result(encode(bom, apply_edits(text, edits), codec), replaced)


def redact_ndjson(
    data: bytes, name: str, layout: Layout, matcher: Matcher, mentions: MentionFinder | None
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
                out.append(apply_edits(body, sorted(edits)) + tail)
                changed = True
                continue
        out.append(line)
    if not changed:
        return matcher.result(data)
    return matcher.result(encode(bom, "".join(out), codec), replaced)
