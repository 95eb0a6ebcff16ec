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

The person's records are found by their panellist column: `panellist_ref` (a statement's
`author_ref`) for the contract's kinds (with `panel_id` when the table has it), the mapping's
panellist column for a survey-tool export (whose panel is the mapping's). A record matches when that
cell holds one of the person's references, or one of their e-mail addresses (survey tools often key
respondents by e-mail). A Polis export spreads a participant over several files under other columns,
and counts their votes in others: `transforms.redaction.polis` finds them in all of its files first
(`Layout.polis`), then redacts each.
"""

from __future__ import annotations

from collections.abc import Callable

from ._common import (
    HEADER_SCAN_ROWS,
    IDENTIFIER_HEADERS,
    Blocked,
    Layout,
    Matcher,
    MentionFinder,
    Person,
    PolisPerson,
    Redaction,
    RedactionError,
    Whom,
    decode,
)
from .parquet import redact_parquet
from .polis import file_role, file_rows, polis_participants, polis_person, redact_polis, unsearchable
from .records import redact_json, redact_ndjson
from .text import redact_csv, redact_lines
from .workbook import redact_xlsx


def redact(data: bytes, name: str, layout: Layout, person: Whom, mentions: MentionFinder | None = None) -> Redaction:
    """`data` (a landing copy of the delivered file `name`) without the person, and what was found.

    With `mentions` None only the person's own records are blanked."""
    if layout.polis is not None and layout.format == "csv":
        try:
            return redact_polis(data, name, layout, mentions)
        except RedactionError as error:  # the adapter refuses such a file too; nobody's row can be told
            return Redaction(data, note=f"could not be read as a Polis file ({error}); left as it was", unchecked=True)
    handlers: dict[str, Callable[[bytes, str, Layout, Matcher, MentionFinder | None], Redaction]] = {
        "csv": redact_csv,
        "xlsx": redact_xlsx,
        "json": redact_json,
        "ndjson": redact_ndjson,
        "parquet": redact_parquet,
    }
    handler = handlers.get(layout.format)
    matcher = Matcher(layout, person)
    if handler is None:
        return redact_lines(data, layout, matcher, mentions, f"format {layout.format!r} is not a table format")
    try:
        return handler(data, name, layout, matcher, mentions)
    except RedactionError as error:
        if layout.format in ("xlsx", "parquet"):
            return Redaction(data, note=f"could not be read ({error}); left as it was", unchecked=True)
        return redact_lines(data, layout, matcher, mentions, str(error))


__all__ = [
    "HEADER_SCAN_ROWS",
    "IDENTIFIER_HEADERS",
    "Blocked",
    "Layout",
    "MentionFinder",
    "Person",
    "PolisPerson",
    "Redaction",
    "RedactionError",
    "Whom",
    "decode",
    "file_role",
    "file_rows",
    "polis_participants",
    "polis_person",
    "redact",
    "unsearchable",
]
