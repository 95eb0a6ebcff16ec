"""Reference checks that expose nobody: which workshops, projects, organisations and panellists exist.

Two places ask. The portal checks an uploaded file against the warehouse itself, server-side
(`from_warehouse`): panellist references are pseudonymised with the pipeline's key and compared
with the roster's pseudonyms, exactly as the run will compare them. `din check`, on a contributor's
machine, reads an *export* a data engineer hands out (`write_export`, `din references export`):
the lists of ids, and the roster's panellist references only as keyed hashes under a random salt
made for that export (never the pseudonymisation key, so the export cannot be joined to anything
published). Both give a `ReferenceKeys`, which `app.check` uses the same way.

What an export reveals: which workshop, project and organisation ids exist, and, to someone who
tries candidate references one by one, whether a given reference is on a panel's roster. No name,
e-mail, phone, postcode or pseudonym is in it.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from din.config import Config, FormatOptions
from din.contract import KINDS, Kind
from din.sql import quote
from expectations.suites import KEY_SEPARATOR
from transforms.column_mapping import ColumnMappingError, load_mapping
from transforms.headers import match_headers
from transforms.normalise import canonical_frame
from transforms.pseudonymise import pseudonymise
from transforms.readers import ReadError, ReadOptions, read_table

EXPORT_FORMAT = "din-reference-export"
EXPORT_VERSION = 1
PANELLIST = "known_panellist"


class ReferenceExportError(ValueError):
    """A reference export cannot be read; the message says why and what to ask for."""


@dataclass(frozen=True)
class ReferenceKeys:
    """The keys each reference parameter (`known_workshop`, ...) may take.

    Panellist keys are `panel_id<sep>HMAC(key, panel_id, panellist_ref)`: `comparable` turns a
    file's references into the same form, so no reference is ever compared (or kept) in clear."""

    known: Mapping[str, frozenset[str]]
    key: bytes = field(repr=False)
    origin: str = ""  # where the keys came from, for the report's notes

    def known_for(self, kind: Kind) -> dict[str, list[str]]:
        return {f"known_{r.name}": sorted(self.known.get(f"known_{r.name}", frozenset())) for r in kind.references}

    def comparable(self, frame: pl.DataFrame, kind: Kind) -> pl.DataFrame:
        """`frame` with its panellist references keyed like the known keys."""
        return pseudonymise(frame, self.key) if kind.pseudonymised_columns else frame


def from_warehouse(con: duckdb.DuckDBPyConnection, key: bytes, schema: str = "core") -> ReferenceKeys:
    """Every reference's keys from the warehouse's core tables (the roster's are pseudonyms under `key`)."""
    known: dict[str, frozenset[str]] = {}
    for kind in KINDS.values():
        for reference in kind.references:
            parameter = f"known_{reference.name}"
            if parameter in known:
                continue
            joined = f" || '{KEY_SEPARATOR}' || ".join(quote(c) for c in reference.target_columns)
            rows = con.execute(
                f"SELECT DISTINCT {joined} FROM {quote(schema)}.{quote(reference.target)} WHERE {joined} IS NOT NULL"
            ).fetchall()
            known[parameter] = frozenset(str(row[0]) for row in rows)
    return ReferenceKeys(known, key, "the warehouse")


def write_export(con: duckdb.DuckDBPyConnection, config: Config, key: bytes, out: Path) -> dict[str, int]:
    """Write the identifier-free reference export to `out`; returns how many keys of each reference."""
    server = from_warehouse(con, key)
    salt = secrets.token_bytes(32)
    known: dict[str, list[list[str]]] = {}
    for parameter, keys in server.known.items():
        if parameter != PANELLIST:
            known[parameter] = sorted(k.split(KEY_SEPARATOR) for k in keys)
    known[PANELLIST] = sorted(
        [panel, _keyed(salt, panel, ref)]
        for panel, ref in _roster_references(con, config)
        if f"{panel}{KEY_SEPARATOR}{_keyed(key, panel, ref)}" in server.known.get(PANELLIST, frozenset())
    )
    document = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "title": config.title,
        "salt": salt.hex(),
        "note": (
            "Reference ids for `din check --reference THIS_FILE`. Panellist references appear only as "
            "keyed hashes under the salt above (not the pseudonymisation key): no names or contact details."
        ),
        "known": known,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    partial.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(partial, out)
    return {parameter.removeprefix("known_"): len(keys) for parameter, keys in known.items()}


def read_export(path: Path) -> ReferenceKeys:
    """The ReferenceKeys of an export written by `write_export`."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ReferenceExportError(f"{path} is not a reference export ({error})") from None
    if not isinstance(document, dict) or document.get("format") != EXPORT_FORMAT:
        raise ReferenceExportError(
            f"{path} is not a reference export; ask the network's data team for one (`din references export`)"
        )
    if document.get("version") != EXPORT_VERSION:
        raise ReferenceExportError(f"{path} is a reference export of version {document.get('version')}; expected 1")
    try:
        salt = bytes.fromhex(str(document["salt"]))
        known = {
            str(parameter): frozenset(KEY_SEPARATOR.join(str(part) for part in entry) for entry in entries)
            for parameter, entries in document["known"].items()
        }
    except (KeyError, ValueError, TypeError, AttributeError):
        raise ReferenceExportError(f"{path}: the reference export is damaged; ask for a new one") from None
    return ReferenceKeys(known, salt, f"the reference export of {document.get('created_at', 'unknown date')}")


def _keyed(key: bytes, panel: str, ref: str) -> str:
    from transforms.pseudonymise import pseudonym

    return pseudonym(key, panel, ref)


def _roster_references(con: duckdb.DuckDBPyConnection, config: Config) -> set[tuple[str, str]]:
    """(panel_id, panellist_ref) as delivered, from the landing copies of the rosters in use."""
    rows = con.execute(
        """SELECT landing_path, source, organisation, original_path FROM ops.deliveries
           WHERE kind = 'roster' AND status = 'processed' ORDER BY delivery_id"""
    ).fetchall()
    formats = {s.name: s.format for s in config.all_sources}
    roster = KINDS["roster"]
    found: set[tuple[str, str]] = set()
    for landing_path, source, organisation, original_path in rows:
        fmt = formats.get(source, FormatOptions())
        try:
            raw = read_table(
                Path(landing_path), original_path, ReadOptions(fmt.type, fmt.sheet, fmt.delimiter, fmt.encoding)
            )
            saved = load_mapping(config.data_dir / "mappings", organisation, "roster")
        except (ReadError, ColumnMappingError):
            continue
        frame = canonical_frame(raw.frame, roster, match_headers(raw.headers, roster, saved.columns if saved else None))
        pairs = frame.select("panel_id", "panellist_ref").drop_nulls().unique()
        found.update((str(panel), str(ref)) for panel, ref in pairs.iter_rows())
    return found
